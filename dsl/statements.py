"""Running a block body: one plain function per statement, over an explicit `BodyState`.

`run_body(state)` runs the statements in order, threading the *flow* (the value the next
step applies to): loops unroll, `if`s choose a branch, groups name their members. At the
end it resolves forward references and `tie=`, supplies a block's default output, and
draws the graph's edges. Steps (applying a layer) are in dsl/steps.py, outputs and heads
in dsl/heads.py.
"""
from __future__ import annotations

import keyword

from . import ast as A
from . import symbolic
from .errors import did_you_mean
from .heads import head, output
from .ir import Op, Output, Ref, walk_refs
from .state import BodyState, walk
from .steps import apply_step, as_layer_step, flow_value, label_on_expression
from .tables import CONSTANTS, DEFAULT_DTYPE, DTYPES
from .values import ERR, DimVal, has_err, is_const, is_int, keyword_message


def run_body(b: BodyState) -> None:
    if b.defn.kind == "block" and not any(isinstance(s, A.Input) for s in walk(b.defn.body)):
        # a block that declares no input takes one, `x`
        op = Op("x", "input", "input", b.defn.span, category="input", dtype=DEFAULT_DTYPE, label="x")
        b.block.inputs.append(op)
        b.bind("x", b.add_op(op))
        b.flow = Ref("x")
    run(b, b.defn.body)
    finish(b)


def run(b: BodyState, stmts) -> None:
    for s in stmts:
        STATEMENTS[type(s)](b, s)


def assert_(b: BodyState, s: A.Assert) -> None:
    with symbolic.checking():  # an assert decides nothing the ejected code writes out
        c = b.ev(s.cond)
    if has_err(c):
        return
    if not is_const(c):
        b.diags.error("assert needs a compile-time condition (parameters, not tensors)", s.cond.span)
    elif not c:
        msg = b.ev(s.message) if s.message is not None else "assertion failed"
        b.diags.error(str(msg), s.span)


def input_(b: BodyState, s: A.Input) -> None:
    if keyword.iskeyword(s.name):  # an input is an argument of forward()
        b.diags.error(f"'{s.name}' is a Python keyword and cannot name an input (it becomes an argument in "
                      "PyTorch)", s.span)
    if s.name in b.block.graph:
        b.diags.error(f"duplicate input '{s.name}'", s.span)
        return
    dtype = DEFAULT_DTYPE
    if s.dtype is not None:
        if s.dtype not in DTYPES:
            b.diags.error(f"unknown dtype '{s.dtype}'{did_you_mean(s.dtype, DTYPES)}", s.span)
        dtype = DTYPES.get(s.dtype, DEFAULT_DTYPE)
    dims = None if s.dims is None else tuple(_input_dim(b, s, axis, d) for axis, d in enumerate(s.dims))
    op = Op(s.name, "input", "input", s.span, category="input", dtype=dtype, dims=dims, doc=s.doc,
            label=f"{s.name}: {dtype}")
    ref = b.add_op(op)
    b.block.inputs.append(op)
    b.bind(s.name, ref)
    for axis, d in enumerate(op.dims or ()):
        if isinstance(d, tuple) and d[0] not in b.env:
            b.env[d[0]] = DimVal(s.name, axis, d[0])
    if b.flow is None:  # the flow starts at the first input; name the others to use them
        b.flow = ref


def _input_dim(b: BodyState, s: A.Input, axis: int, d: A.Dim):
    """An int, or (symbol, default or None)."""
    if d.name is not None:
        v = b.ev(d.expr)
        if v is not ERR and not (is_int(v) and v > 0):
            b.diags.error(f"default of dim '{d.name}' must be a positive integer, got {v!r}", d.expr.span)
            v = ERR
        return (d.name, None if v is ERR else v)
    e = d.expr
    if isinstance(e, A.Name) and len(e.parts) == 1 and e.id not in CONSTANTS and \
            (e.id not in b.env or isinstance(b.env[e.id], DimVal)):
        return (e.id, None)  # a symbolic dim with no default, or one shared with an earlier input
    v = b.ev(e)
    if v is ERR:
        return (f"?{axis}", None)
    if not (is_int(v) and v > 0):
        b.diags.error(f"dim {axis} of input '{s.name}' must be a positive integer, got {v!r}", e.span)
        return (f"?{axis}", None)
    return v


def assign(b: BodyState, s: A.Assign) -> None:
    layer_call = as_layer_step(b, s.expr)
    if layer_call is not None:  # `a, b = Block(8)(x, y)`: a step whose results get names
        v = apply_step(b, layer_call)
        if v is None:
            v = ERR
    else:
        v = b.ev(s.expr)
    if len(s.targets) == 1:
        name = b.name_text(s.targets[0])
        if name is ERR:
            return
        b.bind(name, v)
        if isinstance(v, Ref):
            b.flow = v
        return
    names = [b.name_text(t) for t in s.targets]
    if ERR in names:
        return
    if has_err(v):
        for n in names:
            b.bind(n, ERR)
        return
    if isinstance(v, (tuple, list)):
        if len(v) != len(names):
            b.diags.error(f"cannot unpack {len(v)} values into {len(names)} names", s.span)
            return
        for n, x in zip(names, v):
            b.bind(n, x)
        return
    if not isinstance(v, Ref):
        b.diags.error(f"cannot unpack {v!r}", s.expr.span)
        return
    for i, n in enumerate(names):
        b.bind(n, b.add_call("getitem", "getitem", (v, i), {}, s.span, label=n, id_hint=n))


