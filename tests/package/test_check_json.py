"""`netspec check --json`, `--no-lint`, `--explain` and `netspec layers --json`: the machine-readable
contracts, and errors on a loop's line that name the failing layer's path."""
import json
import textwrap

from tests.cli import run

LINTED = textwrap.dedent("""\
    model M():
        input x: float[B=2, 4]
        fc: Linear(4, 4)
        drop: Dropout(0.5)
        head y
""")



def test_check_json_lists_models_and_diagnostics_with_their_codes(tmp_path, capsys):
    f = tmp_path / "m.nn"
    f.write_text(LINTED)
    code, out, err = run(["check", str(f), "--json"], capsys)
    assert code == 0 and err == ""
    report = json.loads(out)
    assert report["ok"] is True
    assert report["models"] == [{"name": "M", "params": 20, "inputs": [{"name": "x", "dtype": "float32",
                                                                         "shape": [2, 4]}],
                                 "heads": [{"name": "y", "task": None, "shape": [2, 4]}]}]
    assert report["diagnostics"] == [{
        "file": str(f), "line": 4, "col": 5, "end": {"line": 4, "col": 23}, "severity": "warning",
        "code": "NS103", "message": "head 'y' is the output of drop: no dropout right before an output", "notes": []}]


def test_check_json_reports_errors_with_notes_and_exits_1(tmp_path, capsys):
    f = tmp_path / "bad.nn"
    f.write_text(textwrap.dedent("""\
        block B(d):
            Lienar(d, d)

        model M():
            input x: float[B=2, 4]
            B(4)
            head y
    """))
    code, out, err = run(["check", str(f), "--json"], capsys)
    assert code == 1 and err == ""
    report = json.loads(out)
    assert report["ok"] is False and report["models"] == []
    (d,) = report["diagnostics"]
    assert (d["line"], d["col"], d["end"], d["severity"], d["code"]) == (2, 5, {"line": 2, "col": 11}, "error", None)
    assert d["message"] == "unknown layer 'Lienar' (did you mean 'Linear'?)"
    assert d["notes"] == [{"file": str(f), "line": 6, "col": 5, "end": {"line": 6, "col": 9},
                           "message": "in block 'B' instantiated here"}]


def test_no_lint_leaves_a_lint_out_for_one_run(tmp_path, capsys):
    f = tmp_path / "m.nn"
    f.write_text(LINTED)
    code, _, err = run(["check", str(f)], capsys)
    assert code == 0 and f"{f}:4:5: warning: head 'y' is the output of drop: no dropout right before an output " \
        "[NS103]" in err
    for name in ("NS103", "dropout-before-head", "ns103"):
        code, out, err = run(["check", str(f), "--no-lint", name], capsys)
        assert code == 0 and err == "" and "model M ok" in out
    code, _, err = run(["check", str(f), "--no-lint", "NS13"], capsys)
    assert code == 1 and err.startswith("error: no lint 'NS13' (did you mean 'NS103'?); lints: NS101 (bias-before")


def test_explain_prints_the_rationale_and_the_fix(capsys):
    code, out, _ = run(["check", "--explain", "NS101"], capsys)
    assert code == 0
    assert out.startswith("NS101 bias-before-norm (warning)\n\nBatch norm subtracts the batch mean")
    assert "\n\nFix: Give the layer before the batch norm `bias=false`" in out
    code, out, _ = run(["check", "--explain", "norm-after-activation"], capsys)
    assert code == 0 and out.startswith("NS105 norm-after-activation (note)")


def test_layers_json_has_schemas_choices_and_tasks(capsys):
    code, out, _ = run(["layers", "--json"], capsys)
    assert code == 0
    data = json.loads(out)
    layers = {d["name"]: d for d in data["layers"]}
    assert layers["Linear"]["args"] == [
        {"name": "in_features", "type": "dim", "required": True, "variadic": False},
        {"name": "out_features", "type": "dim", "required": True, "variadic": False},
        {"name": "bias", "type": "bool", "required": False, "variadic": False, "default": True}]
    assert layers["StochasticDepth"]["args"][1] == {"name": "mode", "type": "str", "required": False,
                                                     "variadic": False, "default": "row", "choices": ["row", "batch"]}
    assert layers["LSTM"]["kind"] == "module" and layers["softmax"]["kind"] == "function"
    assert set(data["module_args"]) == {"init", "bias_init", "tie", "frozen"}
    tasks = {t["name"]: t for t in data["tasks"]}
    assert [a["name"] for a in tasks["lm"]["args"]] == ["weight", "target", "loss", "k"]
    assert [a["name"] for a in tasks["regress"]["args"]] == ["weight"]


def test_layers_lists_head_tasks_too(capsys):
    code, out, _ = run(["layers"], capsys)
    assert code == 0
    assert "task     head       lm(weight=1.0, target=<input>, loss='softmax', k=5)  — language model" in out


def test_a_failure_on_a_loops_line_names_the_layer(tmp_path, capsys):
    f = tmp_path / "vgg.nn"
    f.write_text(textwrap.dedent("""\
        model VGGish(cfg=[8, "M", 8, "M", 8, "M", 8, "M", 8, "M", 8, "M"]):
            input x: float[B=1, 3, 32, 32]
            c = 3
            features:
                for v in cfg:
                    if v == "M":
                        MaxPool2d(2, stride=2)
                    else:
                        Conv2d(c, v, 3, padding=1)
                        ReLU()
                        c = v
            head out
    """))
    code, _, err = run(["check", str(f)], capsys)
    assert code == 1
    assert err.startswith(f"{f}:7:17: error: features.17: MaxPool2d(2, stride=2) failed on inputs [1, 8, 1, 1]")


def test_a_failure_in_a_block_made_in_a_loop_names_its_path(tmp_path, capsys):
    f = tmp_path / "att.nn"
    f.write_text(textwrap.dedent("""\
        block Attn(d, h):
            att: MultiheadAttention(d, h)

        model M(heads=[2, 3]):
            input x: float[B=1, 5, 8]
            layers:
                for h in heads:
                    Attn(8, h)
            head out
    """))
    code, _, err = run(["check", str(f)], capsys)
    assert code == 1
    assert err.startswith(f"{f}:2:5: error: layers.1.att: cannot build MultiheadAttention(8, 3, batch_first=true): "
                          "embed_dim must be divisible by num_heads")
    assert f"{f}:8:13: note: in block 'Attn' instantiated here" in err


def test_a_failure_on_its_own_line_keeps_its_short_message(tmp_path, capsys):
    f = tmp_path / "m.nn"
    f.write_text("model M():\n    input x: float[B=1, 3]\n    fc: Linear(4, 2)\n    head y\n")
    code, _, err = run(["check", str(f)], capsys)
    assert code == 1 and err.startswith(f"{f}:3:5: error: Linear(4, 2) expects last dim 4, got [1, 3]")
