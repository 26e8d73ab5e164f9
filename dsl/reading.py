"""Reading spec text safely: regular files only, within the size limits, UTF-8 checked
with a located error.

Every spec netspec reads comes through here (files named on the command line or
imported, standard input) or through `check_text` (text handed over by an editor or the
Python API). Nothing reads a device, a FIFO, a directory or /proc without bound: a file is
opened without blocking and must be a regular file, and no more than the `file_size`
limit (+1 byte, to know it is over) is ever read.
"""
from __future__ import annotations

import os
import stat

from . import limits
from .errors import Diagnostic, NetspecError, Source, Span



def read_spec(path) -> str:
    """The text of a spec file. Raises NetspecError: no such file, not a regular file,
    over the size limit (at the line where it crosses it), not UTF-8 (at the bad byte)."""
    name = os.fspath(path)
    try:
        fd = os.open(name, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # a FIFO must not block the open
    except FileNotFoundError:
        raise NetspecError(f"no such file: {name}") from None
    except IsADirectoryError:
        raise NetspecError(f"cannot read {name}: it is a directory, not a spec file") from None
    except OSError as e:
        raise NetspecError(f"cannot read {name}: {e.strerror or e}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            what = "a directory" if stat.S_ISDIR(mode) else "a device, pipe or socket"
            raise NetspecError(f"cannot read {name}: it is {what}, not a spec file"
                               + (" (use '-' for standard input)" if not stat.S_ISDIR(mode) else ""))
        with os.fdopen(fd, "rb", closefd=True) as f:
            fd = -1
            data = f.read(limits.get("file_size") + 1)
    except OSError as e:
        raise NetspecError(f"cannot read {name}: {e.strerror or e}") from None
    finally:
        if fd >= 0:
            os.close(fd)
    return decode(data, name)


def read_stream(stream, name: str = "<stdin>") -> str:
    """Standard input as spec text, read no further than the size limit."""
    data = stream.buffer.read(limits.get("file_size") + 1) if hasattr(stream, "buffer") else \
        stream.read(limits.get("file_size") + 1)
    if isinstance(data, str):
        check_size(data, name)
        return data
    return decode(data, name)


def decode(data: bytes, name: str) -> str:
    """Bytes of a spec as text: over the size limit or not UTF-8 is a located error."""
    cap = limits.get("file_size")
    if len(data) > cap:
        head = data[:cap].decode("utf-8", errors="replace")
        raise NetspecError([_too_big(Source(name, head), len(head))])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        shown = data.decode("utf-8", errors="replace")
        line = data.count(b"\n", 0, e.start) + 1
        start = data.rfind(b"\n", 0, e.start) + 1
        col = len(data[start:e.start].decode("utf-8", errors="replace")) + 1
        raise NetspecError([Diagnostic("error", f"invalid UTF-8 byte 0x{data[e.start]:02x}: spec files are UTF-8 text",
                                       Span(name, line, col, line, col + 1, Source(name, shown)))]) from None
    return text[1:] if text.startswith("\ufeff") else text  # a byte-order mark is not part of the spec


def check_size(text: str, name: str, source: Source | None = None) -> None:
    """Spec text over the `file_size` limit is an error at the line where it crosses it."""
    cap = limits.get("file_size")
    if len(text) > cap or (len(text) * 4 > cap and len(text.encode("utf-8", "surrogatepass")) > cap):
        at = min(cap, len(text))
        raise NetspecError([_too_big(source or Source(name, text), at)])


def check_lines(text: str, source: Source) -> list[Diagnostic]:
    """An error at each line over the `line_length` limit (a lexer given one 50 MB line
    would take minutes)."""
    cap = limits.get("line_length")
    if len(text) <= cap:
        return []
    out, start, n = [], 0, 1
    while start <= len(text):
        end = text.find("\n", start)
        end = len(text) if end < 0 else end
        if end - start > cap:
            out.append(Diagnostic("error", limits.message("line_length", f"line too long ({end - start:,} characters)"),
                                  Span(source.name, n, cap + 1, source=source)))
            if len(out) >= limits.get("errors"):
                break
        start, n = end + 1, n + 1
    return out


def _too_big(source: Source, at: int) -> Diagnostic:
    text = source.text
    line = text.count("\n", 0, at) + 1
    col = at - (text.rfind("\n", 0, at) + 1) + 1
    return Diagnostic("error", limits.message("file_size", "spec file too large"),
                      Span(source.name, line, col, source=source))
