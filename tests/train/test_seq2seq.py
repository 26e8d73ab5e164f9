"""Several inputs: the seq2seq data (reversal, addition), teacher forcing with padding ignored,
exact match, greedy decoding (`netspec sample`), and the encoder-decoder Transformer of
specs/transformer.nn trained from the command line at a tiny size.
"""
from __future__ import annotations

import json
import math
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

import netspec
from netspec.cli import main as cli_main
from netspec.train.config import RunConfig
from netspec.train.data import DataError, load_data
from netspec.train.data.seq2seq import SPECIALS, TRAIN_SIZE, VAL_SIZE, vocabulary
from netspec.train.losses import LOSSES
from netspec.train.metrics import METRICS, sequences_right
from netspec.train.sampling import translate

REPO = Path(__file__).resolve().parents[2]
TRANSFORMER = str(REPO / "specs" / "transformer.nn")
TINY = dict(d=16, heads=2, ff=32, enc_layers=1, dec_layers=1, p=0.0, src_vocab=30, tgt_vocab=30)


def transformer(S=8, T=6, **over):
    return netspec.build(TRANSFORMER, input_shapes={"src": (1, S), "tgt": (1, T)}, **{**TINY, **over})


def text(ids, vocab) -> str:
    return "".join(vocab[i] for i in ids)


def test_addition_pairs_layout():
    data = load_data("seq2seq:add", transformer().netspec)
    vocab = vocabulary("add")
    assert vocab[:3] == list(SPECIALS) and data.vocab == vocab and data.vocab_size == 15
    assert data.inputs == ("src", "x") and data.specials == {"pad": 0, "bos": 1, "eos": 2}
    b = data.val.batch(np.arange(5))
    assert b["src"].shape == (5, 8) and b["x"].shape == (5, 6) and b["x_valid"].dtype == torch.bool
    for row in range(5):
        src = text([i for i in b["src"][row].tolist() if i != 0], vocab)
        a, rest = src.split("+")
        assert rest.endswith("=") and len(a) == len(rest[:-1]) == 3
        n = int(b["x_valid"][row].sum())
        x = b["x"][row].tolist()
        assert x[0] == 1 and x[n - 1] == 2 and all(i == 0 for i in x[n:])  # <bos> sum <eos> <pad>...
        assert int(text(x[1 : n - 1], vocab)) == int(a) + int(rest[:-1])
        assert not b["x_valid"][row, n:].any()


def test_addition_holds_out_its_validation_pairs():
    data = load_data("seq2seq:add", transformer().netspec)
    val = {data.val.pair(i, 0)[0] for i in range(VAL_SIZE)}
    train = [data.train.pair(i, e)[0] for e in (0, 1) for i in range(0, TRAIN_SIZE, 7)]
    assert not val & set(train)
    assert data.train.pair(3, 0) == data.train.pair(3, 0) != data.train.pair(3, 1)  # fresh every epoch


def test_reversal_pairs_and_their_lengths():
    data = load_data("seq2seq:reverse", transformer(S=5, T=9).netspec)
    vocab = data.vocab
    lengths = set()
    for i in range(200):
        s, t = data.train.pair(i, 0)
        assert t == s[::-1] and set(s) <= set("abcdefghijklmnopqrstuvwxyz")
        lengths.add(len(s))
    assert lengths == {1, 2, 3, 4, 5}  # up to the source length (and T - 2 = 7)
    b = data.train.batch(np.arange(3))
    n = int(b["x_valid"][0].sum())
    assert text(b["x"][0, 1 : n - 1].tolist(), vocab) == text(b["src"][0, : n - 2].tolist(), vocab)[::-1]


def test_inputs_too_short_for_the_task_are_an_error_with_the_fix():
    with pytest.raises(DataError) as e:
        load_data("seq2seq:add", transformer(S=6, T=6).netspec)
    assert str(e.value) == ("data 'seq2seq:add' needs sources of 8 tokens and targets of 6 (with <bos> and "
                            "<eos>), but inputs 'src' and 'tgt' of Transformer take 6 and 6 (try --input "
                            "src=1x8 tgt=1x6)")


def test_a_one_input_source_cannot_feed_two_inputs_and_back():
    with pytest.raises(DataError) as e:
        load_data("pycode", transformer().netspec)
    assert str(e.value) == "data 'pycode' feeds 1 input but Transformer takes 2 (src, tgt)"
    with pytest.raises(DataError) as e:
        load_data("seq2seq:reverse", netspec.build(str(REPO / "specs" / "char_rnn.nn")).netspec)
    assert str(e.value) == "data 'seq2seq:reverse' feeds 2 inputs but CharRNN takes 1 (idx)"
    with pytest.raises(DataError, match="data 'seq2seq:' is one of seq2seq:reverse, seq2seq:add"):
        load_data("seq2seq:sort", transformer().netspec)


