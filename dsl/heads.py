"""Outputs and heads: what a body gives back, and what a model's heads train for.

`output NAME [= expr]` and `head NAME [= expr] [: task(args)]` become the block's
`Output`s. A head's task is a row of dsl/tasks.py:TASKS, and its arguments are checked
against that row like a layer's against its schema: keywords the task takes, values of
their kind (`weight=` a number >= 0, `target=` an input of the model).
"""
from __future__ import annotations

from . import ast as A
from .errors import Span, did_you_mean
from .ir import Output, Ref
from .state import BodyState
from .tasks import TASKS
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
    _add_output(b, s.name, s.expr, s.span, s.task, task_args, True, s.doc)


def _task_arg(b: BodyState, arg, a: A.Arg):
    """The value of one task argument, checked by its kind; ERR after reporting."""
    if arg.kind == "input":  # the input this head predicts or reproduces, by name
        name = a.value.id if isinstance(a.value, A.Name) else a.value.value if isinstance(a.value, A.String) else None
        inputs = [op.id for op in b.block.inputs]
        if name not in inputs:
            b.diags.error(f"{arg.name}= names an input of this model ({', '.join(inputs)})"
                          + did_you_mean(str(name), inputs), a.value.span)
            return ERR
        return name
    v = b.ev(a.value)
    if has_err(v):
        return ERR
    if not (isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0):
        b.diags.error(f"head {arg.name} must be a non-negative number, got {format_value(v)}", a.value.span)
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
