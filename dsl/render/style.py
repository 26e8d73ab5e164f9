"""Colors, shapes and label text for diagrams: one entry per registry category.

Everything here returns plain strings; `view` decides what is drawn, `dot` writes it.
Labels are Graphviz HTML-like labels, so every piece of spec text goes through `esc`.
"""
from __future__ import annotations

import html
import re

from ..tables import snake
import graphviz

# category -> (fill color, node shape, legend text)
STYLE = {
    "input": ("#d5d8dc", "invhouse", "input"),
    "linear": ("#aed6f1", "box", "linear"),
    "conv": ("#7fb3d5", "box", "conv"),
    "norm": ("#f9e79f", "box", "norm"),
    "activation": ("#f5b7b1", "box", "activation"),
    "dropout": ("#e8daef", "box", "dropout"),
    "attention": ("#f0b27a", "box", "attention"),
    "merge": ("#ffffff", "circle", "merge"),
    "pool": ("#a9dfbf", "box", "pool"),
    "shape": ("#f4f6f6", "box", "shape"),
    "embedding": ("#a3e4d7", "box", "embedding"),
    "recurrent": ("#d7bde2", "box", "recurrent"),
    "op": ("#fdfefe", "box", "op"),
    "param": ("#fad7a0", "box", "param"),
    "block": ("#c8d6e5", "box3d", "block"),
    "head": ("#ec7063", "house", "head"),
}
GROUP_SHAPE = "folder"
SKIP_COLOR = "#2471a3"
TIE_COLOR = "#8e44ad"  # dotted, between layers that share one weight
FLOW_COLOR = "#424949"
SHAPE_FONT_COLOR = "#5d6d7e"
CLUSTER_FILL = {"group": "#fbfcfc", "block": "#f4f6f7", "repeat": "#eaf2f8"}
CLUSTER_PEN = {"group": "#99a3a4", "block": "#5d6d7e", "repeat": "#2471a3"}
FONT = "Helvetica"


def style(category: str) -> tuple[str, str, str]:
    return STYLE.get(category, STYLE["op"])


def esc(text) -> str:
    """Text for an HTML-like label: <, >, &, quotes escaped; braces are plain there."""
    return html.escape(str(text), quote=True)


def attr_text(text) -> str:
    """Text for a quoted attribute (tooltip): a lone backslash would escape the quote, and
    text that starts with < and ends with > must not be taken for an HTML-like label."""
    return graphviz.nohtml(str(text).replace("\\", "\\\\"))


def shape_text(value) -> str:
    """An entry of the shapes table as edge text: "[1, 768]", a tuple as "([..], [..])"."""
    if value is None:
        return ""
    if isinstance(value, (tuple, list)):
        parts = [shape_text(v) for v in value]
        if len(parts) > 1 and len(set(parts)) == 1:
            return f"{len(parts)} × {parts[0]}"
        return "(" + ", ".join(parts) + ")"
    return str(value)


def _auto_id(op) -> bool:
    """True when the op's id was made up from its target (relu_1), not written in the spec."""
    base = re.sub(r"_\d+$", "", op.id)
    return base in (op.target, op.target.lower(), snake(op.target)) or op.kind == "binop"


def op_name(op) -> str | None:
    """The name worth showing above the layer text: the last part of its path, or a bound name."""
    if op.kind == "input":
        return op.id
    if op.path:
        return op.path.rsplit(".", 1)[-1] if not op.path.rsplit(".", 1)[-1].isdigit() else op.path
    if _auto_id(op):
        return None
    return op.id


def html_node(title: str | None, body: str | None, small: str | None = None) -> str:
    """An HTML-like node label: bold title, the layer text, a smaller grey line."""
    rows = []
    if title:
        rows.append(f"<B>{esc(title)}</B>")
    if body and body != title:
        rows.append(esc(body))
    if small:
        rows.append(f'<FONT POINT-SIZE="9" COLOR="{SHAPE_FONT_COLOR}">{esc(small)}</FONT>')
    if len(rows) <= 1:
        return "<" + (rows[0] if rows else " ") + ">"
    cells = "".join(f"<TR><TD>{r}</TD></TR>" for r in rows)
    return f'<<TABLE BORDER="0" CELLPADDING="0" CELLSPACING="1">{cells}</TABLE>>'


def legend_table(categories, ties: bool = False) -> str:
    cells = []
    for cat in categories:
        fill, _, text = style(cat)
        cells.append(f'<TD BGCOLOR="{fill}" BORDER="1" CELLPADDING="3">'
                     f'<FONT POINT-SIZE="10">{esc(text)}</FONT></TD>')
    cells.append(f'<TD CELLPADDING="3"><FONT POINT-SIZE="10" COLOR="{SKIP_COLOR}">- - skip</FONT></TD>')
    if ties:
        cells.append(f'<TD CELLPADDING="3"><FONT POINT-SIZE="10" COLOR="{TIE_COLOR}">··· tied weight</FONT></TD>')
    return '<TABLE BORDER="0" CELLSPACING="4"><TR>' + "".join(cells) + "</TR></TABLE>"


def title_label(title: str, subtitle: str | None, doc: str | None, categories, ties: bool = False) -> str:
    rows = [f'<TR><TD><FONT POINT-SIZE="18"><B>{esc(title)}</B></FONT></TD></TR>']
    if subtitle:
        rows.append(f'<TR><TD><FONT POINT-SIZE="10" COLOR="{SHAPE_FONT_COLOR}">{esc(subtitle)}</FONT></TD></TR>')
    if doc:
        for line in doc.strip().splitlines():
            rows.append(f'<TR><TD><I>{esc(line)}</I></TD></TR>')
    rows.append(f'<TR><TD ALIGN="CENTER">{legend_table(categories, ties)}</TD></TR>')
    return '<<TABLE BORDER="0" CELLSPACING="1">' + "".join(rows) + "</TABLE>>"
