"""Layers that behave differently in training, and `training` in expressions: StochasticDepth
(row and batch mode, the identity in eval), the dropout and stochastic_depth functions, a
DropPath written from primitives (docs/LANGUAGE.md), Permute and LayerNorm2d against torch
and the hand-written torchvision twins."""
import re
import textwrap
from pathlib import Path

import pytest
import torch

import netspec
from tests.reference import torchvision_blocks as tv

DOC = Path(__file__).resolve().parents[2] / "docs" / "LANGUAGE.md"


def doc_example(model: str) -> str:
    found = [b for b in re.findall(r"```nn\n(.*?)```", DOC.read_text(), re.S) if f"model {model}(" in b]
    assert len(found) == 1
    return found[0]


def one_layer(layer: str, shape=(8, 4, 3, 3)) -> torch.nn.Module:
    dims = ", ".join(str(d) for d in shape[1:])
    return netspec.build(textwrap.dedent(f"""
        model M():
            input x: float[B={shape[0]}, {dims}]
            {layer}
            head out
    """))


@pytest.mark.parametrize("mode", ["row", "batch"])
def test_stochastic_depth_equals_torchvisions(mode):
    model = one_layer(f'StochasticDepth(0.4, mode="{mode}")', (64, 4, 3, 3))
    ref = tv.StochasticDepth(0.4, mode)
    x = torch.randn(64, 4, 3, 3)
    model.eval(), ref.eval()
    assert torch.equal(model(x), x)
    model.train(), ref.train()
    for seed in range(3):
        torch.manual_seed(seed)
        got = model(x)
        torch.manual_seed(seed)
        torch.testing.assert_close(got, ref(x))
    kept = torch.stack([(model(x) != 0).flatten(1).all(1) for _ in range(20)])
    if mode == "batch":  # the whole batch is kept or dropped together
        assert all(row.all() or not row.any() for row in kept)
    else:
        assert 0.4 < kept.float().mean() < 0.8  # about 1 - p of the samples survive


def test_functions_follow_the_models_mode():
    model = netspec.build(textwrap.dedent("""
        model M():
            input x: float[B=4, 256]
            a = dropout(x, 0.5)
            b = stochastic_depth(x, 0.5)
            c = dropout(x, 0.5, training=false)
            head out = a + b + c
    """))
    x = torch.ones(4, 256)
    model.eval()
    assert torch.equal(model(x), 3 * x)
    model.train()
    torch.manual_seed(0)
    got = model(x)
    torch.manual_seed(0)
    want = torch.nn.functional.dropout(x, 0.5) + tv.StochasticDepth(0.5, "row")(x) + x
    torch.testing.assert_close(got, want)


def test_drop_path_from_primitives_keeps_or_drops_each_sample():
    model = netspec.build(doc_example("WithDropPath"))
    block = model.get_submodule("drop_path")
    x = torch.randn(400, 8, 4, 4)
    block.eval()
    assert torch.equal(block(x), x)
    block.train()
    out = block(x)
    dropped = (out == 0).flatten(1).all(1)
    kept = torch.isclose(out, x / 0.8).flatten(1).all(1)
    assert (dropped | kept).all() and 40 < dropped.sum() < 120  # p = 0.2 of 400


def test_permute_and_layernorm2d_equal_torch():
    x = torch.randn(2, 4, 3, 5)
    perm = one_layer("Permute(0, 2, 3, 1)", (2, 4, 3, 5))
    assert perm(x).shape == (2, 3, 5, 4) and torch.equal(perm(x), x.permute(0, 2, 3, 1))
    assert perm.netspec.heads[0].shape == (2, 3, 5, 4)
    norm = one_layer("ln: LayerNorm2d(4, eps=1e-6)", (2, 4, 3, 5))
    ref = tv.LayerNorm2d(4, eps=1e-6)
    torch.nn.init.normal_(ref.weight), torch.nn.init.normal_(ref.bias)
    norm.load_state_dict({f"ln.{k}": v for k, v in ref.state_dict().items()})
    torch.testing.assert_close(norm(x), ref(x))


def test_layernorm2d_says_what_it_expects():
    with pytest.raises(netspec.NetspecError) as e:
        one_layer("LayerNorm2d(5)", (2, 4, 3, 3))
    assert e.value.diagnostics[0].message == "LayerNorm2d(5) expects [B, 5, H, W], got [2, 4, 3, 3]"


def test_the_convnext_example_builds_with_torchvision_keys():
    model = netspec.build(doc_example("ConvNeXtish"))
    assert [k for k in model.state_dict() if k.startswith("stage.")] == [
        "stage.layer_scale", "stage.block.0.weight", "stage.block.0.bias", "stage.block.2.weight",
        "stage.block.2.bias", "stage.block.3.weight", "stage.block.3.bias", "stage.block.5.weight",
        "stage.block.5.bias"]
