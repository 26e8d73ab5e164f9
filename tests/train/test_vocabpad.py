"""pad_vocab: an lm built with vocab_size rounded up trains, evaluates and samples exactly as
the unpadded model, because the padded logits are cut before the loss, metrics and sampling."""
from __future__ import annotations

import json

import pytest
import torch

from netspec import build
from netspec.cli import main
from netspec.train.config import ConfigError, RunConfig
from netspec.train.data import load_data
from netspec.train.sampling import complete_text, generate
from netspec.train.tasks import head_losses
from netspec.train.trainer import train
from netspec.train.validation import evaluate
from netspec.train.vocabpad import pad_overrides, round_up

REAL, PADDED = 20, 64
SIZES = {"n_layer": 1, "n_head": 2, "n_embd": 32, "block_size": 16}
TEXT = "abcdefghij klmnopqr\n" * 200  # 20 distinct characters: the char vocabulary fills REAL


def _pair():
    """An unpadded GPT-2 and its padded twin holding the same weights (the extra embedding rows
    get large values, so any leak of their logits would show)."""
    torch.manual_seed(0)
    small = build("gpt2", vocab_size=REAL, **SIZES)
    big = build("gpt2", vocab_size=PADDED, **SIZES)
    sd = big.state_dict()
    for k, v in small.state_dict().items():
        sd[k] = torch.cat([v, torch.full((PADDED - REAL, *v.shape[1:]), 3.0)]) if v.shape != sd[k].shape else v
    big.load_state_dict(sd)
    return small, big


def test_round_up_and_overrides():
    assert [round_up(n, 64) for n in (1, 64, 65, 50257)] == [64, 64, 128, 50304]
    over, cfg = pad_overrides("GPT2", {"vocab_size": 50257}, {"n_layer": 2}, RunConfig(pad_vocab=64))
    assert over == {"n_layer": 2, "vocab_size": 50304} and cfg.vocab_limit == 50257
    assert pad_overrides("GPT2", {"vocab_size": 50257}, {}, RunConfig()) == ({}, RunConfig())
    with pytest.raises(ConfigError, match=r"^pad_vocab: LeNet5 has no integer parameter 'vocab_size' to pad "
                                          r"\(its parameters: classes\)$"):
        pad_overrides("LeNet5", {"classes": 10}, {}, RunConfig(pad_vocab=64))


def test_padded_loss_is_the_loss_on_the_real_columns():
    small, big = _pair()
    x = torch.randint(0, REAL, (3, SIZES["block_size"]))
    want = head_losses(small.netspec, small(x), {"x": x})
    got = head_losses(big.netspec, big(x), {"x": x}, vocab_limit=REAL)
    torch.testing.assert_close(got, want)
    leaked = head_losses(big.netspec, big(x), {"x": x})  # uncut, the padded ids take probability
    assert leaked["logits"] > want["logits"] + 0.1


def test_padded_run_trains_and_evaluates_like_the_unpadded_one(tmp_path):
    (tmp_path / "t.txt").write_text(TEXT)
    small, big = _pair()
    rows = {}
    for name, m, limit in (("small", small, None), ("big", big, REAL)):
        cfg = RunConfig(steps=3, batch_size=4, log_every=1, eval_every=0, warmup_steps=1, device="cpu",
                        vocab="char", vocab_limit=limit, data=f"text:{tmp_path / 't.txt'}")
        rows[name] = []
        r = train(m, cfg, cfg.data, None, progress=False, on_step=lambda s, row, n=name: rows[n].append(row["loss"]))
        rows[name + "_val"] = r.val["perplexity"]
    torch.testing.assert_close(rows["big"], rows["small"], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(rows["big_val"], rows["small_val"], rtol=1e-5, atol=1e-5)
    assert rows["small_val"] < REAL * 1.5  # a perplexity over the 20 real ids, not the 64 padded ones
    cfg = RunConfig(vocab="char", vocab_limit=REAL, device="cpu")
    data = load_data(f"text:{tmp_path / 't.txt'}", big.netspec, cfg, model=big)
    torch.testing.assert_close(evaluate(big, data, cfg)["perplexity"], evaluate(small, data, cfg)["perplexity"])


def test_sampling_never_returns_a_padded_id():
    _, big = _pair()  # the padded rows' logits are the largest: uncut, sampling would pick them
    torch.manual_seed(0)
    uncut = generate(big, [1, 2], 30, block_size=SIZES["block_size"])
    assert max(uncut[2:]) >= REAL
    ids = generate(big, [1, 2], 30, block_size=SIZES["block_size"], vocab_size=REAL)
    assert max(ids) < REAL
    vocab = [chr(ord("A") + i) for i in range(30)]  # a char vocabulary wider than the real one
    text = complete_text(big, "AB", vocab=vocab, seq_len=None, tokens=40, temperature=1.0, top_k=None, seed=0,
                         vocab_limit=REAL)
    assert set(text) <= set(vocab[:REAL]) and len(text) == 42


def test_vocab_limit_must_hold_the_data_vocabulary(tmp_path):
    (tmp_path / "t.txt").write_text(TEXT)
    _, big = _pair()
    cfg = RunConfig(steps=1, device="cpu", vocab="char", vocab_limit=10)
    with pytest.raises(Exception, match=r"has a vocabulary of 20 but vocab_limit is 10"):
        train(big, cfg, f"text:{tmp_path / 't.txt'}", None, progress=False)


def test_cli_pads_the_model_and_the_run_keeps_the_real_size(tmp_path, capsys):
    (tmp_path / "t.txt").write_text(TEXT)
    run = tmp_path / "lm"
    args = ["train", "gpt2", "--set", *(f"{k}={v}" for k, v in SIZES.items()), f"vocab_size={REAL}",
            "--data", f"text:{tmp_path / 't.txt'}", "--vocab", "char", "--pad-vocab", "64", "--steps", "2",
            "--batch-size", "4", "--device", "cpu", "--out", str(run)]
    assert main(args) == 0
    meta = json.loads((run / "model.json").read_text())
    assert meta["params"]["vocab_size"] == PADDED and meta["overrides"]["vocab_size"] == PADDED
    cfg = (run / "config.yaml").read_text()
    assert "pad_vocab: 64\n" in cfg and f"vocab_limit: {REAL}\n" in cfg
    assert main(["sample", str(run), "--prompt", "ab", "--tokens", "20", "--device", "cpu", "--seed", "0"]) == 0
    assert main(["train", "--resume", str(run), "--pad-vocab", "128"]) == 1
    assert "--pad-vocab cannot change a resumed run's model" in capsys.readouterr().err
    assert main(["train", "lenet5", "--pad-vocab", "64", "--steps", "1", "--out", str(tmp_path / "x")]) == 1
    assert "pad_vocab: LeNet5 has no integer parameter 'vocab_size' to pad" in capsys.readouterr().err
