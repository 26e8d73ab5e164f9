"""The `netspec` command line: output, exit codes, and no traceback for any input."""
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from netspec.cli import main
from tests.cli import run

ROOT = Path(__file__).resolve().parents[2]
LENET = str(ROOT / "stdlib" / "lenet.nn")



def test_check_prints_one_line_with_parameters(capsys):
    code, out, err = run(["check", LENET], capsys)
    assert code == 0 and err == ""
    assert out.strip() == (f"{LENET}: model LeNet5 ok: inputs x float32[1, 1, 32, 32]; heads logits[1, 10] (classify); "
                           "61,706 parameters")


def test_check_with_overrides_and_input_sizes(capsys):
    code, out, _ = run(["check", LENET, "--set", "num_classes=12", "in_channels=3", "--input", "x=4x3x32x32"], capsys)
    assert code == 0 and "heads logits[4, 12]" in out and "x float32[4, 3, 32, 32]" in out


def test_errors_exit_1_with_location_and_caret(tmp_path, capsys):
    f = tmp_path / "m.nn"
    f.write_text("model M():\n    input x: float[B=1, 3]\n    Lienar(3, 3)\n    Dropout(2)\n    head y\n")
    code, out, err = run(["check", str(f)], capsys)
    assert code == 1 and out == ""
    lines = err.splitlines()
    assert lines[0] == f"{f}:3:5: error: unknown layer 'Lienar' (did you mean 'Linear'?)"
    assert lines[1] == "        Lienar(3, 3)" and lines[2] == "        ^~~~~~"
    assert f"{f}:4:13: error: Dropout: 'p' must be a probability in [0, 1], got 2" in err


def test_warnings_exit_0(tmp_path, capsys):
    f = tmp_path / "w.nn"
    f.write_text("model M():\n    input x: float[B=1, 3]\n    input unused: float[B=1, 3]\n    head y\n")
    code, out, err = run(["check", str(f)], capsys)
    assert code == 0 and f"{f}:3:5: warning: input 'unused' is never used" in err and "model M ok" in out


def test_model_selection(tmp_path, capsys):
    f = tmp_path / "two.nn"
    f.write_text("model A():\n    input x: float[B=1, 2]\n    head y\nmodel B():\n    input x: float[B=1, 2]\n    head y\n")
    code, _, err = run(["check", str(f)], capsys)
    assert code == 1 and "defines several models (A, B): choose one with --model NAME" in err
    code, _, err = run(["check", str(f), "--model", "C"], capsys)
    assert code == 1 and "no model 'C'" in err and "models: A, B" in err
    code, out, _ = run(["check", str(f), "--all"], capsys)
    assert code == 0 and "model A ok" in out and "model B ok" in out


def test_unknown_parameter_lists_the_right_ones(capsys):
    code, _, err = run(["check", LENET, "--set", "num_clases=3"], capsys)
    assert code == 1
    assert "model 'LeNet5' has no parameter 'num_clases' (did you mean 'num_classes'?)" in err


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as e:
        main(["check"])
    assert e.value.code == 2
    assert main([]) == 2


def test_summary_json_contract(capsys):
    code, out, _ = run(["summary", LENET, "--json"], capsys)
    s = json.loads(out)
    assert code == 0
    assert {"model", "params", "trainable_params", "inputs", "outputs", "layers"} <= set(s)
    assert s["model"] == "LeNet5" and s["params"] == s["trainable_params"] == 61_706
    assert s["inputs"] == {"x": [1, 1, 32, 32]} and s["outputs"] == {"logits": [1, 10]}
    assert sum(r["params"] for r in s["layers"]) == 61_706
    conv1 = next(r for r in s["layers"] if r["type"] == "Conv2d")
    assert conv1["shape"] == [1, 6, 28, 28] and conv1["params"] == 156 and conv1["macs"] == 6 * 28 * 28 * 25


def test_summary_table(capsys):
    code, out, _ = run(["summary", LENET], capsys)
    assert code == 0 and "LeNet5" in out and "61,706 parameters" in out and "[1, 6, 28, 28]" in out


def test_compile_writes_standalone_code(tmp_path, capsys):
    out = tmp_path / "model.py"
    code, stdout, _ = run(["compile", LENET, "-o", str(out)], capsys)
    assert code == 0 and out.exists() and "class LeNet5(nn.Module)" in out.read_text()


def test_render_writes_svg(tmp_path, capsys):
    out = tmp_path / "lenet.svg"
    code, _, _ = run(["render", LENET, "-o", str(out)], capsys)
    assert code == 0 and out.read_text().lstrip().startswith(("<?xml", "<svg"))


def test_render_options(tmp_path, capsys):
    dot = tmp_path / "lenet.dot"
    code, out, err = run(["render", LENET, "-o", str(dot), "--rankdir", "LR", "--params", "--no-shapes"], capsys)
    src = dot.read_text()
    assert code == 0 and out == f"wrote {dot}\n" and err == ""
    assert "rankdir=LR" in src and "label=\" [" not in src  # no shapes on edges
    assert "conv1</B></TD></TR><TR><TD>Conv2d(1, 6, 5)</TD></TR><TR><TD><FONT" in src and ">156 params<" in src
    small, large = tmp_path / "s.png", tmp_path / "l.png"
    assert run(["render", LENET, "-o", str(small), "--dpi", "40"], capsys)[0] == 0
    assert run(["render", LENET, "-o", str(large), "--dpi", "120"], capsys)[0] == 0
    w = lambda p: int.from_bytes(p.read_bytes()[16:20], "big")  # PNG IHDR width
    assert 2.9 < w(large) / w(small) < 3.1
    for bad in (["--rankdir", "UP"], ["--dpi", "0"], ["--depth", "-1"]):
        with pytest.raises(SystemExit) as e:
            main(["render", LENET, "-o", str(dot)] + bad)
        assert e.value.code == 2


