"""Every resource bomb of tests/hostile/bombs.py gets netspec's own located error, within
500 MB of address space and without hanging.

The bombs run through `netspec.cli.main(["check", FILE])` in one child process whose
address space is capped at 500 MB (RLIMIT_AS): a bomb that allocated its way through
would die there with MemoryError, one that hung would hit the timeout. (How fast each is
refused, against a valid spec checked the same way, is bench/fuzz.py's to measure.) A few
also go through the installed `netspec` command itself, each in its own capped process.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.hostile.bombs import BOMBS, write_bomb

ROOT = Path(__file__).resolve().parents[2]
CAP = 500 * 2**20

# Runs in the capped child: each bomb through the CLI's main(), stderr captured.
_CHILD = r"""
import contextlib, io, json, resource, sys, time
resource.setrlimit(resource.RLIMIT_AS, ({cap}, {cap}))
from netspec.cli import main
out = {{}}
for path in json.loads(sys.argv[1]):
    err = io.StringIO()
    start = time.perf_counter()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            rc = main(["check", path])
    except BaseException as e:  # MemoryError included: reported, not fatal to the other bombs
        rc = repr(e)
    out[path] = {{"rc": rc, "err": err.getvalue()[:50000], "seconds": time.perf_counter() - start,
                 "torch": "torch" in sys.modules}}
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bombs")
    paths = {name: str(write_bomb(name, folder)) for name in BOMBS}
    proc = subprocess.run([sys.executable, "-c", _CHILD.format(cap=CAP), json.dumps(list(paths.values()))],
                          capture_output=True, text=True, timeout=600, cwd=folder)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout)
    return {name: got[path] | {"path": path} for name, path in paths.items()}


@pytest.mark.parametrize("name", list(BOMBS))
def test_bomb_gets_a_located_error(results, name):
    r = results[name]
    first = r["err"].splitlines()[0] if r["err"] else ""
    assert r["rc"] == 1, f"{name}: exit {r['rc']}\n{r['err']}"
    assert re.match(rf"{re.escape(r['path'])}:\d+:\d+: error: ", first), f"{name}: not located:\n{r['err']}"
    assert BOMBS[name][1] in first, f"{name}:\n{r['err']}"
    assert "internal error" not in r["err"]
    assert not r["torch"], f"{name}: refused only after torch was imported (the front end should stop it)"


def test_errors_stop_at_the_cap(results):
    err = results["errors_5000_names"]["err"]
    assert err.count(": error: unknown layer 'Lienar") == 50
    assert err.rstrip().endswith("error: too many errors: stopped after the first 50 (raise it with --limit errors=N)")


@pytest.mark.parametrize("name", ["repeat_1e9", "one_50mb_line", "undecodable_byte", "blocks_200_deep"])
def test_bomb_through_the_command(tmp_path, name):
    path = write_bomb(name, tmp_path)
    netspec = Path(sys.executable).with_name("netspec")

    def cap():
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (CAP, CAP))

    proc = subprocess.run([str(netspec), "check", str(path)], capture_output=True, text=True, timeout=120,
                          preexec_fn=cap, cwd=tmp_path)
    assert proc.returncode == 1
    assert re.match(rf"{re.escape(str(path))}:\d+:\d+: error: ", proc.stderr), proc.stderr[:2000]
    assert BOMBS[name][1] in proc.stderr.splitlines()[0]
