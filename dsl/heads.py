"""Outputs and heads: what a body gives back, and what a model's heads train for.

`output NAME [= expr]` and `head NAME [= expr] [: task(args)]` become the block's
`Output`s. A head's task is a row of dsl/tasks.py:TASKS, and its arguments are checked
against that row like a layer's against its schema: keywords the task takes, values of
their kind (`weight=` a number >= 0, `target=` an input of the model, `loss=` one of the
output losses, `critic=` a model of the file).
"""
from __future__ import annotations

from . import ast as A
from .errors import Span, did_you_mean
from .ir import Output, Ref
from .state import BodyState
from .tasks import ARG_KINDS, TASKS
from .values import ERR, format_value, has_err


def output(b: BodyState, s: A.Output) -> None:
    _add_output(b, s.name, s.expr, s.span, None, {}, False, s.doc)


def head(b: BodyState, s: A.Head) -> None:
    task = TASKS.get(s.task) if s.task is not None else None
    if s.task is not None and task is None:
        b.diags.error(f"unknown task '{s.task}'{did_you_mean(s.task, TASKS)}; tasks: {', '.join(TASKS)}",
                      s.task_span)
    task_args = {}
    for a in s.task_args:
        if task is None:
            continue  # an unknown task's arguments mean nothing yet
        arg = task.arg(a.name) if a.name is not None else None
        if arg is None:
            takes = ", ".join(f"{t.name}=" for t in task.args)
            what = "keywords" if a.name is None else f"'{a.name}'{did_you_mean(a.name, [t.name for t in task.args])}"
            b.diags.error((f"task arguments are keywords: {s.task} takes {takes}" if a.name is None else
                           f"task '{s.task}' has no argument {what}; it takes {takes}"), a.span)
            continue
        v = _task_arg(b, arg, a)
        if v is not ERR:
            task_args[a.name] = v
    given = {a.name for a in s.task_args}
    for t in task.args if task is not None else ():
        if t.required and t.name not in given:
            b.diags.error(f"task '{s.task}' needs {t.name}=... ({t.doc})", s.task_span)
    _add_output(b, s.name, s.expr, s.span, s.task, task_args, True, s.doc)


def _task_arg(b: BodyState, arg, a: A.Arg):
    """The value of one task argument, checked by its kind (dsl/tasks.py:ARG_KINDS); ERR after
    reporting. Names (`target=x`, `loss=nce`, `critic="D"`) are read as written, not evaluated."""
    if arg.kind in ("input", "name"):
        name = a.value.id if isinstance(a.value, A.Name) else a.value.value if isinstance(a.value, A.String) else None
        if arg.kind == "name" and isinstance(a.value, A.Name) and b.bound(name):  # `loss=loss`: a parameter
            v = b.ev(a.value)
            if has_err(v):
                return ERR
            name = v if isinstance(v, str) else None
        if arg.kind == "input":  # the input this head predicts or reproduces
            allowed = [op.id for op in b.block.inputs]
            what = f"names an input of this model ({', '.join(allowed)})"
        else:
            allowed = list(arg.choices)
            what = f"is one of {', '.join(allowed)}" if allowed else "is a name"
        if not (isinstance(name, str) and name.isidentifier()) or (allowed and name not in allowed):
            got = "" if arg.kind == "input" or name is None else f", got {name!r}"
            b.diags.error(f"{arg.name}= {what}{got}" + (did_you_mean(str(name), allowed) if allowed else ""),
                          a.value.span)
            return ERR
        return name
    v = b.ev(a.value)
    if has_err(v):
        return ERR
    test, what = ARG_KINDS[arg.kind]
    if not test(v) or (arg.choices and v not in arg.choices):
        b.diags.error(f"head {arg.name} must be {what}, got {format_value(v)}", a.value.span)
        return ERR
    return v


def _add_output(b: BodyState, name: str, expr, span: Span, task, task_args: dict, is_head: bool, doc) -> None:
    b.declared_outputs = True
    v = b.ev(expr) if expr is not None else b.flow
    if v is None:
        b.diags.error(f"'{name}': nothing flows here yet", span)
        return
    if has_err(v):
        return
    if not isinstance(v, Ref):
        b.diags.error(f"'{name}' must be a tensor, got {v!r}", span)
        return
    if any(o.name == name for o in b.block.outputs):
        b.diags.error(f"duplicate output '{name}'", span)
        return
    b.block.outputs.append(Output(name, v, span, task, task_args, is_head, doc))