GARBAGE = [
    "", "\n\n", "model", "model M(:", "block B():\n\tinput", "model M():\n    input x: float[B=1, 3]\n    head",
    "((((((((((", "model M():\n    input x: float[B=1, 3]\n    x = x +\n    head y\n", "\x00\x01\x02",
    "model M():\n  input x: float[B=1,3]\n    Linear(3,3)\n  head y\n", "import \"/etc/passwd\"\n",
    "model M(a=1/0):\n    input x: float[B=1, 2]\n    head y\n", "model M():\n    input x: float[B=0, 2]\n    head y\n",
    "model M():\n    input x: float[B=1, 2]\n    view(-1, 3)\n    head y\n",
    "model M():\n    input x: long[B=1, 2]\n    Linear(2, 2)\n    head y\n",
    "model M():\n    input x: float[B=1, 2]\n    for i in 3:\n        ReLU()\n    head y\n",
]


RANDOM = ["".join(random.Random(s).choice("model():\n x[]=+-*#\t{}0123,.'\"") for _ in range(200))
          for s in range(30)]


@pytest.mark.parametrize("text", GARBAGE + RANDOM)
def test_no_traceback_for_any_input(text, tmp_path, capsys):
    """main() itself never raises and never reports an internal error."""
    f = tmp_path / "bad.nn"
    f.write_bytes(text.encode("utf-8", "surrogateescape"))
    code, _, err = run(["check", str(f)], capsys)
    assert "internal error" not in err, err
    assert code in (0, 1)
    if code == 1:
        assert "error:" in err


def test_the_installed_command_prints_no_traceback(tmp_path):
    f = tmp_path / "bad.nn"
    f.write_text("model M(:\n  input\n")
    r = subprocess.run([sys.executable, "-m", "netspec", "check", str(f)], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.startswith(f"{f}:1:9: error: ")


def test_netspec_debug_dumps_each_stage(capsys, monkeypatch):
    monkeypatch.setenv("NETSPEC_DEBUG", "2")
    code, _, err = run(["check", LENET], capsys)
    assert code == 0
    assert "# graph IR of model LeNet5" in err and "%conv1 = module Conv2d(" in err
    assert "# fx code of LeNet5" in err and "conv1 = self.conv1(x)" in err


def test_check_weights_against_the_meta_model(tmp_path, capsys):
    import torch
    from safetensors.torch import save_file

    import netspec
    sd = {k: v.contiguous() for k, v in netspec.build(LENET).state_dict().items()}
    save_file(sd, tmp_path / "ok.safetensors")
    code, out, _ = run(["check", LENET, "--weights", str(tmp_path / "ok.safetensors")], capsys)
    assert code == 0 and out.splitlines()[1] == f"{tmp_path / 'ok.safetensors'}: all 10 tensors fit model LeNet5"
    sd["fc3.weight"] = torch.zeros(5, 84)
    del sd["conv1.bias"]
    save_file(sd, tmp_path / "bad.safetensors")
    code, _, err = run(["check", LENET, "--weights", str(tmp_path / "bad.safetensors")], capsys)
    assert code == 1 and "1 missing" in err and "conv1.bias" in err
    assert "fc3.weight: model expects [10, 84], checkpoint has [5, 84]" in err


def test_summary_shows_doc_comments(tmp_path, capsys):
    f = tmp_path / "d.nn"
    f.write_text("## A documented model.\nmodel M():\n    input x: float[B=1, 4]\n"
                 "    fc: Linear(4, 4)  ## the only layer\n    head y\n")
    code, out, _ = run(["summary", str(f), "--json"], capsys)
    s = json.loads(out)
    assert s["doc"] == "A documented model."
    assert next(r for r in s["layers"] if r["name"] == "fc")["doc"] == "the only layer"
    code, out, _ = run(["summary", str(f)], capsys)
    assert "the only layer" in out and "A documented model." in out


def test_absurdly_deep_expressions_are_a_user_error(tmp_path, capsys):
    f = tmp_path / "deep.nn"
    f.write_text("model M():\n    input x: float[B=1, 2]\n    y = x" + " + x" * 2000 + "\n    head z = y\n")
    code, _, err = run(["check", str(f)], capsys)
    # refused at the term where the nesting crosses the limit, before anything recursive runs
    assert code == 1 and "internal error" not in err
    assert err.startswith(f"{f}:3:") and "error: nested too deeply: over the limit of 100 levels" in err
    assert "(raise it with --limit depth=N)" in err
    code, _, err = run(["--limit", "depth=3000", "check", "--no-shapes", str(f)], capsys)
    assert code == 0, err  # raised, the 2,000 additions compile
