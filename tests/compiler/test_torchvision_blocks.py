"""torchvision-style networks written as specs have torchvision's state_dict keys, in its
order, and compute what torchvision's classes compute under the same weights (the twins in
tests/reference/torchvision_blocks.py), in eval and in training mode.

MobileNetV2's block is docs/LANGUAGE.md's example (numbered members at any depth); the
MobileNetV3 and ConvNeXt blocks add reserved words as labels (`block:`), Hardswish, a
squeeze-excitation written with an expression step, Permute, LayerNorm2d, a layer scale
and StochasticDepth.
"""
import re
import textwrap
from pathlib import Path

import pytest
import torch

import netspec
from tests.reference import torchvision_blocks as tv

DOC = Path(__file__).resolve().parents[2] / "docs" / "LANGUAGE.md"


def doc_example(model: str) -> str:
    """The ```nn block of docs/LANGUAGE.md that defines `model`."""
    found = [b for b in re.findall(r"```nn\n(.*?)```", DOC.read_text(), re.S) if f"model {model}(" in b]
    assert len(found) == 1, f"docs/LANGUAGE.md should show model {model} once"
    return found[0]


MOBILENET_V3 = textwrap.dedent("""
    block ConvBNAct(cin, cout, k=3, stride=1, groups=1, act="relu"):
        0: Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=false)
        1: BatchNorm2d(cout, eps=0.001, momentum=0.01)
        if act == "hardswish":
            2: Hardswish()
        elif act == "relu":
            2: ReLU()

    block SqueezeExcitation(c, squeeze):
        avgpool: AdaptiveAvgPool2d(1)
        fc1: Conv2d(c, squeeze, 1)
        activation: ReLU()
        fc2: Conv2d(squeeze, c, 1)
        scale_activation: Hardsigmoid()
        _ * x  # the input, scaled per channel

    block InvertedResidual(cin, k, expanded, cout, se, hs, stride):
        act = "hardswish" if hs else "relu"
        block:
            if expanded != cin:
                ConvBNAct(cin, expanded, 1, act=act)
            ConvBNAct(expanded, expanded, k, stride, groups=expanded, act=act)
            if se:
                SqueezeExcitation(expanded, max(8, (expanded // 4 + 4) // 8 * 8))
            ConvBNAct(expanded, cout, 1, act="none")
        if stride == 1 and cin == cout:
            +x

    model MobileNetV3Tiny(classes=10):
        input x: float[B=2, 3, 32, 32]
        features:
            ConvBNAct(3, 16, stride=2, act="hardswish")
            InvertedResidual(16, 3, 16, 16, true, false, 2)
            InvertedResidual(16, 3, 72, 24, false, false, 2)
            InvertedResidual(24, 5, 96, 24, true, true, 1)
        avgpool: AdaptiveAvgPool2d(1)
        flatten(1)
        classifier:
            Linear(24, 64)
            Hardswish()
            Dropout(0.2)
            Linear(64, classes)
        head logits: classify
""")

CONVNEXT = textwrap.dedent("""
    block CNBlock(dim, layer_scale=1e-6, p=0.0):
        block:
            Conv2d(dim, dim, 7, padding=3, groups=dim)
            Permute(0, 2, 3, 1)         # (B, H, W, C)
            LayerNorm(dim, eps=1e-6)
            Linear(dim, 4 * dim)
            GELU()
            Linear(4 * dim, dim)
            Permute(0, 3, 1, 2)         # (B, C, H, W)
        layer_scale: Parameter(dim, 1, 1, init=constant(layer_scale))
        _ * block
        stochastic_depth: StochasticDepth(p, mode="row")
        +x

    model ConvNeXtTiny(dims=[8, 16], classes=10, p=0.5):
        input x: float[B=2, 3, 32, 32]
        features:
            0:
                Conv2d(3, dims[0], 4, stride=4)
                LayerNorm2d(dims[0], eps=1e-6)
            for i in range(len(dims)):
                {2 * i + 1}:
                    CNBlock(dims[i], p=p * i / (len(dims) - 1))
                if i + 1 < len(dims):
                    {2 * i + 2}:
                        LayerNorm2d(dims[i], eps=1e-6)
                        Conv2d(dims[i], dims[i + 1], 2, stride=2)
        avgpool: AdaptiveAvgPool2d(1)
        classifier:
            LayerNorm2d(dims[-1], eps=1e-6)
            Flatten(1)
            Linear(dims[-1], classes)
        head logits: classify
""")

