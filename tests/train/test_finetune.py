"""`netspec train --weights FILE` with a new head: --reinit, --strict false, --freeze; frozen
parameters kept by the run folder (resume, eval)."""
from __future__ import annotations

import json
import textwrap

import pytest
import torch
from safetensors.torch import load_file

from netspec.cli import main
from tests.cli import run

SPEC = textwrap.dedent("""
    model Small(num_classes=4):
        input x: [B=1, 3, 16, 16]
        body:
            Conv2d(3, 8, 3, padding=1)
            BatchNorm2d(8)
            ReLU()
            MaxPool2d(2)
            Conv2d(8, 16, 3, padding=1)
            ReLU()
        AdaptiveAvgPool2d(1)
        flatten(1)
        fc: Linear(16, num_classes)
        head logits: classify
""").lstrip()

QUICK = ["--steps", "3", "--batch-size", "8", "--eval-every", "0", "--device", "cpu"]



@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A 4-class run of Small on shapes: the checkpoint every test fine-tunes from."""
    d = tmp_path_factory.mktemp("finetune")
    (d / "small.nn").write_text(SPEC)
    assert main(["train", str(d / "small.nn"), "--data", "shapes:4", *QUICK, "--out", str(d / "base")]) == 0
    return d


def test_new_head_with_reinit_and_frozen_body(base, capsys):
    out_dir = base / "ft"
    code, out, err = run(["train", str(base / "small.nn"), "--set", "num_classes=2", "--data", "shapes:2", *QUICK,
                          "--weights", str(base / "base" / "last" / "model.safetensors"), "--reinit", "fc",
                          "--freeze", "body", "--out", str(out_dir)], capsys)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == f"{base / 'base' / 'last' / 'model.safetensors'}: 9 tensors loaded, 2 re-initialised (fc.weight, fc.bias)"
    assert lines[1].startswith("Small: 1,442 parameters (34 trainable) on cpu; ")
    meta = json.loads((out_dir / "model.json").read_text())
    assert meta["frozen"] == ["body.0.weight", "body.0.bias", "body.1.weight", "body.1.bias", "body.4.weight",
                              "body.4.bias"]
    start, end = load_file(base / "base" / "last" / "model.safetensors"), load_file(out_dir / "last" / "model.safetensors")
    for k in meta["frozen"]:
        assert torch.equal(end[k], start[k]), k
    assert end["fc.weight"].shape == (2, 16)
    # BatchNorm's running statistics are buffers, not parameters: frozen layers still update them in training
    assert not torch.equal(end["body.1.running_mean"], start["body.1.running_mean"])

    # resuming rebuilds the model from the run folder with the same parameters frozen
    code, out, err = run(["train", "--resume", str(out_dir), "--steps", "5"], capsys)
    assert code == 0, err
    again = load_file(out_dir / "last" / "model.safetensors")
    assert all(torch.equal(again[k], start[k]) for k in meta["frozen"])
    assert not torch.equal(again["fc.weight"], end["fc.weight"])
    from netspec.train import load_run

    model, _, _ = load_run(out_dir)
    assert [n for n, p in model.named_parameters() if not p.requires_grad] == meta["frozen"]


def test_strict_false_loads_what_fits_and_prints_a_table(base, capsys):
    code, out, err = run(["train", str(base / "small.nn"), "--set", "num_classes=2", "--data", "shapes:2", *QUICK,
                          "--weights", str(base / "base" / "last" / "model.safetensors"), "--strict", "false",
                          "--out", str(base / "loose")], capsys)
    assert code == 0, err
    assert out.splitlines()[:4] == [
        f"{base / 'base' / 'last' / 'model.safetensors'}: 9 tensors loaded, 2 left at their initialisation",
        "key        model    checkpoint",
        "fc.weight  [2, 16]  [4, 16]     mis-shaped",
        "fc.bias    [2]      [4]         mis-shaped",
    ]


def test_strict_error_suggests_reinit(base, capsys):
    code, out, err = run(["train", str(base / "small.nn"), "--set", "num_classes=2", "--data", "shapes:2", *QUICK,
                          "--weights", str(base / "base" / "last" / "model.safetensors"), "--out", str(base / "strict")],
                         capsys)
    assert code == 1 and out == ""
    assert err.splitlines() == [
        "error: weights do not fit the model: 0 missing, 0 unexpected, 2 mis-shaped (9 keys fit)",
        "mis-shaped keys (2):",
        "  fc.weight: model expects [2, 16], checkpoint has [4, 16]",
        "  fc.bias: model expects [2], checkpoint has [4]",
        "note: to train fc anew, add --reinit fc; to load only what fits, --strict false",
    ]
    assert not (base / "strict").exists()


@pytest.mark.parametrize("flags,message", [
    (["--reinit", "fc"], "error: --reinit needs --weights FILE"),
    (["--strict", "false"], "error: --strict needs --weights FILE"),
    (["--freeze", "bdy"], "error: --freeze 'bdy' matches nothing in Small (did you mean 'body'?); its top-level "
                          "modules: body, fc"),
    (["--freeze", "body,fc"], "error: every parameter of Small is frozen: nothing to train "
                              "(check --freeze / frozen=true)"),
])
def test_fine_tuning_flag_errors(base, capsys, flags, message):
    code, _, err = run(["train", str(base / "small.nn"), "--data", "shapes:4", *QUICK, *flags,
                        "--out", str(base / "bad")], capsys)
    assert code == 1 and err.splitlines() == [message]


def test_resume_refuses_new_fine_tuning_flags(base, capsys):
    code, _, err = run(["train", "--resume", str(base / "base"), "--freeze", "body"], capsys)
    assert code == 1
    assert err == "error: --set, --input, --weights, --reinit, --freeze and --pad-vocab cannot change a resumed run's model\n"
