"""Binding call arguments to a registry schema: arity, keywords and value types.

The registry (dsl/registry.py) says what each layer and tensor op takes; this checks one
call against it and reports every mismatch with the span of the argument at fault.
"""
from __future__ import annotations

from .errors import Reporter, Span, did_you_mean
from .ir import Ref
from .registry import COMMON_MODULE_KWARGS, TYPES, ArgSpec, LayerDef
from .values import DimVal, format_value


def bind_schema(ldef: LayerDef, args: list, span: Span, diags: Reporter) -> tuple[tuple, dict] | None:
    """Check evaluated call arguments, (keyword or None, value, span), against the layer's
    schema: arity, keywords, value types. Returns (positional, keywords) as the callee takes
    them, or None after reporting every problem."""
    schema = ldef.schema
    names = [a.name for a in schema]
    pos = [(v, sp) for k, v, sp in args if k is None]
    ok = True
    bound: dict[str, tuple] = {}
    i = 0
    for spec in schema:
        if spec.variadic:
            bound[spec.name] = (tuple(v for v, _ in pos[i:]), pos[i][1] if i < len(pos) else span)
            i = len(pos)
            break
        if i < len(pos):
            bound[spec.name] = pos[i]
            i += 1
    if i < len(pos):
        shown = [a.name for a in schema]
        diags.error(f"{ldef.name} takes at most {len(schema) - (1 if ldef.kind == 'function' else 0)} "
                         f"positional argument(s) ({', '.join(shown[1:] if ldef.kind == 'function' else shown)})"
                         f", got {len(pos) - (1 if ldef.kind == 'function' else 0)}", pos[i][1])
        ok = False
    for k, v, sp in args:
        if k is None:
            continue
        if k not in names or any(a.variadic and a.name == k for a in schema):
            extra = list(COMMON_MODULE_KWARGS) if ldef.is_module else []
            diags.error(f"{ldef.name} has no argument '{k}'{did_you_mean(k, names + extra)}", sp)
            ok = False
        elif k in bound:
            diags.error(f"{ldef.name} got two values for '{k}'", sp)
            ok = False
        else:
            bound[k] = (v, sp)
    for spec in schema:
        if spec.required and spec.name not in bound:
            if ok:  # after a misspelt keyword, the missing one is its echo
                diags.error(f"{ldef.name} missing required argument '{spec.name}'", span)
            ok = False
    for spec in schema:
        if spec.name not in bound:
            continue
        v, sp = bound[spec.name]
        vals = v if spec.variadic else (v,)
        for x in vals:
            if not check_type(ldef, spec, x, sp, diags):
                ok = False
    if not ok:
        return None
    out_pos, out_kw = [], {}
    positional_done = False
    for spec in schema:
        if spec.name not in bound:
            positional_done = True
            continue
        v, _ = bound[spec.name]
        kw_given = any(k == spec.name for k, _, _ in args)
        if spec.variadic:
            out_pos.extend(v)
        elif kw_given or positional_done:
            out_kw[spec.name] = v
            positional_done = True
        else:
            out_pos.append(v)
    return tuple(out_pos), out_kw


def check_type(ldef: LayerDef, spec: ArgSpec, v, span: Span, diags: Reporter) -> bool:
    """Whether one value fits its argument's type (reported when not)."""
    if isinstance(v, (Ref, DimVal)):
        if spec.type in ("any", "tensor", "int", "float"):
            return True
        diags.error(f"{ldef.name}: '{spec.name}' must be known at compile time, got a tensor", span)
        return False
    if spec.type == "tensor":
        if isinstance(v, (int, float)) and not isinstance(v, bool) and ldef.category == "merge":
            return True
        diags.error(f"{ldef.name}: '{spec.name}' must be a tensor, got {v!r}", span)
        return False
    if v is None and not spec.required and spec.default is None:
        return True
    check, desc = TYPES[spec.type]
    if not check(v):
        diags.error(f"{ldef.name}: '{spec.name}' must be {desc}, got {v!r}", span)
        return False
    choices = ldef.extra.get("choices", {}).get(spec.name)
    if choices is not None and v not in choices:
        shown = ", ".join(format_value(c) for c in choices)
        diags.error(f"{ldef.name}: '{spec.name}' must be one of {shown}, got {format_value(v)}"
                    f"{did_you_mean(str(v), choices)}", span)
        return False
    return True