CASES = {
    "MobileNetV2Tiny": (lambda: doc_example("MobileNetV2Tiny"), tv.MobileNetV2Tiny),
    "MobileNetV3Tiny": (lambda: MOBILENET_V3, tv.MobileNetV3Tiny),
    "ConvNeXtTiny": (lambda: CONVNEXT, tv.ConvNeXtTiny),
}


def _pair(name):
    text, ref_class = CASES[name]
    torch.manual_seed(0)
    ref = ref_class()
    for p in ref.parameters():  # away from the initial ones and zeros, so every weight shows
        torch.nn.init.normal_(p, std=0.2)
    for m in ref.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 1.5)
    model = netspec.build(text(), name)
    return model, ref


@pytest.mark.parametrize("name", list(CASES))
def test_keys_are_torchvisions_in_its_order(name):
    model, ref = _pair(name)
    assert list(model.state_dict()) == list(ref.state_dict())
    if name == "MobileNetV2Tiny":  # as docs/LANGUAGE.md says
        assert len(model.state_dict()) == 62 and list(model.state_dict())[6] == "features.1.conv.0.0.weight"
    assert {k: v.shape for k, v in model.state_dict().items()} == {k: v.shape for k, v in ref.state_dict().items()}
    assert model.netspec is not None and sum(p.numel() for p in model.parameters()) == \
        sum(p.numel() for p in ref.parameters())


@pytest.mark.parametrize("name", list(CASES))
def test_outputs_are_torchvisions_in_eval_and_training(name):
    model, ref = _pair(name)
    model.load_state_dict(ref.state_dict())
    x = torch.randn(2, 3, 32, 32)
    model.eval(), ref.eval()
    torch.testing.assert_close(model(x), ref(x))
    model.train(), ref.train()
    torch.manual_seed(1)  # stochastic depth draws the same masks in both
    got = model(x)
    torch.manual_seed(1)
    torch.testing.assert_close(got, ref(x))
    torch.testing.assert_close(model.state_dict(), ref.state_dict())  # running statistics moved alike


def test_stochastic_depth_drops_whole_samples_in_training_only():
    model, ref = _pair("ConvNeXtTiny")
    block = model.features.get_submodule("3.0")  # the second stage's CNBlock, p = 0.5
    x = torch.randn(64, 16, 4, 4)
    block.eval()
    branch = block(x) - x
    block.train()
    torch.manual_seed(0)
    kept = block(x) - x
    per_sample = [(k == 0).all().item() or torch.allclose(k, 2 * b, atol=1e-6) for k, b in zip(kept, branch)]
    assert all(per_sample)  # each sample's branch is dropped or doubled (1 / (1 - 0.5))
    dropped = sum((k == 0).all().item() for k in kept)
    assert 16 < dropped < 48  # about half of 64


def test_ejected_code_keeps_the_keys_and_the_outputs(tmp_path):
    from netspec.compiler.eject import eject
    text = CONVNEXT
    (tmp_path / "convnext.nn").write_text(text)
    code = eject(tmp_path / "convnext.nn", "ConvNeXtTiny")
    ns: dict = {}
    exec(compile(code, "convnext.py", "exec"), ns)  # noqa: S102 - our own generated code
    ejected = ns["ConvNeXtTiny"]()
    model = netspec.build(text, "ConvNeXtTiny")
    assert list(ejected.state_dict()) == list(model.state_dict())
    ejected.load_state_dict(model.state_dict())
    x = torch.randn(2, 3, 32, 32)
    model.train(), ejected.train()
    torch.manual_seed(3)
    got = model(x)
    torch.manual_seed(3)
    torch.testing.assert_close(ejected(x), got)
