"""The standard library's structure: exact parameter counts, input and output shapes, heads,
state_dict keys (names, order, shapes) and initialisation of every stdlib model.

Counts and keys of the big models come from `netspec.analyze`, which builds on the meta
device (no memory, no init), and are compared with the published numbers, with
torchvision's own key order (the dumps of tests/reference/dump_torchvision.py) and with the
hand-written references in tests/reference. Numeric parity (same weights, same outputs) is
in test_stdlib_parity.py.
"""
from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

import pytest
import torch
from torch import nn

import netspec
from netspec.dsl.errors import NetspecError
from netspec.dsl.parser import parse_file
from tests.reference.alexnet import alexnet
from tests.reference.gpt2 import GPT, GPT_CONFIGS, GPTConfig
from tests.reference.lenet import LeNet5
from tests.reference.resnet import resnet
from tests.reference.torchvision_ref import reference_meta
from tests.reference.unet import UNet

STDLIB = Path(__file__).resolve().parents[2] / "stdlib"
RESNETS = {  # model -> (torchvision name, parameters with 1000 classes)
    "ResNet18": ("resnet18", 11_689_512),
    "ResNet34": ("resnet34", 21_797_672),
    "ResNet50": ("resnet50", 25_557_032),
    "ResNet101": ("resnet101", 44_549_160),
    "ResNet152": ("resnet152", 60_192_808),
}
GPT2_SIZES = {  # name -> (--set overrides, parameters with the tied head counted once)
    "gpt2": (dict(), 124_439_808),
    "gpt2-medium": (dict(n_layer=24, n_head=16, n_embd=1024), 354_823_168),
    "gpt2-large": (dict(n_layer=36, n_head=20, n_embd=1280), 774_030_080),
    "gpt2-xl": (dict(n_layer=48, n_head=25, n_embd=1600), 1_557_611_200),
}


def spec(name: str) -> str:
    return str(STDLIB / f"{name}.nn")


@lru_cache(maxsize=None)
def _analyze(file: str, model: str | None, overrides: tuple, shapes: tuple):
    return netspec.analyze(spec(file), model, dict(overrides), input_shapes=dict(shapes) or None)


def analyze(file: str, model: str | None = None, shapes: dict | None = None, **overrides):
    """netspec.analyze on the meta device, cached: several tests read the same analysis."""
    return _analyze(file, model, tuple(sorted(overrides.items(), key=lambda kv: kv[0])),
                    tuple(sorted((shapes or {}).items())))


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def shaped_keys(module: nn.Module) -> list[tuple[str, tuple[int, ...]]]:
    return [(k, tuple(v.shape)) for k, v in module.state_dict().items()]


def on_meta(factory, *args, **kwargs) -> nn.Module:
    with torch.device("meta"):
        return factory(*args, **kwargs)


def head(a, name: str):
    (h,) = [h for h in a.info.heads if h.name == name]
    return h


# (every file's doc block and the package itself: tests/dsl/test_library.py)

# ---------------------------------------------------------------- LeNet-5

def test_lenet_defaults():
    a = analyze("lenet")
    assert a.num_params == 61_706
    (inp,) = a.info.inputs
    assert (inp.name, inp.dtype, inp.shape) == ("x", "float32", (1, 1, 32, 32))
    h = head(a, "logits")
    assert (h.task, h.shape) == ("classify", (1, 10))
    assert a.info.params == dict(num_classes=10, in_channels=1, activation="tanh", pool="avg", input_size=32)


def test_lenet_keys_and_layers_match_the_reference():
    model = netspec.build(spec("lenet"))
    ref = LeNet5()
    assert shaped_keys(model) == shaped_keys(ref)
    assert [n for n, _ in model.named_children()] == [n for n, _ in ref.named_children()]
    assert isinstance(model.act1, nn.Tanh) and isinstance(model.pool1, nn.AvgPool2d)


