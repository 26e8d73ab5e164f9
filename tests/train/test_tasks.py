"""The task tables: every row of dsl/tasks.py is implemented, each loss and metric gives the
hand-computed value on a tiny case, and a new task that reuses a loss is one row.
"""
from __future__ import annotations

import csv
import math

import pytest
import torch
import torch.nn.functional as F

from netspec.compiler.info import HeadInfo, ModelInfo
from netspec.dsl import tasks as dsl_tasks
from netspec.dsl.tasks import TASKS, Task
from netspec.train.config import RunConfig
from netspec.train.data import NEEDS, OUTPUTS, DataError, load_data
from netspec.train.losses import LOSSES
from netspec.train.metrics import METRICS, HeadMeter, format_metrics
from netspec.train.tasks import head_losses, head_meters, total_loss, unimplemented
from netspec.train.trainer import train
from tests.train.fixtures import make

LN2, LN3 = math.log(2), math.log(3)


def test_every_task_row_is_implemented():
    assert unimplemented() == []
    assert set(OUTPUTS) == set(dsl_tasks.OUTPUTS)  # every output rule the language names is checked
    for t in TASKS.values():
        assert t.loss in LOSSES and set(t.metrics) <= set(METRICS) and t.output in OUTPUTS, t.name
        assert set(t.needs) <= set(NEEDS), t.name


def test_unimplemented_names_what_a_row_lacks(monkeypatch):
    monkeypatch.setitem(TASKS, "rank", Task("rank", "ranking", ("y",), "hinge", ("ndcg", "accuracy"), "scores"))
    assert unimplemented() == ["task 'rank': loss 'hinge'", "task 'rank': metric 'ndcg'",
                               "task 'rank': output 'scores'"]


# --------------------------------------------------------------------------
# losses: one term per unit, by hand


def test_cross_entropy_one_term_per_sample():
    out = torch.tensor([[0.0, 0.0], [LN3, 0.0]])
    terms = LOSSES["cross_entropy"](out, {"y": torch.tensor([0, 0])})
    torch.testing.assert_close(terms, torch.tensor([LN2, math.log(4 / 3)]))


def test_next_token_skips_the_last_position():
    x = torch.tensor([[0, 1, 1]])
    out = torch.tensor([[[0.0, 0.0], [LN3, 0.0], [1e4, -1e4]]])  # the last position predicts nothing
    terms = LOSSES["next_token"](out, {"x": x})
    torch.testing.assert_close(terms, torch.tensor([LN2, math.log(4)]))


def test_pixel_cross_entropy_one_term_per_pixel():
    out = torch.tensor([[[[0.0, 0.0]], [[0.0, LN3]]]])  # [1, 2 classes, 1, 2]
    terms = LOSSES["pixel_cross_entropy"](out, {"mask": torch.tensor([[[0, 1]]])})
    torch.testing.assert_close(terms, torch.tensor([LN2, math.log(4 / 3)]))


def test_mse_losses_average_each_sample():
    x = torch.tensor([[[[1.0, 2.0]]], [[[0.0, 0.0]]]])  # [2, 1, 1, 2]
    out = torch.tensor([[[[1.0, 4.0]]], [[[1.0, 1.0]]]])
    torch.testing.assert_close(LOSSES["mse_input"](out, {"x": x}), torch.tensor([2.0, 1.0]))
    assert LOSSES["mse_input"](out, {"x": x}).mean() == F.mse_loss(out, x)
    target = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    torch.testing.assert_close(LOSSES["mse"](torch.tensor([[1.0, 1.0], [1.0, 3.0]]), {"target": target}),
                               torch.tensor([1.0, 2.0]))
    # a [B] output against one target per sample
    torch.testing.assert_close(LOSSES["mse"](torch.tensor([1.0, 4.0]), {"target": torch.tensor([[1.0], [2.0]])}),
                               torch.tensor([0.0, 4.0]))


def test_lm_loss_excludes_the_last_position():
    info = make("lm", block_size=4).netspec
    x = torch.tensor([[1, 2, 3, 4]])
    logits = torch.randn(1, 4, 256)
    want = F.cross_entropy(logits[0, :3], x[0, 1:])
    torch.testing.assert_close(head_losses(info, logits, {"x": x})["logits"], want)


def test_lm_target_names_the_input_it_predicts():
    import netspec
    m = netspec.build("""
model LM(vocab=11):
    input idx: long[B=2, T=6]
    Embedding(vocab, 8)
    Linear(8, vocab)
    head logits: lm(target=idx, weight=0.5)
""")
    (head,) = m.netspec.heads
    assert (head.task, head.target, head.weight) == ("lm", "idx", 0.5)
    x = torch.randint(0, 11, (2, 6))
    logits = m(x)
    losses = head_losses(m.netspec, logits, {"x": x})
    torch.testing.assert_close(losses["logits"], F.cross_entropy(logits[:, :-1].reshape(-1, 11), x[:, 1:].reshape(-1)))
    torch.testing.assert_close(total_loss(m.netspec, losses), 0.5 * losses["logits"])


