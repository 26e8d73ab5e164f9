"""Steps: applying a layer, a tensor op or a block to the flow (or to given inputs).

Plain functions over a `BodyState` (dsl/state.py). Each call is checked against the
registry's argument schema (dsl/schema.py) or the block's parameters; the layer gets its
module path; init= / bias_init= / tie= / frozen= are taken apart (frozen= on blocks too); the
op joins the graph.
Nested blocks are elaborated through the state's `Instantiator`.
"""
from __future__ import annotations

import dataclasses

from . import ast as A
from .errors import did_you_mean
from .ir import InitSpec, Op, Ref
from .loader import DefEntry, ModuleNamespace
from .registry import COMMON_BLOCK_KWARGS, COMMON_MODULE_KWARGS, REGISTRY, LayerDef
from .schema import bind_schema
from .state import BodyState
from .tables import INITS
from .tasks import TASKS
from .values import ERR, LayerPath, format_args, format_value, has_err, is_const


def as_layer_step(b: BodyState, e) -> A.Step | None:
    """`Layer(args)(inputs)` or `Layer(args)` on the right of `=`, as a Step; else None."""
    if not isinstance(e, A.Call):
        return None
    inner, inputs = (e.func, e.args) if isinstance(e.func, A.Call) else (e, None)
    if not isinstance(inner.func, (A.Name, A.Attr)):
        return None
    parts, f = [], inner.func
    while isinstance(f, A.Attr):
        parts.append(A.Name(f.name, (f.name,), f.span))
        f = f.obj
    if not isinstance(f, A.Name):
        return None
    ref = tuple([f] + parts[::-1])
    text = ".".join(n.id for n in ref)
    # a call names a layer or block: labels and values never hide one (no value is callable)
    target = b.find_def(text)
    if target is None and len(ref) == 1:
        ldef = REGISTRY.get(f.id)
        target = ldef if ldef is not None and ldef.is_module else None
    if target is None:
        return None
    return A.Step(None, ref, inner.args, inputs, None, e.span)


def apply_step(b: BodyState, s: A.Step):
    """Apply a step; its result (the new flow), or None after reporting why not."""
    while s.cond is not None:  # `Tanh() if act == "tanh" else ReLU()`, possibly chained
        c = b.ev(s.cond)
        if has_err(c):
            return _fail(b, s)
        if not is_const(c):
            b.diags.error("the condition of a conditional step must be known at compile time", s.cond.span)
            return _fail(b, s)
        chosen = s if c else s.orelse
        s = dataclasses.replace(s, ref=chosen.ref, args=chosen.args, inputs=chosen.inputs,
                                cond=None if c else chosen.cond, orelse=None if c else chosen.orelse)
    res = _apply(b, s)
    if res is None:
        _fail(b, s)
    return res


def _fail(b: BodyState, s: A.Step) -> None:
    """After an error, names the step would bind are marked failed, not undefined."""
    for n in (s.label, s.bind):
        if n is not None:
            text = (b.label_text(n) if n is s.label else b.name_text(n))
            if text is not ERR and text not in b.block.params:
                b.env[text] = ERR
    return None


def _apply(b: BodyState, s: A.Step):
    head = s.ref[0]
    if len(s.ref) == 1 and s.args is None and s.inputs is None and s.label is None:
        # a bare value name switches the flow: `x` continues from x
        name = b.name_text(head)
        if name is ERR:
            return None
        if name in b.env or name in b.forward_names or name == "_":
            v = b.lookup(name, head.span)
            if isinstance(v, Ref):
                b.flow = v
                if s.bind is not None:
                    b.bind_as(s.bind, v)
                return v
            if not has_err(v):
                b.diags.error(f"'{name}' is {v!r}, not a tensor", head.span)
            return None
    if len(s.ref) == 1:
        name = b.name_text(head)
        if name is ERR:
            return None
        # layer types and values live apart: a label `LayerNorm: LayerNorm(d)` hides no type
        target = b.find_def(name) or REGISTRY.get(name)
        if target is None and name in b.env and (s.args is not None or s.inputs is not None):
            b.diags.error(f"'{name}' is a value, not a layer", head.span)
            return None
    else:
        name = s.ref_text
        target = b.find_def(name)
        first = b.name_text(head)
        if target is None and first is not ERR and (b.bound(first) or first == "_" or first in b.forward_names):
            if s.label is not None:  # `y: x.view(B, T, C)`: a method call makes no layer to name
                label_on_expression(b, s.label)
                return None
            return flow_value(b, s, b.ev(step_expr(s)), s.span)  # `x.view(B, T, C)`: a method call
    if target is None:
        if name in TASKS:  # `head: classify`: a head without its name reads as a labelled step
            b.diags.error(f"'{name}' is a head task: write `head NAME: {name}`", head.span)
            return None
        cands = [n for n, v in b.elab.program.namespace(b.entry.module).names.items()
                 if isinstance(v, DefEntry)] + list(REGISTRY)
        b.diags.error(f"unknown layer '{name}'{did_you_mean(name, cands)}", head.span)
        return None
    inputs = None
    if s.inputs is not None:
        inputs = [b.ev(a.value) for a in s.inputs]
        if any(has_err(v) for v in inputs):
            return None
        state = isinstance(target, LayerDef) and target.extra.get("state_input")
        for i, (a, v) in enumerate(zip(s.inputs, inputs)):
            # a recurrent layer's initial state may be a tuple: LSTM(...)(x, (h0, c0))
            is_state = state and i == 1 and isinstance(v, tuple) and v and all(isinstance(x, Ref) for x in v)
            if a.name is not None or not (isinstance(v, Ref) or is_state):
                b.diags.error(f"inputs of a layer are tensors given by position, got {a.name or format_value(v)}",
                              a.span)
                return None
    if isinstance(target, ModuleNamespace):
        b.diags.error(f"'{name}' is an imported file; name one of its blocks: {name}.Block", head.span)
        return None
    if isinstance(target, DefEntry):
        res = _block(b, s, name, target, inputs)
    elif target.is_module:
        res = _module(b, s, target, inputs)
    else:
        res = _function(b, s, target, inputs)
    if res is None or res is ERR:  # reported already; the flow stays where it was
        return None
    b.flow = res
    if s.label is not None:
        lbl = b.label_text(s.label)
        if lbl is not ERR and lbl not in b.block.params:  # parameters keep their names
            b.bind(lbl, res)
    if s.bind is not None:
        b.bind_as(s.bind, res)
    return res


