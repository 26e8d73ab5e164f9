"""What a diagram shows: the graph IR flattened into visible nodes, clusters and edges.

Block instances and named groups become clusters, or one node where they sit at or
below `depth`. A run of consecutive instances of the same BlockGraph (GPT-2's h.0..h.11)
becomes one cluster or node marked ×N. A block's input ops are not drawn: its inner
layers are wired to whatever feeds the instance, and whatever reads the instance is
wired to the layer that produced its output. Runtime sizes (`size`, `numel`) are
folded into the labels that use them (view(B, T, C)) and not drawn.

Which blocks are collapsed is `depth` (everything nested that deep) adjusted by two
sets of paths: `collapsed` (folded whatever the depth) and `expanded` (opened whatever
the depth); `netspec serve` toggles them on a click. Edges marked skip by elaboration
are dashed only when `skips.true_skips` agrees; a layer whose weight is tied to another
(`tie=transformer.wte`) gets a `tie` edge from it.

Every visible thing has a stable id built from the op's full path, so the same spec
always gives the same DOT text.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..ir import BlockGraph, Op, Ref
from ..registry import CATEGORIES
from .labels import block_text, full_block_text, group_summary, input_text, merge_text, run_text, tooltip
from .skips import is_hidden, true_skips
from .style import op_name


@dataclass
class VNode:
    id: str
    category: str
    title: str | None  # bold first line (name)
    body: str | None  # layer text
    tooltip: str
    kind: str = "op"  # op | input | block | repeat | group | head
    count: int = 1  # ×N for a collapsed run
    key: str | None = None  # the full path it stands for (the first of a run; a group's path)
    shape_key: str | None = None  # the full path whose value leaves it (a run's last instance)
    param_keys: tuple[str, ...] = ()  # module paths whose parameters it holds (every instance of a run)


@dataclass
class VCluster:
    id: str
    title: str
    tooltip: str
    kind: str  # group | block | repeat | root
    items: list = field(default_factory=list)  # VNode | VCluster, in source order
    key: str | None = None  # the full path it stands for (the first of a run); collapsing it folds this
    param_keys: tuple[str, ...] = ()


@dataclass
class VEdge:
    src: str
    dst: str
    skip: bool
    shape_key: str | None  # full op path of the value, for the shapes table
    tie: str | None = None  # a tied weight: the text "lm_head.weight is transformer.wte.weight"


@dataclass
class View:
    root: VCluster
    inputs: list[VNode]
    heads: list[VNode]
    edges: list[VEdge]
    categories: list[str]  # categories drawn, in CATEGORIES order
    nodes: dict[str, VNode] = field(default_factory=dict)  # id -> node, every visible node


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








class _Builder:
    def __init__(self, depth: int | None, collapsed=(), expanded=(), defaults: dict | None = None):
        self.depth = depth
        self.collapse, self.expand = frozenset(collapsed), frozenset(expanded)
        self.defaults = defaults
        self.edges: dict[tuple[str, str], VEdge] = {}
        self.categories: set[str] = set()
        self.inputs: list[VNode] = []
        self.nodes: dict[str, VNode] = {}
        self.visible: dict[str, str] = {}  # full op path -> the visible node drawing it
        self.ties: list[tuple[str, str, str]] = []  # (tied module's full path, full path it shares, node id)
        self.skips: dict[int, frozenset] = {}  # id(BlockGraph) -> its true skips (shared blocks: once)

    def collapsed(self, level: int, key: str) -> bool:
        if key in self.collapse:
            return True
        return self.depth is not None and level >= self.depth and key not in self.expand

    def true_skips(self, bg: BlockGraph) -> frozenset:
        if id(bg) not in self.skips:
            self.skips[id(bg)] = true_skips(bg)
        return self.skips[id(bg)]

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
        self.nodes[node.id] = node

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
                    if self.collapsed(lvl, key):
                        node = VNode("grp/" + key, "block", parts[i], None, key, kind="group", key=key,
                                     param_keys=(key,))
                        self.place(node, parent)
                        group_members[gpath] = []
                        groups[gpath] = node
                    else:
                        cl = VCluster("cluster_" + key, parts[i], key, "group", key=key, param_keys=(key,))
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
                node = VNode(key, "input", op.id, input_text(op), tooltip(key, op), kind="input", key=key,
                             shape_key=key)
                self.inputs.append(node)
                self.categories.add("input")
                self.nodes[node.id] = node
                src[op.id], dst[op.id] = [(node.id, key, False)], node.id
                continue
            if is_hidden(op):
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
                self._note(op, key, where.id, prefix)
                continue
            if op.kind == "block":
                run, index = runs.get(op.id, ([op], 0))
                if index > 0:  # a later instance of a run: drawn by the first one
                    src[op.id] = [(v, key, False) for v, _, _ in _flat(src[run[0].id])]
                    dst[op.id] = dst[run[0].id]
                    continue
                last_key = _full(prefix, run[-1])
                title, body = run_text(op, run, block_text(op.block, self.defaults))
                tip = tooltip(key if len(run) == 1 else f"{key} .. {last_key}", op, op.block.doc,
                           text=full_block_text(op.block))
                keys = tuple(_full(prefix, r) for r in run)
                if self.collapsed(lvl, key):
                    node = VNode(key, "block", title, body, tip, kind="repeat" if len(run) > 1 else "block",
                                 count=len(run), key=key, shape_key=last_key, param_keys=keys)
                    self.place(node, where)
                    src[op.id], dst[op.id] = [(node.id, last_key, False)], node.id
                    for r in run:
                        self._note_block(r.block, _full(prefix, r) + ".", node.id)
                    continue
                cl = VCluster("cluster_" + key, f"{title}  {body}", tip, "repeat" if len(run) > 1 else "block",
                              key=key, param_keys=keys)
                where.items.append(cl)
                child_inputs = self._child_inputs(bg, run, src, prefix)
                child_src = self.block(op.block, prefix + op.path + ".", lvl + 1, cl, child_inputs)
                outs = {o.name: [(v, last_key, False) for v, _, _ in child_src.get(o.ref.node, [])]
                        for o in op.block.outputs}
                src[op.id] = outs if len(outs) > 1 else next(iter(outs.values()), [])
                dst[op.id] = None
                continue
            node = VNode(key, op.category, op_name(op), merge_text(op) or op.label or op.target, tooltip(key, op),
                         key=key, shape_key=key, param_keys=(key,) if op.path else ())
            self.place(node, where)
            src[op.id], dst[op.id] = [(node.id, key, False)], node.id
            self._note(op, key, node.id, prefix)

        for gpath, members in group_members.items():
            groups[gpath].body = group_summary(members)

        skips = self.true_skips(bg)
        for u, v in bg.graph.edges:
            d = dst.get(v)
            if d is None:
                continue
            run_v = runs.get(v)
            if run_v and run_v[1] > 0 and run_v[0][run_v[1] - 1].id == u:
                continue  # the chain inside a collapsed run
            for s, key, s_skip in _flat(src.get(u, [])):
                self.edge(s, d, (u, v) in skips or s_skip, _full(prefix, bg.op(u)) if key is None else key)
        return src

    def _note(self, op: Op, key: str, node_id: str, prefix: str):
        """Remember where a layer is drawn, and the weight it shares."""
        if op.path:
            self.visible[key] = node_id
        if op.tie is not None:
            self.ties.append((key, prefix + op.tie[0], node_id))

    def _note_block(self, bg: BlockGraph, prefix: str, node_id: str):
        """Every layer inside a collapsed block is drawn by its node."""
        for op in bg.ops():
            key = _full(prefix, op)
            if op.kind == "block":
                self._note_block(op.block, key + ".", node_id)
            else:
                self._note(op, key, node_id, prefix)

    def tie_edges(self):
        for key, shared, node_id in self.ties:
            owner = self.visible.get(shared)
            if owner is None or owner == node_id:
                continue  # both inside one collapsed node: nothing to draw between them
            text = f"{key}.weight is {shared}.weight"
            self.edges[(owner, node_id, "tie")] = VEdge(owner, node_id, False, None, tie=text)
            for nid in (node_id, owner):
                n = self.nodes[nid]
                if text not in n.tooltip:
                    n.tooltip += f"\nweight tied: {text}"

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
                skip = (ref.node, inst.id) in self.true_skips(bg)
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










def build_view(graph: BlockGraph, depth: int | None = None, *, collapsed=(), expanded=(),
               defaults: dict | None = None) -> View:
    """The visible structure of `graph`.

    depth: collapse every block and group nested this deep (None: open everything).
    collapsed / expanded: full paths folded / opened whatever the depth.
    defaults: `labels.block_defaults(program)`, so block labels omit default arguments.
    """
    b = _Builder(depth, collapsed, expanded, defaults)
    root = VCluster("root", graph.name, graph.doc or graph.name, "root")
    src = b.block(graph, "", 0, root, None)
    heads = []
    for o in graph.outputs:
        text = f"{o.name} ({o.task})" if o.task else o.name
        node = VNode("head/" + o.name, "head", text, None, "\n".join(x for x in (text, o.doc) if x), kind="head")
        heads.append(node)
        b.categories.add("head")
        b.nodes[node.id] = node
        for s, key, _ in _flat(src.get(o.ref.node, [])):
            b.edge(s, node.id, False, key)
    b.tie_edges()
    cats = [c for c in CATEGORIES if c in b.categories]
    return View(root, b.inputs, heads, list(b.edges.values()), cats, b.nodes)
