"""Graph IR -> torch.fx.GraphModule.

Each BlockGraph is lowered to one fx.Graph, once; every instance of that block (all
12 of GPT-2's) is a GraphModule over the same graph with its own parameters. Module
paths from the spec become attribute paths, so state_dict keys read
`transformer.h.0.attn.c_attn.weight`. Ops keep their spec location in
`node.meta["span"]` for error messages.
"""
from __future__ import annotations

import contextlib
import importlib
import math
import operator

import torch
from torch import fx, nn

from ..dsl.errors import Diagnostic, NetspecError
from ..dsl.ir import BlockGraph, InitSpec, Op, Ref, SliceVal
from ..dsl.registry import REGISTRY

from . import ops as netspec_ops

_BINOPS = {"add": operator.add, "sub": operator.sub, "mul": operator.mul, "truediv": operator.truediv,
           "floordiv": operator.floordiv, "mod": operator.mod, "matmul": operator.matmul, "pow": operator.pow,
           "eq": operator.eq, "ne": operator.ne, "lt": operator.lt, "le": operator.le, "gt": operator.gt,
           "ge": operator.ge}
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


def init_call(spec: InitSpec):
    """The torch.nn.init call an init spec stands for: (function name, args, kwargs), or None
    for `default`. apply_init runs it; compiler.eject writes it out."""
    kw, a = dict(spec.kwargs), spec.args
    std = a[0] if a else kw.get("std", 1.0)
    calls = {
        "normal": ("normal_", (), {"mean": kw.get("mean", 0.0), "std": std}),
        "trunc_normal": ("trunc_normal_", (), {"std": std}),
        "uniform": ("uniform_", tuple(a or (kw.get("a", 0.0), kw.get("b", 1.0))), {}),
        "zeros": ("zeros_", (), {}),
        "ones": ("ones_", (), {}),
        "constant": ("constant_", (a[0] if a else kw.get("val"),), {}),
        "kaiming": ("kaiming_normal_", (), {"mode": kw.get("mode", "fan_in"),
                                            "nonlinearity": kw.get("nonlinearity", "relu")}),
        "kaiming_uniform": ("kaiming_uniform_", (), {"a": kw.get("a", math.sqrt(5)), "mode": kw.get("mode", "fan_in")}),
        "xavier_uniform": ("xavier_uniform_", (), {"gain": kw.get("gain", 1.0)}),
        "xavier_normal": ("xavier_normal_", (), {"gain": kw.get("gain", 1.0)}),
        "orthogonal": ("orthogonal_", (), {}),
    }
    calls["kaiming_normal"] = calls["kaiming"]
    calls["xavier"] = calls["xavier_uniform"]
    return None if spec.name == "default" else calls[spec.name]


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


class BlockModule(fx.GraphModule):
    """The GraphModule of one block instance.

    Instances of one block share its graph and the forward fx generated from it, so a
    model compiles each distinct block once (GPT-2 with 1,000 layers: three graphs).
    While a model is being built, making a module does not recompile the modules inside
    it (fx would, level after level): they were compiled when they were made."""

    def _recompile_submodules(self):
        return [] if _BUILDING else super()._recompile_submodules()


_BUILDING = 0  # > 0 while instantiate() runs
_MODULE_ATTRS = frozenset(nn.Module().__dict__)  # what nn.Module.__init__ sets; the rest is fx's


@contextlib.contextmanager
def _building():
    global _BUILDING
    _BUILDING += 1
    try:
        yield
    finally:
        _BUILDING -= 1


def _adopt(gm: nn.Module, root: nn.Module) -> None:
    """gm holds exactly root's children, parameters and buffers, in root's order."""
    for mine, theirs in ((gm._modules, root._modules), (gm._parameters, root._parameters),
                         (gm._buffers, root._buffers)):
        mine.clear()
        mine.update(theirs)
    gm._non_persistent_buffers_set = set(root._non_persistent_buffers_set)
    gm.training = root.training  # the layers keep their own flags (train() would visit them all again)