@pytest.mark.parametrize(
    "params",
    [
        dict(activation="relu"),
        dict(pool="max"),
        dict(activation="relu", pool="max", in_channels=3, num_classes=100),
        dict(input_size=28),  # MNIST without padding: 28 -> 24 -> 12 -> 8 -> 4
    ],
)
def test_lenet_variants(params):
    model = netspec.build(spec("lenet"), **params)
    ref = LeNet5(**params)
    assert shaped_keys(model) == shaped_keys(ref)
    assert n_params(model) == n_params(ref)
    for name in ("act1", "act2", "act3", "act4", "pool1", "pool2"):
        assert type(getattr(model, name)) is type(getattr(ref, name)), name
    size = params.get("input_size", 32)
    assert model.netspec.inputs[0].shape == (1, params.get("in_channels", 1), size, size)
    assert model.netspec.heads[0].shape == (1, params.get("num_classes", 10))


@pytest.mark.parametrize(
    "params, message, assert_line",
    [
        (dict(activation="sigmoid"), 'activation must be "tanh" or "relu"', "assert activation in"),
        (dict(pool="lp"), 'pool must be "avg" or "max"', "assert pool in"),
        (dict(activation="gelu", pool="lp"), 'activation must be "tanh" or "relu"', "assert activation in"),
    ],
)
def test_lenet_rejects_unknown_activation_and_pool(params, message, assert_line):
    lines = (STDLIB / "lenet.nn").read_text().splitlines()
    (line,) = [n for n, text in enumerate(lines, 1) if text.strip().startswith(assert_line)]
    with pytest.raises(NetspecError) as err:
        netspec.analyze(spec("lenet"), overrides=params)
    d = err.value.diagnostics[0]
    assert (d.severity, d.message) == ("error", message)
    assert Path(d.span.file).name == "lenet.nn"
    assert (d.span.line, d.span.col) == (line, lines[line - 1].index("assert") + 1)
    assert f"lenet.nn:{line}:5: error: {message}" in str(err.value)
    if len(params) == 2:  # both wrong: both asserts report, in the file's order
        assert [e.message for e in err.value.errors] == [message, 'pool must be "avg" or "max"']


# ---------------------------------------------------------------- AlexNet

def test_alexnet_count_shapes_and_head():
    a = analyze("alexnet")
    assert a.num_params == 61_100_840
    assert a.info.inputs[0].shape == (1, 3, 224, 224)
    h = head(a, "logits")
    assert (h.task, h.shape) == ("classify", (1, 1000))
    assert analyze("alexnet", num_classes=10).num_params == 61_100_840 - 4096 * 990 - 990


def test_alexnet_keys_are_torchvisions():
    a = analyze("alexnet")
    assert list(a.module.state_dict()) == reference_meta("alexnet")["state_keys"]
    assert shaped_keys(a.module) == shaped_keys(on_meta(alexnet))


# ---------------------------------------------------------------- ResNet

@pytest.mark.parametrize("model", list(RESNETS))
def test_resnet_count_keys_and_head(model):
    tv_name, count = RESNETS[model]
    a = analyze("resnet", model, shapes={"x": (1, 3, 64, 64)})
    assert a.num_params == count
    # torchvision's keys in torchvision's order (its own state_dict, dumped), with the
    # shapes of the hand-written reference (checked against torchvision by test_references)
    assert list(a.module.state_dict()) == reference_meta(tv_name)["state_keys"]
    assert shaped_keys(a.module) == shaped_keys(on_meta(resnet, tv_name))
    assert head(a, "logits").task == "classify"


def test_resnet_depths_are_aliases_of_one_body():
    defs = {d.name: d for d in parse_file(spec("resnet")).defs}
    bodies = [d.name for d in defs.values() if d.kind == "model" and d.alias is None]
    assert bodies == ["ResNet"]
    for name in RESNETS:
        assert defs[name].kind == "model" and ".".join(n.id for n in defs[name].alias[0]) == "ResNet", name
        assert defs[name].doc and defs[name].doc.startswith(f"ResNet-{name[6:]} "), name
    assert [d.name for d in defs.values() if d.default] == ["ResNet50"]
    # the body's defaults are ResNet-50's; an alias's --set still overrides its defaults
    assert analyze("resnet", "ResNet", shapes={"x": (1, 3, 64, 64)}).num_params == RESNETS["ResNet50"][1]
    a = analyze("resnet", "ResNet18", shapes={"x": (1, 3, 64, 64)}, layers=(1, 1, 1, 1))
    assert list(a.module.state_dict())[-2:] == ["fc.weight", "fc.bias"]
    assert "layer1.1.conv1.weight" not in a.module.state_dict() and "layer4.0.conv1.weight" in a.module.state_dict()
    assert a.info.name == "ResNet18" and a.info.params["bottleneck"] is False