def flow_expr(b: BodyState, s: A.FlowExpr) -> None:
    """`a + x`, `_[:, 0]`: the tensor an expression computes continues the flow."""
    if s.label is not None:
        label_on_expression(b, s.label)
        b.bind_as(s.label, ERR)
        return
    if flow_value(b, s, b.ev(s.expr), s.expr.span) is None and s.bind is not None:
        b.bind_as(s.bind, ERR)  # failed, not undefined: one message


def merge(b: BodyState, s: A.Merge) -> None:
    if b.flow is None:
        b.diags.error(f"'{s.op}' needs a value to merge into: nothing flows here yet", s.span)
        return
    other = b.ev(s.expr)
    res = b.exprs.binop(s.op, b.flow, other, s.span, flow_input=b.flow.node)
    if isinstance(res, Ref):
        b.flow = res
        if s.bind is not None:
            b.bind_as(s.bind, res)


def residual(b: BodyState, s: A.Residual) -> None:
    if b.flow is None:
        b.diags.error("'residual' needs an input: nothing flows here yet", s.span)
        return
    start = b.flow
    run(b, s.body)
    if b.flow is start:
        b.diags.error("'residual' block is empty", s.span)
        return
    res = b.exprs.binop("+", b.flow, start, s.span, flow_input=b.flow.node)
    if isinstance(res, Ref):
        b.flow = res


def group(b: BodyState, s: A.Group) -> None:
    name = b.label_text(s.label)
    if name is ERR:
        return
    if b.counters:
        b.counters[-1] += 1
    path = ".".join(b.prefix + [name])
    if keyword_message(name):
        b.diags.error(keyword_message(name), s.label.span)
        return
    if path in b.paths:
        b.diags.error(f"duplicate layer name '{path}' (first defined at {b.paths[path]})", s.label.span)
        return
    b.paths[path] = s.span
    b.block.containers.append(path)
    b.prefix.append(name)
    b.counters.append(0)
    run(b, s.body)
    b.counters.pop()
    b.prefix.pop()
    if b.flow is not None and name not in b.block.params:  # a group's name refers to its output
        b.bind(name, b.flow)


def for_(b: BodyState, s: A.For) -> None:
    values = b.ev(s.iter)
    if has_err(values):
        return
    if not (isinstance(values, (list, tuple)) and is_const(values)):
        b.diags.error(f"a loop needs a compile-time list or range, got {values!r}", s.iter.span)
        return
    b.elab.spend_iterations(len(values), f"for over {len(values):,} items", s.iter.span)
    b.loops += 1
    for x in values:
        b.env[s.var] = x
        run(b, s.body)
    b.loops -= 1


def repeat(b: BodyState, s: A.Repeat) -> None:
    n = b.ev(s.count)
    if has_err(n):
        return
    if not (is_int(n) and n >= 0):
        b.diags.error(f"repeat needs a non-negative integer, got {n!r}", s.count.span)
        return
    # the count decides nothing ejected code writes out when it builds the members in a loop;
    # where it cannot, the file comes out different for another count (compiler/eject.py)
    if b.prefix:
        path = ".".join(b.prefix)
        b.block.repeats[path] = None if path in b.block.repeats else n
    b.elab.spend_iterations(n, f"repeat {n:,} times", s.count.span)
    b.loops += 1
    for _ in range(n):
        run(b, s.body)
    b.loops -= 1


def if_(b: BodyState, s: A.If) -> None:
    for cond, body in s.branches:
        c = b.ev(cond)
        if has_err(c):
            return
        if not is_const(c):
            b.diags.error("an `if` condition must be known at compile time (a parameter, not a tensor)", cond.span)
            return
        symbolic.decide(c)
        if c:
            run(b, body)
            return
    if s.orelse:
        run(b, s.orelse)


STATEMENTS = {
    A.Pass: lambda b, s: None,
    A.Assert: assert_,
    A.Input: input_,
    A.Assign: assign,
    A.Step: apply_step,
    A.FlowExpr: flow_expr,
    A.Merge: merge,
    A.Residual: residual,
    A.Group: group,
    A.For: for_,
    A.Repeat: repeat,
    A.If: if_,
    A.Output: output,
    A.Head: head,
}


def finish(b: BodyState) -> None:
    """After the last statement: resolve what waited for the whole body, then draw the edges."""
    for r in b.forward:
        refs = b.bindings.get(r.pending)
        if not refs:
            b.diags.error(f"undefined name '{r.pending}'"
                          f"{did_you_mean(r.pending, list(b.env) + list(CONSTANTS))}", r.span)
            r.node = None
        else:
            r.node = refs[0].node
    for op in b.ties:
        path, sp = op.tie
        if path not in b.paths or path == op.path:
            b.diags.error(f"tie={path}: no layer '{path}' in {b.defn.kind} '{b.defn.name}'"
                          f"{did_you_mean(path, [p for p in b.paths if p != op.path])}", sp)
            op.tie = None
    if not b.block.outputs and not b.declared_outputs:
        if b.defn.kind == "model":
            b.diags.error(f"model '{b.defn.name}' has no head: end it with `head NAME` "
                          "(e.g. `head logits: classify`)", b.defn.span)
        elif b.flow is not None:
            b.block.outputs.append(Output("out", b.flow, b.defn.span))
    g = b.block.graph
    for n, data in list(g.nodes(data=True)):
        op = data["op"]
        for r in list(walk_refs(op.args)) + list(walk_refs(op.kwargs)):
            if r.node is not None and r.node in g:
                g.add_edge(r.node, n, skip=(op.flow_input is not None and r.node != op.flow_input))
