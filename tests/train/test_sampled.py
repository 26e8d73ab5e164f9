"""The output losses of the word2vec ladder -- hierarchical softmax, NCE, negative sampling --
against hand-computed values on tiny cases, the Huffman tree's distribution, the noise table,
and the training view that lets them skip the head's full scores.
"""
from __future__ import annotations

import math
import textwrap
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

import netspec
from netspec.dsl.errors import NetspecError
from netspec.dsl.tasks import TASKS, arg_problems
from netspec.train.config import RunConfig
from netspec.train.data import load_data
from netspec.train.errors import TrainError
from netspec.train.objectives import objectives, training_view
from netspec.train.sampled import HuffmanTree, Noise, OutputLoss, hierarchical_softmax, negative_sampling, nce
from netspec.train.trainer import train


def sig(x: float) -> float:
    return 1 / (1 + math.exp(-x))


# --------------------------------------------------------------------------
# Hierarchical softmax


def test_huffman_tree_of_three_classes_by_hand():
    # counts [2, 1, 1]: classes 1 and 2 merge under inner node 0 (1 the lighter: sign -1), then
    # class 0 and that node under the root, inner node 1 (class 0 the lighter, tie broken by order)
    tree = HuffmanTree.build([2, 1, 1])
    assert tree.length.tolist() == [1, 2, 2]
    assert tree.nodes.tolist() == [[1, 0], [1, 0], [1, 0]]
    assert tree.signs.tolist() == [[-1, 0], [1, -1], [1, 1]]


def test_huffman_code_lengths_follow_the_frequencies():
    tree = HuffmanTree.build([40, 30, 15, 10, 5])  # classic: lengths 1, 2, 3, 4, 4
    assert sorted(tree.length.tolist()) == [1, 2, 3, 4, 4]
    assert tree.length[0] <= tree.length[1] <= tree.length[2] <= tree.length[4]
    with pytest.raises(ValueError, match="at least 2 classes"):
        HuffmanTree.build([3])


def test_hierarchical_softmax_loss_by_hand():
    tree = HuffmanTree.build([2, 1, 1])
    h = torch.tensor([[1.0, 2.0]])
    W = torch.tensor([[0.5, -1.0], [0.25, 0.5], [9.0, 9.0]])  # rows: inner node 0, inner node 1, unused
    b = torch.tensor([0.1, -0.2, 5.0])
    s0, s1 = 0.5 - 2.0 + 0.1, 0.25 + 1.0 - 0.2  # h . W[n] + b[n]
    want = {0: sig(-s1), 1: sig(s1) * sig(-s0), 2: sig(s1) * sig(s0)}
    for c, p in want.items():
        terms = hierarchical_softmax(h, W, b, torch.tensor([c]), tree)
        torch.testing.assert_close(terms, torch.tensor([-math.log(p)]))
    torch.testing.assert_close(tree.all_log_probs(h, W, b).exp(), torch.tensor([[want[0], want[1], want[2]]]))


def test_hierarchical_softmax_probabilities_sum_to_one_over_the_vocabulary():
    g = torch.Generator().manual_seed(0)
    counts = torch.randint(1, 1000, (500,), generator=g).tolist()
    tree = HuffmanTree.build(counts)
    h, W, b = torch.randn(7, 16, generator=g), torch.randn(500, 16, generator=g), torch.randn(500, generator=g)
    p = tree.all_log_probs(h, W, b).exp()  # [7, 500]
    torch.testing.assert_close(p.sum(1), torch.ones(7))
    # the per-target path and the all-classes pass agree
    t = torch.randint(0, 500, (7,), generator=g)
    torch.testing.assert_close(tree.log_prob(h, W, b, t), p.log()[torch.arange(7), t])


# --------------------------------------------------------------------------
# NCE and negative sampling


def test_negative_sampling_loss_by_hand():
    h = torch.tensor([[1.0, -1.0]])
    W = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    # target 0 (score 2), noise 1 and 2 (scores -1 and 0); no bias
    terms = negative_sampling(h, W, None, torch.tensor([0]), torch.tensor([[1, 2]]))
    want = -math.log(sig(2.0)) - math.log(sig(1.0)) - math.log(sig(0.0))
    torch.testing.assert_close(terms, torch.tensor([want]))


