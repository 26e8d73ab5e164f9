"""Fuse normalization written from primitives into F.layer_norm / F.batch_norm.

The notes write a normalization as

    mu = x.mean(dim=D, keepdim=true)
    var = x.var(dim=D, keepdim=true, correction=0)        # the biased variance
    xhat = (x - mu) / sqrt(var + eps)                      # or (x - mu) * rsqrt(var + eps)

six kernels and four temporaries of x's size. When D is x's trailing dims this is
F.layer_norm(x, x.shape[-k:], eps=eps); when D is every dim but 1 and the statistics
pass through RunningStat layers as specs/batchnorm_primitives.nn writes them (the
batch mean and the unbiased variance update the running ones; eval uses those), it is
F.batch_norm with those buffers. The learned scale and shift after it stay as written:
the pass cannot prove their shapes are the normalized ones for every input.

Both fire only when the dims are provable (negative trailing dims, or a rank the spec
declares), eps is a number, and the intermediates have no other users.
"""
from __future__ import annotations

import operator

import torch
import torch.nn.functional as F
from torch import fx

from .. import ops as netspec_ops
from .rewrite import Rewrite, copy_graph, erase_chain, number, only_user, rewritten
from .symbolic import infer


def _call(n, target, method: str | None = None) -> bool:
    return isinstance(n, fx.Node) and ((n.op == "call_function" and n.target is target) or
                                       (method is not None and n.op == "call_method" and n.target == method))


def _arg(n: fx.Node, i: int, name: str, default=None):
    return n.args[i] if len(n.args) > i else n.kwargs.get(name, default)


def _stat(n, x, correction=None):
    """The dims D if n is x.mean(dim=D, keepdim=True) (correction None) or
    x.var(dim=D, keepdim=True, correction=c), else None."""
    if correction is None:  # mean(input, dim, keepdim)
        ok = _call(n, torch.mean, "mean") and set(n.kwargs) <= {"dim", "keepdim"} and len(n.args) <= 3 \
            and _arg(n, 2, "keepdim", False) is True
    else:  # var(input, dim, *, correction, keepdim): a third positional argument would be `unbiased`
        ok = _call(n, torch.var, "var") and set(n.kwargs) <= {"dim", "keepdim", "correction"} and len(n.args) <= 2 \
            and n.kwargs.get("correction", 1) == correction and n.kwargs.get("keepdim", False) is True
    if not ok or n.args[0] is not x:
        return None
    d = _arg(n, 1, "dim")
    d = (d,) if isinstance(d, int) else d
    return tuple(d) if isinstance(d, (tuple, list)) and d and all(isinstance(i, int) for i in d) else None


def _normalized(div: fx.Node):
    """(x, centered, mu, var_plus, var, eps, steps) for div = (x - mu) / sqrt(var + eps) or
    (x - mu) * rsqrt(var + eps), else None (nothing about the statistics checked yet)."""
    if _call(div, operator.truediv) and len(div.args) == 2:
        centered, root = div.args
        if not _call(root, torch.sqrt, "sqrt"):
            return None
    elif _call(div, operator.mul) and len(div.args) == 2:
        centered, root = div.args
        if not _call(root, torch.rsqrt, "rsqrt"):
            centered, root = root, centered
        if not _call(root, torch.rsqrt, "rsqrt"):
            return None
    else:
        return None
    if not _call(centered, operator.sub) or not isinstance(root.args[0], fx.Node):
        return None
    var_plus = root.args[0]
    if not _call(var_plus, operator.add) or len(var_plus.args) != 2:
        return None
    var, eps = var_plus.args
    if number(var) and isinstance(eps, fx.Node):
        var, eps = eps, var
    if not number(eps) or eps <= 0 or not isinstance(var, fx.Node):
        return None
    x, mu = centered.args
    if not isinstance(x, fx.Node) or not isinstance(mu, fx.Node):
        return None
    for node, user in ((centered, div), (root, div), (var_plus, root)):
        if not only_user(node, user):
            return None
    return x, centered, mu, var_plus, var, float(eps), root


def _dims(dims, rank):
    """dims as non-negative indices (a rank is needed for positive ones), else None."""
    if rank is None:
        return None if any(d >= 0 for d in dims) else dims
    out = tuple(sorted(d % rank for d in dims if -rank <= d < rank))
    return out if len(out) == len(dims) and len(set(out)) == len(out) else None


def _layer_norm(gm, div, facts):
    m = _normalized(div)
    if m is None:
        return None
    x, centered, mu, var_plus, var, eps, root = m
    d_mu, d_var = _stat(mu, x), _stat(var, x, correction=0)
    if d_mu is None or d_var is None or not only_user(mu, centered) or not only_user(var, var_plus):
        return None
    shape = facts.shapes.get(x)
    rank = len(shape) if shape is not None else None
    dm, dv = _dims(d_mu, rank), _dims(d_var, rank)
    if dm is None or dm != dv:
        return None
    k = len(dm)
    trailing = tuple(range(rank - k, rank)) if rank is not None else tuple(range(-k, 0))
    if dm != trailing:
        return None
    return x, k, eps, [div, root, var_plus, centered, var, mu]


