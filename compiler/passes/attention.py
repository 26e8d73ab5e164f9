"""Fuse attention written from primitives into F.scaled_dot_product_attention.

The notes write attention as

    att = q @ k.T * scale          # or / sqrt(hs); (B, nh, T, T)
    causal mask                    # causal_mask(), masked_fill(tril(ones(T, T)) == 0, -inf),
                                   # + triu(full((T, T), -inf), 1), or a mask the block was given
    softmax(dim=-1)
    dropout                        # optional, an nn.Dropout: active in training only
    @ v                            # (B, nh, T, hs)

which materialises the T x T scores of every head; F.scaled_dot_product_attention
computes the same without them (FlashAttention on a GPU). The pass walks back from each
`@ v` and fires only when every step is provably what the fused kernel does:

- scores are `q @ k.transpose(-2, -1)` (or the same two trailing dims named positively
  when k's rank is known), and q and v have a known rank of at least 2;
- every intermediate (scores, scaled, masked, softmax, dropout) has no other user;
- the scale is a product of numbers (`* c`, `/ c`, `c *`); a scale applied after a -inf
  mask must be positive (a negative one would turn -inf into +inf);
- softmax is over the last dim; the mask is at most one op, and is the causal one
  (its sizes provably the scores' two trailing dims) or comes from the block's inputs;
- a -inf mask value is exactly -inf (-1e9 is close, not equal).

Anything else (a softmax over dim 1, a mask built from sizes that is not causal, a
scale held in a tensor, attention weights used twice) is left as written.
"""
from __future__ import annotations

import math
import operator
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import fx, nn

from ...dsl import symbolic
from .. import ops as netspec_ops
from . import masks
from .rewrite import Rewrite, copy_graph, erase_chain, is_matmul, number, only_user, rewritten
from .symbolic import Facts, infer, same

_SOFTMAX = (torch.softmax, F.softmax, "softmax")
_TRANSPOSE = (torch.transpose, "transpose")


@dataclass
class _Match:
    q: fx.Node
    k: fx.Node
    v: fx.Node
    scale: float = 1.0
    is_causal: bool = False
    attn_mask: fx.Node | None = None
    mask_kind: str = ""  # "fill" (True = masked out) | "add" (added to the scores)
    dropout: str | None = None  # module path of an nn.Dropout with p > 0
    chain: list = field(default_factory=list)  # replaced nodes, last first
    steps: list = field(default_factory=list)  # what was recognised, in source order, for the note


def _dim_of(n: fx.Node):
    if n.op == "call_module":
        return None
    return n.args[1] if len(n.args) > 1 else n.kwargs.get("dim")


def _is_last_dim(d, shape) -> bool:
    if d == -1:
        return True
    return isinstance(d, int) and shape is not None and d == len(shape) - 1


def _softmax(gm, n, shapes) -> bool:
    if n.op == "call_module":
        m = gm.get_submodule(n.target)
        return type(m) is nn.Softmax and _is_last_dim(m.dim, shapes.get(n.args[0]))
    if n.target not in _SOFTMAX or len(n.args) < 1 or set(n.kwargs) - {"dim"}:
        return False
    return _is_last_dim(_dim_of(n), shapes.get(n.args[0]))


def _transposed_key(kt, shapes):
    """k if kt is k with its last two dims swapped, else None."""
    if not isinstance(kt, fx.Node) or kt.op not in ("call_function", "call_method") or kt.target not in _TRANSPOSE:
        return None
    k, dims = kt.args[0], tuple(kt.args[1:3])
    if len(dims) != 2 or not isinstance(k, fx.Node):
        return None
    if set(dims) == {-2, -1}:
        return k
    s = shapes.get(k)
    if s is not None and len(s) >= 2 and set(dims) == {len(s) - 2, len(s) - 1}:
        return k
    return None


