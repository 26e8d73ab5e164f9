"""What every pass shares: copying a graph to edit, a GraphModule over the edited copy, notes.

A pass never edits the GraphModule it is given: it edits a copy of the graph and returns
a new GraphModule over it that holds the same layers, parameters and buffers (all of
them, also those the new graph no longer calls, so the state_dict and the module tree
stay what the spec wrote). It records what it did as `Rewrite` notes in
`gm.meta["netspec_rewrites"]`, each with the spec location of the code it replaced.
"""
from __future__ import annotations

import operator
from dataclasses import dataclass

import torch
from torch import fx

from ..instances import module_over

REWRITES = "netspec_rewrites"  # gm.meta key: the list of Rewrites that made this module


@dataclass(frozen=True)
class Rewrite:
    pass_name: str
    span: object  # dsl.errors.Span of the first replaced op, or None
    block: str  # the class name of the module (the spec's block name)
    what: str  # one line: what was replaced by what

    def __str__(self) -> str:
        return f"{self.span or '<unknown>'}: {self.pass_name}: {self.what} (in {self.block})"


def copy_graph(gm: fx.GraphModule) -> fx.Graph:
    """A copy of gm's graph (nodes keep their names and meta) to edit."""
    g = fx.Graph(tracer_cls=gm.graph._tracer_cls)
    g._codegen = gm.graph._codegen
    out = g.graph_copy(gm.graph, {})
    g.output(out)
    return g


def rewritten(gm: fx.GraphModule, graph: fx.Graph, notes: list[Rewrite]) -> fx.GraphModule:
    """The pass's result: gm itself when nothing fired, else a new module over `graph`."""
    if not notes:
        return gm
    graph.lint()
    out = module_over(gm, graph, type(gm).__name__)
    out.meta = dict(getattr(gm, "meta", {}))
    out.meta[REWRITES] = list(out.meta.get(REWRITES, ())) + notes
    for attr in ("netspec", "_netspec_graph"):  # the model's info rides along
        if hasattr(gm, attr):
            object.__setattr__(out, attr, getattr(gm, attr))
    return out


def only_user(n: fx.Node, user: fx.Node) -> bool:
    """`user` is the one consumer of n (so replacing user makes n dead)."""
    return len(n.users) == 1 and user in n.users


def erase_chain(graph: fx.Graph, nodes) -> None:
    """Erase the replaced `nodes` (now unused; given last first), then whatever only they
    used, up to inputs and layer calls (a layer may keep state, as RunningStat does)."""
    replaced = set(nodes)
    todo, gone = list(nodes), set()
    while todo:
        n = todo.pop(0)
        if n in gone or n.users or n.op in ("placeholder", "output"):
            continue
        if n.op == "call_module" and n not in replaced:
            continue
        gone.add(n)
        inputs = n.all_input_nodes
        graph.erase_node(n)
        todo.extend(i for i in inputs if i.op in ("call_function", "call_method", "get_attr"))


def number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def is_matmul(n) -> bool:
    return isinstance(n, fx.Node) and n.op == "call_function" and n.target in (operator.matmul, torch.matmul) \
        and len(n.args) == 2 and not n.kwargs
