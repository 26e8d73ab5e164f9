"""`netspec render`: architecture diagrams through Graphviz.

    from dsl.render import render
    render(analysis.graph, "gpt2.svg", depth=None, shapes=analysis.shapes)

Data flows bottom to top (inputs at the bottom, heads at the top). Blocks and named
groups are clusters, collapsed to one node at `depth` and below (0: the model's
top-level ops only; None: everything expanded). A run of identical block instances
(GPT-2's h.0..h.11) is drawn once, marked ×N. Skip edges are dashed and blue; with
`shapes` (full op path -> shape, as `compiler.analyze` gives) each edge carries the
shape of the value on it. No torch here: shapes is a plain dict of printable values.
"""
from __future__ import annotations

from pathlib import Path

import graphviz

from ..values import format_value
from ..ir import BlockGraph
from . import style as S
from .view import VCluster, View, VNode, build_view

__all__ = ["render", "to_dot", "build_view", "FORMATS"]

FORMATS = ("svg", "png", "pdf", "dot")


def _subtitle(graph: BlockGraph) -> str | None:
    if not graph.params:
        return None
    return ", ".join(f"{k}={format_value(v)}" for k, v in graph.params.items())


def _node_attrs(n: VNode) -> dict:
    fill, shape, _ = S.style(n.category)
    attrs = {"tooltip": S.attr_text(n.tooltip), "fillcolor": fill, "shape": shape, "style": "filled"}
    if n.kind == "group":
        attrs.update(shape=S.GROUP_SHAPE, label=S.html_node(n.title, n.body))
    elif n.kind in ("block", "repeat"):
        attrs.update(label=S.html_node(n.title, n.body), penwidth="2" if n.kind == "repeat" else "1",
                     margin="0.15,0.08")
    elif n.kind == "head":
        attrs.update(label=S.html_node(n.title, None), penwidth="1.5")
    elif n.kind == "input":
        attrs.update(label=S.html_node(n.title, n.body))
    elif n.category == "merge" and n.body and len(n.body) <= 2:
        attrs.update(label=S.html_node(None, n.body) if not n.title else S.html_node(n.body, None, n.title),
                     fixedsize="false", width="0.35", height="0.35", margin="0.02")
    else:
        if shape == "circle":
            attrs["shape"] = "box"
        attrs["style"] = "filled,rounded"
        attrs.update(label=S.html_node(n.title, n.body))
        if n.category == "shape":
            attrs.update(fontsize="9", height="0.2")
    return attrs


def _cluster(parent: graphviz.Digraph, cl: VCluster):
    with parent.subgraph(name=cl.id) as sub:
        style = "rounded,filled,dashed" if cl.kind == "group" else "rounded,filled"
        sub.attr(label=f"<<B>{S.esc(cl.title)}</B>>", tooltip=S.attr_text(cl.tooltip), style=style,
                 fillcolor=S.CLUSTER_FILL[cl.kind], color=S.CLUSTER_PEN[cl.kind],
                 penwidth="2" if cl.kind == "repeat" else "1", labeljust="l", labelloc="b", fontsize="11")
        _items(sub, cl.items)


def _items(g: graphviz.Digraph, items):
    for it in items:
        if isinstance(it, VCluster):
            _cluster(g, it)
        else:
            g.node(it.id, **_node_attrs(it))


def _fold(cl: VCluster) -> VCluster:
    """A group holding nothing but one cluster (h: the ×12 run) is drawn as that cluster."""
    cl.items = [_fold(it) if isinstance(it, VCluster) else it for it in cl.items]
    if cl.kind == "group" and len(cl.items) == 1:
        return cl.items[0]
    return cl


def view_to_dot(view: View, graph: BlockGraph, shapes: dict | None = None, title: str | None = None) -> graphviz.Digraph:
    dot = graphviz.Digraph(name=graph.name)
    dot.attr("graph", rankdir="BT", fontname=S.FONT, nodesep="0.3", ranksep="0.35", labelloc="t",
             label=S.title_label(title or graph.name, _subtitle(graph), graph.doc, view.categories),
             tooltip=S.attr_text(graph.doc or graph.name), bgcolor="white", pad="0.3")
    dot.attr("node", fontname=S.FONT, fontsize="11", margin="0.12,0.04", height="0.3", color="#34495e")
    dot.attr("edge", fontname=S.FONT, fontsize="9", color=S.FLOW_COLOR, arrowsize="0.7",
             fontcolor=S.SHAPE_FONT_COLOR)
    with dot.subgraph(name="inputs") as sub:
        sub.attr(rank="source")
        _items(sub, view.inputs)
    _items(dot, [_fold(it) if isinstance(it, VCluster) else it for it in view.root.items])
    with dot.subgraph(name="heads") as sub:
        sub.attr(rank="sink")
        _items(sub, view.heads)
    labelled = set()  # one shape label per value: fan-out edges of a node would repeat it
    ordered = sorted(view.edges, key=lambda e: e.skip)  # stable: flow edges get the label first
    # A skip edge leaves the layout alone only when its source is placed by a flow edge;
    # a node whose sole way out is a skip (an embedding added into a block) still ranks below it.
    placed = {e.src for e in view.edges if not e.skip}
    for e in view.edges:
        attrs = {}
        if e.skip:
            attrs.update(style="dashed", color=S.SKIP_COLOR, penwidth="1.3")
            if e.src in placed:
                attrs["constraint"] = "false"
        if shapes is not None and e.shape_key in shapes:
            text = S.shape_text(shapes[e.shape_key])
            first = next(x for x in ordered if x.src == e.src and x.shape_key == e.shape_key)
            if text and first is e and (e.src, text) not in labelled:
                labelled.add((e.src, text))
                attrs["label"] = graphviz.nohtml(" " + text)
                if e.skip:
                    attrs["fontcolor"] = S.SKIP_COLOR
        dot.edge(e.src, e.dst, **attrs)
    return dot


def to_dot(graph: BlockGraph, *, depth: int | None = None, shapes: dict | None = None,
           title: str | None = None) -> graphviz.Digraph:
    """The diagram as a graphviz.Digraph (its `.source` is the DOT text)."""
    if depth is not None and depth < 0:
        raise ValueError(f"depth must be >= 0, got {depth}")
    return view_to_dot(build_view(graph, depth), graph, shapes, title)


def render(graph: BlockGraph, out: str | Path, *, depth: int | None = None, shapes: dict | None = None,
           title: str | None = None) -> Path:
    """Draw `graph` to `out`; the format is the suffix: .svg .png .pdf or .dot (.gv)."""
    out = Path(out)
    fmt = out.suffix.lower().lstrip(".")
    fmt = "dot" if fmt == "gv" else fmt
    if fmt not in FORMATS:
        raise ValueError(f"cannot render to '{out.name}': use one of " + ", ".join("." + f for f in FORMATS))
    dot = to_dot(graph, depth=depth, shapes=shapes, title=title)
    if fmt == "dot":
        data = dot.source.encode()
    else:
        try:
            data = dot.pipe(format=fmt)
        except graphviz.ExecutableNotFound as e:
            raise RuntimeError("rendering needs Graphviz's `dot` on PATH (apt install graphviz); "
                               "a .dot output works without it") from e
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    return out