def _scale_factor(n: fx.Node, prev: fx.Node):
    """The number `n` multiplies `prev` by (`prev * c`, `c * prev`, `prev / c`), else None."""
    if n.op != "call_function" or len(n.args) != 2 or n.kwargs:
        return None
    a, b = n.args
    if n.target in (operator.mul, torch.mul):
        c = b if a is prev else a if b is prev else None
    elif n.target is operator.truediv and a is prev:
        c = 1.0 / b if number(b) and b != 0 else None
    else:
        return None
    if not (number(c) and c != 0 and math.isfinite(c)):
        return None
    return c if symbolic.is_symbolic(c) else float(c)  # ejected code writes `1.0 / math.sqrt(hs)`


def _mask_step(n: fx.Node, prev: fx.Node, facts: Facts):
    """(kind, mask node or None, causal?) if n masks the scores `prev`, else None."""
    if n.op == "call_function" and n.target is netspec_ops.causal_mask and n.args[0] is prev:
        value = n.args[1] if len(n.args) > 1 else n.kwargs.get("value", -math.inf)
        return ("fill", None, True) if value == -math.inf else None
    if n.op in ("call_function", "call_method") and n.target in (torch.masked_fill, "masked_fill") \
            and n.args[0] is prev:
        mask = n.args[1] if len(n.args) > 1 else n.kwargs.get("mask")
        value = n.args[2] if len(n.args) > 2 else n.kwargs.get("value")
        if value != -math.inf or not isinstance(mask, fx.Node):
            return None
        tri = masks.triangle(mask)
        if tri is not None:
            return ("fill", None, True) if masks.masks_future(tri) and _fits(tri, prev, facts) else None
        return ("fill", mask, False) if masks.is_given(mask) else None
    if n.op == "call_function" and n.target in (operator.add, torch.add) and len(n.args) == 2 and not n.kwargs:
        a, b = n.args
        mask = b if a is prev else a if b is prev else None
        if not isinstance(mask, fx.Node):
            return None
        tri = masks.triangle(mask)
        if tri is not None:
            return ("add", None, True) if masks.adds_causal(tri) and _fits(tri, prev, facts) else None
        return ("add", mask, False) if masks.is_given(mask) else None
    return None


def _fits(tri: masks.Triangle, scores: fx.Node, facts: Facts) -> bool:
    """The mask is exactly (T, S) for scores (..., T, S), for every T and S."""
    s = facts.shapes.get(scores)
    if s is None or len(s) < 2:
        return False
    return same(facts.size(tri.rows), s[-2]) and same(facts.size(tri.cols), s[-1])


def _reaches_matmul(n, depth: int = 6) -> bool:
    """n is the scores, or the scores scaled or masked a few times."""
    if not isinstance(n, fx.Node) or depth == 0:
        return False
    if is_matmul(n):
        return True
    if n.op not in ("call_function", "call_method") or len(n.users) != 1:
        return False
    return any(_reaches_matmul(a, depth - 1) for a in n.args if isinstance(a, fx.Node))


def _scores_operand(n: fx.Node):
    """Which argument of a scale or mask step carries the scores (exactly one must)."""
    if n.op not in ("call_function", "call_method"):
        return None
    found = [a for a in n.args if _reaches_matmul(a)]
    return found[0] if len(found) == 1 else None


