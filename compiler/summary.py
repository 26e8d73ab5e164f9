"""`netspec summary`: per layer its name, type, output shape, parameters and
multiply-accumulates per sample, grouped by block, with totals; parameters that are
not trained (`frozen=true`, `--freeze`) are counted apart, in a column of their own.

Everything comes from an `Analysis` (meta device), so no real weight is allocated.
"""
from __future__ import annotations

import math

from torch import nn

from ..dsl.ir import BlockGraph

from .builder import Analysis


def _shape_list(meta):
    """A shapes-table entry as JSON-able lists: [2, 5, 16], or nested for a tuple result."""
    if meta is None:
        return None
    return list(meta.shape) if hasattr(meta, "shape") else [_shape_list(m) for m in meta]


def _numel(shape) -> int:
    return math.prod(shape) if shape else 1


def _macs(op, module, in_shapes, out_meta, batch: int) -> int | None:
    """Multiply-accumulates per sample for the layers where the count is standard."""
    if out_meta is None or not hasattr(out_meta, "shape"):
        return None
    out = _numel(out_meta.shape) // max(batch, 1)
    if isinstance(module, nn.Linear):
        return out * module.in_features
    if isinstance(module, nn.Bilinear):
        return out * module.in1_features * module.in2_features
    if isinstance(module, nn.modules.conv._ConvNd):
        k = _numel(module.kernel_size)
        if isinstance(module, nn.modules.conv._ConvTransposeNd):
            return _numel(in_shapes[0]) // max(batch, 1) * module.out_channels // module.groups * k
        return out * (module.in_channels // module.groups) * k
    if op.kind == "binop" and op.target == "matmul" and len(in_shapes) == 2 and in_shapes[0]:
        return out * in_shapes[0][-1]
    if isinstance(module, (nn.LSTM, nn.GRU)):
        gates = 4 if isinstance(module, nn.LSTM) else 3
        h, i = module.hidden_size, module.input_size
        steps = out // (h * (2 if module.bidirectional else 1))
        return steps * gates * (i * h + h * h) * (2 if module.bidirectional else 1)
    return 0 if op.kind == "module" else None


def _group_rows(block: BlockGraph, op, prefix: str, level: int, groups: dict, rows: list) -> list[dict]:
    """The rows of the named groups holding `op` (made at their first member), outermost first.
    A group is a level, as in `render`: its members sit one level below it."""
    out = []
    parts = op.cluster.split(".") if op.cluster else []
    for i in range(len(parts)):
        path = ".".join(parts[:i + 1])
        if path not in groups:
            groups[path] = {"name": prefix + path, "type": "group", "shape": None, "params": 0, "frozen": 0,
                            "macs": 0, "depth": level + i, "block": True, "doc": None}
            rows.append(groups[path])
        out.append(groups[path])
    return out


def _rows(block: BlockGraph, gm, a: Analysis, prefix: str, level: int, batch, seen: set, rows: list):
    """Every row of `block` at every depth: a block or a group is a row (`block: True`) with
    its members below it, one level deeper; `summarize` cuts the tree at --depth."""
    groups: dict[str, dict] = {}
    for op in block.ops():
        if op.kind == "input" and level > 0:
            continue
        path = prefix + (op.path or op.id)
        meta = a.shapes.get(path)
        shape = _shape_list(meta)
        if shape is None and op.kind not in ("module", "block"):
            continue  # runtime sizes and devices are not layers
        holders = _group_rows(block, op, prefix, level, groups, rows)
        lvl = level + len(holders)
        module = None
        if op.kind in ("module", "block"):
            module = gm.get_submodule(op.path) if op.target != "Parameter" else gm.get_parameter(op.path)
        tensors = module.parameters() if isinstance(module, nn.Module) else [module] if module is not None else []
        params = frozen = 0
        for p in tensors:  # a tied weight counts where it first appears
            if id(p) not in seen:
                seen.add(id(p))
                params += p.numel()
                frozen += 0 if p.requires_grad else p.numel()
        in_metas = [a.shapes.get(prefix + (block.op(r.node).path or r.node)) for r in _tensor_refs(op)]
        in_shapes = [list(m.shape) for m in in_metas if hasattr(m, "shape")]
        start = len(rows)
        if op.kind == "block":
            rows.append({"name": path, "type": op.block.name, "shape": shape, "params": params, "frozen": frozen,
                         "macs": None, "depth": lvl, "block": True, "doc": op.doc})
            # params were counted for the whole block; children recount their own parts
            for p in module.parameters():
                seen.discard(id(p))
            _rows(op.block, module, a, path + ".", lvl + 1, batch, seen, rows)
            rows[start]["macs"] = sum(r["macs"] or 0 for r in rows[start + 1:] if not r["block"])
        else:
            typ = op.target if op.kind in ("module", "input") else op.label.split("(")[0]
            rows.append({"name": path, "type": typ, "shape": shape, "params": params, "frozen": frozen,
                         "macs": _macs(op, module, in_shapes, meta, batch), "depth": lvl, "block": False,
                         "doc": op.doc})
        row = rows[start]
        for g in holders:  # a group: what its members hold, and its last member's shape
            g["params"] += row["params"]
            g["frozen"] += row["frozen"]
            g["macs"] += row["macs"] or 0
            g["shape"] = row["shape"]


def _cut(rows: list, depth: int | None) -> list:
    """The rows `--depth N` shows: blocks and groups nested N deep as one row each (as `render
    --depth N` draws them as one node), nothing below them."""
    if depth is None:
        return rows
    return [dict(r, block=False) if r["block"] and r["depth"] == depth else r for r in rows if r["depth"] <= depth]


def _tensor_refs(op):
    from ..dsl.ir import walk_refs
    return [r for r in walk_refs(op.args) if r.node is not None]


def summarize(a: Analysis, depth: int | None = None) -> dict:
    batch = a.info.inputs[0].shape[0] if a.info.inputs and a.info.inputs[0].shape else 1
    rows: list = []
    _rows(a.graph, a.module, a, "", 0, batch, set(), rows)
    rows = _cut(rows, depth)
    return {
        "model": a.info.name,
        "file": a.info.source,
        "params": a.num_params,
        "trainable_params": a.trainable_params,
        "frozen_params": a.num_params - a.trainable_params,
        "macs": sum(r["macs"] or 0 for r in rows if not r["block"]),
        "batch": batch,
        "inputs": {i.name: list(i.shape) for i in a.info.inputs},
        "outputs": {h.name: list(h.shape) if h.shape else None for h in a.info.heads},
        "heads": {h.name: {"task": h.task, "weight": h.weight} for h in a.info.heads},
        "parameters": dict(a.info.params),
        "doc": a.graph.doc,
        "layers": rows,
    }


def _fmt_int(n) -> str:
    return "" if n is None else f"{n:,}"


def print_summary(s: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"{s['model']}  ({s['file']})", title_justify="left", show_lines=False,
              caption=(s.get("doc") or "").strip() or None, caption_justify="left")
    docs = any(r["doc"] for r in s["layers"])  # `##` comments of the spec, shown beside their layers
    frozen = s.get("frozen_params", 0) > 0  # the column appears when something is frozen
    cols = [("layer", "left"), ("type", "left"), ("output shape", "left"), ("params", "right")] + \
        ([("frozen", "right")] if frozen else []) + [("MACs / sample", "right")] + ([("doc", "left")] if docs else [])
    for col, just in cols:
        t.add_column(col, justify=just, no_wrap=col not in ("layer", "doc"), overflow="fold")
    holders: list[str] = []  # the names of the rows holding this one, outermost first
    for r in s["layers"]:
        del holders[r["depth"]:]
        # a name relative to the row holding it: `g.0` inside a block, `0` inside its group `g`
        name = "  " * r["depth"] + r["name"][len(holders[-1]) + 1:] if holders else r["name"]
        holders.append(r["name"])
        style = "bold" if r["block"] else None
        shape = "" if r["shape"] is None else str(r["shape"]).replace("'", "")
        cells = [name, r["type"], shape, _fmt_int(r["params"]) if r["params"] or r["block"] else ""]
        if frozen:
            cells.append(_fmt_int(r["frozen"]) if r["frozen"] else "")
        cells.append(_fmt_int(r["macs"]) if r["macs"] else "")
        if docs:
            cells.append((r["doc"] or "").split("\n")[0])
        t.add_row(*cells, style=style)
    console = Console(width=max(120, Console().width))
    console.print(t)
    split = f"{s['trainable_params']:,} trainable" + (f", {s['frozen_params']:,} frozen" if frozen else "")
    console.print(f"[bold]total[/bold]: {s['params']:,} parameters ({split}), "
                  f"{s['macs']:,} MACs per sample; inputs "
                  + ", ".join(f"{k}{v}" for k, v in s["inputs"].items()) + "; outputs "
                  + ", ".join(f"{k}{v}" for k, v in s["outputs"].items()))