def fuse_layer_norm(gm: fx.GraphModule) -> fx.GraphModule:
    """(x - mean) / sqrt(biased var + eps) over x's trailing dims -> F.layer_norm(x, x.shape[-k:])."""
    if not any(_call(n, torch.var, "var") for n in gm.graph.nodes):
        return gm
    graph = copy_graph(gm)
    facts = infer(graph, gm)
    notes, replaced = [], set()
    for div in list(graph.nodes):
        found = None if div in replaced else _layer_norm(gm, div, facts)
        if found is None:
            continue
        x, k, eps, chain = found
        replaced.update(chain)
        with graph.inserting_before(div):
            shape = graph.call_function(getattr, (x, "shape"))
            trailing = graph.call_function(operator.getitem, (shape, slice(-k, None)))
            fused = graph.call_function(F.layer_norm, (x, trailing), {"eps": eps})
        fused.meta.update({k_: div.meta[k_] for k_ in ("span", "netspec_op") if k_ in div.meta})
        span = chain[-1].meta.get("span")
        div.replace_all_uses_with(fused)
        erase_chain(graph, chain)
        notes.append(Rewrite("fuse_layer_norm", span, type(gm).__name__,
                             f"mean, var(correction=0) over the last {k} dims, (x - mean) / sqrt(var + {eps:g}) "
                             f"-> layer_norm(x, x.shape[-{k}:], eps={eps:g})"))
    return rewritten(gm, graph, notes)


def _running(gm, n, n_args):
    """The RunningStat layer n calls with n_args inputs, else None."""
    if n.op != "call_module" or len(n.args) != n_args or n.kwargs:
        return None
    layer = gm.get_submodule(n.target)
    return layer if isinstance(layer, netspec_ops.RunningStat) else None


def _batch_norm(gm, div, facts):
    m = _normalized(div)
    if m is None:
        return None
    x, centered, rm_node, var_plus, rv_node, eps, root = m
    rm, rv = _running(gm, rm_node, 1), _running(gm, rv_node, 2)
    if rm is None or rv is None or rm.momentum != rv.momentum:
        return None
    mu, (uvar, var) = rm_node.args[0], rv_node.args
    d_mu, d_var, d_uvar = _stat(mu, x), _stat(var, x, correction=0), _stat(uvar, x, correction=1)
    if d_mu is None or d_var is None or d_uvar is None:
        return None
    shape = facts.shapes.get(x)
    if shape is None or len(shape) < 2:
        return None
    want = tuple(d for d in range(len(shape)) if d != 1)  # every dim but the channels
    if not _dims(d_mu, len(shape)) == _dims(d_var, len(shape)) == _dims(d_uvar, len(shape)) == want:
        return None
    for node, user in ((rm_node, centered), (rv_node, var_plus), (mu, rm_node), (uvar, rv_node), (var, rv_node)):
        if not only_user(node, user):
            return None
    return x, rm_node.target, rv_node.target, eps, [div, root, var_plus, centered, rv_node, rm_node, var, uvar, mu]


def fuse_batch_norm(gm: fx.GraphModule) -> fx.GraphModule:
    """Batch statistics through RunningStat layers, then (x - mean) / sqrt(var + eps) ->
    F.batch_norm with the layers' buffers (compiler.ops.batch_norm)."""
    if not any(isinstance(m, netspec_ops.RunningStat) for m in gm.children()):
        return gm
    graph = copy_graph(gm)
    facts = infer(graph, gm)
    notes, replaced = [], set()
    for div in list(graph.nodes):
        found = None if div in replaced else _batch_norm(gm, div, facts)
        if found is None:
            continue
        x, rm, rv, eps, chain = found
        replaced.update(chain)
        span = chain[-1].meta.get("span")
        with graph.inserting_before(div):
            fused = graph.call_function(netspec_ops.batch_norm, (x,), {"eps": eps})
        fused.meta.update({k: div.meta[k] for k in ("span", "netspec_op") if k in div.meta})
        div.replace_all_uses_with(fused)
        erase_chain(graph, chain)
        with graph.inserting_before(fused):  # made after the layer calls are gone
            fused.args = (x, graph.get_attr(rm), graph.get_attr(rv))
        notes.append(Rewrite("fuse_batch_norm", span, type(gm).__name__,
                             f"batch mean and variances through {rm}, {rv}, (x - mean) / sqrt(var + {eps:g}) "
                             f"-> batch_norm(x, {rm}, {rv}, eps={eps:g})"))
    return rewritten(gm, graph, notes)