def test_nce_loss_by_hand():
    h = torch.tensor([[1.0, -1.0]])
    W = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    b = torch.tensor([0.5, 0.0, -0.5])
    q = torch.tensor([0.5, 0.3, 0.2])
    k = 2
    s = [2.5, -1.0, -0.5]  # h . W[c] + b[c]
    d = [s[c] - math.log(k * q[c]) for c in range(3)]
    want = -math.log(sig(d[0])) - math.log(1 - sig(d[1])) - math.log(1 - sig(d[2]))
    terms = nce(h, W, b, torch.tensor([0]), torch.tensor([[1, 2]]), q.log())
    torch.testing.assert_close(terms, torch.tensor([want]))


def test_noise_follows_unigram_to_the_three_quarters():
    counts = [1000, 100, 10, 1]
    noise = Noise(counts)
    w = torch.tensor(counts, dtype=torch.float64) ** 0.75
    torch.testing.assert_close(noise.q.double(), w / w.sum(), rtol=1e-6, atol=0)
    share = torch.bincount(noise.table, minlength=4).double() / len(noise.table)
    torch.testing.assert_close(share, w / w.sum(), atol=2e-6, rtol=0)  # the table holds q exactly
    torch.manual_seed(0)
    draws = noise.draw(20000, 5)
    assert draws.shape == (20000, 5)
    torch.testing.assert_close(torch.bincount(draws.flatten(), minlength=4).double() / draws.numel(),
                               w / w.sum(), atol=5e-3, rtol=0)


# --------------------------------------------------------------------------
# Heads that choose an output loss


SKIPGRAM = textwrap.dedent("""\
    model SkipGram(vocab=50, d=8, loss="negative_sampling", k=3, bias=false):
        input word: long[B=4]
        embed: Embedding(vocab, d)         # (B, d)
        out: Linear(d, vocab, bias=bias)   # (B, vocab)
        head context: classify(loss=loss, k=k)
""")


def skipgram(tmp_path, **params):
    spec = tmp_path / "sg.nn"
    spec.write_text(SKIPGRAM)
    return netspec.build(str(spec), **params)


def test_the_loss_argument_is_checked_against_the_task_row():
    classify = TASKS["classify"]
    assert arg_problems(classify, {"loss": "nce", "k": 10}) == []
    assert arg_problems(classify, {"loss": "neg"}) == [
        "classify: loss must be one of softmax, hierarchical_softmax, nce, negative_sampling, got 'neg'"]
    assert arg_problems(classify, {"k": 0}) == ["classify: k must be a positive whole number, got 0"]
    assert arg_problems(classify, {"critic": "D"}) == [
        "task 'classify' takes no argument 'critic' (it takes weight, loss, k)"]
    assert arg_problems(TASKS["segment"], {"loss": "nce"}) == [
        "task 'segment' takes no argument 'loss' (it takes weight)"]


def test_a_bad_loss_argument_is_a_spec_error_at_the_argument(tmp_path):
    with pytest.raises(NetspecError) as e:
        skipgram(tmp_path, loss="hs")  # `classify(loss=loss)` with --set loss=hs
    d = e.value.diagnostics[0]
    assert d.message == "loss= is one of softmax, hierarchical_softmax, nce, negative_sampling, got 'hs'"
    assert (d.span.line, d.span.col) == (5, 33)


def test_a_bad_loss_in_a_hand_written_model_info_stops_training_with_the_head_named(tmp_path):
    m = skipgram(tmp_path)
    h = m.netspec.heads[0]
    m.netspec = replace(m.netspec, heads=(replace(h, args={**dict(h.args), "loss": "hs"}),))
    with pytest.raises(TrainError) as e:
        train(m, RunConfig(steps=1), "pywords", None, progress=False)
    assert str(e.value) == ("head 'context' of SkipGram: classify: loss must be one of softmax, "
                            "hierarchical_softmax, nce, negative_sampling, got 'hs'")


