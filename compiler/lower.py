"""Graph IR -> torch.fx.Graph: one graph per distinct block, one node per op (a few ops
need two), in source order. `LOWER` maps each op kind to the function that makes its
nodes. Ops keep their spec location in `node.meta["span"]` for error messages, and block
inputs their declared dims in `node.meta["netspec_dims"]` for the passes.
compiler.instances makes GraphModules of these graphs.
"""
from __future__ import annotations

import importlib
import operator

import torch
from torch import fx

from ..dsl.ir import BlockGraph, Op, Ref, SliceVal
from ..dsl.registry import REGISTRY
from ..dsl.tables import OPERATOR_FNS

from . import ops as netspec_ops

# Layers whose forward returns (output, extra): netspec keeps the first (unless return_state=true).
_FIRST_OUTPUT = {"LSTM", "GRU", "MultiheadAttention"}
_CALL_KWARGS = {"MultiheadAttention": {"need_weights": False}}


def resolve_target(target: str):
    if target.startswith("netspec:"):
        return getattr(netspec_ops, target.split(":", 1)[1])
    mod, _, name = target.rpartition(".")
    return getattr(importlib.import_module(mod), name)


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
        if isinstance(v, dict):
            return {k: self.val(x) for k, x in v.items()}
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
    if op.target not in _FIRST_OUTPUT or op.options.get("return_state"):
        return lw.node(op, "call_module", op.path, args, call_kwargs)
    both = lw.node(op, "call_module", op.path, args, call_kwargs, suffix="_out")
    both.meta.update(span=op.span, netspec_op=op.id)  # errors inside still point at the step
    return lw.node(op, "call_function", operator.getitem, (both, 0))


def _lower_block(lw: _Lowering, op: Op, args, kwargs) -> fx.Node:
    return lw.node(op, "call_module", op.path, args)


def _lower_binop(lw: _Lowering, op: Op, args, kwargs) -> fx.Node:
    return lw.node(op, "call_function", OPERATOR_FNS[op.target], args)


def _lower_attr(lw: _Lowering, op: Op, args, kwargs) -> fx.Node:
    """`training`: the module's own flag."""
    return lw.node(op, "get_attr", op.target)


def _lower_select(lw: _Lowering, op: Op, args, kwargs) -> fx.Node:
    """`a if training else b`."""
    return lw.node(op, "call_function", netspec_ops.select, args)


def _lower_getitem(lw: _Lowering, op: Op, args, kwargs) -> fx.Node:
    return lw.node(op, "call_function", operator.getitem, args)


def _lower_function(lw: _Lowering, op: Op, args, kwargs) -> fx.Node:
    """A tensor op, written as a function or a method: the registry names its torch target."""
    if op.target == "neg":  # unary minus (dsl.tables.UNARY): not a registry entry
        return lw.node(op, "call_function", OPERATOR_FNS[op.target], args)
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
    "attr": _lower_attr,
    "select": _lower_select,
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
