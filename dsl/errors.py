"""Source spans and diagnostics: every problem netspec reports points at the spec.

A `Source` is one spec text as it was read; a `Span` is where in it an AST node came
from; a `Diagnostic` is one error, warning or note with its span; `Diagnostics`
collects them so a user sees every problem of a file in one run. Formatting follows
mypy/gcc: `FILE:LINE:COL: error: message`, then the source line and a caret under
the span.
"""
from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Protocol

from . import limits


@dataclass(frozen=True, eq=False)
class Source:
    """One spec text as the parser read it. Every span the parser makes points at its
    Source, so a diagnostic quotes the very text it is about: two specs given as text,
    both named "<string>", each quote their own lines, and nothing is kept globally."""

    name: str  # the file as given by the user, or "<string>"
    text: str

    @cached_property
    def lines(self) -> list[str]:
        # Lines as the parser counts them: only "\n" ends a line (str.splitlines would also
        # split at \f, \v, \x85, U+2028 and a lone \r, and quote the wrong line after one).
        lines = self.text.split("\n")
        if lines[-1] == "":  # the text's last line break ends a line; no new one begins
            lines.pop()
        return [line[:-1] if line.endswith("\r") else line for line in lines]

    def line(self, n: int) -> str | None:
        """Line n (1-based), or None past the end."""
        return self.lines[n - 1] if 0 < n <= len(self.lines) else None


@dataclass(frozen=True)
class Span:
    file: str  # path as given by the user (or "<string>")
    line: int  # 1-based, as Lark reports them
    col: int  # 1-based
    end_line: int | None = None
    end_col: int | None = None  # exclusive, 1-based
    # the text the span is in; spans made without one quote the file on disk
    source: Source | None = field(default=None, compare=False, repr=False)

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"

    def source_line(self) -> str | None:
        """The text of the span's (first) line, or None when it cannot be had."""
        if self.source is not None:
            return self.source.line(self.line)
        try:
            return Source(self.file, Path(self.file).read_text(encoding="utf-8")).line(self.line)
        except (OSError, UnicodeDecodeError):
            return None


@dataclass
class Diagnostic:
    severity: str  # "error" | "warning" | "note" (a note alone is advice, as informational lints give)
    message: str
    span: Span | None = None
    notes: list[tuple[Span | None, str]] = field(default_factory=list)
    code: str | None = None  # a lint's stable code ("NS101"), shown as `[NS101]`; None for the rest

    def format(self, *, color: bool = False) -> str:
        message = f"{self.message} [{self.code}]" if self.code else self.message
        out = [_one(self.severity, message, self.span, color)]
        for span, msg in self.notes:
            out.append(_one("note", msg, span, color))
        return "\n".join(out)

    def __str__(self) -> str:
        return self.format()

    def as_json(self) -> dict:
        """As `check --json` writes it: file, line, col, end ({line, col}, exclusive), severity,
        code, message, notes (each with its own file, line, col, end and message); positions
        are 1-based, and null for a problem with no location."""
        return {**_where(self.span), "severity": self.severity, "code": self.code, "message": self.message,
                "notes": [{**_where(s), "message": m} for s, m in self.notes]}


def _where(span: Span | None) -> dict:
    if span is None:
        return {"file": None, "line": None, "col": None, "end": None}
    end = {"line": span.end_line, "col": span.end_col} if span.end_line else None
    return {"file": span.file, "line": span.line, "col": span.col, "end": end}


_COLORS = {"error": "\033[1;31m", "warning": "\033[1;35m", "note": "\033[1;36m"}
# Characters a terminal would act on (escape sequences, carriage returns, line separators):
# spec text is shown with them replaced, so a spec cannot rewrite the screen it is reported on.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_MESSAGE_MAX = 400  # characters of a message; a value quoted in it is cut in the middle
_LINE_WINDOW = 120  # characters of a long source line shown around the caret


def _visible(text: str, *, replace: str | None = None) -> str:
    """Control characters as \\xNN escapes (a message keeps its line breaks), or each as
    `replace` (a quoted line: one character each, so the caret keeps its column)."""
    if replace is not None:
        return _CONTROL.sub(replace, text)
    return "\n".join(_CONTROL.sub(_escape, line) for line in text.split("\n"))


