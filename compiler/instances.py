"""Graph IR -> torch.fx.GraphModule, one per block instance.

Each BlockGraph is lowered to one fx.Graph, once (compiler.lower); every instance of that
block (all 12 of GPT-2's) is a GraphModule over the same graph with its own layers, and
the forward fx generates from it is compiled once too (BlockModule). Module paths from the
spec become attribute paths, so state_dict keys read `transformer.h.0.attn.c_attn.weight`.
An optimize hook (compiler.passes) may rewrite the first instance's graph; later
instances share the result.
"""
from __future__ import annotations

import contextlib
from collections import Counter

from torch import fx, nn

from ..dsl.errors import Diagnostic, NetspecError
from ..dsl.ir import BlockGraph

from .layers import copy_on_meta, apply_init, make_layer
from .lower import build_graph


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


def instantiate(block: BlockGraph, cache: GraphCache, top: bool = True, *, prefix: str = "",
                in_loop: bool = False, frozen: bool = False) -> fx.GraphModule:
    """A fresh GraphModule for `block`, with newly constructed layers (optimized by
    `cache.optimize`, if set). `prefix` is its path in the model; `in_loop`: it was
    instantiated on a line that made several (so errors name paths); `frozen`: an instance
    with `frozen=true`, or inside one (no parameter of it trains)."""
    key = (id(block), frozen)  # a frozen instance shares neither module nor layers with a trained one
    if cache.share and key in cache.first:
        return cache.first[key]
    ops = cache.ops_of(block)
    spans = Counter(op.span for op in ops if op.path)

    def where(op) -> str:  # a loop's line does not say which layer failed: its path does
        return f"{prefix}{op.path}: " if in_loop or spans[op.span] > 1 else ""
    root = nn.Module()
    first = cache.layers.get(key) if cache.meta else None
    layers = cache.layers.setdefault(key, {}) if cache.meta and first is None else None
    for op in ops:
        if op.kind == "module" and first is not None and (layer := copy_on_meta(first[op.path])) is not None:
            _set_path(root, op.path, layer)
        elif op.kind == "module":
            try:
                layer = make_layer(op)
                for name, spec in op.init.items():
                    apply_init(layer, spec, name)
            except Exception as e:  # torch's own argument checks, e.g. embed_dim % num_heads
                msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                raise NetspecError([Diagnostic("error", f"{where(op)}cannot build {op.label}: {msg}", op.span)]) \
                    from None
            _set_path(root, op.path, layer)
            if op.frozen or frozen:
                for p in (layer.parameters() if isinstance(layer, nn.Module) else [layer]):
                    p.requires_grad_(False)
            if layers is not None:
                layers[op.path] = layer
        elif op.kind == "block":
            try:
                child = instantiate(op.block, cache, top=False, prefix=f"{prefix}{op.path}.",
                                    in_loop=in_loop or spans[op.span] > 1, frozen=frozen or op.frozen)
            except NetspecError as e:
                e.diagnostics[0].notes.append((op.span, f"in {op.block.kind} '{op.block.name}' instantiated here"))
                raise NetspecError(e.diagnostics) from None
            _set_path(root, op.path, child)
    for path in block.containers:  # keep empty-looking containers so paths exist even without call sites
        try:
            root.get_submodule(path)
        except AttributeError:
            _set_path(root, path, nn.Module())
    if id(block) in cache.prototypes:
        gm = cache.prototypes[id(block)].instance(root)
    else:
        gm = module_over(root, build_graph(block, top), block.name)
        if cache.optimize is not None:
            gm = cache.optimize(gm)
        cache.graphs[id(block)], cache.prototypes[id(block)] = gm.graph, _Prototype(gm)
    for op in ops:
        if op.kind == "module" and op.tie is not None:
            gm.get_submodule(op.path).weight = gm.get_submodule(op.tie[0]).weight
    if cache.share:
        cache.first[key] = gm
    return gm


def count_params(block: BlockGraph, gm: nn.Module, memo: dict | None = None) -> tuple[int, int]:
    """(parameters, trainable parameters) of an instance of `block`, from its layers and the
    counts of its child blocks, each module counted once: instances that share one module
    (GraphCache(share=True)) are counted once, and instances frozen apart are counted apart.
    A tied weight counts where it is defined."""
    memo = {} if memo is None else memo
    if id(gm) in memo:
        return memo[id(gm)]
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
    memo[id(gm)] = (total, trainable)
    return memo[id(gm)]