def test_resnext_and_wide_resnet_through_the_body():
    # torchvision's resnext50_32x4d and wide_resnet50_2 parameter counts
    shapes = {"x": (1, 3, 64, 64)}
    assert analyze("resnet", "ResNet50", shapes=shapes, groups=32, width_per_group=4).num_params == 25_028_904
    assert analyze("resnet", "ResNet50", shapes=shapes, width_per_group=128).num_params == 68_883_240


@pytest.mark.parametrize("params, message", [
    (dict(groups=32), "BasicBlock only supports groups=1 and width_per_group=64"),
    (dict(layers=(2, 2, 2)), "layers: the number of blocks in each of the 4 stages"),
])
def test_resnet_asserts(params, message):
    with pytest.raises(NetspecError) as err:
        netspec.analyze(spec("resnet"), "ResNet18", params)
    assert err.value.errors[0].message == message
    assert "assert" in Path(spec("resnet")).read_text().splitlines()[err.value.errors[0].span.line - 1]


def test_resnet50_is_the_default_and_takes_224():
    a = analyze("resnet")
    assert a.info.name == "ResNet50"
    assert a.info.inputs[0].shape == (1, 3, 224, 224)
    assert head(a, "logits").shape == (1, 1000)
    assert a.shapes["avgpool"].shape == (1, 2048, 1, 1)


def test_resnet_num_classes():
    a = analyze("resnet", "ResNet18", shapes={"x": (2, 3, 64, 64)}, num_classes=10)
    assert a.num_params == 11_689_512 - 512 * 990 - 990
    assert head(a, "logits").shape == (2, 10)


def test_resnet_blocks_are_basicblock_and_bottleneck():
    g = analyze("resnet", "ResNet50", shapes={"x": (1, 3, 64, 64)}).graph
    ops = {op.path: op for _, op in g.graph.nodes(data="op") if op.path}
    assert (ops["layer1.0"].kind, ops["layer1.0"].target, ops["layer4.2"].target) == ("block", "Bottleneck", "Bottleneck")
    g18 = analyze("resnet", "ResNet18", shapes={"x": (1, 3, 64, 64)}).graph
    ops18 = {op.path: op for _, op in g18.graph.nodes(data="op") if op.path}
    assert ops18["layer2.0"].target == "BasicBlock" and ops18["layer4.1"].target == "BasicBlock"


def _block_params(model, prefix):
    return {k for k, _ in model.named_parameters() if k.startswith(prefix)}


def test_resnet_init_is_torchvisions():
    torch.manual_seed(0)
    model = netspec.build(spec("resnet"), "ResNet18")
    convs = {n: m for n, m in model.named_modules() if isinstance(m, nn.Conv2d)}
    assert len(convs) == 20  # 1 stem + 8 blocks x 2 + 3 downsample projections
    for name, conv in convs.items():
        fan_out = conv.out_channels * conv.kernel_size[0] * conv.kernel_size[1]
        expected = math.sqrt(2.0 / fan_out)  # kaiming_normal_(mode="fan_out", nonlinearity="relu")
        assert conv.weight.std().item() == pytest.approx(expected, rel=0.15), name
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(bns) == 20
    for bn in bns:
        assert torch.equal(bn.weight, torch.ones_like(bn.weight))
        assert torch.equal(bn.bias, torch.zeros_like(bn.bias))
    # fc keeps nn.Linear's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    bound = 1 / math.sqrt(512)
    assert model.fc.weight.abs().max().item() <= bound
    assert model.fc.weight.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.05)