def test_the_head_must_read_the_target_input(tmp_path):
    spec = tmp_path / "t.nn"
    spec.write_text(Path(TRANSFORMER).read_text().replace("seq2seq(target=tgt)", "seq2seq(target=src)"))
    m = netspec.build(str(spec), input_shapes={"src": (1, 8), "tgt": (1, 6)}, **TINY)
    with pytest.raises(DataError) as e:
        load_data("seq2seq:add", m.netspec)
    assert str(e.value) == ("head 'logits' of Transformer reads input 'src', but data 'seq2seq:add' feeds it "
                            "the source; name the input it predicts with target=")


def test_next_token_ignores_padding():
    # two sequences of T = 4: the first has 3 real tokens (<bos> a <eos>), the second 4
    x = torch.tensor([[1, 3, 2, 0], [1, 3, 4, 2]])
    valid = torch.tensor([[True, True, True, False], [True, True, True, True]])
    out = torch.zeros(2, 4, 5)
    out[0, 0, 3] = math.log(4)  # p(a) = 4 / 8 at the first position
    terms = LOSSES["next_token"](out, {"x": x, "x_valid": valid})
    # predicted: row 0 positions 0, 1 (position 2 would predict padding); row 1 positions 0, 1, 2
    torch.testing.assert_close(terms, torch.tensor([math.log(2), math.log(5), math.log(5), math.log(5),
                                                    math.log(5)]))


def test_exact_match_counts_whole_sequences():
    x = torch.tensor([[1, 3, 2, 0], [1, 3, 4, 2]])
    valid = x != 0
    valid[:, 0] = True
    out = torch.zeros(2, 4, 5)
    out[0, 0, 3], out[0, 1, 2], out[0, 2, 4] = 1, 1, 1  # row 0 right where it counts (position 2 predicts pad)
    out[1, 0, 3], out[1, 1, 4], out[1, 2, 0] = 1, 1, 1  # row 1 wrong at its last token
    stat = sequences_right(out, {"x": x, "x_valid": valid})
    assert stat.tolist() == [1, 2]
    assert METRICS["exact_match"].result(stat, 0.0) == 0.5


def test_greedy_decoding_follows_the_likeliest_tokens():
    m = transformer(T=6)
    torch.manual_seed(0)
    ids = translate(m, [3, 4, 5], head="logits", specials={"pad": 0, "bos": 1, "eos": 2}, max_tokens=10,
                    greedy=True)
    assert len(ids) <= 4 and not {0, 1, 2} & set(ids)  # at most T - 2 tokens, no <pad>/<bos>, <eos> not returned
    # by hand: the same greedy steps through the model, never choosing <pad> or <bos>
    src = torch.tensor([[3, 4, 5, 0, 0, 0, 0, 0]])
    seq = [1]
    m.eval()
    for _ in range(len(ids) + 1):
        tgt = torch.tensor([seq + [0] * (6 - len(seq))])
        nxt = int(m(src, tgt)[0, len(seq) - 1, 2:].argmax()) + 2
        if nxt == 2 or len(seq) == 5:  # <eos>, or T - 2 = 4 tokens decoded
            break
        seq.append(nxt)
    assert ids == seq[1:]


def test_transformer_trains_from_the_command_line_and_decodes(tmp_path, capsys):
    out = tmp_path / "run"
    sets = [f"{k}={v}" for k, v in TINY.items()]
    assert cli_main(["train", TRANSFORMER, "--data", "seq2seq:add", "--input", "src=1x8", "tgt=1x6", "--set", *sets,
                     "--steps", "3", "--batch-size", "8", "--out", str(out)]) == 0
    assert json.loads((out / "vocab.json").read_text()) == vocabulary("add")
    capsys.readouterr()
    assert cli_main(["eval", str(out), "--json", "--batches", "2"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert set(res) == {"loss", "perplexity", "exact_match"} and 0 <= res["exact_match"] <= 1
    assert cli_main(["sample", str(out), "--prompt", "123+456=", "--greedy"]) == 0
    decoded = capsys.readouterr().out
    assert decoded.endswith("\n") and set(decoded.strip()) <= set("0123456789+=")
    assert cli_main(["sample", str(out), "--prompt", "1234+5678="]) == 1
    assert "the prompt is 10 tokens, but Transformer reads sources of at most 8" in capsys.readouterr().err


def test_sampling_needs_a_prompt(tmp_path, capsys):
    out = tmp_path / "run"
    sets = [f"{k}={v}" for k, v in TINY.items()]
    assert cli_main(["train", TRANSFORMER, "--data", "seq2seq:reverse", "--input", "src=1x4", "tgt=1x6", "--set",
                     *sets, "--steps", "1", "--batch-size", "4", "--out", str(out)]) == 0
    capsys.readouterr()
    assert cli_main(["sample", str(out)]) == 1
    assert capsys.readouterr().err.strip() == "error: sampling this run needs --prompt TEXT"
    assert cli_main(["sample", str(out), "--prompt", "abc", "--seed", "1"]) == 0
    assert set(capsys.readouterr().out.strip()) <= set("abcdefghijklmnopqrstuvwxyz")