def step_expr(s: A.Step):
    """A step written `value.method(args)` as the expression it is."""
    e = s.ref[0]
    for n in s.ref[1:]:
        e = A.Attr(e, n.id, n.span)
    for args in (s.args, s.inputs):
        if args is not None:
            e = A.Call(e, args, s.span)
    return e


def label_on_expression(b: BodyState, label: A.Name) -> None:
    b.diags.error("a label names a layer, and this line computes an expression: name its value "
                  f"with `{label.id} = ...`", label.span)


def flow_value(b: BodyState, s, v, span):
    """The value of an expression written as a step: a tensor continues the flow (and gets
    the step's `as` name); anything else is reported. None after an error."""
    if has_err(v):
        return None
    if not isinstance(v, Ref):
        b.diags.error(f"this line computes {format_value(v)}, not a tensor: name a constant with "
                      "`name = ...`", span)
        return None
    b.flow = v
    if s.bind is not None:
        b.bind_as(s.bind, v)
    return v


def _flow_inputs(b: BodyState, s: A.Step, inputs, need: int, what: str):
    if inputs is not None:
        return inputs
    if need == 0:
        return []
    if b.flow is None:
        b.diags.error(f"{what} has no input: nothing flows here yet (declare an `input` first)", s.span)
        return None
    return [b.flow]


def _module(b: BodyState, s: A.Step, ldef: LayerDef, inputs):
    own = frozenset(a.name for a in ldef.schema)  # a layer's own `init` (RunningStat) is not the common one
    args = b.exprs.ev_args(s.args or (), own)
    if any(has_err(v) for _, v, _ in args):
        return None
    special = {k: (v, sp) for k, v, sp in args if k in COMMON_MODULE_KWARGS and k not in own}
    args = [a for a in args if a[0] not in special]
    path = b.module_path(s.label, ldef.name, s.label.span if s.label else s.span)
    bound = bind_schema(ldef, args, s.span, b.layer_reporter(path))
    tensor_in = _flow_inputs(b, s, inputs, ldef.inputs, ldef.name)
    if tensor_in is None:
        return None
    if ldef.name == "MultiheadAttention" and len(tensor_in) == 1:
        tensor_in = tensor_in * 3  # self-attention: query = key = value
    most = ldef.extra.get("max_inputs", ldef.inputs)
    if ldef.inputs and not ldef.inputs <= len(tensor_in) <= most:
        want = f"{ldef.inputs}" if most == ldef.inputs else f"{ldef.inputs} to {most}"
        b.diags.error(f"{ldef.name} takes {want} input(s), got {len(tensor_in)}", s.span)
        return None
    if bound is None or path is None:
        return None
    pos, kw = bound
    for spec in ldef.schema[len(pos):]:  # netspec defaults that differ from torch's (batch_first=true)
        if spec.name in ldef.extra.get("force", ()) and spec.name not in kw:
            kw[spec.name] = spec.default
    call_kw = {k: kw.pop(k) for k in ldef.extra.get("call_args", ()) if k in kw}  # forward(), not __init__
    options = {k: kw.pop(k) for k in ldef.extra.get("options", ()) if k in kw}  # netspec's, not torch's
    for v in list(pos) + list(kw.values()):
        if not is_const(v):
            b.diags.error(f"arguments of {ldef.name} must be known at compile time", s.span)
            return None
    op = Op(b.new_id(path, path), "module", ldef.name, s.span, tuple(tensor_in), call_kw, path=path,
            cluster=b.cluster(), category=ldef.category, ctor_args=tuple(pos), ctor_kwargs=kw,
            flow_input=tensor_in[0].node if tensor_in and inputs is None else None, doc=s.doc,
            label=_layer_label(ldef, pos, dict(kw, **options)), options=options)
    _module_extras(b, op, special)
    return b.add_op(op)


