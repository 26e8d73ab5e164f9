"""What the compiler adds to a diagram: shapes, parameter counts and the title, as plain data.

`dsl.render` draws without torch; `netspec render` and `netspec serve` call
`diagram_data(analysis)` to hand it what only the built (meta-device) model knows.
"""
from __future__ import annotations

from torch import nn


def param_counts(module: nn.Module) -> dict[str, int]:
    """Module or parameter path -> the parameters under it, a tensor shared by two
    layers (tied weights) counted once per subtree but once at each layer."""
    under: dict[str, dict[int, int]] = {}
    for name, p in module.named_parameters(remove_duplicate=False):
        parts = name.split(".")
        for i in range(1, len(parts) + 1):
            under.setdefault(".".join(parts[:i]), {})[id(p)] = p.numel()
    return {path: sum(ids.values()) for path, ids in under.items()}


def diagram_data(analysis, *, shapes: bool = True, params: bool = False) -> dict:
    """Keyword arguments for `dsl.render.to_dot` / `render` from a `compiler.analyze` result.
    Tooltips always carry shapes and parameter counts; `shapes` puts shapes on the edges,
    `params` counts on the layers and clusters."""
    return {"shapes": analysis.shapes, "shape_labels": shapes,
            "params": param_counts(analysis.module), "param_labels": params,
            "program": analysis.checked.program,
            "title": f"{analysis.info.name}  ({analysis.num_params:,} parameters)"}
