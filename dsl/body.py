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
from .exprs import ERR, DimVal, ExprEvaluator, has_err, is_const
from .ir import BlockGraph, Op, Output, Ref, walk_refs
from .loader import DefEntry
from .registry import REGISTRY
from .steps import StepsMixin
from .tables import CONSTANTS, DEFAULT_DTYPE, DTYPES, snake
from .tasks import TASKS


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


class _Body(StepsMixin, ExprEvaluator):
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
        self.declared_outputs = False  # an output/head statement was written (even if it failed)
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
        dtype = DEFAULT_DTYPE
        if s.dtype is not None:
            if s.dtype not in DTYPES:
                self.diags.error(f"unknown dtype '{s.dtype}'{did_you_mean(s.dtype, DTYPES)}", s.span)
            dtype = DTYPES.get(s.dtype, DEFAULT_DTYPE)
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
        if not self.block.outputs and not self.declared_outputs:
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
