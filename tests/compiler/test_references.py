"""Checks of the hand-written reference models in tests/reference.

Parameter counts against the published numbers, output shapes, exact
state_dict keys, and parity with torchvision itself: the AlexNet and ResNet
references must have torchvision's keys in torchvision's order and give its
outputs (eval and train mode) with its weights. The torchvision side comes
from the dumps that `make ref` writes (see tests/reference/dump_torchvision.py).
"""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from tests.reference.alexnet import alexnet
from tests.reference.gpt2 import GPT, GPT_CONFIGS, GPTConfig, gpt2
from tests.reference.lenet import LeNet5
from tests.reference.mlp import MLP
from tests.reference.resnet import RESNET_LAYERS, BasicBlock, Bottleneck, resnet
from tests.reference.torchvision_ref import (
    NAMES,
    TOLERANCE,
    load_reference,
    post_train_buffers,
    reference_meta,
)
from tests.reference.unet import UNet


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def on_meta(factory, *args, **kwargs) -> nn.Module:
    # Counting parameters of a 1.5B model needs no memory on the meta device.
    with torch.device("meta"):
        return factory(*args, **kwargs)


# ---------------------------------------------------------------- counts

@pytest.mark.parametrize(
    "name, expected",
    [
        ("resnet18", 11_689_512),
        ("resnet34", 21_797_672),
        ("resnet50", 25_557_032),
        ("resnet101", 44_549_160),
        ("resnet152", 60_192_808),
    ],
)
def test_resnet_param_counts(name, expected):
    assert n_params(on_meta(resnet, name)) == expected


def test_alexnet_param_count():
    assert n_params(on_meta(alexnet)) == 61_100_840


@pytest.mark.parametrize(
    "name, expected",
    [
        ("gpt2", 124_439_808),
        ("gpt2-medium", 354_823_168),
        ("gpt2-large", 774_030_080),
        ("gpt2-xl", 1_557_611_200),
    ],
)
def test_gpt2_param_counts(name, expected):
    model = on_meta(gpt2, name)
    assert n_params(model) == expected
    # The tied head is one Parameter under two keys.
    assert model.lm_head.weight is model.transformer.wte.weight
    sd = model.state_dict()
    assert "lm_head.weight" in sd and "transformer.wte.weight" in sd


def test_gpt2_small_is_the_default_config():
    assert GPTConfig() == GPT_CONFIGS["gpt2"]
    assert n_params(on_meta(GPT)) == 124_439_808


# ---------------------------------------------------------------- LeNet

def test_lenet_count_keys_and_shape():
    model = LeNet5()
    assert n_params(model) == 61_706
    assert list(model.state_dict()) == [
        f"{layer}.{p}" for layer in ("conv1", "conv2", "fc1", "fc2", "fc3") for p in ("weight", "bias")
    ]
    assert [n for n, _ in model.named_children()] == [
        "conv1", "act1", "pool1", "conv2", "act2", "pool2", "flatten", "fc1", "act3", "fc2", "act4", "fc3",
    ]
    assert model(torch.randn(3, 1, 32, 32)).shape == (3, 10)
    assert isinstance(model.act1, nn.Tanh) and isinstance(model.pool1, nn.AvgPool2d)


def test_lenet_options():
    model = LeNet5(num_classes=100, in_channels=3, activation="relu", pool="max")
    assert isinstance(model.act3, nn.ReLU) and isinstance(model.pool2, nn.MaxPool2d)
    assert model.conv1.weight.shape == (6, 3, 5, 5)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 100)
    # 28x28 MNIST without padding: 28 -> 24 -> 12 -> 8 -> 4.
    assert LeNet5(input_size=28).fc1.in_features == 16 * 4 * 4
    with pytest.raises(ValueError, match="activation"):
        LeNet5(activation="swish")


# ---------------------------------------------------------------- MLP

def test_mlp_layout():
    model = MLP(20, hidden=(32, 16), out_features=3, dropout=0.25)
    assert [n for n, _ in model.named_children()] == [
        "bn0", "drop0", "fc1", "act1", "bn1", "drop1", "fc2", "act2", "bn2", "fc3",
    ]
    assert [(n, tuple(p.shape)) for n, p in model.named_parameters()] == [
        ("bn0.weight", (20,)), ("bn0.bias", (20,)),
        ("fc1.weight", (32, 20)), ("fc1.bias", (32,)),
        ("bn1.weight", (32,)), ("bn1.bias", (32,)),
        ("fc2.weight", (16, 32)), ("fc2.bias", (16,)),
        ("bn2.weight", (16,)), ("bn2.bias", (16,)),
        ("fc3.weight", (3, 16)), ("fc3.bias", (3,)),
    ]
    assert model.drop0.p == 0.25
    assert model(torch.randn(8, 20)).shape == (8, 3)


