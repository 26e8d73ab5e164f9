"""Fine-tuning a built model: layer patterns, `frozen=true` on blocks, loading with a new head
(`reinit=`, `strict=False` and its table), the frozen counts of `summary` -- against
torchvision's ResNet-18 weights and hand-written torch where a reference exists."""
from __future__ import annotations

import json
import textwrap

import pytest
import torch
from torch import nn

import netspec
from netspec.cli import main
from netspec.compiler.builder import analyze
from netspec.compiler.eject import eject
from netspec.compiler.finetune import PatternError, freeze, matches, select, split_patterns, trainable_counts
from netspec.compiler.summary import summarize
from netspec.compiler.weights import WeightsError, load_weights
from netspec.dsl.errors import NetspecError
from tests.reference.resnet import resnet18
from tests.reference.torchvision_ref import TOLERANCE, load_reference


def spec(text: str) -> str:
    return textwrap.dedent(text).lstrip()


ENCODER = spec("""
    block Inner(d):
        input x: [B, d]
        fc: Linear(d, d)

    block Enc(d):
        input x: [B, d]
        fc1: Linear(d, d)
        ReLU()
        inner: Inner(d)

    model M(d=8):
        input x: [B=1, d]
        enc: Enc(d, frozen=true)
        other: Enc(d)
        out: Linear(d, 2)
        head y: classify
""")


# ---------------------------------------------------------------- patterns


def test_patterns_select_modules_and_everything_under_them():
    assert matches("layer1", "layer1.0.conv1.weight") and matches("fc", "fc.bias")
    assert matches("layer[1-3]", "layer3.1.bn2.running_mean") and not matches("layer[1-3]", "layer4.0.conv1.weight")
    assert matches("*.bn*", "layer2.0.bn1.weight") and not matches("*.bn*", "bn1.weight")
    assert matches("fc.bias", "fc.bias") and not matches("fc.bias", "fc.weight")
    assert not matches("fc", "fc2.weight")  # a whole path component, not a prefix of a name
    assert split_patterns(["conv1,bn1", " layer1 ", ""]) == ["conv1", "bn1", "layer1"]


def test_a_pattern_that_selects_nothing_is_an_error():
    model = netspec.build("resnet", "ResNet18")
    assert select(model, "layer4.1.bn2") == {"layer4.1.bn2.weight", "layer4.1.bn2.bias", "layer4.1.bn2.running_mean",
                                             "layer4.1.bn2.running_var", "layer4.1.bn2.num_batches_tracked"}
    with pytest.raises(PatternError) as e:
        freeze(model, ["layer1", "layr4"], flag="--freeze")
    assert str(e.value) == ("--freeze 'layr4' matches nothing in ResNet18 (did you mean 'layer4'?); its top-level "
                            "modules: bn1, conv1, fc, layer1, layer2, layer3, layer4")


def test_freeze_matches_torch_requires_grad_after_a_training_step():
    """Freezing by pattern trains like torchvision-style code that sets requires_grad by hand."""
    torch.manual_seed(0)
    ours = netspec.build("resnet", "ResNet18", input_shapes={"x": (2, 3, 32, 32)}, num_classes=3)
    ref = resnet18(num_classes=3)
    ref.load_state_dict(ours.state_dict())
    names = freeze(ours, "conv1,bn1,layer[1-3]")
    for name, p in ref.named_parameters():
        if name.split(".")[0] in ("conv1", "bn1", "layer1", "layer2", "layer3"):
            p.requires_grad_(False)
    assert names == [n for n, p in ref.named_parameters() if not p.requires_grad]
    assert trainable_counts(ours) == (sum(p.numel() for p in ref.parameters() if p.requires_grad),
                                      sum(p.numel() for p in ref.parameters() if not p.requires_grad))
    x, y = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 0])
    before = {k: v.clone() for k, v in ours.state_dict().items()}
    for m in (ours, ref):
        opt = torch.optim.SGD([p for p in m.parameters() if p.requires_grad], lr=0.1)
        nn.functional.cross_entropy(m(x), y).backward()
        opt.step()
    for (name, p), (rname, rp) in zip(ours.named_parameters(), ref.named_parameters()):
        assert name == rname
        torch.testing.assert_close(p, rp)
        assert torch.equal(p, before[name]) == (name in names)


# ---------------------------------------------------------------- frozen=true on a block instance


def test_frozen_block_freezes_every_layer_in_it_nested_blocks_included():
    m = netspec.build(ENCODER)
    frozen = sorted(n for n, p in m.named_parameters() if not p.requires_grad)
    assert frozen == ["enc.fc1.bias", "enc.fc1.weight", "enc.inner.fc.bias", "enc.inner.fc.weight"]
    assert all(p.requires_grad for n, p in m.named_parameters() if n.startswith(("other.", "out.")))


def test_frozen_block_is_kept_by_ejected_code():
    code = eject(ENCODER)
    assert "        self.enc.requires_grad_(False)  # frozen block\n" in code
    scope: dict = {}
    exec(compile(code, "model.py", "exec"), scope)
    ejected = scope["M"]()
    assert [(n, p.requires_grad) for n, p in ejected.named_parameters()] == \
        [(n, p.requires_grad) for n, p in netspec.build(ENCODER).named_parameters()]


def test_a_block_parameter_named_frozen_wins():
    m = netspec.build(spec("""
        block Maybe(d, frozen=false):
            input x: [B, d]
            Linear(d, d) if frozen else Identity()

        model M():
            input x: [B=1, 4]
            b: Maybe(4, frozen=true)
            head y
    """))
    assert all(p.requires_grad for p in m.parameters()) and sum(p.numel() for p in m.parameters()) == 20


