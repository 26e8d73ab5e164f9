"""What netspec makes of one spec text, classified: the oracle of the fuzz tests and `bench/fuzz.py`.

`run_case(text)` does what `netspec check --all` does (load, elaborate and check every
model, infer shapes on the meta device), then `netspec fmt`; with `deep=True` it also
ejects the file's default (or first) model, compiles the ejected source and writes its DOT. The
outcome is one of

    ok         no error
    error      netspec's own errors, each at FILE:LINE:COL
    unlocated  one of netspec's errors has no location
    internal   any other exception (a bug: a traceback would reach the user)
    hang       over the time budget (SIGALRM; the main thread only)
    memory     MemoryError (an address-space limit set by the caller was reached)
"""
from __future__ import annotations

import signal
import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass

from netspec.dsl.errors import Diagnostics, NetspecError, TooManyErrors

KINDS = ("ok", "error", "unlocated", "internal", "hang", "memory")
# Errors about the whole run rather than a place in the spec: the cap on errors.
_SUMMARIES = ("too many errors: stopped after the first",)


@dataclass
class Outcome:
    kind: str
    detail: str  # the first error, or the traceback's last lines
    seconds: float


class _Timeout(BaseException):  # not an Exception: nothing in netspec may catch it
    pass


@contextmanager
def _deadline(seconds: float):
    if seconds <= 0 or not hasattr(signal, "SIGALRM"):
        yield
        return

    def ring(signum, frame):
        raise _Timeout()

    old = signal.signal(signal.SIGALRM, ring)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _check(text: str, name: str, deep: bool) -> None:
    from netspec.compiler.builder import analyze
    from netspec.dsl.format import format_source
    from netspec.dsl.frontend import check_models
    from netspec.dsl.loader import load

    result = format_source(text, name)  # fmt reports, never raises
    if result.diagnostics:
        _located(result.diagnostics)
    diags = Diagnostics()
    try:
        program = load(text, file=name, diags=diags)
        check_models(program, program.models(), diags)
    except TooManyErrors:
        pass
    diags.raise_if_errors()
    models = program.models()
    for d in models:
        a = analyze(text, d.name, file=name)
        if deep and d is (next((m for m in models if m.default), models[0])):  # one model: one command's work
            from netspec.compiler.eject import eject
            from netspec.dsl.render import to_dot

            compile(eject(text, d.name), f"<ejected {d.name}>", "exec")
            to_dot(a.graph, shapes={k: str(v) for k, v in a.shapes.items()}, program=a.checked.program).source


def _located(diagnostics) -> None:
    """Raise the errors when they are all located (the outcome is `error`), else say which is not."""
    for d in diagnostics:
        if d.severity == "error" and d.span is None and not d.message.startswith(_SUMMARIES):
            raise _Unlocated(d.message)
    raise NetspecError(diagnostics)


class _Unlocated(Exception):
    pass


def run_case(text: str, name: str = "fuzz.nn", *, deep: bool = False, budget: float = 10.0) -> Outcome:
    """Check `text` as netspec would and classify what happened (see the module docstring)."""
    start = time.perf_counter()
    try:
        with _deadline(budget):
            try:
                _check(text, name, deep)
            except NetspecError as e:
                _located(e.diagnostics)
    except NetspecError as e:
        first = e.errors[0] if e.errors else e.diagnostics[0]
        return Outcome("error", first.format().splitlines()[0], time.perf_counter() - start)
    except _Unlocated as e:
        return Outcome("unlocated", str(e), time.perf_counter() - start)
    except _Timeout:
        return Outcome("hang", f"over {budget:g} s", time.perf_counter() - start)
    except MemoryError:
        return Outcome("memory", "MemoryError", time.perf_counter() - start)
    except Exception as e:  # noqa: BLE001 - any other exception is a bug of netspec's
        tb = traceback.format_exception(type(e), e, e.__traceback__)
        return Outcome("internal", "".join(tb[-3:]).strip(), time.perf_counter() - start)
    return Outcome("ok", "", time.perf_counter() - start)