def module_over(root: nn.Module, graph: fx.Graph, class_name: str) -> fx.GraphModule:
    """A GraphModule running `graph` that holds every child, parameter and buffer of `root`
    (fx.GraphModule alone keeps only those the graph names: an optimized graph may no
    longer call a layer whose path the spec still gives it)."""
    with _building():
        gm = BlockModule(root, graph, class_name=class_name)
    _adopt(gm, root)
    return gm


class _Prototype:
    """What later instances of a block copy from its first: the class holding the
    generated forward, and fx's instance attributes (code, meta)."""

    def __init__(self, gm: fx.GraphModule):
        self.cls = type(type(gm).__name__, (BlockModule,), {"forward": type(gm).forward})
        self.attrs = {k: v for k, v in gm.__dict__.items() if k not in _MODULE_ATTRS}

    def instance(self, root: nn.Module) -> fx.GraphModule:
        own = type(self.cls.__name__, (self.cls,), {})  # a class of its own, as fx gives every instance
        gm = object.__new__(own)  # fx's __new__ would make that class; this one already is
        nn.Module.__init__(gm)
        for k, v in self.attrs.items():
            gm.__dict__[k] = v.copy() if isinstance(v, (list, dict)) else v
        _adopt(gm, root)
        return gm


class GraphCache:
    """The first instance of every BlockGraph object (identical instantiations share the
    object), and what later instances copy from it.

    `optimize` (GraphModule -> GraphModule, e.g. compiler.passes.optimize) runs over the
    first instance of each block; the later ones share the graph it made."""

    def __init__(self, optimize=None, meta: bool = False, share: bool = False):
        self.optimize = optimize
        # meta: the layers are on the meta device (analysis, ejection), so later instances of a
        # block may copy the first one's layers instead of constructing and initializing them
        self.meta = meta
        # share: later instances of a block ARE its first instance, one module object at every
        # path (shape inference and ejection need one module per distinct block, not per path)
        self.share = share
        self.first: dict[int, fx.GraphModule] = {}
        self.layers: dict[int, dict] = {}  # block -> module path -> the first instance's layer
        self.graphs: dict[int, fx.Graph] = {}
        self.prototypes: dict[int, _Prototype] = {}
        self.ops: dict[int, list] = {}  # the block's ops in order: one topological sort per block

    def ops_of(self, block: BlockGraph) -> list:
        key = id(block)
        if key not in self.ops:
            self.ops[key] = list(block.ops())
        return self.ops[key]


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


class _Lowering:
    """The state of lowering one block: the fx graph so far and the node of every op."""

    def __init__(self, block: BlockGraph):
        self.block = block
        self.graph = fx.Graph()
        self.env: dict[str, fx.Node] = {}
        self._device: fx.Node | None = None

    def val(self, v):
        """An argument value with every Ref replaced by its fx node."""
        if isinstance(v, Ref):
            return self.env[v.node]
        if isinstance(v, SliceVal):
            return slice(self.val(v.lo), self.val(v.hi), self.val(v.step))
        if isinstance(v, tuple):
            return tuple(self.val(x) for x in v)
        if isinstance(v, list):
            return [self.val(x) for x in v]
        return v

    def device(self) -> fx.Node:
        """`x.device` of the block's first input, made once: factories put their tensors there."""
        if self._device is None:
            first = self.env[self.block.inputs[0].id]
            self._device = self.graph.create_node("call_function", getattr, (first, "device"), name="device")
        return self._device

    def node(self, op: Op, kind: str, target, args=(), kwargs=None, suffix: str = "") -> fx.Node:
        return self.graph.create_node(kind, target, tuple(args), kwargs or {}, name=op.id + suffix)


def _lower_input(lw: _Lowering, op: Op, args, kwargs) -> fx.Node:
    node = lw.node(op, "placeholder", op.id)
    node.meta["netspec_dims"] = op.dims  # the declared rank: passes reason about dims (-1 vs 2) with it
    return node


