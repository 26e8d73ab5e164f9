"""The statement walker: runs one definition's body and fills its BlockGraph.

Names: a labelled layer (`c_attn: Linear(...)`) gets that name as its module path;
inside a named group members are numbered like nn.Sequential (`downsample.0`);
elsewhere anonymous layers are named after their type (`relu`, `relu_1`).
Values: names rebind like Python; a name used before any binding refers forward to
its first binding (which is how cycles can arise, and are reported).
"""
from __future__ import annotations

from collections import Counter

from . import ast as A
from .errors import Span, did_you_mean
from .exprs import CONSTANTS, ERR, DimVal, ExprEvaluator, has_err, is_const
from .ir import BlockGraph, InitSpec, Op, Output, Ref, walk_refs
from .loader import DefEntry, ModuleNamespace
from .registry import COMMON_MODULE_KWARGS, REGISTRY, TYPES, LayerDef


def _static_names(stmts, out):
    """Names bound anywhere in a body (without `{}` holes): targets of forward references."""
    for s in stmts:
        if isinstance(s, A.Step):
            for n in (s.label, s.bind):
                if n is not None and len(n.parts) == 1:
                    out.add(n.id)
        elif isinstance(s, A.Assign):
            out.update(t.id for t in s.targets if len(t.parts) == 1)
        elif isinstance(s, A.Merge) and s.bind is not None and len(s.bind.parts) == 1:
            out.add(s.bind.id)
        elif isinstance(s, A.Input):
            out.add(s.name)
        elif isinstance(s, (A.Group, A.For, A.Repeat, A.Residual)):
            if isinstance(s, A.Group) and len(s.label.parts) == 1:
                out.add(s.label.id)
            _static_names(s.body, out)
        elif isinstance(s, A.If):
            for _, b in s.branches:
                _static_names(b, out)
            if s.orelse:
                _static_names(s.orelse, out)
    return out


def _walk(stmts):
    for s in stmts:
        yield s
        for b in [getattr(s, "body", None), getattr(s, "orelse", None)] + \
                 [b for _, b in getattr(s, "branches", ())]:
            if isinstance(b, tuple):
                yield from _walk(b)


def _labels(stmts, out):
    for s in stmts:
        if isinstance(s, A.Step) and s.label is not None:
            out.add(s.label.id)
        for b in [getattr(s, "body", None), getattr(s, "orelse", None)] + \
                 [b for _, b in getattr(s, "branches", ())]:
            if isinstance(b, tuple):
                _labels(b, out)
    return out


