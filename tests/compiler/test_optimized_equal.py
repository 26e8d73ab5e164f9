"""Every model of stdlib/ and specs/: the optimized graph (what `build` returns) and the
literal one (`build(..., optimize=False)`) have the same state_dict and compute the same
outputs and gradients, in fp32, in eval and in training mode.

Tolerance: rtol = atol = 1e-5 (fp32; fused attention and layer norms sum in another
order). Training mode with dropout draws different masks in different kernels, so here
every dropout's p is set to 0 after building (the graphs stay as built for p > 0);
tests/compiler/test_passes.py compares the dropout statistics.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn
from torch.testing import assert_close

import netspec
from netspec.dsl.frontend import check_all

ROOT = Path(__file__).resolve().parents[2]
TOL = dict(rtol=1e-5, atol=1e-5)

# Small settings for the big standard-library models (the graphs are the same at any size).
OVERRIDES = {
    ("gpt2", "GPT2"): dict(n_layer=2, n_head=4, n_embd=64, block_size=32, vocab_size=100),
    ("alexnet", "AlexNet"): dict(num_classes=10),
    ("unet", "UNet"): dict(base_channels=4, depth=2),
}
INPUT_SIZES = {("alexnet", "AlexNet"): (2, 3, 63, 63), ("resnet", "*"): (2, 3, 32, 32),
               ("unet", "UNet"): (2, 1, 76, 76)}
# ResNet18 stands for the family (ResNet50..152 differ in block counts and widths, not in ops; the
# pass-free graphs are equal by construction and take a minute of CPU to compare)
SKIP = {("resnet", m) for m in ("ResNet", "ResNet34", "ResNet50", "ResNet101", "ResNet152")}


def _models():
    out = []
    for path in sorted((ROOT / "stdlib").glob("*.nn")) + sorted((ROOT / "specs").glob("*.nn")):
        _, checked, _ = check_all(path)
        for c in checked:
            if (path.stem, c.defn.name) not in SKIP:
                out.append(pytest.param(path, c.defn.name, id=f"{path.parent.name}/{path.stem}:{c.defn.name}"))
    return out


def _inputs(model, path, name, seed=0):
    g = torch.Generator().manual_seed(seed)
    params = model.netspec.params
    vocab = min([v for k, v in params.items() if "vocab" in k and isinstance(v, int)] or [10])
    out = []
    for i in model.netspec.inputs:
        shape = INPUT_SIZES.get((path.stem, name)) or INPUT_SIZES.get((path.stem, "*")) or (2, *i.shape[1:])
        if i.dtype in ("int64", "int32"):
            out.append(torch.randint(0, vocab, shape, generator=g))
        else:
            out.append(torch.randn(shape, generator=g, requires_grad=True))
    return out


def _heads(out, model) -> dict:
    return out if isinstance(out, dict) else {model.netspec.heads[0].name: out}


def _grads(model, inputs, outs, seed=1):
    g = torch.Generator().manual_seed(seed)
    loss = sum((o * torch.randn(o.shape, generator=g)).sum() for o in outs.values() if o.is_floating_point())
    params = [p for p in model.parameters() if p.requires_grad]
    wrt = params + [x for x in inputs if x.requires_grad]
    return dict(zip([n for n, p in model.named_parameters() if p.requires_grad] +
                    [f"input{i}" for i, x in enumerate(inputs) if x.requires_grad],
                    torch.autograd.grad(loss, wrt, allow_unused=True)))


@pytest.mark.parametrize("path, name", _models())
def test_optimized_equals_literal(path, name):
    params = OVERRIDES.get((path.stem, name), {})
    torch.manual_seed(0)
    literal = netspec.build(path, name, optimize=False, **params)
    optimized = netspec.build(path, name, **params)
    assert [(k, v.shape) for k, v in literal.state_dict().items()] == \
           [(k, v.shape) for k, v in optimized.state_dict().items()]
    optimized.load_state_dict(literal.state_dict())
    for m in (literal, optimized):  # training mode compared without drawing masks (see the docstring)
        for layer in m.modules():
            if isinstance(layer, nn.modules.dropout._DropoutNd):
                layer.p = 0.0
            elif isinstance(getattr(layer, "dropout", None), float):  # LSTM, MultiheadAttention, SDPA layers
                layer.dropout = 0.0
    for training in (False, True):
        literal.train(training), optimized.train(training)
        inputs = _inputs(literal, path, name)
        a, b = _heads(literal(*inputs), literal), _heads(optimized(*inputs), optimized)
        assert set(a) == set(b)
        for head in a:
            assert_close(b[head], a[head], **TOL, msg=f"head {head}, training={training}")
        ga, gb = _grads(literal, inputs, a), _grads(optimized, inputs, b)
        assert set(ga) == set(gb)
        for k in ga:
            if ga[k] is None:
                assert gb[k] is None, k
            else:
                assert_close(gb[k], ga[k], **TOL, msg=f"gradient of {k}, training={training}")
        for (k, va), vb in zip(literal.state_dict().items(), optimized.state_dict().values()):  # running stats
            assert_close(vb, va, **TOL, msg=k)
