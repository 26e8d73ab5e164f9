"""ReLU in place where nothing else reads its input, as torchvision writes its ResNets.

`ReLU()` after a convolution, a batch norm or a residual sum makes a new tensor of the
same size while the old one dies at once. Applied in place it reuses that memory. It is
safe when the ReLU is the input's only user and the input is a fresh tensor whose own
backward does not read it (convolutions, linear layers and norms keep their inputs, a sum
keeps nothing); ReLU's backward reads ReLU's output, which in place is the same tensor.
The values, the gradients and the module tree are unchanged; only the allocation goes.
"""
from __future__ import annotations

import operator

import torch
import torch.nn.functional as F
from torch import fx, nn

from .rewrite import Rewrite, copy_graph, only_user, rewritten

# Layers and functions whose output is a new tensor their backward never reads.
_FRESH_LAYERS = (nn.modules.conv._ConvNd, nn.modules.batchnorm._BatchNorm, nn.Linear, nn.LayerNorm, nn.GroupNorm)
_FRESH_FUNCTIONS = {operator.add, operator.sub, torch.add, torch.sub, F.layer_norm, F.batch_norm}


def _fresh(gm: fx.GraphModule, n) -> bool:
    if not isinstance(n, fx.Node):
        return False
    if n.op == "call_module":
        return isinstance(gm.get_submodule(n.target), _FRESH_LAYERS)
    return n.op == "call_function" and n.target in _FRESH_FUNCTIONS


def _relu(gm: fx.GraphModule, n: fx.Node) -> bool:
    return n.op == "call_module" and len(n.args) == 1 and not n.kwargs and \
        type(gm.get_submodule(n.target)) is nn.ReLU and not gm.get_submodule(n.target).inplace


def inplace_relu(gm: fx.GraphModule) -> fx.GraphModule:
    """ReLU layers whose input is a fresh tensor read by nothing else -> F.relu(x, inplace=True)."""
    targets = {n.name for n in gm.graph.nodes if _relu(gm, n) and _fresh(gm, n.args[0]) and only_user(n.args[0], n)}
    if not targets:
        return gm
    graph = copy_graph(gm)
    notes = []
    for n in [n for n in graph.nodes if n.name in targets]:
        notes.append(Rewrite("inplace_relu", n.meta.get("span"), type(gm).__name__,
                             f"{n.target}: ReLU() on {n.args[0].name}, read by nothing else -> relu in place"))
        with graph.inserting_before(n):
            new = graph.call_function(F.relu, (n.args[0],), {"inplace": True})
        new.meta.update({k: n.meta[k] for k in ("span", "netspec_op") if k in n.meta})
        n.replace_all_uses_with(new)
        graph.erase_node(n)
    return rewritten(gm, graph, notes)
