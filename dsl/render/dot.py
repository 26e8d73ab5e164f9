"""A `View` written as Graphviz DOT: node and cluster attributes, edges, the title.

Everything from the spec reaches DOT through `style.esc` (HTML-like labels) or as a
quoted attribute (tooltips, which Graphviz escapes again in SVG), so a name or doc
comment cannot break out of its label. Every node and cluster has an SVG `id`:
`c-PATH` for a cluster that can be collapsed, `x-PATH` for a collapsed block or group
that can be expanded, `n-ID` for the rest (`netspec serve` reads them on a click).
"""
from __future__ import annotations

import re

import graphviz

from ..values import format_value
from ..ir import BlockGraph
from . import style as S
from .fold import Fold, fold
from .labels import count_text
from .view import VCluster, View, VNode

RANKDIRS = ("BT", "TB", "LR", "RL")


def _svg_id(prefix: str, text: str) -> str:
    return prefix + re.sub(r"[^A-Za-z0-9_.\-]", "_", text)


class _Writer:
    def __init__(self, view: View, shapes: dict | None, params: dict | None, param_labels: bool):
        self.view, self.shapes, self.params, self.param_labels = view, shapes, params, param_labels

    def count(self, keys) -> int | None:
        if self.params is None or not keys:
            return None
        n = sum(self.params.get(k, 0) for k in keys)
        return n or None

    def tooltip(self, text: str, shape_key: str | None = None, keys=()) -> str:
        lines = [text]
        if self.shapes is not None and shape_key in self.shapes:
            shape = S.shape_text(self.shapes[shape_key])
            if shape:
                lines.append(f"output: {shape}")
        n = self.count(keys)
        if n:
            each = f" ({self.count(keys[:1]):,} each)" if len(keys) > 1 else ""
            lines.append(f"parameters: {n:,}{each}")
        return S.attr_text("\n".join(lines))

    def node_attrs(self, n: VNode) -> dict:
        fill, shape, _ = S.style(n.category)
        attrs = {"tooltip": self.tooltip(n.tooltip, n.shape_key, n.param_keys), "fillcolor": fill, "shape": shape,
                 "style": "filled"}
        n_params = self.count(n.param_keys) if self.param_labels else None
        small = f"{count_text(n_params)} params" if n_params else None
        if n.kind in ("group", "block", "repeat"):
            attrs["id"] = _svg_id("x-", n.key or n.id)
        else:
            attrs["id"] = _svg_id("n-", n.id)
        if n.kind == "group":
            attrs.update(shape=S.GROUP_SHAPE, label=S.html_node(n.title, n.body, small))
        elif n.kind in ("block", "repeat"):
            attrs.update(label=S.html_node(n.title, n.body, small), penwidth="2" if n.kind == "repeat" else "1",
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
            attrs.update(label=S.html_node(n.title, n.body, small))
            if n.category == "shape":
                attrs.update(fontsize="9", height="0.2")
        return attrs

    def cluster(self, parent: graphviz.Digraph, cl: VCluster):
        with parent.subgraph(name=cl.id) as sub:
            style = "rounded,filled,dashed" if cl.kind == "group" else "rounded,filled"
            n = self.count(cl.param_keys) if self.param_labels else None
            extra = f"  ·  {count_text(n)} params" if n else ""
            sub.attr(label=f"<<B>{S.esc(cl.title)}</B>{S.esc(extra)}>",
                     tooltip=self.tooltip(cl.tooltip, None, cl.param_keys), style=style,
                     fillcolor=S.CLUSTER_FILL[cl.kind], color=S.CLUSTER_PEN[cl.kind],
                     penwidth="2" if cl.kind == "repeat" else "1", labeljust="l", labelloc="b", fontsize="11",
                     id=_svg_id("c-", cl.key or cl.id))
            self.items(sub, cl.items)

    def items(self, g: graphviz.Digraph, items):
        for it in items:
            if isinstance(it, VCluster):
                self.cluster(g, it)
            else:
                g.node(it.id, **self.node_attrs(it))


def _fold_groups(cl: VCluster) -> VCluster:
    """A group holding nothing but one cluster (h: the ×12 run) is drawn as that cluster."""
    cl.items = [_fold_groups(it) if isinstance(it, VCluster) else it for it in cl.items]
    if cl.kind == "group" and len(cl.items) == 1:
        return cl.items[0]
    return cl


def _subtitle(graph: BlockGraph) -> str | None:
    if not graph.params:
        return None
    return ", ".join(f"{k}={format_value(v)}" for k, v in graph.params.items())


def view_to_dot(view: View, graph: BlockGraph, *, shapes: dict | None = None, shape_labels: bool = True,
                params: dict | None = None, param_labels: bool = True, title: str | None = None, rankdir: str = "BT",
                dpi: float | None = None) -> graphviz.Digraph:
    """DOT for `view`. shapes: full op path -> printable shape (tooltips, and edge labels
    when `shape_labels`); params: module path -> parameter count (tooltips, and node and
    cluster labels when `param_labels`)."""
    if rankdir not in RANKDIRS:
        raise ValueError(f"rankdir must be one of {', '.join(RANKDIRS)}, got {rankdir!r}")
    w = _Writer(view, shapes, params, param_labels)
    dot = graphviz.Digraph(name=graph.name)
    has_ties = any(e.tie for e in view.edges)
    dot.attr("graph", rankdir=rankdir, fontname=S.FONT, nodesep="0.3", ranksep="0.35", labelloc="t",
             label=S.title_label(title or graph.name, _subtitle(graph), graph.doc, view.categories, ties=has_ties),
             tooltip=S.attr_text(graph.doc or graph.name), bgcolor="white", pad="0.3")
    if dpi is not None:
        if not dpi > 0:
            raise ValueError(f"dpi must be positive, got {dpi}")
        dot.attr("graph", dpi=f"{dpi:g}")
    dot.attr("node", fontname=S.FONT, fontsize="11", margin="0.12,0.04", height="0.3", color="#34495e")
    dot.attr("edge", fontname=S.FONT, fontsize="9", color=S.FLOW_COLOR, arrowsize="0.7",
             fontcolor=S.SHAPE_FONT_COLOR)
    root_items = [_fold_groups(it) if isinstance(it, VCluster) else it for it in view.root.items]
    view.root.items = root_items
    f = fold(view)
    pinned = [n for n in view.inputs if n.id not in f.unpinned]
    with dot.subgraph(name="inputs") as sub:
        sub.attr(rank="source")
        w.items(sub, pinned)
    w.items(dot, [n for n in view.inputs if n.id in f.unpinned])
    w.items(dot, root_items)
    with dot.subgraph(name="heads") as sub:
        sub.attr(rank="sink")
        w.items(sub, view.heads)
    if f.bottom:  # the turn of a fold: one row (its edges run left to right)
        dot.attr("graph", newrank="true")  # a rank across clusters, which keep their boxes
        with dot.subgraph() as sub:
            sub.attr(rank="same")
            for n in sorted(f.bottom):
                sub.node(n)
    _edges(dot, view, shapes if shape_labels else None, f)
    return dot


def _edges(dot: graphviz.Digraph, view: View, shapes: dict | None, f: Fold):
    labelled = set()  # one shape label per value: fan-out edges of a node would repeat it
    ordered = sorted((e for e in view.edges if not e.tie), key=lambda e: e.skip)  # flow edges get the label first
    # A skip edge leaves the layout alone only when its source is placed by a flow edge;
    # a node whose sole way out is a skip (an embedding added into a block) still ranks below it.
    placed = {e.src for e in view.edges if not e.skip and not e.tie}
    for e in view.edges:
        if e.tie:
            dot.edge(e.src, e.dst, style="dotted", color=S.TIE_COLOR, penwidth="1.6", dir="none",
                     constraint="false", tooltip=S.attr_text(e.tie))
            continue
        attrs = {}
        if e.skip:
            attrs.update(style="dashed", color=S.SKIP_COLOR, penwidth="1.3")
            if (e.src, e.dst) in f.level:  # folded: the skip holds its two ends level
                attrs.update(minlen="0", weight="4")
            elif e.src in placed:
                attrs["constraint"] = "false"
        if shapes is not None and e.shape_key in shapes:
            text = S.shape_text(shapes[e.shape_key])
            first = next(x for x in ordered if x.src == e.src and x.shape_key == e.shape_key)
            if text and first is e and (e.src, text) not in labelled:
                labelled.add((e.src, text))
                attrs["label"] = graphviz.nohtml(" " + text)
                if e.skip:
                    attrs["fontcolor"] = S.SKIP_COLOR
        if e.src in f.against and (e.dst in f.against or e.dst in f.bottom):
            dot.edge(e.dst, e.src, dir="back", **attrs)  # ranked backwards, still drawn pointing at e.dst
        else:
            dot.edge(e.src, e.dst, **attrs)
