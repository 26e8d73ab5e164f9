"""Skip layers that return their input: nn.Identity, and dropout with p = 0.

nanoGPT-style specs keep `Dropout(dropout)` layers with dropout = 0.0 for pretraining
(GPT-2 calls three per block); each is a Python module call that returns its input
unchanged, in training as in eval (torch returns the input itself when p is 0). The
layers stay in the module tree under their spec names; the graph no longer calls them.
Ejected code keeps a dropout whose p is a parameter of the model (`nn.Dropout(dropout)`,
dsl/symbolic.py): the file then takes any dropout, as hand-written code does.
"""
from __future__ import annotations

from torch import fx, nn

from ...dsl import symbolic
from .rewrite import Rewrite, copy_graph, rewritten

_DROPOUTS = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.FeatureAlphaDropout)


def _is_identity(m: nn.Module) -> bool:
    if type(m) is nn.Identity:
        return True
    return type(m) in _DROPOUTS and m.p == 0 and not symbolic.is_symbolic(m.p)


def remove_identity_layers(gm: fx.GraphModule) -> fx.GraphModule:
    """Replace calls of identity layers by their input."""
    targets = [n for n in gm.graph.nodes if n.op == "call_module" and len(n.args) == 1 and not n.kwargs
               and isinstance(n.args[0], fx.Node) and _is_identity(gm.get_submodule(n.target))]
    if not targets:
        return gm
    graph = copy_graph(gm)
    notes = []
    for n in [n for n in graph.nodes if n.op == "call_module" and n.target in {t.target for t in targets}]:
        if len(n.args) != 1 or n.kwargs or not isinstance(n.args[0], fx.Node):
            continue
        n.replace_all_uses_with(n.args[0])
        graph.erase_node(n)
        m = gm.get_submodule(n.target)
        notes.append(Rewrite("remove_identity_layers", n.meta.get("span"), type(gm).__name__,
                             f"{n.target}: {type(m).__name__}" + (f"(p={m.p})" if hasattr(m, "p") else "")
                             + " returns its input"))
    return rewritten(gm, graph, notes)