class _Body(ExprEvaluator):
    def __init__(self, elab, entry: DefEntry, block: BlockGraph):
        from .elaborate import _Diags
        self.elab = elab
        self.entry = entry
        self.defn = entry.defn
        self.block = block
        self.g = block.graph
        self.diags = _Diags(elab.diags, elab.notes())
        self.env: dict = dict(block.params)
        self.flow: Ref | None = None
        self.prefix: list[str] = []  # named groups we are inside
        self.counters: list[int] = []  # positional index per named group
        self.anon = Counter()
        self.paths: dict[str, Span] = {}
        self.forward: list[Ref] = []
        self.bindings: dict[str, list[Ref]] = {}
        self.forward_names = _static_names(self.defn.body, set())
        self.explicit = _labels(self.defn.body, set())
        self.ties: list[Op] = []
        self.errors_before = elab.diags.error_count
        self.ids: Counter = Counter()

    # ---------- driver ----------
    def run(self):
        if self.defn.kind == "block" and not any(isinstance(s, A.Input) for s in _walk(self.defn.body)):
            # a block that declares no input takes one, `x`
            op = Op("x", "input", "input", self.defn.span, category="input", dtype="float32", label="x")
            self.block.inputs.append(op)
            self.bind("x", self.add_op(op))
            self.flow = Ref("x")
        for s in self.defn.body:
            self.stmt(s)
        self.finish()

    def stmt(self, s):
        getattr(self, "st_" + type(s).__name__)(s)

    def body(self, stmts):
        for s in stmts:
            self.stmt(s)

    # ---------- ops ----------
    def new_id(self, hint: str, path: str | None = None) -> str:
        hint_path = path.replace(".", "_") if path else None
        if hint_path is not None and hint_path not in self.g:
            return hint_path
        hint = hint.replace(".", "_")
        self.ids[hint] += 1
        n = self.ids[hint]
        while True:
            cand = hint if n == 1 else f"{hint}_{n - 1}"
            # op ids and layer paths share one namespace (shape tables, diagrams): keep them apart
            if cand not in self.g and (cand == hint_path or (cand not in self.paths and cand not in self.explicit)):
                return cand
            n += 1

    def add_op(self, op: Op) -> Ref:
        self.g.add_node(op.id, op=op)
        return Ref(op.id)

    def add_call(self, kind, target, args, kwargs, span, label="", flow_input=None, category=None, id_hint=None):
        args = tuple(self.materialize(a) for a in args)
        kwargs = {k: self.materialize(v) for k, v in kwargs.items()}
        if flow_input is None and isinstance(self.flow, Ref) and \
                any(r is self.flow or r.node == self.flow.node for r in walk_refs(args)):
            flow_input = self.flow.node  # the flow is the main path; other inputs are skips
        ldef = REGISTRY.get(target)
        cat = category or (ldef.category if ldef else "merge" if kind == "binop" else "op")
        op = Op(self.new_id(id_hint or target), kind, target, span, args, kwargs, cluster=self.cluster(),
                category=cat, label=label or target, flow_input=flow_input)
        return self.add_op(op)

    def materialize(self, v):
        """DimVals become size(x, i) ops the first time a runtime value is needed."""
        if isinstance(v, DimVal):
            if v.ref is None:
                v.ref = self.add_call("function", "size", (Ref(v.input), v.axis), {}, self.op_span(v.input),
                                      label=f"{v.symbol}", id_hint=v.symbol)
            return v.ref
        if isinstance(v, tuple):
            return tuple(self.materialize(x) for x in v)
        if isinstance(v, list):
            return [self.materialize(x) for x in v]
        return v

    def op_span(self, node_id):
        return self.g.nodes[node_id]["op"].span

    def cluster(self):
        return ".".join(self.prefix) or None

    # ---------- names ----------
    def bind(self, name: str, value):
        self.env[name] = value
        if isinstance(value, Ref):
            self.bindings.setdefault(name, []).append(value)

    def lookup_value(self, name, span):
        if name == "_":
            if self.flow is None:
                self.diags.error("'_' (the current value) is not defined here: nothing flows yet", span)
                return ERR
            return self.flow
        if name in self.env:
            v = self.env[name]
            return self.materialize(v) if isinstance(v, DimVal) else v
        if name in CONSTANTS:
            return CONSTANTS[name]
        if name in self.forward_names:
            r = Ref(None, name, span)
            self.forward.append(r)
            return r
        what = "layer" if self.find_def(name) or name in REGISTRY else None
        if what:
            self.diags.error(f"'{name}' is a layer, not a value: apply it as a step", span)
        else:
            self.diags.error(f"undefined name '{name}'{did_you_mean(name, list(self.env) + list(CONSTANTS))}",
                             span)
        return ERR

    def find_def(self, dotted: str):
        from .elaborate import lookup_def
        return lookup_def(self.elab.program, self.entry.module, dotted)

    def module_path(self, label: A.Name | None, type_name: str, span: Span) -> str | None:
        """The module path of a layer step, checking for duplicates."""
        if self.counters:  # inside a named group: Sequential numbering
            index = self.counters[-1]
            self.counters[-1] += 1
        if label is not None:
            local = self.name_text(label)
            if local is ERR:
                return None
        elif self.counters:
            local = str(index)
        else:
            from .elaborate import snake
            base = snake(type_name.split(".")[-1])
            n = self.anon[base]
            while True:
                local = base if n == 0 else f"{base}_{n}"
                n += 1
                if local not in self.explicit and ".".join(self.prefix + [local]) not in self.paths:
                    break
            self.anon[base] = n
        path = ".".join(self.prefix + [local])
        if path in self.paths:
            self.diags.error(f"duplicate layer name '{path}' (first defined at {self.paths[path]})", span)
            return None
        self.paths[path] = span
        return path

    # ---------- statements ----------
    def st_Pass(self, s):
        pass

    def st_Assert(self, s):
        c = self.ev(s.cond)
        if has_err(c):
            return
        if not is_const(c):
            self.diags.error("assert needs a compile-time condition (parameters, not tensors)", s.cond.span)
        elif not c:
            msg = self.ev(s.message) if s.message is not None else "assertion failed"
            self.diags.error(str(msg), s.span)

    def st_Input(self, s):
        if s.name in self.block.graph:
            self.diags.error(f"duplicate input '{s.name}'", s.span)
            return
        dtype = "float32"
        if s.dtype is not None:
            from .elaborate import DTYPES
            if s.dtype not in DTYPES:
                self.diags.error(f"unknown dtype '{s.dtype}'{did_you_mean(s.dtype, DTYPES)}", s.span)
            dtype = DTYPES.get(s.dtype, "float32")
        dims = None
        if s.dims is not None:
            dims = []
            for axis, d in enumerate(s.dims):
                dims.append(self.input_dim(s, axis, d))
        op = Op(s.name, "input", "input", s.span, category="input", dtype=dtype,
                dims=tuple(dims) if dims is not None else None, doc=s.doc,
                label=f"{s.name}: {dtype}")
        ref = self.add_op(op)
        self.block.inputs.append(op)
        self.bind(s.name, ref)
        for axis, d in enumerate(op.dims or ()):
            if isinstance(d, tuple) and d[0] not in self.env:
                self.env[d[0]] = DimVal(s.name, axis, d[0])
        if self.flow is None:  # the flow starts at the first input; name the others to use them
            self.flow = ref

    def input_dim(self, s, axis, d: A.Dim):
        """An int, or (symbol, default or None)."""
        if d.name is not None:
            v = self.ev(d.expr)
            if v is not ERR and not (isinstance(v, int) and not isinstance(v, bool) and v > 0):
                self.diags.error(f"default of dim '{d.name}' must be a positive integer, got {v!r}", d.expr.span)
                v = ERR
            return (d.name, None if v is ERR else v)
        e = d.expr
        if isinstance(e, A.Name) and len(e.parts) == 1 and e.id not in CONSTANTS and \
                (e.id not in self.env or isinstance(self.env[e.id], DimVal)):
            return (e.id, None)  # a symbolic dim with no default, or one shared with an earlier input
        v = self.ev(e)
        if v is ERR:
            return (f"?{axis}", None)
        if not (isinstance(v, int) and not isinstance(v, bool) and v > 0):
            self.diags.error(f"dim {axis} of input '{s.name}' must be a positive integer, got {v!r}", e.span)
            return (f"?{axis}", None)
        return v

    def st_Assign(self, s):
        layer_call = self.as_layer_step(s.expr)
        if layer_call is not None:  # `a, b = Block(8)(x, y)`: a step whose results get names
            v = self.apply_step(layer_call)
            if v is None:
                v = ERR
        else:
            v = self.ev(s.expr)
        if len(s.targets) == 1:
            name = self.name_text(s.targets[0])
            if name is ERR:
                return
            self.bind(name, v)
            if isinstance(v, Ref):
                self.flow = v
            return
        names = [self.name_text(t) for t in s.targets]
        if ERR in names:
            return
        if has_err(v):
            for n in names:
                self.bind(n, ERR)
            return
        if isinstance(v, (tuple, list)):
            if len(v) != len(names):
                self.diags.error(f"cannot unpack {len(v)} values into {len(names)} names", s.span)
                return
            for n, x in zip(names, v):
                self.bind(n, x)
            return
        if not isinstance(v, Ref):
            self.diags.error(f"cannot unpack {v!r}", s.expr.span)
            return
        for i, n in enumerate(names):
            self.bind(n, self.add_call("getitem", "getitem", (v, i), {}, s.span, label=n, id_hint=n))

    def st_Merge(self, s):
        if self.flow is None:
            self.diags.error(f"'{s.op}' needs a value to merge into: nothing flows here yet", s.span)
            return
        other = self.ev(s.expr)
        res = self.binop(s.op, self.flow, other, s.span, flow_input=self.flow.node)
        if isinstance(res, Ref):
            self.flow = res
            if s.bind is not None:
                self.bind_as(s.bind, res)

    def st_Residual(self, s):
        if self.flow is None:
            self.diags.error("'residual' needs an input: nothing flows here yet", s.span)
            return
        start = self.flow
        self.body(s.body)
        if self.flow is start:
            self.diags.error("'residual' block is empty", s.span)
            return
        res = self.binop("+", self.flow, start, s.span, flow_input=self.flow.node)
        if isinstance(res, Ref):
            self.flow = res

    def st_Group(self, s):
        name = self.name_text(s.label)
        if name is ERR:
            return
        if self.counters:
            self.counters[-1] += 1
        path = ".".join(self.prefix + [name])
        if path in self.paths:
            self.diags.error(f"duplicate layer name '{path}' (first defined at {self.paths[path]})", s.label.span)
            return
        self.paths[path] = s.span
        self.block.containers.append(path)
        self.prefix.append(name)
        self.counters.append(0)
        self.body(s.body)
        self.counters.pop()
        self.prefix.pop()
        if self.flow is not None and name not in self.block.params:  # a group's name refers to its output
            self.bind(name, self.flow)

    def loop_values(self, v, span):
        if has_err(v):
            return []
        if isinstance(v, (list, tuple)) and is_const(v):
            return list(v)
        self.diags.error(f"a loop needs a compile-time list or range, got {v!r}", span)
        return []

    def st_For(self, s):
        for x in self.loop_values(self.ev(s.iter), s.iter.span):
            self.env[s.var] = x
            self.body(s.body)

    def st_Repeat(self, s):
        n = self.ev(s.count)
        if has_err(n):
            return
        if not (isinstance(n, int) and not isinstance(n, bool) and n >= 0):
            self.diags.error(f"repeat needs a non-negative integer, got {n!r}", s.count.span)
            return
        for _ in range(n):
            self.body(s.body)

    def st_If(self, s):
        for cond, body in s.branches:
            c = self.ev(cond)
            if has_err(c):
                return
            if not is_const(c):
                self.diags.error("an `if` condition must be known at compile time (a parameter, not a tensor)",
                                 cond.span)
                return
            if c:
                self.body(body)
                return
        if s.orelse:
            self.body(s.orelse)

    def st_Output(self, s):
        self.output(s.name, s.expr, s.span, None, {}, False, s.doc)

    def st_Head(self, s):
        from .elaborate import TASKS
        task_args = {}
        for a in s.task_args:
            if a.name == "target":  # the input this head reproduces, by name
                tname = a.value.id if isinstance(a.value, A.Name) else a.value.value \
                    if isinstance(a.value, A.String) else None
                inputs = [op.id for op in self.block.inputs]
                if tname not in inputs:
                    self.diags.error(f"target= names an input of this model ({', '.join(inputs)})"
                                     + did_you_mean(str(tname), inputs), a.value.span)
                else:
                    task_args["target"] = tname
                continue
            v = self.ev(a.value)
            if a.name is None:
                self.diags.error("task arguments are keywords: weight=..., target=...", a.span)
            elif not has_err(v):
                task_args[a.name] = v
        if s.task is not None and s.task not in TASKS:
            self.diags.error(f"unknown task '{s.task}'{did_you_mean(s.task, TASKS)}; tasks: {', '.join(TASKS)}",
                             s.task_span)
        w = task_args.get("weight", 1.0)
        if not (isinstance(w, (int, float)) and not isinstance(w, bool) and w >= 0):
            self.diags.error(f"head weight must be a non-negative number, got {w!r}", s.span)
        self.output(s.name, s.expr, s.span, s.task, task_args, True, s.doc)

    def output(self, name, expr, span, task, task_args, is_head, doc):
        self.declared_outputs = True
        v = self.ev(expr) if expr is not None else self.flow
        if v is None:
            self.diags.error(f"'{name}': nothing flows here yet", span)
            return
        if has_err(v):
            return
        if not isinstance(v, Ref):
            self.diags.error(f"'{name}' must be a tensor, got {v!r}", span)
            return
        if any(o.name == name for o in self.block.outputs):
            self.diags.error(f"duplicate output '{name}'", span)
            return
        self.block.outputs.append(Output(name, v, span, task, task_args, is_head, doc))

    # ---------- steps ----------
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
            import dataclasses
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
                elif not has_err(v):
                    self.diags.error(f"'{name}' is {v!r}, not a tensor", head.span)
                return
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
        if res is None:
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
        from .elaborate import INIT_NAMES
        if isinstance(v, InitSpec):
            spec = v
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            spec = InitSpec("constant", (v,))
        else:
            self.diags.error(f"init= takes normal(std), zeros, ones, constant(v), kaiming or xavier, got {v!r}",
                             span)
            return None
        if spec.name not in INIT_NAMES:
            self.diags.error(f"unknown init '{spec.name}'{did_you_mean(spec.name, INIT_NAMES)}", span)
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
        args_text = ", ".join(_fmt(v) for v in params.values())
        op = Op(self.new_id(path, path), "block", entry.defn.name, s.span, tuple(tensor_in), {}, path=path,
                cluster=self.cluster(), category="block", block=child, doc=s.doc or entry.defn.doc,
                flow_input=tensor_in[0].node if tensor_in and inputs is None else None,
                label=f"{entry.defn.name}({args_text})")
        return self.add_op(op)

    # ---------- end of body ----------
    def finish(self):
        for r in self.forward:
            refs = self.bindings.get(r.pending)
            if not refs:
                self.diags.error(f"undefined name '{r.pending}'"
                                 f"{did_you_mean(r.pending, list(self.env) + list(CONSTANTS))}", r.span)
                r.node = None
            else:
                r.node = refs[0].node
        for op in self.ties:
            path, sp = op.tie
            if path not in self.paths or path == op.path:
                self.diags.error(f"tie={path}: no layer '{path}' in {self.defn.kind} '{self.defn.name}'"
                                 f"{did_you_mean(path, [p for p in self.paths if p != op.path])}", sp)
                op.tie = None
        if not self.block.outputs and not getattr(self, "declared_outputs", False):
            if self.defn.kind == "model":
                self.diags.error(f"model '{self.defn.name}' has no head: end it with `head NAME` "
                                 "(e.g. `head logits: classify`)", self.defn.span)
            elif self.flow is not None:
                self.block.outputs.append(Output("out", self.flow, self.defn.span))
        # edges, now that every reference is resolved
        for n, data in list(self.g.nodes(data=True)):
            op = data["op"]
            for r in list(walk_refs(op.args)) + list(walk_refs(op.kwargs)):
                if r.node is not None and r.node in self.g:
                    self.g.add_edge(r.node, n, skip=(op.flow_input is not None and r.node != op.flow_input))
        from .checks import check_block
        check_block(self.block, self.diags, errors_so_far=self.errors_before != self.elab.diags.error_count)


class _LayerPath:
    __slots__ = ("path",)

    def __init__(self, path):
        self.path = path

    def __repr__(self):
        return self.path


def _fmt(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, tuple):
        return "(" + ", ".join(_fmt(x) for x in v) + ")"
    if isinstance(v, list):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    if isinstance(v, Ref):
        return v.node or "?"
    return str(v)


def _arg_text(pos, kw) -> str:
    parts = [_fmt(v) for v in pos] + [f"{k}={_fmt(v)}" for k, v in kw.items()]
    return "(" + ", ".join(parts) + ")"


def _layer_label(ldef: LayerDef, pos, kw) -> str:
    shown_kw = {k: v for k, v in kw.items() if not ldef.label or k in ldef.label}
    if ldef.label:
        names = [a.name for a in ldef.schema]
        pos_named = dict(zip(names, pos))
        items = [_fmt(v) for k, v in pos_named.items() if k in ldef.label]
        items += [f"{k}={_fmt(v)}" for k, v in shown_kw.items()]
        return f"{ldef.name}({', '.join(items)})"
    return ldef.name + _arg_text(pos, kw)
