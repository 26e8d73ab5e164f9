"""The limits table and how a user raises a limit; the CLI's exit status and plain errors
where a command cannot do its job."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from netspec.cli import main
from tests.cli import run
from netspec.dsl import limits
from netspec.dsl.errors import Diagnostics, NetspecError
from netspec.dsl.frontend import elaborate

HEAD = "model M():\n    input x: float[B=1, 4]\n"



def test_every_limit_is_listed_with_what_it_bounds(capsys):
    code, out, _ = run(["limits"], capsys)
    lines = out.splitlines()
    assert code == 0 and lines[0].split() == ["limit", "value", "default", "what", "it", "bounds"]
    for lim in limits.LIMITS.values():
        row = next(line for line in lines if line.startswith(lim.name + " "))
        assert f"{lim.default:,}" in row and lim.bounds in row
    assert lines[-1] == "Raise one with --limit NAME=N (any command) or NETSPEC_LIMITS=NAME=N,NAME=N."


def test_a_limit_is_raised_on_the_command_line_or_in_the_environment(tmp_path, capsys, monkeypatch):
    spec = tmp_path / "loops.nn"
    spec.write_text(HEAD + "    repeat 15000:\n        pass\n    ReLU()\n    head y\n")
    code, _, err = run(["check", "--no-shapes", spec], capsys)
    assert code == 1 and err.splitlines()[0] == (
        f"{spec}:3:12: error: repeat 15,000 times: over the limit of 10,000 loop iterations per model "
        "(raise it with --limit iterations=N)")
    for argv in (["--limit", "iterations=20000", "check", "--no-shapes", spec],
                 ["check", "--no-shapes", spec, "--limit=iterations=20_000"]):
        code, out, err = run(argv, capsys)
        assert code == 0 and "model M ok" in out, err
    assert limits.get("iterations") == 10_000  # --limit held for that run only
    monkeypatch.setenv("NETSPEC_LIMITS", "iterations=20000,layers=50000")
    code, _, err = run(["check", "--no-shapes", spec], capsys)
    assert code == 0, err
    monkeypatch.setenv("NETSPEC_LIMITS", "iterations=20000,layers=5")
    assert limits.get("layers") == 5 and limits.get("depth") == 100


def test_a_mistyped_limit_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--limit", "itertions=5", "limits"])
    assert e.value.code == 2
    assert "--limit: no limit 'itertions' (did you mean 'iterations'?)" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--limit", "depth=-3", "limits"])
    assert "limit 'depth' must be a positive whole number, got -3" in capsys.readouterr().err


def test_raised_in_python_for_one_block_of_code():
    text = HEAD + "    repeat 12000:\n        pass\n    head y\n"
    with pytest.raises(NetspecError, match="over the limit of 10,000 loop iterations"):
        elaborate(text)
    with limits.raised(iterations=12_000):
        assert elaborate(text).graph.name == "M"
    assert limits.get("iterations") == 10_000
    with pytest.raises(ValueError, match="no limit 'loops'"):
        with limits.raised(loops=3):
            pass


def test_errors_stop_at_the_cap_and_say_so():
    text = HEAD + "".join(f"    Lienar{i}(4, 4)\n" for i in range(20)) + "    head y\n"
    with limits.raised(errors=5):
        with pytest.raises(NetspecError) as e:
            elaborate(text)
    messages = [d.message for d in e.value.diagnostics]
    assert len(messages) == 6 and messages[:5] == [f"unknown layer 'Lienar{i}' (did you mean 'Linear'?)"
                                                   for i in range(5)]
    assert messages[5] == "too many errors: stopped after the first 5 (raise it with --limit errors=N)"
    diags = Diagnostics()
    with limits.raised(errors=2):
        for i in range(5):
            diags.warning(f"w{i}", None)
    assert [d.message for d in diags.warnings] == ["w0", "w1", "and 3 more warnings (raise it with --limit errors=N)"]


@pytest.mark.parametrize("command, status", [("check {bad} 2>&1 | head -2", 1), ("check {bad} | head -2", 1),
                                             ("layers | head -1", 0), ("check {good} | head -1", 0)])
def test_a_closed_pipe_keeps_the_exit_status(tmp_path, command, status):
    bad = tmp_path / "bad.nn"
    bad.write_text(HEAD + "    Lienar(4, 4)\n    Lienar(4, 4)\n    Lienar(4, 4)\n    head y\n")
    good = Path(__file__).resolve().parents[2] / "specs" / "mlp.nn"
    netspec = f"{sys.executable} -m netspec"
    proc = subprocess.run(["bash", "-o", "pipefail", "-c", f"{netspec} " + command.format(bad=bad, good=good)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == status, proc.stderr
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr


def test_outputs_that_cannot_be_written_are_plain_errors(tmp_path, capsys):
    spec = Path(__file__).resolve().parents[2] / "specs" / "mlp.nn"
    code, _, err = run(["compile", spec, "-o", tmp_path], capsys)
    assert code == 1 and err == f"error: cannot write '{tmp_path}': it is a directory; give a file name\n"
    code, _, err = run(["render", spec, "-o", tmp_path / "x.jpg"], capsys)
    assert code == 1 and err == "error: cannot render to 'x.jpg': use one of .svg, .png, .pdf, .dot\n"
    with pytest.raises(SystemExit):
        main(["compile", str(spec), "-o", "-", "--class-name", "A(); import os"])
    assert "must be a Python class name" in capsys.readouterr().err
