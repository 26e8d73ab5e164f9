"""Every command the README and docs/ show runs, as a user would run it: the installed wheel,
from a folder outside the repository.

What runs, per document, in order, in one fresh folder:
- ```nn NAME blocks are written to the file NAME (a reader would save them);
- ```console blocks: each `$ COMMAND` runs; the lines after it are its expected output
  (stdout and stderr together; a line `...` stands for any lines). The exit code must be 0,
  or 1 when the expected output shows an error;
- ```sh blocks: every `netspec ...` / `python ...` line (with `\\` continuations) runs and
  must exit 0; set-up lines (`make`, `pip`, `git`, `cd`) are left to CI, which runs them;
- ```python blocks run with the venv's python (```python notest marks a fragment).
Training is shortened to at most 20 steps (the measured results come from
bench/train_acceptance.py, not from here). `netspec serve`, which runs until stopped, is
started on a free port, must answer with its page, and is then stopped.
"""
from __future__ import annotations

import re
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```([\w-]*)[ \t]*([^\n]*)\n(.*?)^```[ \t]*$", re.M | re.S)
RUN_PREFIXES = ("netspec ", "python ", "NETSPEC_")
MAX_STEPS = 20


@dataclass
class Step:
    kind: str  # "file" | "run" | "python"
    text: str  # file content, command line, or python source
    name: str = ""  # file name, or "DOC:LINE" of a command
    expect: list[str] | None = None  # expected output lines of a console command


def steps(doc: Path) -> list[Step]:
    text = doc.read_text(encoding="utf-8")
    out: list[Step] = []
    for m in FENCE.finditer(text):
        lang, info, body = m.group(1), m.group(2).strip(), m.group(3)
        line0 = text.count("\n", 0, m.start()) + 2  # line of the block's first body line
        where = lambda i: f"{doc.name}:{line0 + i}"  # noqa: E731
        if lang == "nn" and info:
            out.append(Step("file", body, info))
        elif lang == "python" and "notest" not in info:
            out.append(Step("python", body, where(0)))
        elif lang == "console":
            for i, line in enumerate(body.splitlines()):
                if line.startswith("$ "):
                    out.append(Step("run", line[2:], where(i), []))
                elif out and out[-1].kind == "run" and out[-1].expect is not None:
                    out[-1].expect.append(line.rstrip())
        elif lang in ("sh", "bash"):
            lines = body.splitlines()
            i = 0
            while i < len(lines):
                start, cmd = i, lines[i]
                while cmd.rstrip().endswith("\\") and i + 1 < len(lines):
                    i += 1
                    cmd = cmd.rstrip()[:-1].rstrip() + " " + lines[i].strip()
                if cmd.startswith(RUN_PREFIXES):
                    out.append(Step("run", cmd, where(start)))
                i += 1
    return out


def shortened(cmd: str) -> str:
    """A `netspec train` command capped at MAX_STEPS optimizer steps."""
    words = shlex.split(cmd, comments=True)
    if "train" not in words[:3] or "--resume" in words:
        return cmd
    out, i = [], 0
    while i < len(words):
        w = words[i]
        if w in ("--steps", "--epochs") and i + 1 < len(words):
            i += 2
            continue
        out.append(w)
        i += 1
    return shlex.join(out + ["--steps", str(MAX_STEPS)])


def serves(cmd: str, env, cwd) -> str | None:
    """Run a `netspec serve` command on a free port until it answers; None, or what went wrong."""
    import urllib.request

    words = [w for w in shlex.split(cmd, comments=True)]
    if "--port" in words:
        i = words.index("--port")
        del words[i:i + 2]
    proc = subprocess.Popen(["bash", "-c", shlex.join(words + ["--port", "0"])], env=env, cwd=cwd, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        first = proc.stdout.readline()  # "netspec: serving FILE at URL (Ctrl-C to stop)", or an error
        m = re.search(r" at (http://\S+) ", first)
        if not m:
            return f"no URL in {first!r}: {proc.stdout.read() if proc.poll() is not None else ''}"
        with urllib.request.urlopen(m.group(1), timeout=120) as page:
            body = page.read().decode()
        return None if page.status == 200 and "<html" in body.lower() else f"{m.group(1)} gave {page.status}"
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def matches(expect: list[str], got: list[str]) -> bool:
    """Line-by-line equality; a `...` line matches any run of lines (also none)."""
    if not expect:
        return True  # no output shown: only the exit code counts
    if expect[0] == "...":
        return any(matches(expect[1:], got[k:]) for k in range(len(got) + 1))
    return bool(got) and got[0] == expect[0] and matches(expect[1:], got[1:])


RUNNABLE = [d for d in DOCS if any(s.kind != "file" for s in steps(d))]


@pytest.mark.parametrize("doc", RUNNABLE, ids=[d.name for d in RUNNABLE])
def test_the_commands_of_the_docs_run(doc, user_env, tmp_path):
    for step in steps(doc):
        if step.kind == "file":
            (tmp_path / step.name).write_text(step.text)
            continue
        if step.kind == "python":
            r = subprocess.run(["python", "-c", step.text], env=user_env, cwd=tmp_path, capture_output=True,
                               text=True, timeout=600)
            assert r.returncode == 0, f"{step.name}: python block failed:\n{r.stdout}\n{r.stderr}"
            continue
        cmd = shortened(step.text)
        if shlex.split(cmd, comments=True)[:2] == ["netspec", "serve"]:
            problem = serves(cmd, user_env, tmp_path)
            assert problem is None, f"{step.name}: `{cmd}`: {problem}"
            continue
        r = subprocess.run(["bash", "-c", cmd], env=user_env, cwd=tmp_path, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=600)
        got = [line.rstrip() for line in r.stdout.rstrip("\n").splitlines()]
        errors = any(": error: " in e or e.startswith("error: ") for e in step.expect or [])
        assert r.returncode == (1 if errors else 0), f"{step.name}: `{cmd}` exited {r.returncode}:\n{r.stdout}"
        if step.expect is not None:
            expect = [e for e in step.expect]
            while expect and not expect[-1]:
                expect.pop()
            assert matches(expect, got), f"{step.name}: `{cmd}` printed\n" + "\n".join(got) + \
                "\ninstead of\n" + "\n".join(expect)


def test_the_harness_reads_blocks_and_shortens_training(tmp_path):
    doc = tmp_path / "x.md"
    doc.write_text("```nn a.nn\nmodel M():\n```\n\n```console\n$ netspec check a.nn\nok\n...\n"
                   "$ netspec train a.nn --steps 600 --lr 1\n```\n\n```sh\nmake demo\n"
                   "netspec render a.nn \\\n    -o a.svg\n```\n\n```python notest\nx\n```\n")
    s = steps(doc)
    assert [(x.kind, x.name) for x in s] == [("file", "a.nn"), ("run", "x.md:6"), ("run", "x.md:9"),
                                              ("run", "x.md:14")]
    assert s[1].expect == ["ok", "..."] and s[3].text == "netspec render a.nn -o a.svg"
    assert shortened(s[2].text) == "netspec train a.nn --lr 1 --steps 20"
    assert matches(["a", "...", "c"], ["a", "b", "b", "c"]) and not matches(["a", "c"], ["a", "b", "c"])
