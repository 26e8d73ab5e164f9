"""Numeric parity of the stdlib models: same weights in, same outputs out.

    AlexNet, ResNet18, ResNet50   torchvision's own outputs (eval; ResNets also train mode and
                                  the BatchNorm buffers after it), from the dumps that
                                  `make ref` writes (tests/reference/dump_torchvision.py)
    GPT2                          transformers.GPT2LMHeadModel, random tiny config, its
                                  state_dict converted by load_weights(convert="transformers")
    LeNet5, UNet                  the hand-written references in tests/reference

A missing torchvision dump fails the test (torchvision_ref says how to make it); it is
never skipped.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

import netspec
from tests.reference.gpt2 import GPT, GPTConfig
from tests.reference.lenet import LeNet5
from tests.reference.torchvision_ref import TOLERANCE, load_reference, post_train_buffers
from tests.reference.unet import UNet

import transformers  # noqa: E402  (a dev dependency: missing means a broken set-up, not a skip)

STDLIB = Path(__file__).resolve().parents[2] / "stdlib"


def spec(name: str) -> str:
    return str(STDLIB / f"{name}.nn")


def build_empty(name: str, model: str | None = None, **params) -> torch.nn.Module:
    """Build with uninitialised weights (meta, then empty CPU storage): the test loads its own."""
    return netspec.build(spec(name), model, device="meta", **params).to_empty(device="cpu")


def _seeded_like(module: torch.nn.Module, seed: int) -> dict[str, torch.Tensor]:
    """A state dict for `module` with every float tensor random (so no weight is 0 or 1)."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, v in module.state_dict().items():
        if v.is_floating_point():
            out[k] = torch.randn(v.shape, generator=g) * 0.1 + (1.0 if k.endswith(("running_var",)) else 0.0)
        else:
            out[k] = v.clone()
    return out


# ---------------------------------------------------------------- torchvision

def test_alexnet_equals_torchvision():
    state, x, outputs = load_reference("alexnet")
    model = build_empty("alexnet")
    assert list(model.state_dict()) == list(state)
    model.load_state_dict(state)
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(x), outputs["eval"], **TOLERANCE)


@pytest.mark.parametrize("model_name, tv_name", [("ResNet18", "resnet18"), ("ResNet50", "resnet50")])
def test_resnet_equals_torchvision_in_eval_and_train_mode(model_name, tv_name):
    state, x, outputs = load_reference(tv_name)
    model = build_empty("resnet", model_name)
    assert list(model.state_dict()) == list(state)
    model.load_state_dict(state)
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(x), outputs["eval"], **TOLERANCE)
    model.train()
    with torch.no_grad():
        torch.testing.assert_close(model(x), outputs["train"], **TOLERANCE)
    # the train-mode forward moved every running statistic as torchvision's did
    after = model.state_dict()
    buffers = post_train_buffers(tv_name)
    assert buffers
    for key, value in buffers.items():
        torch.testing.assert_close(after[key], value, **TOLERANCE, msg=key)


# ---------------------------------------------------------------- transformers GPT-2

TINY = dict(vocab_size=100, block_size=32, n_layer=2, n_head=2, n_embd=64)


@pytest.fixture(scope="module")
def hf_gpt2():
    torch.manual_seed(0)
    config = transformers.GPT2Config(
        vocab_size=TINY["vocab_size"], n_positions=TINY["block_size"], n_layer=TINY["n_layer"],
        n_head=TINY["n_head"], n_embd=TINY["n_embd"], resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
        bos_token_id=0, eos_token_id=0,  # GPT-2's 50256 is outside this vocabulary
    )
    model = transformers.GPT2LMHeadModel(config).eval()
    # A random init has zero biases and unit LayerNorms; make every tensor distinct so a
    # wrong transpose, a swapped name or a misplaced bias cannot go unnoticed.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias") or ".ln_" in name:
                p.copy_(torch.randn_like(p) * 0.1 + (1.0 if name.endswith(("ln_1.weight", "ln_2.weight",
                                                                           "ln_f.weight")) else 0.0))
    return model


@pytest.mark.parametrize("T", [32, 7])
def test_gpt2_equals_transformers(hf_gpt2, T):
    model = netspec.build(spec("gpt2"), **TINY).eval()
    report = netspec.load_weights(model, hf_gpt2.state_dict(), convert="transformers")
    assert report.ok and not report.missing
    assert model.lm_head.weight is model.transformer.wte.weight  # still one tensor after loading
    idx = torch.randint(0, TINY["vocab_size"], (2, T), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        ours = model(idx)
        theirs = hf_gpt2(idx).logits
    assert ours.shape == (2, T, TINY["vocab_size"])
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5)


def test_gpt2_equals_nanogpt_reference_with_dropout_off_and_no_bias():
    cfg = dict(TINY, bias=False)
    ref = GPT(GPTConfig(**cfg)).eval()
    model = netspec.build(spec("gpt2"), **cfg).eval()
    model.load_state_dict(ref.state_dict())
    idx = torch.randint(0, cfg["vocab_size"], (3, 16), generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        torch.testing.assert_close(model(idx), ref(idx), rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------- hand-written references

@pytest.mark.parametrize(
    "params",
    [
        dict(),  # the paper: tanh, average pooling
        dict(activation="relu", pool="max"),
        dict(activation="relu", pool="avg", in_channels=3, num_classes=100),
        dict(activation="tanh", pool="max", input_size=28),
    ],
)
def test_lenet_equals_reference(params):
    ref = LeNet5(**params).eval()
    model = netspec.build(spec("lenet"), **params).eval()
    model.load_state_dict(_seeded_like(ref, 5))
    ref.load_state_dict(model.state_dict())
    size = params.get("input_size", 32)
    x = torch.randn(4, params.get("in_channels", 1), size, size, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        torch.testing.assert_close(model(x), ref(x))


@pytest.mark.parametrize(
    "params, size",
    [
        (dict(base_channels=4), 572),  # the paper's valid convolutions: 572 -> 388
        (dict(base_channels=4, bilinear=True), 572),
        (dict(base_channels=8, padding="same", depth=3, in_channels=3, num_classes=4), 64),
    ],
)
def test_unet_equals_reference(params, size):
    ref = UNet(**params).eval()
    model = netspec.build(spec("unet"), **params).eval()
    model.load_state_dict(_seeded_like(ref, 7))
    ref.load_state_dict(model.state_dict())
    x = torch.randn(1, params.get("in_channels", 1), size, size, generator=torch.Generator().manual_seed(8))
    with torch.no_grad():
        ours, theirs = model(x), ref(x)
    expected = 388 if params.get("padding", "valid") == "valid" else size
    assert ours.shape == (1, params.get("num_classes", 2), expected, expected)
    torch.testing.assert_close(ours, theirs)