def _causal_mask_for(lw: _Lowering, op: Op, q: fx.Node, k: fx.Node) -> fx.Node:
    """MultiheadAttention(..., is_causal=true) needs the mask too: True above the diagonal."""
    T = lw.node(op, "call_method", "size", (q, 1), suffix="_T")
    S = lw.node(op, "call_method", "size", (k, 1), suffix="_S")
    ones = lw.node(op, "call_function", torch.ones, (T, S), {"dtype": torch.bool, "device": lw.device()},
                   suffix="_ones")
    return lw.node(op, "call_method", "triu", (ones, 1), suffix="_future")


def _lower_module(lw: _Lowering, op: Op, args, kwargs) -> fx.Node:
    if op.target == "Parameter":
        return lw.node(op, "get_attr", op.path)
    call_kwargs = dict(_CALL_KWARGS.get(op.target, {}))
    if kwargs.get("is_causal"):  # MultiheadAttention(..., is_causal=true)
        call_kwargs.update(attn_mask=_causal_mask_for(lw, op, args[0], args[1]), is_causal=True)
    if op.target not in _FIRST_OUTPUT:
        return lw.node(op, "call_module", op.path, args, call_kwargs)
    both = lw.node(op, "call_module", op.path, args, call_kwargs, suffix="_out")
    both.meta.update(span=op.span, netspec_op=op.id)  # errors inside still point at the step
    return lw.node(op, "call_function", operator.getitem, (both, 0))


def _lower_block(lw: _Lowering, op: Op, args, kwargs) -> fx.Node:
    return lw.node(op, "call_module", op.path, args)


def _lower_binop(lw: _Lowering, op: Op, args, kwargs) -> fx.Node:
    return lw.node(op, "call_function", _BINOPS[op.target], args)


def _lower_getitem(lw: _Lowering, op: Op, args, kwargs) -> fx.Node:
    return lw.node(op, "call_function", operator.getitem, args)


def _lower_function(lw: _Lowering, op: Op, args, kwargs) -> fx.Node:
    """A tensor op, written as a function or a method: the registry names its torch target."""
    if op.target == "neg":  # unary minus: not a registry entry
        return lw.node(op, "call_function", operator.neg, args)
    ldef = REGISTRY[op.target]
    if ldef.target.startswith("method:"):
        return lw.node(op, "call_method", ldef.target.split(":", 1)[1], args, kwargs)
    if ldef.extra.get("pack"):  # cat(a, b, dim=1) -> torch.cat([a, b], dim=1)
        args = (list(args),)
    if ldef.factory and lw.block.inputs:
        kwargs = dict(kwargs, device=lw.device())
    return lw.node(op, "call_function", resolve_target(ldef.target), args, kwargs)


# op kind -> how it becomes fx nodes: (lowering state, op, args, kwargs) -> the node of its value
LOWER = {
    "input": _lower_input,
    "module": _lower_module,
    "block": _lower_block,
    "binop": _lower_binop,
    "getitem": _lower_getitem,
    "function": _lower_function,
    "method": _lower_function,
}


def build_graph(block: BlockGraph, top: bool) -> fx.Graph:
    """The literal fx graph of one block: one node per op (a few ops need two), in source order.
    `top`: a model with several heads returns a dict head name -> tensor; a block returns a tuple."""
    lw = _Lowering(block)
    for op in block.ops():
        node = LOWER[op.kind](lw, op, lw.val(op.args), lw.val(op.kwargs))
        node.meta["span"] = op.span
        node.meta["netspec_op"] = op.id
        lw.env[op.id] = node
    env, outs = lw.env, block.outputs
    if len(outs) == 1:
        result = env[outs[0].ref.node]
    elif top:
        result = {o.name: env[o.ref.node] for o in outs}
    else:
        result = tuple(env[o.ref.node] for o in outs)
    lw.graph.output(result)
    lw.graph.lint()
    return lw.graph


_UNCOPYABLE = (nn.RNNBase,)  # keep views of their parameters (_flat_weights): constructed anew


