"""`netspec render`: architecture diagrams through Graphviz.

    from netspec.dsl.render import render
    render(analysis.graph, "gpt2.svg", depth=None, shapes=analysis.shapes)

Data flows bottom to top by default (inputs at the bottom, heads at the top; `rankdir`
turns it). Blocks and named groups are clusters, collapsed to one node at `depth` and
below (0: the model's top-level ops only; None: everything expanded). A run of identical
block instances (GPT-2's h.0..h.11) is drawn once, marked ×N. True skips are dashed and
blue, tied weights dotted; skips between clusters fold the drawing so their ends sit
side by side (U-Net as a U). With `shapes` (full op path -> shape, as `compiler.analyze`
gives) each edge carries the shape of the value on it; with `params` (module path ->
parameter count) every layer and cluster shows its count. No torch here: both are plain
dicts of printable values.

Stages: `view` (graph IR -> visible nodes, clusters, edges; `skips` decides which edges
are skips, `labels` the text) -> `fold` (the side-by-side rule) -> `dot` (DOT text).
"""
from __future__ import annotations

from pathlib import Path

import graphviz

from ..errors import NetspecError
from ..values import format_value
from ..ir import BlockGraph
from .dot import RANKDIRS, view_to_dot
from .labels import block_defaults
from .view import build_view

__all__ = ["render", "to_dot", "to_svg", "build_view", "FORMATS", "RANKDIRS", "RenderError"]

FORMATS = ("svg", "png", "pdf", "dot")


class RenderError(NetspecError):
    """A diagram the user asked for cannot be made: an unknown output format, Graphviz's
    `dot` missing, an unwritable output file."""


def to_dot(graph: BlockGraph, *, depth: int | None = None, shapes: dict | None = None, shape_labels: bool = True,
           params: dict | None = None, param_labels: bool = True, title: str | None = None, rankdir: str = "BT", dpi: float | None = None, collapsed=(), expanded=(),
           program=None) -> graphviz.Digraph:
    """The diagram as a graphviz.Digraph (its `.source` is the DOT text).

    depth: collapse blocks and groups nested this deep (None: everything open).
    shapes: full op path -> shape, in tooltips and (`shape_labels`) on edges (compiler.analyze's `shapes`).
    params: module path -> parameter count, in tooltips and (`param_labels`) on every layer and cluster.
    rankdir: BT (inputs at the bottom; the default), TB, LR or RL.
    dpi: resolution of bitmap output. collapsed / expanded: paths folded / opened whatever the depth.
    program: the loaded `Program`, so block labels leave out arguments equal to their defaults.
    """
    if depth is not None and depth < 0:
        raise ValueError(f"depth must be >= 0, got {depth}")
    view = build_view(graph, depth, collapsed=collapsed, expanded=expanded,
                      defaults=block_defaults(program) if program is not None else None)
    return view_to_dot(view, graph, shapes=shapes, shape_labels=shape_labels, params=params, param_labels=param_labels, title=title,
                       rankdir=rankdir, dpi=dpi)


def _pipe(dot: graphviz.Digraph, fmt: str) -> bytes:
    try:
        return dot.pipe(format=fmt)
    except graphviz.ExecutableNotFound as e:
        raise RenderError("rendering needs Graphviz's `dot` on PATH (apt install graphviz); "
                          "a .dot output works without it") from None


def to_svg(graph: BlockGraph, **options) -> str:
    """The diagram as SVG text; `options` as for `to_dot`."""
    return _pipe(to_dot(graph, **options), "svg").decode("utf-8")


def render(graph: BlockGraph, out: str | Path, **options) -> Path:
    """Draw `graph` to `out`; the format is the suffix: .svg .png .pdf or .dot (.gv).
    `options` as for `to_dot`."""
    out = Path(out)
    fmt = out.suffix.lower().lstrip(".")
    fmt = "dot" if fmt == "gv" else fmt
    if fmt not in FORMATS:
        raise RenderError(f"cannot render to '{out.name}': use one of " + ", ".join("." + f for f in FORMATS))
    dot = to_dot(graph, **options)
    data = dot.source.encode() if fmt == "dot" else _pipe(dot, fmt)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(data)
    except OSError as e:
        raise RenderError(f"cannot write '{out}': {e.strerror or e}") from None
    return out