def _match(gm: fx.GraphModule, out: fx.Node, facts: Facts) -> _Match | None:
    """Walk back from `out` = weights @ v to the scores; None unless every step is provable."""
    shapes = facts.shapes
    weights, v = out.args
    chain, steps, dropout = [out], ["@ v"], None
    if weights.op == "call_module" and type(gm.get_submodule(weights.target)) is nn.Dropout:
        if not only_user(weights, out):
            return None
        p = gm.get_submodule(weights.target).p
        if not 0 <= p < 1:
            return None
        # a p that is a parameter of ejected code may be any: the helper reads it (dsl/symbolic.py)
        dropout = weights.target if p > 0 or symbolic.is_symbolic(p) else None
        steps.append(f"{weights.target}(p={p})")
        chain.append(weights)
        prev, weights = weights, weights.args[0]
    else:
        prev = out
    if not isinstance(weights, fx.Node) or not _softmax(gm, weights, shapes) or not only_user(weights, prev):
        return None
    steps.append("softmax(dim=-1)")
    chain.append(weights)
    # walking back, the scales met before the mask are those applied after it
    cur, nxt, scale, mask, later, after_mask = weights.args[0], weights, None, None, [], []
    while isinstance(cur, fx.Node) and not is_matmul(cur):
        src = _scores_operand(cur)
        if src is None or not only_user(cur, nxt):
            return None
        c = _scale_factor(cur, src)
        if c is not None:
            scale = c if scale is None else scale * c
            if mask is None:
                later.append(c)
            steps.append(f"* {c:g}")
        else:
            step = _mask_step(cur, src, facts)
            if step is None or mask is not None:
                return None
            mask, after_mask = step, list(later)
            steps.append("causal mask" if step[2] else "given mask")
        chain.append(cur)
        nxt, cur = cur, src
    if not isinstance(cur, fx.Node) or not only_user(cur, nxt):
        return None
    q, k = cur.args[0], _transposed_key(cur.args[1], shapes)
    qs, vs = shapes.get(q), shapes.get(v)
    if k is None or qs is None or vs is None or len(qs) < 2 or len(vs) < 2:
        return None
    chain.append(cur)
    steps.append("q @ k.T")
    m = _Match(q, k, v, scale=1.0 if scale is None else scale, dropout=dropout, chain=chain, steps=steps[::-1])
    if mask is not None:
        kind, node, causal = mask
        # scaling after the mask scales the mask: fine for -inf (times c > 0), not for a given additive one
        if after_mask and (any(c <= 0 for c in after_mask) or (kind == "add" and not causal)):
            return None
        m.is_causal, m.attn_mask, m.mask_kind = causal, node, kind
    return m


def _replace(graph: fx.Graph, m: _Match) -> fx.Node:
    out = m.chain[0]
    kwargs = {}
    with graph.inserting_before(out):
        if m.attn_mask is not None:
            mask = m.attn_mask
            if m.mask_kind == "fill":  # masked_fill's True = drop; the kernel's True = keep
                mask = graph.call_function(torch.logical_not, (mask,))
            else:  # an added mask takes the scores' dtype (a bool one adds 0/1, as `+` does)
                dtype = graph.call_function(getattr, (m.q, "dtype"))
                mask = graph.call_method("to", (mask, dtype))
            kwargs["attn_mask"] = mask
        if m.is_causal:
            kwargs["is_causal"] = True
        kwargs["scale"] = m.scale
        target = F.scaled_dot_product_attention if m.dropout is None else netspec_ops.attention
        fused = graph.call_function(target, (m.q, m.k, m.v), kwargs)
    fused.meta.update({k: out.meta[k] for k in ("span", "netspec_op") if k in out.meta})
    out.replace_all_uses_with(fused)
    erase_chain(graph, m.chain)
    if m.dropout is not None:  # the layer itself: the helper reads its p and its mode at every call
        with graph.inserting_before(fused):
            fused.update_kwarg("dropout", graph.get_attr(m.dropout))
    return fused


def _note(m: _Match, fused: fx.Node) -> str:
    how = [("is_causal", m.is_causal or None), ("attn_mask", "given" if m.attn_mask is not None else None),
           ("scale", f"{m.scale:g}"), ("dropout", m.dropout)]
    args = ", ".join(f"{k}={v}" for k, v in how if v)
    return f"{', '.join(m.steps)} -> {fused.target.__name__}({args})"


def fuse_attention(gm: fx.GraphModule) -> fx.GraphModule:
    """Replace each provable softmax(q @ k.T * scale + mask) @ v with one fused attention call."""
    if not any(is_matmul(n) for n in gm.graph.nodes):
        return gm
    graph = copy_graph(gm)
    facts = infer(graph, gm)
    notes, replaced = [], set()
    for out in [n for n in graph.nodes if is_matmul(n)]:
        if out in replaced:  # the scores of an attention fused already
            continue
        m = _match(gm, out, facts)
        if m is None:
            continue
        replaced.update(m.chain)
        span = m.chain[-1].meta.get("span")  # the scores' line: where the pattern starts
        fused = _replace(graph, m)
        notes.append(Rewrite("fuse_attention", span, type(gm).__name__, _note(m, fused)))
    return rewritten(gm, graph, notes)
