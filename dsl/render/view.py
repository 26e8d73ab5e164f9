"""What a diagram shows: the graph IR flattened into visible nodes, clusters and edges.

Block instances and named groups become clusters, or one node where they sit at or
below `depth`. A run of consecutive instances of the same BlockGraph (GPT-2's h.0..h.11)
becomes one cluster or node marked ×N. A block's input ops are not drawn: its inner
layers are wired to whatever feeds the instance, and whatever reads the instance is
wired to the layer that produced its output. Runtime sizes (`size`, `numel`) are
folded into the labels that use them (view(B, T, C)) and not drawn.

Every visible thing has a stable id built from the op's full path, so the same spec
always gives the same DOT text.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..ir import BlockGraph, Op, Ref
from ..registry import CATEGORIES
from .style import op_name

HIDDEN_TARGETS = {"size", "numel"}


@dataclass
class VNode:
    id: str
    category: str
    title: str | None  # bold first line (name)
    body: str | None  # layer text
    tooltip: str
    kind: str = "op"  # op | input | block | repeat | group | head
    count: int = 1  # ×N for a collapsed run


@dataclass
class VCluster:
    id: str
    title: str
    tooltip: str
    kind: str  # group | block | repeat
    items: list = field(default_factory=list)  # VNode | VCluster, in source order


@dataclass
class VEdge:
    src: str
    dst: str
    skip: bool
    shape_key: str | None  # full op path of the value, for the shapes table


@dataclass
class View:
    root: VCluster
    inputs: list[VNode]
    heads: list[VNode]
    edges: list[VEdge]
    categories: list[str]  # categories drawn, in CATEGORIES order


def _full(prefix: str, op: Op) -> str:
    return prefix + (op.path or op.id)


def _runs(bg: BlockGraph) -> dict[str, tuple[list[Op], int]]:
    """op id -> (its run, index in it) for every block op in a run of two or more."""
    runs: list[list[Op]] = []
    for op in bg.ops():
        if op.kind != "block":
            continue
        last = runs[-1][-1] if runs else None
        if (last is not None and op.block is last.block and op.cluster == last.cluster
                and _first_input(op) == last.id and set(bg.graph.successors(last.id)) == {op.id}):
            runs[-1].append(op)
        else:
            runs.append([op])
    return {op.id: (run, i) for run in runs if len(run) > 1 for i, op in enumerate(run)}


def _first_input(op: Op) -> str | None:
    """What an instance is applied to: the flow, or the first of Block(args)(x, memory)."""
    if op.flow_input:
        return op.flow_input
    return next((a.node for a in op.args if isinstance(a, Ref)), None)


def _short(path: str, cluster: str | None) -> str:
    """transformer.h.0 in group transformer.h -> h.0"""
    if cluster and "." in cluster and path.startswith(cluster.rsplit(".", 1)[0] + "."):
        return path[len(cluster.rsplit(".", 1)[0]) + 1:]
    return path


def _summary(members: list[tuple[bool, str]]) -> str:
    """A collapsed group's second line: its layers in order, runs compressed (Block ×12)."""
    layers = [t for is_layer, t in members if is_layer] or [t for _, t in members]
    parts = _compress(layers)
    if len(parts) > 4:
        return " → ".join(parts[:3]) + f" → … ({len(layers)} layers)"
    return " → ".join(parts)


def _compress(targets: list[str]) -> list[str]:
    out: list[list] = []
    for t in targets:
        if out and out[-1][0] == t:
            out[-1][1] += 1
        else:
            out.append([t, 1])
    return [t if n == 1 else f"{t} ×{n}" for t, n in out]


