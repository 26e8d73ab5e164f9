"""netspec's compiler: checked spec -> torch.fx.GraphModule, ejected PyTorch code.

`compiler.build(source, model=None, **params)` and `compiler.load_weights(model, path)`
are the Python API; `compiler.locate_failure(model, *inputs)` names the spec line of the
op where a built model fails on real data. Attributes load lazily so `import compiler`
(and `netspec check`) stays fast and torch is imported only when needed.
"""
from __future__ import annotations

__all__ = ["build", "analyze", "load_weights", "eject", "locate_failure"]


def __getattr__(name):
    if name in ("build", "analyze"):
        from . import builder
        return getattr(builder, name)
    if name == "load_weights":
        from .weights import load_weights
        return load_weights
    if name == "locate_failure":
        from .shapes import locate_failure
        return locate_failure
    if name == "eject":
        from .eject import eject
        return eject
    raise AttributeError(name)
