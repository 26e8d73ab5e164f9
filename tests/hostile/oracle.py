"""What netspec makes of one spec text, classified: the oracle of the fuzz tests and `bench/fuzz.py`.

`run_case(text)` does what `netspec fmt` and `netspec check --all` do (load, elaborate and
check every model, infer shapes on the meta device); with `deep=True` also what `netspec
compile` and `render` do with the file's default (or first) model (the ejected source must
compile). Each command has the time budget to itself, as each would be its own run. The
outcome is one of

    ok         no error
    error      netspec's own errors, each at FILE:LINE:COL
    unlocated  one of netspec's errors has no location
    internal   any other exception (a bug: a traceback would reach the user)
    hang       a command over the time budget (SIGALRM; the main thread only)
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


def _commands(text: str, name: str, deep: bool):
    """The commands a user could run on the text, each a function (each gets the time budget
    on its own, as each would be its own run of netspec)."""
    from netspec.compiler.builder import analyze
    from netspec.dsl.format import format_source
    from netspec.dsl.frontend import check_models
    from netspec.dsl.loader import load

    def fmt():  # `netspec fmt`: reports, never raises
        result = format_source(text, name)
        if result.diagnostics:
            _located(result.diagnostics)

    analyses = {}

    def check_all():  # `netspec check --all`
        diags = Diagnostics()
        try:
            program = load(text, file=name, diags=diags)
            check_models(program, program.models(), diags)
        except TooManyErrors:
            pass
        diags.raise_if_errors()
        models = program.models()
        for d in models:
            analyses[d.name] = analyze(text, d.name, file=name)
        if models:
            analyses[None] = next((m for m in models if m.default), models[0]).name

    def compile_and_render():  # `netspec compile` and `netspec render ... -o x.dot` of the default model
        from netspec.compiler.eject import eject
        from netspec.dsl.render import to_dot

        model = analyses.get(None)
        if model is None:
            return
        a = analyses[model]
        compile(eject(text, model), f"<ejected {model}>", "exec")
        to_dot(a.graph, shapes={k: str(v) for k, v in a.shapes.items()}, program=a.checked.program).source

    return [fmt, check_all] + ([compile_and_render] if deep else [])


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
        for command in _commands(text, name, deep):
            with _deadline(budget):
                try:
                    command()
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