class _Builder:
    def __init__(self, depth: int | None):
        self.depth = depth
        self.edges: dict[tuple[str, str], VEdge] = {}
        self.categories: set[str] = set()
        self.inputs: list[VNode] = []

    def collapsed(self, level: int) -> bool:
        return self.depth is not None and level >= self.depth

    def edge(self, src: str, dst: str, skip: bool, key: str | None):
        if src == dst:
            return
        e = self.edges.get((src, dst))
        if e is None:
            self.edges[(src, dst)] = VEdge(src, dst, skip, key)
        elif not skip:
            e.skip = False

    def place(self, node: VNode, cluster: VCluster):
        cluster.items.append(node)
        self.categories.add(node.category)

    def block(self, bg: BlockGraph, prefix: str, level: int, home: VCluster,
              input_map: dict | None) -> dict[str, list]:
        """Lay out bg's ops under `home`; return op id -> [(visible id, shape key, skip)]."""
        src: dict[str, list] = {}  # where each op's value is drawn
        dst: dict[str, str | None] = {}  # the visible node an edge into the op lands on
        groups: dict[str, VCluster | VNode] = {}  # group path -> its cluster or collapsed node
        group_members: dict[str, list[str]] = {}
        runs = _runs(bg)

        def container(cluster_path: str | None) -> tuple[VCluster | VNode, int]:
            """The cluster (or collapsed group node) an op of this group sits in, and its level."""
            parent, lvl = home, level
            if not cluster_path:
                return parent, lvl
            parts = cluster_path.split(".")
            for i in range(len(parts)):
                gpath = ".".join(parts[:i + 1])
                if gpath not in groups:
                    key = prefix + gpath
                    if self.collapsed(lvl):
                        node = VNode("grp/" + key, "block", parts[i], None, key, kind="group")
                        self.place(node, parent)
                        group_members[gpath] = []
                        groups[gpath] = node
                    else:
                        cl = VCluster("cluster_" + key, parts[i], key, "group")
                        parent.items.append(cl)
                        groups[gpath] = cl
                g = groups[gpath]
                if isinstance(g, VNode):
                    return g, lvl
                parent, lvl = g, lvl + 1
            return parent, lvl

        for op in bg.ops():
            key = _full(prefix, op)
            if op.kind == "input" and input_map is not None:
                src[op.id] = input_map.get(op.id, [])
                dst[op.id] = None
                continue
            if op.kind == "input":
                node = VNode(key, "input", op.id, _input_text(op), _tip(key, op), kind="input")
                self.inputs.append(node)
                self.categories.add("input")
                src[op.id], dst[op.id] = [(node.id, key, False)], node.id
                continue
            if op.target in HIDDEN_TARGETS and op.kind in ("function", "method"):
                src[op.id], dst[op.id] = [], None
                continue
            if op.kind == "getitem" and _multi_block(bg, op):
                block_op = bg.op(op.args[0].node)
                outs = src.get(block_op.id, [])
                if isinstance(outs, dict):  # expanded: the layer that made this output
                    outs = outs.get(block_op.block.outputs[op.args[1]].name, [])
                src[op.id] = [(v, key, s) for v, _, s in outs]
                dst[op.id] = None
                continue
            where, lvl = container(op.cluster)
            if isinstance(where, VNode):  # inside a collapsed group
                group_members[_group_of(where, prefix)].append(
                    (op.kind in ("block", "module"), op.target if op.kind in ("block", "module") else op.label))
                src[op.id], dst[op.id] = [(where.id, key, False)], where.id
                continue
            if op.kind == "block":
                run, index = runs.get(op.id, ([op], 0))
                if index > 0:  # a later instance of a run: drawn by the first one
                    src[op.id] = [(v, key, False) for v, _, _ in _flat(src[run[0].id])]
                    dst[op.id] = dst[run[0].id]
                    continue
                last_key = _full(prefix, run[-1])
                title, body = _block_text(op, run, bg)
                tip = _tip(key if len(run) == 1 else f"{key} .. {last_key}", op, op.block.doc)
                if self.collapsed(lvl):
                    node = VNode(key, "block", title, body, tip, kind="repeat" if len(run) > 1 else "block",
                                 count=len(run))
                    self.place(node, where)
                    src[op.id], dst[op.id] = [(node.id, last_key, False)], node.id
                    continue
                cl = VCluster("cluster_" + key, f"{title}  {body}", tip, "repeat" if len(run) > 1 else "block")
                where.items.append(cl)
                child_inputs = self._child_inputs(bg, run, src, prefix)
                child_src = self.block(op.block, prefix + op.path + ".", lvl + 1, cl, child_inputs)
                outs = {o.name: [(v, last_key, False) for v, _, _ in child_src.get(o.ref.node, [])]
                        for o in op.block.outputs}
                src[op.id] = outs if len(outs) > 1 else next(iter(outs.values()), [])
                dst[op.id] = None
                continue
            node = VNode(key, op.category, op_name(op), op.label or op.target, _tip(key, op))
            self.place(node, where)
            src[op.id], dst[op.id] = [(node.id, key, False)], node.id

        for gpath, members in group_members.items():
            groups[gpath].body = _summary(members)

        for u, v, data in bg.graph.edges(data=True):
            d = dst.get(v)
            if d is None:
                continue
            run_v = runs.get(v)
            if run_v and run_v[1] > 0 and run_v[0][run_v[1] - 1].id == u:
                continue  # the chain inside a collapsed run
            for s, key, s_skip in _flat(src.get(u, [])):
                self.edge(s, d, bool(data.get("skip")) or s_skip, _full(prefix, bg.op(u)) if key is None else key)
        return src

    def _child_inputs(self, bg: BlockGraph, run: list[Op], src: dict, prefix: str) -> dict:
        """child input id -> sources, from the args of every instance of the run (the chain excluded)."""
        first = run[0]
        child = first.block
        out: dict[str, list] = {inp.id: [] for inp in child.inputs}
        for k, inst in enumerate(run):
            refs = [a for a in inst.args if isinstance(a, Ref)]
            for inp, ref in zip(child.inputs, refs):
                if k > 0 and ref.node == run[k - 1].id:
                    continue
                skip = bool(bg.graph.edges[ref.node, inst.id].get("skip")) if bg.graph.has_edge(
                    ref.node, inst.id) else False
                for s, key, s_skip in _flat(src.get(ref.node, [])):
                    entry = (s, key, skip or s_skip)
                    if entry not in out[inp.id]:
                        out[inp.id].append(entry)
        return out