def test_frozen_takes_true_or_false():
    with pytest.raises(NetspecError) as e:
        netspec.build(ENCODER.replace("frozen=true", "frozen=1"))
    assert str(e.value).splitlines()[0] == "<string>:13:17: error: frozen must be true or false, got 1"


# ---------------------------------------------------------------- loading with a new head


@pytest.fixture(scope="module")
def torchvision_resnet18():
    state, inputs, outputs = load_reference("resnet18")
    return state, inputs


def test_reinit_loads_torchvision_resnet18_under_a_new_two_class_head(torchvision_resnet18):
    state, inputs = torchvision_resnet18
    torch.manual_seed(7)
    fresh = netspec.build("resnet", "ResNet18", num_classes=2)
    torch.manual_seed(7)
    model = netspec.build("resnet", "ResNet18", num_classes=2)
    report = load_weights(model, state, reinit="fc")
    assert report.ok and report.reinit == ["fc.weight", "fc.bias"] and report.ignored == ["fc.weight", "fc.bias"]
    assert report.loaded == [k for k in model.state_dict() if not k.startswith("fc.")]
    assert report.summary() == "120 tensors loaded, 2 re-initialised (fc.weight, fc.bias)"
    ours = model.state_dict()
    for k, v in state.items():
        if k.startswith("fc."):
            assert ours[k].shape == (2, 512)[: v.dim()] and torch.equal(ours[k], fresh.state_dict()[k])
        else:
            assert torch.equal(ours[k], v), k
    # the same network in torch: torchvision's weights and a new nn.Linear(512, 2) as fc
    ref = resnet18(num_classes=2)
    ref.load_state_dict({**state, "fc.weight": ours["fc.weight"], "fc.bias": ours["fc.bias"]})
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(inputs), ref.eval()(inputs), **TOLERANCE)


def test_strict_loading_of_a_new_head_fails_and_names_it(torchvision_resnet18):
    state, _ = torchvision_resnet18
    model = netspec.build("resnet", "ResNet18", num_classes=2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(WeightsError) as e:
        load_weights(model, state)
    assert str(e.value).splitlines()[:2] == [
        "weights do not fit the model: 0 missing, 0 unexpected, 2 mis-shaped (120 keys fit)", "mis-shaped keys (2):"]
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())  # nothing copied


def test_non_strict_loads_what_fits_and_tables_the_rest(torchvision_resnet18):
    state, _ = torchvision_resnet18
    state = dict(state, **{"extra.weight": torch.zeros(3)})
    del state["layer4.1.bn2.bias"]
    model = netspec.build("resnet", "ResNet18", num_classes=2)
    report = load_weights(model, state, strict=False)
    assert not report.ok and len(report.loaded) == 119
    assert report.summary() == "119 tensors loaded, 3 left at their initialisation, 1 checkpoint tensors unused"
    assert report.table().splitlines() == [
        "key                model     checkpoint",
        "fc.weight          [2, 512]  [1000, 512]  mis-shaped",
        "fc.bias            [2]       [1000]       mis-shaped",
        "layer4.1.bn2.bias                         missing from the checkpoint",
        "extra.weight                              not in the model",
    ]
    assert torch.equal(model.state_dict()["layer4.1.bn2.weight"], state["layer4.1.bn2.weight"])


def test_reinit_pattern_must_name_a_layer():
    model = netspec.build("lenet")
    with pytest.raises(PatternError, match=r"^reinit pattern 'fc4' matches nothing in LeNet5 \(did you mean"):
        load_weights(model, model.state_dict(), reinit=["fc4"])


def test_tied_weights_are_reinitialised_under_any_of_their_names():
    text = spec("""
        model M():
            input idx: long[B=1, T=4]
            wte: Embedding(10, 6)
            lm_head: Linear(6, 10, bias=false, tie=wte)
            head logits: lm
    """)
    torch.manual_seed(0)
    model = netspec.build(text)
    init = model.wte.weight.detach().clone()
    report = load_weights(model, {"wte.weight": torch.ones(10, 6)}, reinit="lm_head")
    assert report.reinit == ["wte.weight", "lm_head.weight"] and report.loaded == []
    assert torch.equal(model.wte.weight, init) and model.lm_head.weight is model.wte.weight


# ---------------------------------------------------------------- summary: trainable vs frozen


def test_summary_counts_frozen_parameters_per_layer_and_in_total():
    s = summarize(analyze(ENCODER))
    assert (s["params"], s["trainable_params"], s["frozen_params"]) == (306, 162, 144)
    rows = {r["name"]: (r["params"], r["frozen"]) for r in s["layers"]}
    assert rows["enc"] == (144, 144) and rows["enc.fc1"] == (72, 72) and rows["enc.inner.fc"] == (72, 72)
    assert rows["other"] == (144, 0) and rows["out"] == (18, 0)


def test_summary_table_and_freeze_flag(capsys, tmp_path):
    f = tmp_path / "m.nn"
    f.write_text(ENCODER)
    assert main(["summary", str(f)]) == 0
    out = capsys.readouterr().out
    assert "┃ frozen ┃" in out and "total: 306 parameters (162 trainable, 144 frozen)" in out
    assert main(["summary", str(f), "--freeze", "other", "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert (s["trainable_params"], s["frozen_params"]) == (18, 288)
    assert main(["summary", "lenet"]) == 0
    out = capsys.readouterr().out
    assert "frozen" not in out and "61,706 parameters (61,706 trainable)" in out
    assert main(["summary", str(f), "--freeze", "enc.inner.fcc"]) == 1
    assert capsys.readouterr().err == ("error: --freeze 'enc.inner.fcc' matches nothing in M; its top-level modules: "
                                       "enc, other, out\n")
