"""Steps: applying a layer, a tensor op or a block to the flow (or to given inputs).

Mixed into the statement walker (dsl/body.py). Checks each call against the registry's
argument schema (arity, keywords, value types) or the block's parameters, names the layer
(`module_path`), handles init= / bias_init= / tie= / frozen=, and adds the op to the graph.
"""
from __future__ import annotations

import dataclasses

from . import ast as A
from .errors import did_you_mean
from .exprs import ERR, DimVal, format_value, has_err, is_const
from .ir import InitSpec, Op, Ref
from .loader import DefEntry, ModuleNamespace
from .tables import INITS
from .registry import COMMON_MODULE_KWARGS, REGISTRY, TYPES, LayerDef


class StepsMixin:
    def as_layer_step(self, e) -> A.Step | None:
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
        target = self.find_def(text) if len(ref) > 1 or f.id not in self.env else None
        if target is None and len(ref) == 1 and f.id not in self.env:
            ldef = REGISTRY.get(f.id)
            target = ldef if ldef is not None and ldef.is_module else None
        if target is None:
            return None
        return A.Step(None, ref, inner.args, inputs, None, e.span)

    def st_Step(self, s):
        self.apply_step(s)

    def apply_step(self, s):
        while s.cond is not None:  # `Tanh() if act == "tanh" else ReLU()`, possibly chained
            c = self.ev(s.cond)
            if has_err(c):
                return self.fail_step(s)
            if not is_const(c):
                self.diags.error("the condition of a conditional step must be known at compile time", s.cond.span)
                return self.fail_step(s)
            chosen = s if c else s.orelse
            s = dataclasses.replace(s, ref=chosen.ref, args=chosen.args, inputs=chosen.inputs,
                                    cond=None if c else chosen.cond, orelse=None if c else chosen.orelse)
        res = self.apply_plain_step(s)
        if res is None:
            self.fail_step(s)
        return res

    def fail_step(self, s):
        """After an error, names the step would bind are marked failed, not undefined."""
        for n in (s.label, s.bind):
            if n is not None:
                text = self.name_text(n)
                if text is not ERR and text not in self.block.params:
                    self.env[text] = ERR
        return None

    def apply_plain_step(self, s):
        text = s.ref_text
        head = s.ref[0]
        if len(s.ref) == 1 and s.args is None and s.inputs is None and s.label is None:
            # a bare value name switches the flow: `x` continues from x
            name = self.name_text(head)
            if name is ERR:
                return
            if name in self.env or name in self.forward_names or name == "_":
                v = self.lookup_value(name, head.span)
                if isinstance(v, Ref):
                    self.flow = v
                    if s.bind is not None:
                        self.bind_as(s.bind, v)
                    return v
                if not has_err(v):
                    self.diags.error(f"'{name}' is {v!r}, not a tensor", head.span)
                return None
        if len(s.ref) == 1:
            name = self.name_text(head)
            if name is ERR:
                return
            if name in self.env and (s.args is not None or s.inputs is not None):
                self.diags.error(f"'{name}' is a value, not a layer", head.span)
                return
            target = self.find_def(name) or REGISTRY.get(name)
        else:
            name = text
            target = self.find_def(text)
        if target is None:
            cands = [n for n, v in self.elab.program.namespaces[self.entry.module.file].names.items()
                     if isinstance(v, DefEntry)] + list(REGISTRY)
            self.diags.error(f"unknown layer '{name}'{did_you_mean(name, cands)}", head.span)
            return
        inputs = None
        if s.inputs is not None:
            inputs = [self.ev(a.value) for a in s.inputs]
            if any(has_err(v) for v in inputs):
                return
            for a, v in zip(s.inputs, inputs):
                if a.name is not None or not isinstance(v, Ref):
                    self.diags.error(f"inputs of a layer are tensors given by position, got {a.name or v!r}",
                                     a.span)
                    return
        if isinstance(target, ModuleNamespace):
            self.diags.error(f"'{name}' is an imported file; name one of its blocks: {name}.Block", head.span)
            return None
        if isinstance(target, DefEntry):
            res = self.step_block(s, name, target, inputs)
        elif target.is_module:
            res = self.step_module(s, target, inputs)
        else:
            res = self.step_function(s, target, inputs)
        if res is None or res is ERR:  # reported already; the flow stays where it was
            return None
        self.flow = res
        if s.label is not None:
            lbl = self.name_text(s.label)
            if lbl is not ERR and lbl not in self.block.params:  # parameters keep their names
                self.bind(lbl, res)
        if s.bind is not None:
            self.bind_as(s.bind, res)
        return res

    def bind_as(self, name: A.Name, v):
        n = self.name_text(name)
        if n is not ERR:
            self.bind(n, v)

    def flow_inputs(self, s, inputs, need: int, what: str):
        if inputs is not None:
            return inputs
        if need == 0:
            return []
        if self.flow is None:
            self.diags.error(f"{what} has no input: nothing flows here yet (declare an `input` first)", s.span)
            return None
        return [self.flow]

    def step_module(self, s, ldef: LayerDef, inputs):
        args = self.ev_args(s.args or (), ldef)
        if any(has_err(v) for _, v, _ in args):
            return None
        own = {a.name for a in ldef.schema}  # a layer's own `init` (RunningStat) is not the common one
        special = {k: (v, sp) for k, v, sp in args if k in COMMON_MODULE_KWARGS and k not in own}
        args = [a for a in args if a[0] not in special]
        bound = self.bind_schema(ldef, args, s.span)
        tensor_in = self.flow_inputs(s, inputs, ldef.inputs, ldef.name)
        if tensor_in is None:
            return None
        if ldef.name == "MultiheadAttention" and len(tensor_in) == 1:
            tensor_in = tensor_in * 3  # self-attention: query = key = value
        most = ldef.extra.get("max_inputs", ldef.inputs)
        if ldef.inputs and not ldef.inputs <= len(tensor_in) <= most:
            want = f"{ldef.inputs}" if most == ldef.inputs else f"{ldef.inputs} to {most}"
            self.diags.error(f"{ldef.name} takes {want} input(s), got {len(tensor_in)}", s.span)
            return None
        path = self.module_path(s.label, ldef.name, s.label.span if s.label else s.span)
        if bound is None or path is None:
            return None
        pos, kw = bound
        for spec in ldef.schema[len(pos):]:  # netspec defaults that differ from torch's (batch_first=true)
            if spec.name in ldef.extra.get("force", ()) and spec.name not in kw:
                kw[spec.name] = spec.default
        call_kw = {k: kw.pop(k) for k in ldef.extra.get("call_args", ()) if k in kw}  # forward(), not __init__
        for v in list(pos) + list(kw.values()):
            if not is_const(v):
                self.diags.error(f"arguments of {ldef.name} must be known at compile time", s.span)
                return None
        op = Op(self.new_id(path, path), "module", ldef.name, s.span, tuple(tensor_in), call_kw, path=path,
                cluster=self.cluster(), category=ldef.category, ctor_args=tuple(pos), ctor_kwargs=kw,
                flow_input=tensor_in[0].node if tensor_in and inputs is None else None, doc=s.doc,
                label=_layer_label(ldef, pos, kw))
        self.module_extras(op, special)
        return self.add_op(op)

    def module_extras(self, op: Op, special):
        for key, (v, sp) in special.items():
            if key in ("init", "bias_init"):
                spec = self.init_spec(v, sp)
                if spec is not None:
                    op.init["weight" if key == "init" else "bias"] = spec
            elif key == "frozen":
                if not isinstance(v, bool):
                    self.diags.error(f"frozen must be true or false, got {v!r}", sp)
                op.frozen = bool(v)
            elif key == "tie":
                if not isinstance(v, _LayerPath):
                    self.diags.error("tie= takes the name of a layer in this block, e.g. tie=transformer.wte", sp)
                else:
                    op.tie = (v.path, sp)
                    self.ties.append(op)

    def init_spec(self, v, span):
        if isinstance(v, InitSpec):
            spec = v
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            spec = InitSpec("constant", (v,))
        else:
            self.diags.error(f"init= takes normal(std), zeros, ones, constant(v), kaiming or xavier, got {v!r}",
                             span)
            return None
        if spec.name not in INITS:
            self.diags.error(f"unknown init '{spec.name}'{did_you_mean(spec.name, INITS)}", span)
            return None
        return spec

    def ev_args(self, args, ldef=None):
        out = []
        own = {a.name for a in ldef.schema} if ldef is not None else set()
        for a in args:
            if a.name in own:
                out.append((a.name, self.ev(a.value), a.span))
            elif a.name in ("init", "bias_init"):
                out.append((a.name, self.ev_init(a.value), a.span))
            elif a.name == "tie":
                out.append((a.name, self.ev_path(a.value), a.span))
            else:
                out.append((a.name, self.ev(a.value), a.span))
        return out

    def ev_init(self, e):
        """init=normal(0.02) names an initializer; its arguments are ordinary expressions."""
        if isinstance(e, A.Name) and len(e.parts) == 1 and e.id not in self.env:
            return InitSpec(e.id)
        if isinstance(e, A.Call) and isinstance(e.func, A.Name):
            args = [(a.name, self.ev(a.value)) for a in e.args]
            if any(has_err(v) or not is_const(v) for _, v in args):
                return ERR
            return InitSpec(e.func.id, tuple(v for k, v in args if k is None),
                            tuple(sorted((k, v) for k, v in args if k is not None)))
        return self.ev(e)

    def ev_path(self, e):
        parts = []
        while isinstance(e, A.Attr):
            parts.append(e.name)
            e = e.obj
        if isinstance(e, A.Name):
            n = self.name_text(e)
            if n is ERR:
                return ERR
            return _LayerPath(".".join([n] + parts[::-1]))
        return ERR

    def step_function(self, s, ldef: LayerDef, inputs):
        args = self.ev_args(s.args or ())
        if any(has_err(v) for _, v, _ in args):
            return None
        if ldef.factory:
            lead = []
        else:
            lead = self.flow_inputs(s, inputs, 1, ldef.name)
            if lead is None:
                return None
        all_args = [(None, v, s.span) for v in lead] + args
        if inputs is None and lead and ldef.schema[0].variadic and \
                sum(isinstance(v, Ref) for k, v, _ in args if k is None) >= 2:
            self.diags.warning(f"as a step, {ldef.name}(...) also takes the flow as its first tensor; write "
                               f"`y = {ldef.name}(...)` to combine only the tensors you list", s.span)
        label = self.name_text(s.label) if s.label is not None else None
        return self.call_function(ldef.name, all_args, s.span, id_hint=label if label is not ERR else None,
                                  flow_input=lead[0].node if lead and inputs is None else None)

    def call_function(self, name, args, span, id_hint=None, flow_input=None):
        ldef = REGISTRY[name]
        if any(has_err(v) for _, v, _ in args):
            return ERR
        bound = self.bind_schema(ldef, args, span)
        if bound is None:
            return ERR
        pos, kw = bound
        kind = "method" if ldef.target.startswith("method:") else "function"
        label = name + (_arg_text(pos[1:], kw) if pos else "")
        return self.add_call(kind, name, tuple(pos), kw, span, label=label, flow_input=flow_input,
                             id_hint=id_hint or name)

    def bind_schema(self, ldef: LayerDef, args, span):
        """Check call arguments against the registry schema; (positional, keywords) or None."""
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
            self.diags.error(f"{ldef.name} takes at most {len(schema) - (1 if ldef.kind == 'function' else 0)} "
                             f"positional argument(s) ({', '.join(shown[1:] if ldef.kind == 'function' else shown)})"
                             f", got {len(pos) - (1 if ldef.kind == 'function' else 0)}", pos[i][1])
            ok = False
        for k, v, sp in args:
            if k is None:
                continue
            if k not in names or any(a.variadic and a.name == k for a in schema):
                extra = list(COMMON_MODULE_KWARGS) if ldef.is_module else []
                self.diags.error(f"{ldef.name} has no argument '{k}'{did_you_mean(k, names + extra)}", sp)
                ok = False
            elif k in bound:
                self.diags.error(f"{ldef.name} got two values for '{k}'", sp)
                ok = False
            else:
                bound[k] = (v, sp)
        for spec in schema:
            if spec.required and spec.name not in bound:
                if ok:  # after a misspelt keyword, the missing one is its echo
                    self.diags.error(f"{ldef.name} missing required argument '{spec.name}'", span)
                ok = False
        for spec in schema:
            if spec.name not in bound:
                continue
            v, sp = bound[spec.name]
            vals = v if spec.variadic else (v,)
            for x in vals:
                if not self.check_type(ldef, spec, x, sp):
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

    def check_type(self, ldef, spec, v, span) -> bool:
        if isinstance(v, (Ref, DimVal)):
            if spec.type in ("any", "tensor", "int", "float"):
                return True
            self.diags.error(f"{ldef.name}: '{spec.name}' must be known at compile time, got a tensor", span)
            return False
        if spec.type == "tensor":
            if isinstance(v, (int, float)) and not isinstance(v, bool) and ldef.category == "merge":
                return True
            self.diags.error(f"{ldef.name}: '{spec.name}' must be a tensor, got {v!r}", span)
            return False
        if v is None and not spec.required and spec.default is None:
            return True
        check, desc = TYPES[spec.type]
        if not check(v):
            self.diags.error(f"{ldef.name}: '{spec.name}' must be {desc}, got {v!r}", span)
            return False
        return True

    def step_block(self, s, name, entry: DefEntry, inputs):
        args = self.ev_args(s.args or ())
        if any(has_err(v) for _, v, _ in args):
            return None
        entry, alias_args = self.elab.resolve(entry)
        if entry is None:
            return None
        given = {k for k, _, _ in args if k is not None}
        args = [a for a in alias_args if a[0] not in given] + args
        params = self.elab.bind_params(entry, args, s.span)
        path = self.module_path(s.label, entry.defn.name, s.label.span if s.label else s.span)
        if params is None or path is None:
            return None
        child = self.elab.instantiate(entry, params, s.span)
        if child is None:
            return None
        need = len(child.inputs)
        tensor_in = self.flow_inputs(s, inputs, need, f"{entry.defn.kind} '{name}'")
        if tensor_in is None:
            return None
        if len(tensor_in) != need:
            names = ", ".join(i.id for i in child.inputs)
            self.diags.error(f"{entry.defn.kind} '{name}' takes {need} input(s) ({names}), got {len(tensor_in)}"
                             + (f"; write {name}(...)({names})" if need > 1 else ""), s.span)
            return None
        args_text = ", ".join(format_value(v) for v in params.values())
        op = Op(self.new_id(path, path), "block", entry.defn.name, s.span, tuple(tensor_in), {}, path=path,
                cluster=self.cluster(), category="block", block=child, doc=s.doc or entry.defn.doc,
                flow_input=tensor_in[0].node if tensor_in and inputs is None else None,
                label=f"{entry.defn.name}({args_text})")
        return self.add_op(op)


class _LayerPath:
    __slots__ = ("path",)

    def __init__(self, path):
        self.path = path

    def __repr__(self):
        return self.path


def _arg_text(pos, kw) -> str:
    parts = [format_value(v) for v in pos] + [f"{k}={format_value(v)}" for k, v in kw.items()]
    return "(" + ", ".join(parts) + ")"


def _layer_label(ldef: LayerDef, pos, kw) -> str:
    shown_kw = {k: v for k, v in kw.items() if not ldef.label or k in ldef.label}
    if ldef.label:
        names = [a.name for a in ldef.schema]
        pos_named = dict(zip(names, pos))
        items = [format_value(v) for k, v in pos_named.items() if k in ldef.label]
        items += [f"{k}={format_value(v)}" for k, v in shown_kw.items()]
        return f"{ldef.name}({', '.join(items)})"
    return ldef.name + _arg_text(pos, kw)
