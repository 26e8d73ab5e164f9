"""Reading specs: imports read only regular .nn files and never quote a file that is not a
spec; undecodable bytes, odd line breaks and long lines are reported where they are."""
from __future__ import annotations

import os

import pytest

from netspec.dsl import limits
from netspec.dsl.errors import NetspecError
from netspec.dsl.frontend import elaborate
from netspec.dsl.loader import load
from netspec.dsl.parser import parse, parse_file

MODEL = "model M():\n    input x: float[B=1, 4]\n    head y\n"


def _errors(source, **kw) -> list[str]:
    with pytest.raises(NetspecError) as e:
        load(source, **kw)
    return [d.format() for d in e.value.diagnostics]


@pytest.mark.parametrize("target", ["/proc/self/environ", "/etc/passwd", "../../../../../../etc/passwd", "/dev/zero",
                                    "/etc"])
def test_imports_name_spec_files_only(tmp_path, target):
    spec = tmp_path / "m.nn"
    for line in (f'import "{target}" as p\n', f'from "{target}" import X\n'):
        spec.write_text(line + MODEL)
        (err,) = _errors(spec)
        assert err.splitlines()[0] == f'{spec}:1:1: error: cannot import "{target}": an import names a .nn spec file'
        assert "root:" not in err and "PATH=" not in err


def test_an_imported_file_that_is_not_a_spec_is_one_line(tmp_path):
    secret = tmp_path / "notes.nn"
    secret.write_text("password = hunter2 and more\nsecond: line (\n")
    spec = tmp_path / "m.nn"
    spec.write_text('import "notes.nn"\n' + MODEL)
    (err,) = _errors(spec)
    head, *rest = err.splitlines()
    assert head == (f'{spec}:1:1: error: cannot import "notes.nn": not a netspec spec file (2 errors, the first at '
                    f'{secret}:1:1; `netspec check {secret}` shows them)')
    assert "hunter2" not in err and rest == ['    import "notes.nn"', '    ^']


def test_directories_and_fifos_are_not_read(tmp_path):
    (tmp_path / "dir.nn").mkdir()
    fifo = tmp_path / "fifo.nn"
    os.mkfifo(fifo)
    spec = tmp_path / "m.nn"
    spec.write_text('import "dir.nn"\nimport "fifo.nn"\n' + MODEL)
    errs = _errors(spec)
    assert [e.splitlines()[0].split(": error: ")[1][:30] for e in errs] == ['cannot find spec "dir.nn" to i'] * 1 + \
        ['cannot find spec "fifo.nn" to '] and len(errs) == 2
    with pytest.raises(NetspecError, match="it is a device, pipe or socket, not a spec file"):
        parse_file(fifo)  # opened without blocking, refused without reading
    with pytest.raises(NetspecError, match="it is a directory, not a spec file"):
        parse_file(tmp_path / "dir.nn")


def test_an_undecodable_byte_is_located(tmp_path):
    spec = tmp_path / "bad.nn"
    spec.write_bytes(b"model M():\n    input x: float[B=1, 4]  # caf\xe9 au lait\n    head y\n")
    (err,) = _errors(spec)
    assert err.splitlines() == [f"{spec}:2:34: error: invalid UTF-8 byte 0xe9: spec files are UTF-8 text",
                                "        input x: float[B=1, 4]  # caf\ufffd au lait",
                                "                                     ^"]


def test_a_byte_order_mark_is_not_part_of_the_spec(tmp_path):
    spec = tmp_path / "bom.nn"
    spec.write_bytes(b"\xef\xbb\xbf" + MODEL.encode())
    assert load(spec).models()[0].name == "M"


@pytest.mark.parametrize("brk", ["\f", "\v", "\x85", "\u2028", "\r", "\x1c"])
def test_odd_line_breaks_do_not_shift_the_quoted_line(brk):
    """Only \\n ends a line for the parser; the quoted line must be the one it means."""
    text = f"## a doc{brk}with an odd break\nmodel M():\n    input x: float[B=1, 4]\n    Lienar(4, 4)\n    head y\n"
    with pytest.raises(NetspecError) as e:
        elaborate(text)
    first = e.value.diagnostics[0].format().splitlines()
    assert first[0] == "<string>:4:5: error: unknown layer 'Lienar' (did you mean 'Linear'?)"
    assert first[1] == "        Lienar(4, 4)"


def test_control_characters_never_reach_the_terminal():
    text = "model M():\n    input x: float[B=1, 4]\n    y = x \x1b[2J\n    head y\n"
    with pytest.raises(NetspecError) as e:
        parse(text)
    shown = e.value.diagnostics[0].format()
    assert "\x1b" not in shown
    assert shown.splitlines()[:2] == ["<string>:3:11: error: unexpected character '\\x1b'",
                                      "        y = x ?[2J"]


def test_line_and_file_size_limits_are_located():
    long = "model M():\n    input x: float[B=1, 4]\n    y = x" + " + x" * 3000 + "\n    head y\n"
    with pytest.raises(NetspecError) as e:
        parse(long)
    d = e.value.diagnostics[0]
    assert (d.span.line, d.span.col) == (3, 10_001)
    assert d.message == ("line too long (12,009 characters): over the limit of 10,000 characters per line "
                         "(raise it with --limit line_length=N)")
    with limits.raised(file_size=100):
        with pytest.raises(NetspecError) as e:
            parse(MODEL * 4)
    d = e.value.diagnostics[0]
    assert (d.span.line, d.span.col) == (7, 3)  # where byte 100 is
    assert d.message.startswith("spec file too large: over the limit of 100 bytes per spec file")
    shown = d.format().splitlines()
    assert len(shown) == 3 and len(shown[1]) < 200  # a long line is shown around the caret only
