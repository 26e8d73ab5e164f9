"""Data-driven error tests: each tests/errors/*.nn file carries its expected problems
inline, on the offending line, as `# E:COL: message` (error), `# W:COL: message`
(warning), `# I:COL: message` (an informational lint, reported as a note of its own) or
`# N:COL: message` (a note of some error, e.g. where a block was used); a line may carry
several. The message (with a lint's `[CODE]`) is matched as a substring; line and column exactly. Every expected
problem must be reported and nothing else. Files named lib_*.nn are only imported.
"""
import re
from pathlib import Path

import pytest

from netspec.compiler.builder import analyze
from netspec.dsl.errors import Diagnostics, NetspecError
from netspec.dsl.frontend import check_models
from netspec.dsl.loader import load

HERE = Path(__file__).parent
MARK = re.compile(r"#\s*([EWIN]):(\d+):\s*(.*?)\s*(?=#\s*[EWIN]:\d+:|$)")
CASES = sorted(p for p in HERE.glob("*.nn") if not p.name.startswith("lib_"))


def expected(files):
    out = []
    for f in files:
        for n, line in enumerate(f.read_text().splitlines(), 1):
            for m in MARK.finditer(line):
                out.append((m.group(1), str(f), n, int(m.group(2)), m.group(3)))
    return out


def diagnose(path: Path):
    """What `netspec check --all` reports: structure first, then shapes of each model."""
    diags = Diagnostics()
    try:
        program = load(path, diags=diags)
    except NetspecError as e:
        return e.diagnostics, [str(path)]
    check_models(program, program.models(), diags)
    files = list(program.namespaces)
    if diags.has_errors:
        return diags.items, files
    out = list(diags.items)
    for d in program.models():
        try:
            analyze(path, d.name)
        except NetspecError as e:
            out += e.diagnostics
    return out, files


def _text(d) -> str:
    """A problem's message as printed: a lint's code follows it, `[NS101]`."""
    return f"{d.message} [{d.code}]" if d.code else d.message


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_error_fixture(path):
    got, files = diagnose(path)
    want = expected([Path(f) for f in files if Path(f).exists()] or [path])
    assert want, "a fixture must expect something"
    sev = {"E": "error", "W": "warning", "I": "note"}
    unmatched = list(got)
    for kind, file, line, col, msg in want:
        if kind == "N":
            hits = [d for d in got for s, m in d.notes
                    if s and s.file == file and s.line == line and s.col == col and msg in m]
        else:
            hits = [d for d in got if d.severity == sev[kind] and d.span and d.span.file == file
                    and d.span.line == line and d.span.col == col and msg in _text(d)]
        report = "\n".join(d.format() for d in got)
        assert hits, f"expected {kind} at {file}:{line}:{col}: {msg}\n--- got:\n{report}"
        for h in hits:
            if h in unmatched and kind != "N":
                unmatched.remove(h)
    assert not unmatched, "unexpected:\n" + "\n".join(d.format() for d in unmatched)


def test_error_format_has_source_line_and_caret():
    got, _ = diagnose(HERE / "names.nn")
    text = got[0].format()
    head, src, caret = text.splitlines()[:3]
    assert re.match(r".*names\.nn:7:8: error: unknown layer 'Lienar'", head)
    assert src.strip() == "a: Lienar(d, d)                             # E:8: unknown layer 'Lienar' (did you " \
                          "mean 'Linear'?)"
    assert caret.index("^") == src.index("Lienar")