def test_mlp_forward_is_the_documented_sequence():
    torch.manual_seed(0)
    model = MLP(6, hidden=(5, 4), out_features=2, activation="tanh").eval()
    x = torch.randn(4, 6)
    m = model
    expected = m.fc3(m.bn2(torch.tanh(m.fc2(m.bn1(torch.tanh(m.fc1(m.bn0(x))))))))
    torch.testing.assert_close(model(x), expected)


# ---------------------------------------------------------------- UNet

def _unet_count(cin: int, classes: int, base: int, depth: int, bilinear: bool) -> int:
    conv3 = lambda i, o: i * o * 9 + o  # noqa: E731
    total, prev = 0, cin
    chans = [base * 2**i for i in range(depth + 1)]
    for c in chans:  # contracting path and bottom
        total += conv3(prev, c) + conv3(c, c)
        prev = c
    for i in range(depth, 0, -1):
        hi, lo = chans[i], chans[i - 1]
        total += hi * lo * (1 if bilinear else 4) + lo  # up-conv
        total += conv3(2 * lo, lo) + conv3(lo, lo)
    return total + base * classes + classes


def test_unet_paper_shapes_and_count():
    model = UNet()
    convs = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    assert len(convs) == 23
    assert sum(isinstance(m, nn.ConvTranspose2d) for m in convs) == 4
    assert n_params(model) == _unet_count(1, 2, 64, 4, bilinear=False) == 31_030_658
    # Shapes only: the meta device skips the ~50 GFLOPs of a real forward.
    meta = on_meta(UNet)
    assert meta(torch.empty(1, 1, 572, 572, device="meta")).shape == (1, 2, 388, 388)


def test_unet_names():
    keys = list(UNet().state_dict())
    expected = []
    for block in ("down1", "down2", "down3", "down4", "bottom"):
        expected += [f"{block}.conv{j}.{p}" for j in (1, 2) for p in ("weight", "bias")]
    for i in (4, 3, 2, 1):
        expected += [f"up{i}.upconv.weight", f"up{i}.upconv.bias"]
        expected += [f"up{i}.conv{j}.{p}" for j in (1, 2) for p in ("weight", "bias")]
    expected += ["out.weight", "out.bias"]
    assert keys == expected


def test_unet_skip_is_center_cropped_and_first():
    # With 'valid' convs the level-1 skip is 568 wide and the upsampled map
    # 392: the crop must take rows/cols 88..480.
    model = UNet(base_channels=4)
    seen = {}
    model.up1.conv1.register_forward_pre_hook(lambda m, a: seen.setdefault("cat", a[0]))
    model.down1.register_forward_hook(lambda m, a, out: seen.setdefault("skip", out.clone()))
    with torch.no_grad():
        model(torch.randn(1, 1, 572, 572))
    assert seen["cat"].shape == (1, 8, 392, 392)
    torch.testing.assert_close(seen["cat"][:, :4], seen["skip"][:, :, 88:480, 88:480])


def test_unet_options():
    same = UNet(padding="same", in_channels=3, num_classes=5, base_channels=8)
    bil = UNet(padding="same", bilinear=True, base_channels=8, depth=3)
    with torch.no_grad():
        assert same(torch.randn(2, 3, 64, 64)).shape == (2, 5, 64, 64)
        assert bil(torch.randn(1, 1, 48, 48)).shape == (1, 2, 48, 48)
        # valid + bilinear keeps the paper's shapes: the 1x1 conv does not shrink the map.
        assert UNet(bilinear=True, base_channels=4)(torch.randn(1, 1, 572, 572)).shape == (1, 2, 388, 388)
    assert isinstance(bil.up1.upsample, nn.Upsample) and bil.up1.upconv.kernel_size == (1, 1)
    assert n_params(bil) == _unet_count(1, 2, 8, 3, bilinear=True)
    assert n_params(on_meta(UNet, bilinear=True)) == 28_941_698
    with pytest.raises(ValueError, match="padding"):
        UNet(padding="reflect")


# ---------------------------------------------------------------- GPT

def test_gpt_forward_shape_causality_and_init():
    torch.manual_seed(0)
    cfg = GPTConfig(vocab_size=50, block_size=16, n_layer=4, n_head=2, n_embd=32)
    model = GPT(cfg).eval()
    idx = torch.randint(0, 50, (2, 10))
    logits = model(idx)
    assert logits.shape == (2, 10, 50)
    changed = idx.clone()
    changed[:, 6] = (changed[:, 6] + 1) % 50
    torch.testing.assert_close(model(changed)[:, :6], logits[:, :6])
    assert not torch.allclose(model(changed)[:, 6:], logits[:, 6:])
    with pytest.raises(ValueError, match="block_size"):
        model(torch.zeros(1, 17, dtype=torch.long))

    names = [n for n, _ in model.named_modules()]
    for sub in ("ln_1", "attn.c_attn", "attn.c_proj", "attn.attn_dropout", "attn.resid_dropout",
                "ln_2", "mlp.c_fc", "mlp.gelu", "mlp.c_proj", "mlp.dropout"):
        assert f"transformer.h.3.{sub}" in names
    assert model.transformer.h[0].mlp.gelu.approximate == "tanh"
    assert all(b.abs().sum() == 0 for n, b in model.named_parameters() if n.endswith(".bias"))