def test_a_target_the_model_does_not_take_is_refused():
    from netspec.compiler.info import InputInfo
    from netspec.train.data.want import want_from_info
    info = ModelInfo("Rec", "<t>", {}, (InputInfo("x", "float32", ("B", 4), (2, 4)),),
                     (HeadInfo("out", "reconstruct", target="y"),))
    with pytest.raises(DataError, match=r"head 'out' of Rec reads input 'y', which the model does not take \(inputs: x\)"):
        want_from_info(info)


def test_two_heads_weighted_and_untrained_head_ignored():
    m = make("twohead")
    x = torch.randn(3, 1, 16, 16)
    batch = {"x": x, "y": torch.tensor([1, 2, 3])}
    out = m(x)
    losses = head_losses(m.netspec, out, batch)
    assert set(losses) == {"logits", "recon"}
    torch.testing.assert_close(losses["recon"], F.mse_loss(out["recon"], x))
    torch.testing.assert_close(losses["logits"], F.cross_entropy(out["logits"], batch["y"]))
    torch.testing.assert_close(total_loss(m.netspec, losses), losses["logits"] + 0.5 * losses["recon"])


# --------------------------------------------------------------------------
# metrics, accumulated over batches


def test_accuracy_and_loss_accumulate_over_batches():
    meter = HeadMeter("cross_entropy", ("accuracy",))
    meter.add(torch.tensor([[0.0, 0.0], [2.0, 0.0]]), {"y": torch.tensor([0, 1])})  # argmax 0, 0: one hit
    meter.add(torch.tensor([[0.0, LN3]]), {"y": torch.tensor([1])})  # a hit
    r = meter.result()
    want_loss = (LN2 + F.cross_entropy(torch.tensor([[2.0, 0.0]]), torch.tensor([1])).item() + math.log(4 / 3)) / 3
    assert r == {"loss": pytest.approx(want_loss), "accuracy": pytest.approx(2 / 3)}


def test_perplexity_is_the_exp_of_the_token_loss():
    meter = HeadMeter("next_token", ("perplexity",))
    meter.add(torch.zeros(2, 5, 4), {"x": torch.zeros(2, 5, dtype=torch.long)})  # uniform over 4: loss ln 4
    r = meter.result()
    assert r["loss"] == pytest.approx(math.log(4)) and r["perplexity"] == pytest.approx(4.0)


def test_segment_iou_over_present_classes():
    meter = head_meters(make("seg").netspec)["mask"]
    mask = torch.tensor([[[0, 0], [1, 1]]])  # class 2 never appears
    pred = torch.tensor([[[0, 1], [1, 1]]])
    logits = F.one_hot(pred, 3).permute(0, 3, 1, 2).float() * 10
    meter.add(logits, {"mask": mask})
    r = meter.result()
    # class 0: inter 1, union 2; class 1: inter 2, union 3
    assert r["iou"] == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert r["pixel_accuracy"] == pytest.approx(3 / 4)
    meter.add(logits, {"mask": mask})  # the same batch again: the shares stay
    assert meter.result()["iou"] == pytest.approx((1 / 2 + 2 / 3) / 2)


def test_format_metrics_in_table_order_and_digits():
    assert format_metrics({"loss": 0.5, "perplexity": 1.649, "accuracy": 0.25}) == \
        "val loss 0.5000  accuracy 0.2500  perplexity 1.65"


# --------------------------------------------------------------------------
# a new task is one row


def with_heads(info: ModelInfo, *heads: HeadInfo) -> ModelInfo:
    return ModelInfo(info.name, info.source, info.params, info.inputs, heads)


def test_a_task_reusing_a_loss_is_one_row(monkeypatch):
    monkeypatch.setitem(TASKS, "categorize", Task("categorize", "classify by another name", ("y",), "cross_entropy",
                                                  ("accuracy",), "class_logits"))
    m = make("conv")
    m.netspec = with_heads(m.netspec, HeadInfo("logits", "categorize", shape=(2, 10)))
    r = train(m, RunConfig(batch_size=16, warmup_steps=2, eval_batches=2, steps=2, eval_every=0), "digits", None,
              progress=False)
    assert r.step == 2 and 0.0 <= r.val["accuracy"] <= 1.0 and r.val["logits/loss"] == r.val["loss"]


def test_a_new_task_is_checked_against_the_data(monkeypatch, tmp_path):
    monkeypatch.setitem(TASKS, "locate", Task("locate", "regress by another name", ("target",), "mse", (), "values"))
    m = make("regress")
    m.netspec = with_heads(m.netspec, HeadInfo("box", "locate", shape=(2, 3)))
    with pytest.raises(DataError, match="data 'digits' has no regression targets, but head 'box' of Regressor is "
                                        r"a locate head \(try --data shapes: x, y, radius\)"):
        load_data("digits", m.netspec)
    train(m, RunConfig(batch_size=8, warmup_steps=0, eval_batches=1, steps=2, eval_every=2, log_every=1),
          "shapes", tmp_path / "run", progress=False)
    header = next(csv.reader(open(tmp_path / "run" / "metrics.csv")))
    assert header == ["step", "loss_box", "loss", "lr", "samples_per_s", "val_loss"]