def _module_extras(b: BodyState, op: Op, special: dict) -> None:
    """init= / bias_init= / frozen= / tie=: what every module with weights accepts."""
    for key, (v, sp) in special.items():
        if key in ("init", "bias_init"):
            spec = _init_spec(b, v, sp)
            if spec is not None:
                op.init["weight" if key == "init" else "bias"] = spec
        elif key == "frozen":
            _frozen(b, op, v, sp)
        elif key == "tie":
            if not isinstance(v, LayerPath):
                b.diags.error("tie= takes the name of a layer in this block, e.g. tie=transformer.wte", sp)
            else:
                op.tie = (v.path, sp)
                b.ties.append(op)


def _frozen(b: BodyState, op: Op, v, span) -> None:
    if not isinstance(v, bool):
        b.diags.error(f"frozen must be true or false, got {format_value(v)}", span)
    op.frozen = v is True


def _init_spec(b: BodyState, v, span) -> InitSpec | None:
    if isinstance(v, InitSpec):
        spec = v
    elif isinstance(v, (int, float)) and not isinstance(v, bool):
        spec = InitSpec("constant", (v,))
    else:
        b.diags.error(f"init= takes normal(std), zeros, ones, constant(v), kaiming or xavier, got {v!r}", span)
        return None
    if spec.name not in INITS:
        b.diags.error(f"unknown init '{spec.name}'{did_you_mean(spec.name, INITS)}", span)
        return None
    return spec


def _function(b: BodyState, s: A.Step, ldef: LayerDef, inputs):
    args = b.exprs.ev_args(s.args or ())
    if any(has_err(v) for _, v, _ in args):
        return None
    if ldef.factory:
        lead = []
    else:
        lead = _flow_inputs(b, s, inputs, 1, ldef.name)
        if lead is None:
            return None
    all_args = [(None, v, s.span) for v in lead] + args
    if inputs is None and lead and ldef.schema[0].variadic and \
            sum(isinstance(v, Ref) for k, v, _ in args if k is None) >= 2:
        b.diags.warning(f"as a step, {ldef.name}(...) also takes the flow as its first tensor; write "
                        f"`y = {ldef.name}(...)` to combine only the tensors you list", s.span)
    label = b.label_text(s.label) if s.label is not None else None
    return b.call_function(ldef.name, all_args, s.span, id_hint=label if label is not ERR else None,
                           flow_input=lead[0].node if lead and inputs is None else None)


def _block(b: BodyState, s: A.Step, name: str, entry: DefEntry, inputs):
    args = b.exprs.ev_args(s.args or ())
    if any(has_err(v) for _, v, _ in args):
        return None
    entry, alias_args = b.elab.resolve(entry)
    if entry is None:
        return None
    own = {p.name for p in entry.defn.params}
    special = {k: (v, sp) for k, v, sp in args if k in COMMON_BLOCK_KWARGS and k not in own}
    args = [a for a in args if a[0] not in special]
    given = {k for k, _, _ in args if k is not None}
    args = [a for a in alias_args if a[0] not in given] + args
    params = b.elab.bind_params(entry, args, s.span)
    path = b.module_path(s.label, entry.defn.name, s.label.span if s.label else s.span)
    if params is None or path is None:
        return None
    child = b.elab.instantiate(entry, params, s.span)
    if child is None:
        return None
    need = len(child.inputs)
    tensor_in = _flow_inputs(b, s, inputs, need, f"{entry.defn.kind} '{name}'")
    if tensor_in is None:
        return None
    if len(tensor_in) != need:
        names = ", ".join(i.id for i in child.inputs)
        b.diags.error(f"{entry.defn.kind} '{name}' takes {need} input(s) ({names}), got {len(tensor_in)}"
                      + (f"; write {name}(...)({names})" if need > 1 else ""), s.span)
        return None
    args_text = ", ".join(format_value(v) for v in params.values())
    op = Op(b.new_id(path, path), "block", entry.defn.name, s.span, tuple(tensor_in), {}, path=path,
            cluster=b.cluster(), category="block", block=child, block_args=params, doc=s.doc or entry.defn.doc,
            flow_input=tensor_in[0].node if tensor_in and inputs is None else None,
            label=f"{entry.defn.name}({args_text})")
    if "frozen" in special:
        _frozen(b, op, *special["frozen"])
    return b.add_op(op)


def _layer_label(ldef: LayerDef, pos, kw) -> str:
    shown_kw = {k: v for k, v in kw.items() if not ldef.label or k in ldef.label}
    if ldef.label:
        names = [a.name for a in ldef.schema]
        pos_named = dict(zip(names, pos))
        items = [format_value(v) for k, v in pos_named.items() if k in ldef.label]
        items += [f"{k}={format_value(v)}" for k, v in shown_kw.items()]
        return f"{ldef.name}({', '.join(items)})"
    return ldef.name + format_args(pos, kw)
