"""Tests of compiler.weights: reading checkpoints, the transformers converter, strict reports, tied weights.

The converter is checked against real HuggingFace transformers: a small
randomly initialised GPT2LMHeadModel, converted and loaded into the
nanoGPT-style reference, must give the same logits.
"""
from __future__ import annotations

import argparse
import re

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from netspec.compiler.weights import (
    CONVERTERS,
    LoadReport,
    WeightsError,
    convert_transformers_gpt2,
    load_weights,
    read_state_dict,
    register_converter,
)
from tests.reference.gpt2 import GPT, GPTConfig
from tests.reference.mlp import MLP

import transformers  # noqa: E402  (a dev dependency: missing means a broken set-up, not a skip)

CFG = dict(n_layer=2, n_head=2, n_embd=64, vocab_size=100, n_positions=32)


@pytest.fixture(scope="module")
def hf_model():
    torch.manual_seed(0)
    config = transformers.GPT2Config(
        **CFG,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=0,  # GPT-2's 50256 is outside this small vocabulary
        eos_token_id=0,
    )
    model = transformers.GPT2LMHeadModel(config).eval()
    # A random init has zero biases and unit LayerNorms; make every tensor
    # distinct so a wrong transpose or a swapped name cannot go unnoticed.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias") or ".ln_" in name:
                p.copy_(torch.randn_like(p) * 0.1 + (1.0 if name.endswith("ln_1.weight") else 0.0))
    return model


def make_gpt() -> GPT:
    torch.manual_seed(1)
    return GPT(GPTConfig(vocab_size=100, block_size=32, n_layer=2, n_head=2, n_embd=64)).eval()


IDX = torch.randint(0, 100, (2, 32), generator=torch.Generator().manual_seed(3))


def hf_logits(hf_model) -> torch.Tensor:
    with torch.no_grad():
        return hf_model(IDX).logits


def gpt_logits(model: GPT) -> torch.Tensor:
    with torch.no_grad():
        return model(IDX)


