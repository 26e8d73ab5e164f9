"""Optimization passes over lowered graphs: specs written as the notes write them run as
fast as hand-tuned PyTorch.

Each pass is a pure function fx.GraphModule -> fx.GraphModule over one block's graph
(the blocks inside it are GraphModules of their own, optimized before it), in one
ordered tuple: adding a pass is one file and one line here. A pass that cannot prove a
rewrite computes what the spec wrote leaves the code as written. What fired, and where
in the spec, is kept in `gm.meta["netspec_rewrites"]`; NETSPEC_DEBUG=1 prints it.

`build()` and `netspec compile` apply them; `check`, `summary` and `render` show the
spec as written; `build(..., optimize=False)` and `netspec compile --no-optimize` give
the literal graph.
"""
from __future__ import annotations

import sys

from torch import fx

from .attention import fuse_attention
from .identity import remove_identity_layers
from .inplace import inplace_relu
from .normalization import fuse_batch_norm, fuse_layer_norm
from .rewrite import REWRITES, Rewrite

# In order. Attention first: it recognises a Dropout(0.0) on the attention weights as part
# of the pattern, before remove_identity_layers would take it away. inplace_relu last: the
# fused norms and skipped layers decide what a ReLU's input is.
PASSES = (
    fuse_attention,
    fuse_layer_norm,
    fuse_batch_norm,
    remove_identity_layers,
    inplace_relu,
)


def optimize(gm: fx.GraphModule, passes=PASSES) -> fx.GraphModule:
    """Run `passes` in order over one module's own graph; returns the result (gm when none fired)."""
    for p in passes:
        gm = p(gm)
    return gm


def rewrites(model) -> list[Rewrite]:
    """Every rewrite that made `model` and the distinct blocks inside it, outermost first."""
    seen, out = set(), []
    for m in model.modules():
        if isinstance(m, fx.GraphModule) and id(m.graph) not in seen:
            seen.add(id(m.graph))
            out.extend(getattr(m, "meta", {}).get(REWRITES, ()))
    return out


def print_rewrites(model, stream=None) -> None:
    """NETSPEC_DEBUG=1: which passes fired where."""
    stream = stream or sys.stderr
    notes = rewrites(model)
    print(f"# optimizer: {len(notes)} rewrite(s)" + (":" if notes else ""), file=stream)
    for r in notes:
        print(f"  {r}", file=stream)


__all__ = ["PASSES", "optimize", "rewrites", "print_rewrites", "fuse_attention", "fuse_layer_norm", "fuse_batch_norm",
           "remove_identity_layers", "inplace_relu"]