@pytest.mark.parametrize("model, last_bn", [("ResNet18", "bn2"), ("ResNet50", "bn3")])
def test_resnet_zero_init_residual(model, last_bn):
    small = dict(layers=[1, 1, 1, 1])  # init only: one block per stage is enough
    zero = netspec.build(spec("resnet"), model, zero_init_residual=True, **small)
    plain = netspec.build(spec("resnet"), model, **small)
    for i in range(1, 5):
        w = zero.get_submodule(f"layer{i}.0.{last_bn}").weight
        assert torch.count_nonzero(w) == 0
        assert torch.equal(plain.get_submodule(f"layer{i}.0.{last_bn}").weight, torch.ones_like(w))
        # only the last BatchNorm of each block starts at zero
        assert torch.equal(zero.get_submodule(f"layer{i}.0.bn1").weight, torch.ones_like(
            zero.get_submodule(f"layer{i}.0.bn1").weight))
    assert torch.equal(zero.bn1.weight, torch.ones(64))


def test_resnet_blocks_import_and_keep_their_signature():
    # docs/LANGUAGE.md: `from resnet import BasicBlock` ... `BasicBlock(64, 64)`
    text = """
from resnet import BasicBlock, Bottleneck

model Two(classes=10):
    input x: float[B=2, 64, 8, 8]
    b1: BasicBlock(64, 64)
    b2: BasicBlock(64, 128, stride=2, downsample=true)
    b3: Bottleneck(128, 32)
    AdaptiveAvgPool2d(1); flatten(1)
    fc: Linear(128, classes)
    head logits: classify
"""
    model = netspec.build(text)
    keys = list(model.state_dict())
    assert "b1.downsample.0.weight" not in keys
    assert "b2.downsample.0.weight" in keys and "b2.downsample.1.running_var" in keys
    assert model.get_submodule("b2.downsample.0").stride == (2, 2)
    assert model.get_submodule("b3.conv3").out_channels == 128
    assert model(torch.randn(2, 64, 8, 8)).shape == (2, 10)


# ---------------------------------------------------------------- U-Net

def test_unet_paper_network():
    a = analyze("unet")
    assert a.num_params == 31_030_658
    assert a.info.inputs[0].shape == (1, 1, 572, 572)
    h = head(a, "logits")
    assert (h.task, h.shape) == ("segment", (1, 2, 388, 388))
    # the contracting path's sizes, as in the paper's figure
    assert [a.shapes[f"down{i}"].shape[-1] for i in (1, 2, 3, 4)] == [568, 280, 136, 64]
    assert a.shapes["bottom"].shape == (1, 1024, 28, 28)
    assert [a.shapes[f"up{i}"].shape[-1] for i in (4, 3, 2, 1)] == [52, 100, 196, 388]


def test_unet_has_23_convolutions_and_the_reference_keys():
    model = netspec.build(spec("unet"))
    convs = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    assert len(convs) == 23
    assert sum(isinstance(m, nn.ConvTranspose2d) for m in convs) == 4
    assert all(m.padding == (0, 0) for m in convs)  # valid convolutions
    assert shaped_keys(model) == shaped_keys(on_meta(UNet))


def test_unet_init_is_the_papers():
    torch.manual_seed(0)
    model = netspec.build(spec("unet"), base_channels=16)
    for name, m in model.named_modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            fan_in = m.weight.shape[1] * m.weight[0, 0].numel()
            assert m.weight.std().item() == pytest.approx(math.sqrt(2 / fan_in), rel=0.2), name
            assert torch.count_nonzero(m.bias) == 0, name


@pytest.mark.parametrize(
    "params, size, out",
    [
        (dict(padding="same"), 512, 512),  # same padding keeps the input size
        (dict(bilinear=True), 572, 388),  # upsample + 1x1 conv: the paper's shapes
        (dict(padding="same", bilinear=True, depth=3, base_channels=8, num_classes=5, in_channels=3), 64, 64),
    ],
)
def test_unet_variants(params, size, out):
    cin, classes = params.get("in_channels", 1), params.get("num_classes", 2)
    a = analyze("unet", shapes={"x": (1, cin, size, size)}, **params)
    assert head(a, "logits").shape == (1, classes, out, out)
    ref_params = {k: v for k, v in params.items()}
    assert shaped_keys(a.module) == shaped_keys(on_meta(UNet, **ref_params))
    assert a.num_params == n_params(on_meta(UNet, **ref_params))