def state_of(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


# ---------------------------------------------------------------- transformers

def test_transformers_gpt2_logits_match(hf_model):
    model = make_gpt()
    report = load_weights(model, hf_model.state_dict(), convert="transformers")
    assert report.ok and not report.missing and not report.unexpected
    assert set(report.loaded) == set(model.state_dict())
    torch.testing.assert_close(gpt_logits(model), hf_logits(hf_model))
    assert model.lm_head.weight is model.transformer.wte.weight


def test_converter_names_and_transposes(hf_model):
    hf = hf_model.state_dict()
    conv = convert_transformers_gpt2(hf)
    assert set(conv) == set(make_gpt().state_dict())
    for sub in ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"):
        key = f"transformer.h.1.{sub}.weight"
        torch.testing.assert_close(conv[key], hf[key].t(), rtol=0, atol=0)
        assert conv[key].is_contiguous()
    torch.testing.assert_close(conv["transformer.h.1.ln_2.bias"], hf["transformer.h.1.ln_2.bias"], rtol=0, atol=0)
    assert conv["transformer.h.0.attn.c_attn.weight"].shape == (192, 64)
    assert CONVERTERS["transformers"] is convert_transformers_gpt2


def test_transformers_without_prefix_and_old_buffers(hf_model):
    # GPT2Model's state dict: no "transformer." prefix, no lm_head; older
    # transformers versions also saved the causal-mask buffers.
    sd = dict(hf_model.transformer.state_dict())
    for i in range(CFG["n_layer"]):
        sd[f"h.{i}.attn.bias"] = torch.ones(1, 1, 32, 32).tril()
        sd[f"h.{i}.attn.masked_bias"] = torch.tensor(-1e4)
    model = make_gpt()
    report = load_weights(model, sd, convert="transformers")
    assert report.ok
    assert "lm_head.weight" in report.loaded  # filled through the tie
    torch.testing.assert_close(gpt_logits(model), hf_logits(hf_model))


def test_transformers_from_safetensors_with_one_tied_key(hf_model, tmp_path):
    # safetensors refuses shared tensors, so checkpoints keep one of the two.
    sd = {k: v.clone().contiguous() for k, v in hf_model.state_dict().items() if k != "lm_head.weight"}
    path = tmp_path / "gpt2.safetensors"
    save_file(sd, str(path))
    model = make_gpt()
    load_weights(model, path, convert="transformers")
    torch.testing.assert_close(gpt_logits(model), hf_logits(hf_model))


@pytest.mark.parametrize("suffix", [".pt", ".pth", ".bin"])
def test_torch_files_with_both_tied_keys(hf_model, tmp_path, suffix):
    path = tmp_path / f"gpt2{suffix}"
    torch.save(hf_model.state_dict(), path)
    model = make_gpt()
    load_weights(model, str(path), convert="transformers")
    torch.testing.assert_close(gpt_logits(model), hf_logits(hf_model))


# ---------------------------------------------------------------- tied weights

def test_tied_weights_load_from_either_key():
    src = make_gpt()
    with torch.no_grad():
        src.lm_head.weight.normal_()
    full = state_of(src)
    for keep in ("lm_head.weight", "transformer.wte.weight"):
        other = ({"lm_head.weight", "transformer.wte.weight"} - {keep}).pop()
        sd = {k: v for k, v in full.items() if k != other}
        model = GPT(src.config)
        report = load_weights(model, sd)
        assert report.ok and other in report.loaded
        torch.testing.assert_close(model.lm_head.weight, full[keep], rtol=0, atol=0)
        assert model.lm_head.weight is model.transformer.wte.weight


def test_tied_keys_that_disagree_are_refused():
    model = make_gpt()
    sd = state_of(model)
    sd["lm_head.weight"] = sd["lm_head.weight"] + 1
    with pytest.raises(WeightsError, match="tied keys with different values"):
        load_weights(model, sd)


# ---------------------------------------------------------------- strict and reports

def test_strict_error_lists_missing_unexpected_and_misshaped():
    model = make_gpt()
    before = state_of(model)
    sd = state_of(make_gpt())
    del sd["transformer.ln_f.bias"]
    del sd["transformer.h.1.mlp.c_fc.weight"]
    sd["transformer.h.9.ln_1.weight"] = torch.ones(64)
    sd["transformer.wpe.weight"] = torch.zeros(16, 64)
    sd["transformer.h.0.attn.c_attn.bias"] = torch.zeros(64)
    with pytest.raises(WeightsError) as exc:
        load_weights(model, sd)
    msg = str(exc.value)
    assert msg.splitlines()[0].startswith("weights do not fit the model: 2 missing, 1 unexpected, 2 mis-shaped")
    assert "missing keys (in the model, not in the checkpoint) (2):\n  transformer.h.1.mlp.c_fc.weight\n  transformer.ln_f.bias" in msg
    assert "unexpected keys (in the checkpoint, not in the model) (1):\n  transformer.h.9.ln_1.weight" in msg
    assert "transformer.wpe.weight: model expects [32, 64], checkpoint has [16, 64]" in msg
    assert "transformer.h.0.attn.c_attn.bias: model expects [192], checkpoint has [64]" in msg
    report = exc.value.report
    assert isinstance(report, LoadReport) and not report.ok
    assert report.mismatched[0] == ("transformer.wpe.weight", (32, 64), (16, 64))
    # A refused load copies nothing.
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_long_lists_are_truncated():
    model = make_gpt()
    sd = state_of(model)
    for i in range(25):
        sd[f"extra.{i:02d}"] = torch.zeros(1)
    with pytest.raises(WeightsError) as exc:
        load_weights(model, sd)
    msg = str(exc.value)
    assert "unexpected keys (in the checkpoint, not in the model) (25):" in msg
    assert "  extra.19\n  ... and 5 more" in msg
    assert "extra.20" not in msg
    assert len(re.findall(r"^  extra\.", msg, flags=re.M)) == 20


def test_non_strict_loads_what_fits():
    src, model = make_gpt(), make_gpt()
    with torch.no_grad():
        for p in src.parameters():
            p.add_(1.0)
    sd = state_of(src)
    del sd["transformer.ln_f.weight"]
    sd["transformer.wpe.weight"] = torch.zeros(8, 64)
    sd["bogus"] = torch.zeros(3)
    before = state_of(model)
    report = load_weights(model, sd, strict=False)
    assert report.missing == ["transformer.ln_f.weight"]
    assert report.unexpected == ["bogus"]
    assert [k for k, _, _ in report.mismatched] == ["transformer.wpe.weight"]
    assert torch.equal(model.transformer.ln_f.weight, before["transformer.ln_f.weight"])
    assert torch.equal(model.transformer.wpe.weight, before["transformer.wpe.weight"])
    assert torch.equal(model.transformer.ln_f.bias, sd["transformer.ln_f.bias"])
    assert torch.equal(model.transformer.h[1].mlp.c_fc.weight, sd["transformer.h.1.mlp.c_fc.weight"])
    assert "1 missing, 1 unexpected, 1 mis-shaped" in str(report)


def test_buffers_load_and_num_batches_tracked_is_optional():
    src = MLP(4, hidden=(3,), out_features=2).train()
    src(torch.randn(8, 4))
    sd = {k: v for k, v in state_of(src).items() if not k.endswith("num_batches_tracked")}
    model = MLP(4, hidden=(3,), out_features=2)
    report = load_weights(model, sd)
    assert report.ok
    torch.testing.assert_close(model.bn0.running_mean, src.bn0.running_mean, rtol=0, atol=0)
    torch.testing.assert_close(model.bn1.running_var, src.bn1.running_var, rtol=0, atol=0)


def test_dtype_is_converted_to_the_models():
    model = MLP(4, hidden=(3,), out_features=2)
    sd = {k: (v.half() if v.is_floating_point() else v) for k, v in state_of(MLP(4, hidden=(3,), out_features=2)).items()}
    load_weights(model, sd)
    assert model.fc1.weight.dtype == torch.float32
    torch.testing.assert_close(model.fc1.weight, sd["fc1.weight"].float(), rtol=0, atol=0)


# ---------------------------------------------------------------- reading

def test_training_checkpoint_is_unwrapped(tmp_path):
    src = make_gpt()
    sd = {f"_orig_mod.{k}": v for k, v in state_of(src).items()}
    path = tmp_path / "ckpt.pt"
    torch.save({"model": sd, "iter_num": 7, "best_val_loss": 1.5}, path)
    model = GPT(src.config)
    assert load_weights(model, path).ok
    torch.testing.assert_close(gpt_logits(model), gpt_logits(src), rtol=0, atol=0)
    assert set(read_state_dict({"state_dict": {"module.a": torch.zeros(1)}, "epoch": 1})) == {"a"}


def test_unreadable_sources(tmp_path):
    model = make_gpt()
    with pytest.raises(WeightsError, match="not found"):
        load_weights(model, tmp_path / "nope.safetensors")
    (tmp_path / "w.npz").write_bytes(b"")
    with pytest.raises(WeightsError, match="unknown weights format '.npz'"):
        load_weights(model, tmp_path / "w.npz")
    with pytest.raises(WeightsError, match="unknown converter 'keras'"):
        load_weights(model, {}, convert="keras")
    with pytest.raises(WeightsError, match="not a state dict"):
        load_weights(model, {"config": {"n_layer": 2}})
    # Any class outside torch's allow-list stands for an arbitrary pickle.
    torch.save({"args": argparse.Namespace(lr=0.1)}, tmp_path / "pickle.pt")
    with pytest.raises(WeightsError, match="weights_only"):
        load_weights(model, tmp_path / "pickle.pt")


def test_custom_converters():
    model = nn.Linear(3, 2)
    sd = {"dense.kernel": torch.ones(3, 2), "dense.bias": torch.zeros(2)}

    def from_keras(state):
        return {"weight": state["dense.kernel"].t(), "bias": state["dense.bias"]}

    assert load_weights(model, sd, convert=from_keras).ok
    register_converter("test-keras", from_keras)
    try:
        assert load_weights(nn.Linear(3, 2), sd, convert="test-keras").ok
    finally:
        CONVERTERS.pop("test-keras")
    assert torch.equal(model.weight, torch.ones(2, 3))