def _flat(srcs):
    if isinstance(srcs, dict):  # a multi-output block read as a whole
        return [e for v in srcs.values() for e in v]
    return srcs


def _group_of(node: VNode, prefix: str) -> str:
    return node.id[len("grp/") + len(prefix):]


def _multi_block(bg: BlockGraph, op: Op) -> bool:
    if not op.args or not isinstance(op.args[0], Ref) or op.args[0].node is None:
        return False
    base = bg.op(op.args[0].node)
    return base.kind == "block" and len(base.block.outputs) > 1 and isinstance(op.args[1], int)


def _input_text(op: Op) -> str:
    dims = []
    for d in op.dims or ():
        dims.append(str(d) if isinstance(d, int) else f"{d[0]}={d[1]}" if d[1] is not None else str(d[0]))
    return f"{op.dtype or 'float32'}[{', '.join(dims)}]" if op.dims is not None else (op.dtype or "")


def _block_text(op: Op, run: list[Op], bg: BlockGraph) -> tuple[str, str]:
    if len(run) == 1:
        return _short(op.path, op.cluster), op.label or op.target
    first, last = _short(run[0].path, op.cluster), _short(run[-1].path, op.cluster)
    return f"{first}–{last}", f"{op.label or op.target} ×{len(run)}"


def _tip(key: str, op: Op, doc: str | None = None) -> str:
    lines = [key, op.label or op.target]
    d = op.doc or doc
    if d:
        lines.append(d)
    return "\n".join(dict.fromkeys(lines))


def build_view(graph: BlockGraph, depth: int | None = None) -> View:
    b = _Builder(depth)
    root = VCluster("root", graph.name, graph.doc or graph.name, "root")
    src = b.block(graph, "", 0, root, None)
    heads = []
    for o in graph.outputs:
        text = f"{o.name} ({o.task})" if o.task else o.name
        node = VNode("head/" + o.name, "head", text, None, "\n".join(x for x in (text, o.doc) if x), kind="head")
        heads.append(node)
        b.categories.add("head")
        for s, key, _ in _flat(src.get(o.ref.node, [])):
            b.edge(s, node.id, False, key)
    cats = [c for c in CATEGORIES if c in b.categories]
    return View(root, b.inputs, heads, list(b.edges.values()), cats)