@pytest.mark.parametrize("file, params, message", [
    ("unet", dict(padding="full"), 'padding must be "valid" or "same"'),
    ("gpt2", dict(n_head=5), "n_embd must be divisible by n_head"),
])
def test_unet_and_gpt2_reject_bad_parameters(file, params, message):
    with pytest.raises(NetspecError) as err:
        netspec.analyze(spec(file), overrides=params, input_shapes={"idx": (1, 8)} if file == "gpt2" else None)
    (e,) = err.value.errors
    assert e.message == message
    assert (STDLIB / f"{file}.nn").read_text().splitlines()[e.span.line - 1].strip().startswith("assert ")


def test_unet_bilinear_count():
    assert analyze("unet", bilinear=True).num_params == 28_941_698


# ---------------------------------------------------------------- GPT-2

@pytest.mark.parametrize("size", list(GPT2_SIZES))
def test_gpt2_counts(size):
    overrides, count = GPT2_SIZES[size]
    a = analyze("gpt2", shapes={"idx": (1, 8)}, **overrides)
    assert a.num_params == count
    cfg = GPT_CONFIGS[size]
    assert {k: a.info.params[k] for k in ("n_layer", "n_head", "n_embd")} == \
        dict(n_layer=cfg.n_layer, n_head=cfg.n_head, n_embd=cfg.n_embd)


def test_gpt2_defaults_are_gpt2_small():
    a = analyze("gpt2")
    assert a.info.params == dict(vocab_size=50257, block_size=1024, n_layer=12, n_head=12, n_embd=768,
                                 dropout=0.0, bias=True)
    (inp,) = a.info.inputs
    assert (inp.name, inp.dtype, inp.dims, inp.shape) == ("idx", "int64", ("B", "T"), (1, 1024))
    h = head(a, "logits")
    assert (h.task, h.shape) == ("lm", (1, 1024, 50257))


def test_gpt2_keys_are_nanogpts():
    a = analyze("gpt2", shapes={"idx": (1, 8)})
    ref = on_meta(GPT)
    assert shaped_keys(a.module) == shaped_keys(ref)
    keys = list(a.module.state_dict())
    assert keys[:2] == ["transformer.wte.weight", "transformer.wpe.weight"]
    assert "transformer.h.0.attn.c_attn.weight" in keys and keys[-1] == "lm_head.weight"


def test_gpt2_without_bias_matches_nanogpt():
    small = dict(vocab_size=64, block_size=16, n_layer=2, n_head=2, n_embd=32)
    a = analyze("gpt2", bias=False, **small)
    ref = on_meta(GPT, GPTConfig(bias=False, **small))
    assert shaped_keys(a.module) == shaped_keys(ref)
    assert a.num_params == n_params(ref)
    assert not any(k.endswith("bias") for k in a.module.state_dict())


def test_gpt2_tied_head_and_gelu():
    model = netspec.build(spec("gpt2"), vocab_size=64, block_size=16, n_layer=2, n_head=2, n_embd=32)
    assert model.lm_head.weight is model.transformer.wte.weight
    assert model.lm_head.bias is None
    assert model.get_submodule("transformer.h.1.mlp.gelu").approximate == "tanh"
    assert model(torch.randint(0, 64, (3, 16))).shape == (3, 16, 64)
    assert model(torch.randint(0, 64, (2, 5))).shape == (2, 5, 64)  # any T <= block_size


def test_gpt2_init_is_nanogpts():
    torch.manual_seed(0)
    n_layer = 6
    model = netspec.build(spec("gpt2"), vocab_size=512, block_size=64, n_layer=n_layer, n_head=4, n_embd=128)
    for name, p in model.named_parameters():
        if name.endswith("c_proj.weight"):
            assert p.std().item() == pytest.approx(0.02 / math.sqrt(2 * n_layer), rel=0.1), name
        elif name.endswith(".bias") and ".ln_" not in name:
            assert torch.count_nonzero(p) == 0, name
        elif ".ln_" in name:
            assert torch.equal(p, torch.ones_like(p) if name.endswith("weight") else torch.zeros_like(p)), name
        elif p.dim() == 2:  # wte (= lm_head), wpe, c_attn, c_fc
            assert p.std().item() == pytest.approx(0.02, rel=0.1), name
            assert abs(p.mean().item()) < 0.002, name
