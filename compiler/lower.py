"""Graph IR -> torch.fx.GraphModule.

Each BlockGraph is lowered to one fx.Graph, once; every instance of that block (all
12 of GPT-2's) is a GraphModule over the same graph with its own parameters. Module
paths from the spec become attribute paths, so state_dict keys read
`transformer.h.0.attn.c_attn.weight`. Ops keep their spec location in
`node.meta["span"]` for error messages.
"""
from __future__ import annotations

import importlib
import operator

import torch
from torch import fx, nn

from ..dsl.errors import Diagnostic, NetspecError
from ..dsl.ir import BlockGraph, InitSpec, Op, Ref, SliceVal
from ..dsl.registry import REGISTRY
from ..dsl.tables import OPERATOR_FNS, init_call

from . import ops as netspec_ops

# Layers whose forward returns (output, extra): netspec keeps the first.
_FIRST_OUTPUT = {"LSTM", "GRU", "MultiheadAttention"}
_CALL_KWARGS = {"MultiheadAttention": {"need_weights": False}}


def resolve_target(target: str):
    if target.startswith("netspec:"):
        return getattr(netspec_ops, target.split(":", 1)[1])
    mod, _, name = target.rpartition(".")
    return getattr(importlib.import_module(mod), name)


def make_layer(op: Op) -> nn.Module:
    """Construct the torch module of a `module` op (on the current default device)."""
    args, kwargs = list(op.ctor_args), dict(op.ctor_kwargs)
    if op.target == "Parameter":
        return nn.Parameter(torch.empty(*args))
    return resolve_target(REGISTRY[op.target].target)(*args, **kwargs)


def apply_init(module, spec: InitSpec, name: str) -> None:
    t = module if isinstance(module, nn.Parameter) else getattr(module, name, None)
    if t is None:
        # bias_init with bias=false is fine (specs pass bias=bias through); a missing weight is not
        if spec.name == "default" or name == "bias":
            return
        raise ValueError(f"{type(module).__name__} has no `{name}` to initialize")
    call = init_call(spec)
    if call is not None:
        fn, args, kwargs = call
        with torch.no_grad():
            getattr(nn.init, fn)(t, *args, **kwargs)


class _GraphCache:
    """One fx.Graph per BlockGraph object (identical instantiations share the object)."""

    def __init__(self):
        self.graphs: dict[int, fx.Graph] = {}


def _set_path(root: nn.Module, path: str, value) -> None:
    *parents, last = path.split(".")
    cur = root
    for p in parents:
        nxt = getattr(cur, p, None) if p in cur._modules else None
        if nxt is None:
            nxt = nn.Module()
            cur.add_module(p, nxt)
        cur = nxt
    if isinstance(value, nn.Parameter):
        cur.register_parameter(last, value)
    else:
        cur.add_module(last, value)