def _meta_like(t: torch.Tensor) -> torch.Tensor:
    return torch.empty(t.shape, dtype=t.dtype, device="meta")  # empty_like goes through Python refs on meta


def _copy_on_meta(layer):
    """A new layer like `layer` with new (meta) parameters and buffers, without running its
    constructor; None for a layer that holds other layers or views of its parameters."""
    if isinstance(layer, nn.Parameter):
        return nn.Parameter(_meta_like(layer), requires_grad=layer.requires_grad)
    if layer._modules or isinstance(layer, _UNCOPYABLE):
        return None
    new = object.__new__(type(layer))
    for k, v in layer.__dict__.items():
        new.__dict__[k] = v.copy() if isinstance(v, (dict, set, list)) else v
    new.__dict__["_parameters"] = {k: None if p is None else nn.Parameter(_meta_like(p), requires_grad=p.requires_grad)
                       for k, p in layer._parameters.items()}
    new.__dict__["_buffers"] = {k: None if b is None else _meta_like(b) for k, b in layer._buffers.items()}
    return new


def instantiate(block: BlockGraph, cache: GraphCache, top: bool = True) -> fx.GraphModule:
    """A fresh GraphModule for `block`, with newly constructed layers (optimized by
    `cache.optimize`, if set)."""
    key = id(block)
    if cache.share and key in cache.first:
        return cache.first[key]
    ops = cache.ops_of(block)
    root = nn.Module()
    first = cache.layers.get(key) if cache.meta else None
    layers = cache.layers.setdefault(key, {}) if cache.meta and first is None else None
    for op in ops:
        if op.kind == "module" and first is not None and (layer := _copy_on_meta(first[op.path])) is not None:
            _set_path(root, op.path, layer)
        elif op.kind == "module":
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
            if layers is not None:
                layers[op.path] = layer
        elif op.kind == "block":
            try:
                child = instantiate(op.block, cache, top=False)
            except NetspecError as e:
                e.diagnostics[0].notes.append((op.span, f"in {op.block.kind} '{op.block.name}' instantiated here"))
                raise NetspecError(e.diagnostics) from None
            _set_path(root, op.path, child)
    for path in block.containers:  # keep empty-looking containers so paths exist even without call sites
        try:
            root.get_submodule(path)
        except AttributeError:
            _set_path(root, path, nn.Module())
    if key in cache.prototypes:
        gm = cache.prototypes[key].instance(root)
    else:
        gm = module_over(root, build_graph(block, top), block.name)
        if cache.optimize is not None:
            gm = cache.optimize(gm)
        cache.graphs[key], cache.prototypes[key] = gm.graph, _Prototype(gm)
    for op in ops:
        if op.kind == "module" and op.tie is not None:
            gm.get_submodule(op.path).weight = gm.get_submodule(op.tie[0]).weight
    if cache.share:
        cache.first[key] = gm
    return gm


def count_params(block: BlockGraph, gm: nn.Module, memo: dict | None = None) -> tuple[int, int]:
    """(parameters, trainable parameters) of an instance of `block`, from its layers and the
    counts of its child blocks, each distinct block counted once: exact also when instances
    share one module (GraphCache(share=True)). A tied weight counts where it is defined."""
    memo = {} if memo is None else memo
    if id(block) in memo:
        return memo[id(block)]
    total = trainable = 0
    for op in block.ops():
        if op.kind == "module":
            layer = gm.get_parameter(op.path) if op.target == "Parameter" else gm.get_submodule(op.path)
            tied = layer.weight if op.tie is not None else None
            for p in ([layer] if isinstance(layer, nn.Parameter) else layer.parameters()):
                if p is not tied:
                    total += p.numel()
                    trainable += p.numel() if p.requires_grad else 0
        elif op.kind == "block":
            t, tr = count_params(op.block, gm.get_submodule(op.path), memo)
            total, trainable = total + t, trainable + tr
    memo[id(block)] = (total, trainable)
    return memo[id(block)]