def _escape(m: re.Match) -> str:
    code = ord(m.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _short(message: str) -> str:
    if len(message) <= _MESSAGE_MAX:
        return message
    half = _MESSAGE_MAX // 2
    return f"{message[:half]} … {message[-half:]}"


def _one(severity: str, message: str, span: Span | None, color: bool) -> str:
    sev = f"{_COLORS[severity]}{severity}\033[0m" if color else severity
    message = _visible(_short(message))
    where = _visible(str(span)) if span else None
    head = f"{where}: {sev}: {message}" if span else f"{sev}: {message}"
    if span is None:
        return head
    text = span.source_line()
    if text is None:
        return head
    # Tabs would shift the caret; expand both the same way. Other control characters show
    # as one '?' each, so the caret stays under its column.
    text = _visible(text.expandtabs(8) if "\t" in text else text, replace="?")
    raw = span.source_line() or ""
    col = len(raw[: span.col - 1].expandtabs(8))
    width = 1
    if span.end_line == span.line and span.end_col and span.end_col > span.col:
        width = len(raw[: span.end_col - 1].expandtabs(8)) - col
    start = 0
    if len(text) > _LINE_WINDOW:  # a long line: the part around the caret
        start = max(0, min(col - _LINE_WINDOW // 3, len(text) - _LINE_WINDOW))
        shown = ("…" if start else "") + text[start:start + _LINE_WINDOW] + \
            ("…" if start + _LINE_WINDOW < len(text) else "")
        col = col - start + (1 if start else 0)
        width = max(1, min(width, _LINE_WINDOW - col))
    else:
        shown = text
    return f"{head}\n    {shown}\n    {' ' * col}^{'~' * max(0, width - 1)}"


def print_diagnostics(diagnostics, stream) -> None:
    """Print diagnostics to a stream, in color when it is a terminal and NO_COLOR is unset.
    A closed pipe (`netspec check F 2>&1 | head -2`) raises BrokenPipeError marked with
    `netspec_failed` when errors were being reported, so the command still fails."""
    color = hasattr(stream, "isatty") and stream.isatty() and os.environ.get("NO_COLOR") is None
    try:
        for d in diagnostics:
            print(d.format(color=color), file=stream)
    except BrokenPipeError as e:
        e.netspec_failed = any(d.severity == "error" for d in diagnostics)
        raise


class NetspecError(Exception):
    """The root of every error netspec reports to a user: spec diagnostics, and (in
    subclasses) bad data, configs, weights, checkpoints and runs. The CLI catches this
    one class and prints `diagnostics`; anything else is an internal error.

    Built from a list of diagnostics (`str()` is the formatted report), or from a plain
    message (`str()` is the message; it is shown as `error: MESSAGE`).
    """

    def __init__(self, diagnostics: list[Diagnostic] | str):
        if isinstance(diagnostics, str):
            self.diagnostics = [Diagnostic("error", diagnostics)]
            super().__init__(diagnostics)
        else:
            self.diagnostics = list(diagnostics)
            super().__init__("\n".join(d.format() for d in self.diagnostics))

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]


class LimitError(NetspecError):
    """A limit of dsl/limits.py was broken where the work cannot go on (a loop, the layer
    count, the file size): the stage stops at once and reports it with what it found so far."""

    def __init__(self, name: str, what: str, span: Span | None):
        self.limit = name
        super().__init__([Diagnostic("error", limits.message(name, what), span)])


class TooManyErrors(NetspecError):
    """Raised by `Diagnostics` when the `errors` limit is reached: the stage stops looking
    for more (its diagnostics already end with a note saying so). Callers that collect
    catch it and report what was found."""

    def __init__(self, diagnostics: list[Diagnostic]):
        super().__init__(diagnostics)


class Reporter(Protocol):
    """Where a stage reports problems: `Diagnostics`, or a view of it that adds notes."""

    def error(self, message: str, span: Span | None, notes=()) -> Diagnostic: ...

    def warning(self, message: str, span: Span | None, notes=(), *, code: str | None = None,
                severity: str = "warning") -> Diagnostic: ...


class Diagnostics:
    """Collects problems during one pass; `raise_if_errors()` ends the pass."""

    def __init__(self) -> None:
        self.items: list[Diagnostic] = []
        self._seen: set[tuple] = set()
        self.stopped = False  # the `errors` limit was reached: nothing more is collected
        self._errors = 0
        self._dropped_warnings = 0

    def error(self, message: str, span: Span | None, notes=()) -> Diagnostic:
        return self._add("error", message, span, notes)

    def warning(self, message: str, span: Span | None, notes=(), *, code: str | None = None,
                severity: str = "warning") -> Diagnostic:
        """A problem that does not stop the build; a lint gives its code (and may be a note)."""
        return self._add(severity, message, span, notes, code)

    def _add(self, severity, message, span, notes, code=None) -> Diagnostic:
        d = Diagnostic(severity, message, span, list(notes), code)
        key = (severity, message, span)
        if key in self._seen:  # a block instantiated twice reports once
            return d
        if severity == "error":
            if self.stopped or self._errors >= limits.get("errors"):
                self._stop()
            self._errors += 1
        elif len(self.items) - self._errors >= limits.get("errors"):
            self._dropped_warnings += 1
            return d
        self._seen.add(key)
        self.items.append(d)
        return d

    def _stop(self):
        """The errors limit is reached: say so once, then stop the stage (TooManyErrors)."""
        if not self.stopped:
            self.stopped = True
            self.items.append(Diagnostic("error", f"too many errors: stopped after the first {self._errors} "
                                                  f"{limits.how_to_raise('errors')}"))
        raise TooManyErrors(self.items)

    def with_notes(self, notes) -> Reporter:
        """A reporter adding `notes` to every problem (where the block it is in was instantiated)."""
        return _Noted(self, list(notes))

    def extend(self, other: "Diagnostics | list[Diagnostic]") -> None:
        """Add problems found elsewhere; past the errors limit the rest are left out."""
        try:
            for d in list(other.items if isinstance(other, Diagnostics) else other):
                self._add(d.severity, d.message, d.span, d.notes, d.code)
        except TooManyErrors:
            pass

    @property
    def error_count(self) -> int:
        return self._errors

    def absorb(self, err: NetspecError) -> None:
        """Take the problems of a stage that stopped (a limit, or too many errors) into this
        collection; a TooManyErrors of this collection is already in it."""
        if not (isinstance(err, TooManyErrors) and self.stopped):
            self.extend(err.diagnostics)

    @property
    def has_errors(self) -> bool:
        return self._errors > 0

    @property
    def warnings(self) -> list[Diagnostic]:
        """Everything but the errors: warnings, and the notes of informational lints."""
        out = [d for d in self.items if d.severity != "error"]
        if self._dropped_warnings:
            out.append(Diagnostic("warning", f"and {self._dropped_warnings} more warnings "
                                             f"{limits.how_to_raise('errors')}"))
        return out

    def raise_if_errors(self) -> None:
        if self.has_errors:
            self.items.sort(key=lambda d: d.severity != "error")
            raise NetspecError(self.items)


class _Noted:
    def __init__(self, diags: Diagnostics, notes: list):
        self.diags, self.notes = diags, notes

    def error(self, message: str, span: Span | None, notes=()) -> Diagnostic:
        return self.diags.error(message, span, list(notes) + self.notes)

    def warning(self, message: str, span: Span | None, notes=(), *, code: str | None = None,
                severity: str = "warning") -> Diagnostic:
        return self.diags.warning(message, span, list(notes) + self.notes, code=code, severity=severity)


def did_you_mean(name: str, candidates) -> str:
    """' (did you mean 'Linear'?)' for a near miss, else ''."""
    cands = list(candidates)
    close = difflib.get_close_matches(name, cands, n=1, cutoff=0.6)
    if not close:  # case-only mistakes ('linear' for 'Linear')
        close = [c for c in cands if c.lower() == name.lower()]
    return f" (did you mean '{close[0]}'?)" if close else ""