def test_gpt_residual_projection_init_std():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=64, block_size=8, n_layer=8, n_head=4, n_embd=256))
    proj = torch.cat([b.attn.c_proj.weight.flatten() for b in model.transformer.h]
                     + [b.mlp.c_proj.weight.flatten() for b in model.transformer.h])
    fc = torch.cat([b.mlp.c_fc.weight.flatten() for b in model.transformer.h])
    assert proj.std().item() == pytest.approx(0.02 / math.sqrt(16), rel=0.02)
    assert fc.std().item() == pytest.approx(0.02, rel=0.02)


def test_gpt_no_bias_variant():
    model = GPT(GPTConfig(vocab_size=16, block_size=8, n_layer=1, n_head=1, n_embd=8, bias=False))
    assert not [n for n, _ in model.named_parameters() if n.endswith("bias")]


# ---------------------------------------------------------------- ResNet details

def test_resnet_block_structure():
    r50 = on_meta(resnet, "resnet50")
    first = r50.layer2[0]
    assert isinstance(first, Bottleneck)
    assert first.conv1.stride == (1, 1) and first.conv2.stride == (2, 2)  # v1.5: stride on the 3x3
    assert isinstance(first.downsample[0], nn.Conv2d) and first.downsample[0].stride == (2, 2)
    assert r50.layer1[0].downsample is not None  # 64 -> 256 channels
    assert r50.layer1[1].downsample is None
    r18 = on_meta(resnet, "resnet18")
    assert isinstance(r18.layer1[0], BasicBlock) and r18.layer1[0].downsample is None
    r101 = on_meta(resnet, "resnet101")
    assert [len(getattr(r101, f"layer{i}")) for i in range(1, 5)] == [3, 4, 23, 3]


def test_resnet_init():
    torch.manual_seed(0)
    model = resnet("resnet18")
    w = model.layer3[0].conv1.weight  # 3x3, 256 out channels: fan_out = 256 * 9
    assert w.std().item() == pytest.approx(math.sqrt(2 / (256 * 9)), rel=0.02)
    assert torch.equal(model.bn1.weight, torch.ones(64)) and torch.equal(model.bn1.bias, torch.zeros(64))
    zero = resnet("resnet50", zero_init_residual=True)
    assert all(b.bn3.weight.abs().sum() == 0 and b.bn2.weight.abs().sum() > 0
               for layer in (zero.layer1, zero.layer4) for b in layer)
    zero18 = resnet("resnet18", zero_init_residual=True)
    assert all(b.bn2.weight.abs().sum() == 0 for b in zero18.layer2)


# ---------------------------------------------------------------- torchvision parity

_FACTORIES = {"alexnet": alexnet, **{n: (lambda n=n: resnet(n)) for n in RESNET_LAYERS}}


@pytest.mark.parametrize("name", NAMES)
def test_torchvision_parity(name):
    state, x, outputs = load_reference(name)
    meta = reference_meta(name)
    # Built on meta, then given the dumped tensors: skips a random init that
    # would be overwritten anyway.
    model = on_meta(_FACTORIES[name])
    ours = model.state_dict()
    # Same keys in the same order, same shapes and dtypes.
    assert list(ours) == meta["state_keys"]
    assert {k: (tuple(v.shape), v.dtype) for k, v in ours.items()} == {
        k: (tuple(v.shape), v.dtype) for k, v in state.items()
    }
    assert n_params(model) == meta["num_params"]

    model.load_state_dict(state, strict=True, assign=True)
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(x), outputs["eval"], **TOLERANCE)
    if "train" in outputs:
        model.train()
        with torch.no_grad():
            torch.testing.assert_close(model(x), outputs["train"], **TOLERANCE)
        after = post_train_buffers(name)
        assert after, "the dump has no BatchNorm buffers"
        ours_after = model.state_dict()
        for key, value in after.items():
            torch.testing.assert_close(ours_after[key], value, **TOLERANCE, msg=lambda m, k=key: f"{k}: {m}")


def test_reference_dumps_cover_every_model():
    assert set(NAMES) == set(_FACTORIES)
    for name in NAMES:
        meta = reference_meta(name)
        assert meta["torchvision"].startswith("0.29.1"), meta["torchvision"]
        assert meta["modes"] == (["eval", "train"] if name.startswith("resnet") else ["eval"])


def test_torchvision_parity_catches_a_small_error():
    # A BatchNorm eps of 1e-4 instead of 1e-5 in one layer must fail the comparison.
    state, x, outputs = load_reference("resnet18")
    model = resnet("resnet18")
    model.load_state_dict(state)
    model.layer3[1].bn2.eps = 1e-4
    model.eval()
    with torch.no_grad(), pytest.raises(AssertionError):
        torch.testing.assert_close(model(x), outputs["eval"], **TOLERANCE)
