"""What each trained head minimises and what its metrics read, and the model as training runs it.

A head's `Objective` gives its loss terms and its class scores from the head's output as
the training view returns it. Most heads train on their own output with their task's loss
(losses.LOSSES). A head that chooses another output loss (`classify(loss="nce")`, see
sampled.py) trains its last Linear layer without computing all its scores: the training
view (`training_view`) returns that layer's input instead, and the objective applies the
layer's weights itself. The model's own forward() is unchanged: eval, sample and export
still get every score.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable

import torch
from torch import fx

from .errors import TrainError
from .heads import head_arg, task_of, trained_heads
from .losses import CLASS_ROWS, LOSSES, Batch
from .sampled import OutputLoss


@dataclass
class Objective:
    terms: Callable[[torch.Tensor, Batch], torch.Tensor]  # (output, batch) -> loss terms
    scores: Callable[[torch.Tensor], torch.Tensor]  # output -> what the task's metrics read
    layer: str | None = None  # the head's last Linear, when the training view returns its input


def _same(out: torch.Tensor) -> torch.Tensor:
    return out


def objectives(model: torch.nn.Module, info, counts=None) -> dict[str, Objective]:
    """The objective of each trained head of `model`. counts: the data's class frequencies
    (`Data.counts`), which the hierarchical softmax's tree and the noise distributions follow."""
    objs = {}
    for h in trained_heads(info):
        task = task_of(h)
        choice = head_arg(h, "loss") if task.arg("loss") is not None else "softmax"
        if choice == "softmax":
            objs[h.name] = Objective(LOSSES[task.loss], _same)
            continue
        target, layer = head_layer(model, info, h, choice)
        out = OutputLoss(choice, layer, counts, k=int(head_arg(h, "k")))
        rows = CLASS_ROWS[task.loss]
        objs[h.name] = Objective(lambda o, b, out=out, rows=rows: out.terms(*rows(o, b)), out.scores, target)
    return objs


def _head_nodes(gm: fx.GraphModule, info) -> dict[str, fx.Node]:
    """Head name -> the fx node whose value it returns."""
    ret = next(n for n in gm.graph.nodes if n.op == "output").args[0]
    if isinstance(ret, dict):
        return dict(ret)
    if isinstance(ret, (tuple, list)):
        return {h.name: n for h, n in zip(info.heads, ret)}
    return {info.heads[0].name: ret}


def head_layer(model: torch.nn.Module, info, head, choice: str) -> tuple[str, torch.nn.Linear]:
    """(name, module) of the Linear layer whose output a head is. Raises TrainError."""
    where = f"head '{head.name}' of {info.name}: loss={choice!r}"
    if not isinstance(model, fx.GraphModule):
        raise TrainError(f"{where} needs a model built by netspec (a GraphModule), got {type(model).__name__}")
    node = _head_nodes(model, info).get(head.name)
    module = model.get_submodule(node.target) if node is not None and node.op == "call_module" else None
    if not isinstance(module, torch.nn.Linear):
        what = f"'{node.name}' ({type(module).__name__ if module is not None else node.op})" if node else "nothing"
        raise TrainError(f"{where} trains the weights of the head's last layer, which must be a Linear "
                         f"(the class vectors); the head is the output of {what}")
    return node.target, module


def training_view(model: torch.nn.Module, info, objs: dict[str, Objective]) -> torch.nn.Module:
    """The model as training runs it: itself, or -- when a head's objective applies its last
    Linear layer itself -- a GraphModule sharing every parameter that returns that layer's input
    for such heads (the layer is left out of forward(), so its C scores are never computed)."""
    cut = {name: o.layer for name, o in objs.items() if o.layer is not None}
    if not cut:
        return model
    graph = copy.deepcopy(model.graph)
    out = next(n for n in graph.nodes if n.op == "output")
    nodes = {n.name: n for n in graph.nodes}
    heads = {h: nodes[n.name] for h, n in _head_nodes(model, info).items()}
    swap = {heads[h]: heads[h].args[0] for h in cut}
    out.args = (fx.node.map_arg(out.args[0], lambda n: swap.get(n, n)),)
    for node in swap:
        if not node.users:  # the layer's output fed only the head: never compute it
            graph.erase_node(node)
    view = fx.GraphModule(model, graph)
    for target in cut.values():  # kept as submodules, so DistributedDataParallel syncs their gradients
        view.add_submodule(target, model.get_submodule(target))
    view.netspec = info
    return view
