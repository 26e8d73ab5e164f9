"""Command-line papercuts: --debug anywhere, --set before FILE, user errors that are never
"internal error", one error per bad --set value, what --precision fp16 does on a CPU."""
from __future__ import annotations

import pytest

from netspec.cli import main
from tests.cli import run
from tests.package.test_cli import LENET


# ---------------------------------------------------------------- --set before FILE


@pytest.mark.parametrize("argv", [
    ["check", "--set", "num_classes=3", LENET],
    ["check", "--set", "num_classes=3", "in_channels=3", LENET, "--input", "x=2x3x32x32"],
    ["check", "--input", "x=2x3x32x32", "--set", "num_classes=3", "in_channels=3", LENET],
    ["check", LENET, "--set", "num_classes=3", "in_channels=3"],
])
def test_set_and_input_stop_at_the_first_word_without_an_equals(argv, capsys):
    code, out, err = run(argv, capsys)
    assert code == 0, err
    assert out.startswith(f"{LENET}: model LeNet5 ok: ") and "heads logits[" in out and ", 3] (classify)" in out


def test_set_followed_by_no_pair_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as e:
        main(["check", "--set", LENET])
    assert e.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"netspec check: error: argument --set: expected NAME=VALUE items after it, got '{LENET}'")
    with pytest.raises(SystemExit):
        main(["train", LENET, "--set"])
    assert capsys.readouterr().err.splitlines()[-1] == (
        "netspec train: error: argument --set: expected NAME=VALUE items after it, got nothing")


def test_train_takes_set_before_its_file(tmp_path, capsys):
    code, out, err = run(["train", "--set", "num_classes=10", LENET, "--steps", "1", "--eval-every", "0",
                          "--out", str(tmp_path / "run")], capsys)
    assert code == 0, err
    assert (tmp_path / "run" / "last" / "model.safetensors").is_file()


# ---------------------------------------------------------------- one error per bad --set


def test_a_word_for_a_number_parameter_is_one_error(tmp_path, capsys):
    f = tmp_path / "m.nn"
    f.write_text("model M(d=8, act=\"relu\", bias=true):\n    input x: [B=1, d]\n    Linear(d, d, bias=bias)\n"
                 "    Linear(d, d)\n    Linear(d, 2)\n    head y: classify\n")
    code, out, err = run(["check", str(f), "--set", "d=abc"], capsys)
    assert code == 1 and out == ""
    assert err == "error: --set d=abc: parameter 'd' of model 'M' takes a number (default 8), got 'abc'\n"
    code, _, err = run(["check", str(f), "--set", "d=abc", "bias=maybe"], capsys)
    assert err.splitlines() == [
        "error: --set d=abc: parameter 'd' of model 'M' takes a number (default 8), got 'abc'",
        "error: --set bias=maybe: parameter 'bias' of model 'M' takes true or false (default true), got 'maybe'"]
    code, out, err = run(["check", str(f), "--set", "act=tanh"], capsys)  # a string parameter takes words
    assert code == 0 and err == ""


def test_a_word_for_a_list_parameter_of_an_alias_is_one_error(capsys):
    code, _, err = run(["check", "resnet", "--model", "ResNet18", "--set", "layers=abc"], capsys)
    assert code == 1
    assert err == ("error: --set layers=abc: parameter 'layers' of model 'ResNet18' takes a list "
                   "(default [2, 2, 2, 2]), got 'abc'\n")


# ---------------------------------------------------------------- user errors, not internal ones


def test_unknown_output_extension_is_a_user_error(tmp_path, capsys):
    code, _, err = run(["render", LENET, "-o", str(tmp_path / "x.foo")], capsys)
    assert code == 1
    assert err == "error: cannot render to 'x.foo': use one of .svg, .png, .pdf, .dot\n"


def test_missing_dot_is_a_user_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no Graphviz on it
    code, _, err = run(["render", LENET, "-o", str(tmp_path / "x.svg")], capsys)
    assert code == 1
    assert err == ("error: rendering needs Graphviz's `dot` on PATH (apt install graphviz); "
                   "a .dot output works without it\n")
    code, out, err = run(["render", LENET, "-o", str(tmp_path / "x.dot")], capsys)
    assert code == 0 and (tmp_path / "x.dot").read_text().startswith("digraph")


def test_unwritable_render_output_is_a_user_error(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    code, _, err = run(["render", LENET, "-o", str(tmp_path / "file" / "x.dot")], capsys)
    assert code == 1 and err.startswith(f"error: cannot write '{tmp_path / 'file' / 'x.dot'}': ")


def test_unwritable_compile_output_is_a_user_error(tmp_path, capsys):
    code, _, err = run(["compile", LENET, "-o", str(tmp_path / "missing" / "model.py")], capsys)
    assert code == 1
    assert err == f"error: cannot write '{tmp_path / 'missing' / 'model.py'}': No such file or directory\n"


# ---------------------------------------------------------------- --debug before or after the command


@pytest.mark.parametrize("command,handler", [("train", "cmd_train"), ("eval", "cmd_eval"),
                                             ("sample", "cmd_sample"), ("predict", "cmd_predict")])
def test_debug_before_or_after_the_command(command, handler, monkeypatch, capsys):
    import netspec.train.cli as tcli

    def broken(args):
        raise RuntimeError("a bug")

    monkeypatch.setattr(tcli, handler, broken)
    argv = {"train": [command, LENET], "eval": [command, "runs/x"], "sample": [command, "runs/x", "--prompt", "a"],
            "predict": [command, "runs/x", "in.png"]}[command]
    code, _, err = run(argv, capsys)
    assert code == 1 and err == "internal error: RuntimeError: a bug (run with --debug for details)\n"
    for debug_argv in (["--debug"] + argv, argv + ["--debug"], argv[:2] + ["--debug"] + argv[2:]):
        with pytest.raises(RuntimeError, match="a bug"):
            main(debug_argv)


# ---------------------------------------------------------------- --precision fp16 on a CPU


def test_fp16_on_cpu_says_what_it_does(tmp_path, capsys):
    code, out, err = run(["train", LENET, "--steps", "1", "--eval-every", "0", "--precision", "fp16",
                          "--device", "cpu", "--out", str(tmp_path / "run")], capsys)
    assert code == 0
    note = ("note: --precision fp16 on cpu: matmuls and convolutions run in float16 under autocast, without "
            "loss scaling (GradScaler needs CUDA), so small gradients can underflow; it is usually slower than "
            "fp32 there (bf16 is the CPU's half precision)")
    assert note in (out + err).splitlines()
    code, out, err = run(["train", LENET, "--steps", "1", "--eval-every", "0", "--precision", "bf16",
                          "--device", "cpu", "--out", str(tmp_path / "run2")], capsys)
    assert code == 0 and "note: --precision" not in out + err