@pytest.mark.parametrize("loss", ["hierarchical_softmax", "nce", "negative_sampling"])
def test_the_training_view_returns_the_input_of_the_heads_linear(tmp_path, loss):
    m = skipgram(tmp_path, loss=loss, bias=True)
    objs = objectives(m, m.netspec, torch.arange(50, 0, -1))
    view = training_view(m, m.netspec, objs)
    assert "out" not in [n.name for n in view.graph.nodes]  # the 50 scores are never computed
    x = torch.tensor([1, 2, 3, 4])
    hidden = view(x)
    torch.testing.assert_close(hidden, m.embed(x))
    assert m(x).shape == (4, 50)  # the model itself is unchanged
    # the objective trains the head's layer: its gradient reaches out.weight (and out.bias)
    torch.manual_seed(0)
    terms = objs["context"].terms(hidden, {"y": torch.tensor([0, 1, 2, 3])})
    assert terms.shape == (4,)
    terms.mean().backward()
    assert m.out.weight.grad.abs().sum() > 0 and m.out.bias.grad.abs().sum() > 0
    assert dict(view.named_parameters())["out.weight"] is m.out.weight  # kept for DDP
    scores = objs["context"].scores(hidden.detach())
    assert scores.shape == (4, 50)
    if loss == "hierarchical_softmax":  # the tree's log-probabilities: a distribution
        torch.testing.assert_close(scores.exp().sum(1), torch.ones(4))
    else:  # the layer's own logits
        torch.testing.assert_close(scores, m(x).detach())


def test_softmax_heads_train_on_the_model_itself(tmp_path):
    m = skipgram(tmp_path, loss="softmax")
    objs = objectives(m, m.netspec)
    assert training_view(m, m.netspec, objs) is m
    out = m(torch.tensor([1, 2]))
    torch.testing.assert_close(objs["context"].terms(out, {"y": torch.tensor([3, 4])}),
                               F.cross_entropy(out, torch.tensor([3, 4]), reduction="none"))


def test_an_output_loss_needs_a_linear_last_layer(tmp_path):
    spec = tmp_path / "bad.nn"
    spec.write_text(textwrap.dedent("""\
        model Bad(vocab=20):
            input word: long[B=4]
            embed: Embedding(vocab, 8)
            out: Linear(8, vocab)
            scaled = out * 2.0
            head context = scaled: classify(loss="nce")
    """))
    m = netspec.build(str(spec))
    with pytest.raises(TrainError) as e:
        objectives(m, m.netspec)
    assert str(e.value) == ("head 'context' of Bad: loss='nce' trains the weights of the head's last layer, "
                            "which must be a Linear (the class vectors); the head is the output of 'mul' "
                            "(call_function)")


def test_output_loss_counts_pad_to_the_layers_classes():
    layer = torch.nn.Linear(4, 6)
    hs = OutputLoss("hierarchical_softmax", layer, [5, 4, 3])  # the data names 3 of 6 classes
    assert hs.tree.nodes.shape[0] == 6
    ns = OutputLoss("negative_sampling", layer, None)  # no counts: uniform noise
    torch.testing.assert_close(ns.noise.q, torch.full((6,), 1 / 6))


@pytest.mark.parametrize("loss", ["softmax", "hierarchical_softmax", "nce", "negative_sampling"])
def test_each_loss_trains_a_skipgram_on_pywords(tmp_path, loss):
    m = skipgram(tmp_path, vocab=300, loss=loss)
    cfg = RunConfig(steps=3, batch_size=32, eval_every=0, eval_batches=2, log_every=1, warmup_steps=0)
    r = train(m, cfg, "pywords", tmp_path / "run", progress=False)
    assert r.step == 3 and math.isfinite(r.train_loss) and math.isfinite(r.val["loss"])
    assert 0 <= r.val["accuracy"] <= 1
    data = load_data("pywords", m.netspec)
    assert data.num_classes == 300 and data.class_names[:3] == ["the", "a", "to"]


def test_sources_give_class_frequencies_for_the_output_losses():
    from tests.train.fixtures import make

    digits = load_data("digits", make("mlp").netspec)
    assert digits.counts.sum() == len(digits.train) and len(digits.counts) == 10
    text = load_data("pycode", make("lm").netspec)
    assert len(text.counts) == 256 and text.counts.sum() == len(text.train.tokens)
    assert text.counts[ord("e")] > text.counts[ord("Q")]
