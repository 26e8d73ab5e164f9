"""Skip edges between clusters pull them side by side: the rule that draws U-Net as a U.

In a cluster whose items (blocks, groups, layers, in source order) include clusters
joined by skip edges that span other items — encoder stage i to decoder stage i — and
whose spans nest (down1..up1 around down2..up2 around ...), the flow is folded:
everything up to the innermost source runs against the diagram's direction, the part
between the innermost pair (the turn) is one row when it is a short chain (U-Net's pool4
and bottom DoubleConv) and runs against the direction otherwise, and the rest runs with
it. Each skip is pulled level (minlen 0, weight 4), so its two ends meet side by side and
it crosses horizontally. In the default bottom-to-top diagram the encoder goes down from
the input at the top left, along the bottom, and the decoder comes up to the head at the
top right, as the U-Net paper draws it.

There is no U-Net case here: any cluster with nested skips between its items folds
(a single long skip folds once). A skip that starts or ends at a plain layer does not:
GPT-2's and ResNet's residuals run from a layer or a block's input to a merge inside the
block, so nothing folds there.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .view import VCluster, View

MAX_FLAT = 6  # layers of the turn laid side by side at most


@dataclass
class Fold:
    against: frozenset[str] = frozenset()  # node ids whose edges among themselves run against the direction
    bottom: frozenset[str] = frozenset()  # the turn, laid flat (one rank) when it is small
    level: frozenset[tuple[str, str]] = frozenset()  # skip edges pulled level (src, dst)
    unpinned: frozenset[str] = frozenset()  # inputs not held at the bottom rank (they start the fold)
    pairs: list[tuple[str, str]] = field(default_factory=list)  # (source item title, target item title)


def _members(item) -> set[str]:
    if isinstance(item, VCluster):
        out = set()
        for it in item.items:
            out |= _members(it)
        return out
    return {item.id}


def _title(item) -> str:
    return item.key or item.id


def _fold_cluster(cl: VCluster, view: View) -> Fold | None:
    where: dict[str, int] = {}
    for i, it in enumerate(cl.items):
        for n in _members(it):
            where[n] = i
    spans: dict[tuple[int, int], list] = {}
    for e in view.edges:
        if not (e.skip and e.src in where and e.dst in where):
            continue
        a, b = where[e.src], where[e.dst]
        if b - a >= 2 and isinstance(cl.items[a], VCluster) and isinstance(cl.items[b], VCluster):
            spans.setdefault((a, b), []).append(e)
    if not spans:
        return None
    chain: list[tuple[int, int]] = []
    for a, b in sorted(spans, key=lambda ab: (ab[0], -ab[1])):  # outermost first, then the ones it encloses
        if not chain or (a > chain[-1][0] and b < chain[-1][1]):
            chain.append((a, b))
    inner_a, inner_b = chain[-1]
    against: set[str] = set()
    for it in cl.items[:inner_a + 1]:
        against |= _members(it)
    turn: set[str] = set()
    for it in cl.items[inner_a + 1:inner_b]:
        turn |= _members(it)
    # a short turn (U-Net's bottom DoubleConv) is drawn as one row; a long one goes down with the encoder
    flat = len(turn) <= MAX_FLAT and all(_chain(turn, view))
    if not flat:
        against |= turn
    fed = {}
    for e in view.edges:
        fed.setdefault(e.src, set()).add(e.dst)
    unpinned = {n.id for n in view.inputs if fed.get(n.id) and fed[n.id] <= against}
    level = {(e.src, e.dst) for ab in chain for e in spans[ab]}
    pairs = [(_title(cl.items[a]), _title(cl.items[b])) for a, b in chain]
    return Fold(frozenset(against | unpinned), frozenset(turn) if flat else frozenset(), frozenset(level),
                frozenset(unpinned), pairs)


def _chain(nodes: set[str], view: View):
    """Yields False unless `nodes` (several) are joined by edges into one chain."""
    inner = [(e.src, e.dst) for e in view.edges if e.src in nodes and e.dst in nodes and not e.tie]
    yield len(nodes) >= 2 and len(inner) == len(nodes) - 1


def fold(view: View) -> Fold:
    """The fold of the outermost cluster that has one (breadth first), or none."""
    queue = [view.root]
    while queue:
        cl = queue.pop(0)
        f = _fold_cluster(cl, view)
        if f is not None:
            return f
        queue += [it for it in cl.items if isinstance(it, VCluster)]
    return Fold()