def build_graph(block: BlockGraph, top: bool) -> fx.Graph:
    g = fx.Graph()
    env: dict[str, fx.Node] = {}
    device_node = None

    def val(v):
        if isinstance(v, Ref):
            return env[v.node]
        if isinstance(v, SliceVal):
            return slice(val(v.lo), val(v.hi), val(v.step))
        if isinstance(v, tuple):
            return tuple(val(x) for x in v)
        if isinstance(v, list):
            return [val(x) for x in v]
        return v

    def device():
        nonlocal device_node
        if device_node is None:
            first = env[block.inputs[0].id]
            device_node = g.create_node("call_function", getattr, (first, "device"), name="device")
        return device_node

    for op in block.ops():
        args, kwargs = val(op.args), val(op.kwargs)
        name = op.id

        def node_(kind, target, a=(), k=None, _name=name):
            return g.create_node(kind, target, tuple(a), k or {}, name=_name)

        if op.kind == "input":
            node = node_("placeholder", op.id)
        elif op.kind == "module" and op.target == "Parameter":
            node = node_("get_attr", op.path)
        elif op.kind in ("module", "block"):
            call_kwargs = dict(_CALL_KWARGS.get(op.target, {}))
            if op.kind == "module" and kwargs.get("is_causal"):  # MultiheadAttention(..., is_causal=true)
                q, k = args[0], args[1]
                T = node_("call_method", "size", (q, 1), _name=op.id + "_T")
                S = node_("call_method", "size", (k, 1), _name=op.id + "_S")
                ones = node_("call_function", torch.ones, (T, S), {"dtype": torch.bool, "device": device()},
                             _name=op.id + "_ones")
                future = node_("call_method", "triu", (ones, 1), _name=op.id + "_future")  # True = masked
                call_kwargs.update(attn_mask=future, is_causal=True)
            node = node_("call_module", op.path, args, call_kwargs)
            if op.kind == "module" and op.target in _FIRST_OUTPUT:
                node.name = op.id + "_out"
                node.meta.update(span=op.span, netspec_op=op.id)  # errors inside still point at the step
                node = node_("call_function", operator.getitem, (node, 0))
        elif op.kind == "binop":
            node = node_("call_function", OPERATOR_FNS[op.target], args)
        elif op.kind == "getitem":
            node = node_("call_function", operator.getitem, args)
        elif op.kind in ("function", "method") and op.target in REGISTRY and \
                REGISTRY[op.target].target.startswith("method:"):
            node = node_("call_method", REGISTRY[op.target].target.split(":", 1)[1], args, kwargs)
        elif op.kind in ("function", "method"):
            if op.target == "neg":  # unary minus (dsl.tables.UNARY)
                node = node_("call_function", OPERATOR_FNS[op.target], args)
            else:
                ldef = REGISTRY[op.target]
                fn = resolve_target(ldef.target)
                if ldef.extra.get("pack"):
                    args = (list(args),)
                if ldef.factory and block.inputs:
                    kwargs = dict(kwargs, device=device())
                node = node_("call_function", fn, args, kwargs)
        else:  # pragma: no cover - the elaborator makes no other kinds
            raise AssertionError(op.kind)
        node.meta["span"] = op.span
        node.meta["netspec_op"] = op.id
        env[op.id] = node
    outs = block.outputs
    if len(outs) == 1:
        result = env[outs[0].ref.node]
    elif top:
        result = {o.name: env[o.ref.node] for o in outs}
    else:
        result = tuple(env[o.ref.node] for o in outs)
    g.output(result)
    g.lint()
    return g


def instantiate(block: BlockGraph, cache: _GraphCache, top: bool = True) -> fx.GraphModule:
    """A fresh GraphModule for `block`, with newly constructed layers."""
    key = id(block)
    if key not in cache.graphs:
        cache.graphs[key] = build_graph(block, top)
    ops = list(block.ops())  # one topological sort, used three times
    root = nn.Module()
    for path in block.containers:
        _set_path(root, path, nn.Module())
    for op in ops:
        if op.kind == "module":
            try:
                layer = make_layer(op)
                for name, spec in op.init.items():
                    apply_init(layer, spec, name)
            except Exception as e:  # torch's own argument checks, e.g. embed_dim % num_heads
                msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                raise NetspecError([Diagnostic("error", f"cannot build {op.label}: {msg}", op.span)]) from None
            _set_path(root, op.path, layer)
            if op.frozen:
                for p in (layer.parameters() if isinstance(layer, nn.Module) else [layer]):
                    p.requires_grad_(False)
        elif op.kind == "block":
            try:
                child = instantiate(op.block, cache, top=False)
            except NetspecError as e:
                e.diagnostics[0].notes.append((op.span, f"in {op.block.kind} '{op.block.name}' instantiated here"))
                raise NetspecError(e.diagnostics) from None
            _set_path(root, op.path, child)
    gm = fx.GraphModule(root, cache.graphs[key], class_name=block.name)
    for path in block.containers:  # keep empty-looking containers so paths exist even without call sites
        try:
            gm.get_submodule(path)
        except AttributeError:
            _set_path(gm, path, nn.Module())
    for op in ops:
        if op.kind == "module" and op.tie is not None:
            gm.get_submodule(op.path).weight = gm.get_submodule(op.tie[0]).weight
    return gm
