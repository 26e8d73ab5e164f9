"""Structural checks on a finished BlockGraph, one small function per rule.

The front end (dsl/frontend.py) runs RULES as a pass after elaboration, over every
distinct block. Adding a rule is one function and one line in RULES. Each reports
through the diagnostics with the span of the op it is about.
"""
from __future__ import annotations

import networkx as nx

from .ir import BlockGraph
from .tables import BATCH_DIMS


def check_cycles(block: BlockGraph, diags) -> None:
    try:
        cycle = nx.find_cycle(block.graph)
    except nx.NetworkXNoCycle:
        return
    names = [u for u, _ in cycle] + [cycle[0][0]]
    first = block.op(cycle[0][0])
    diags.error(f"cycle in the graph: {' -> '.join(names)}", first.span,
                [(block.op(u).span, f"'{u}' is part of the cycle") for u, _ in cycle[1:]])


def check_unused(block: BlockGraph, diags) -> None:
    used_as_output = {o.ref.node for o in block.outputs}
    for n, data in block.graph.nodes(data=True):
        op = data["op"]
        if block.graph.out_degree(n) or n in used_as_output:
            continue
        if op.kind == "input":
            diags.warning(f"input '{n}' is never used", op.span)
        else:
            diags.warning(f"result of '{op.path or op.label}' is never used", op.span)


def check_heads_reachable(block: BlockGraph, diags) -> None:
    if block.kind != "model" or nx.is_directed_acyclic_graph(block.graph) is False:
        return
    inputs = {op.id for op in block.inputs}
    for out in block.outputs:
        if out.ref.node is None:
            continue
        anc = nx.ancestors(block.graph, out.ref.node) | {out.ref.node}
        if not anc & inputs:
            diags.error(f"head '{out.name}' does not depend on any input", out.span)


def check_model_inputs(block: BlockGraph, diags) -> None:
    if block.kind != "model":
        return
    if not block.inputs:
        diags.error(f"model '{block.name}' has no input: declare one, e.g. `input x: float[B=1, 3, 32, 32]`",
                    block.span)
    for op in block.inputs:
        if op.dims is None:
            diags.error(f"input '{op.id}' of model '{block.name}' needs a shape, e.g. `input {op.id}: float[B=1, 16]`",
                        op.span)
            continue
        for d in op.dims:
            if isinstance(d, tuple) and d[1] is None and d[0] not in BATCH_DIMS:
                diags.error(f"dim '{d[0]}' of input '{op.id}' needs a default so the model checks without flags:"
                            f" write {d[0]}=<size>", op.span)


RULES = (check_cycles, check_unused, check_heads_reachable, check_model_inputs)


def check_block(block: BlockGraph, diags, errors_so_far: bool = False) -> None:
    for rule in RULES:
        if errors_so_far and rule is check_unused:
            continue  # unused results after an error are its echo, not news
        rule(block, diags)
