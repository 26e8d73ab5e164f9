"""netspec's compiler: checked spec -> torch.fx.GraphModule, ejected PyTorch code.

`compiler.build(source, model=None, **params)` and `compiler.load_weights(model, path)`
are the Python API (`compiler.freeze` / `compiler.select` name layers by pattern for fine-tuning); `compiler.locate_failure(model, *inputs)` names the spec line of the
op where a built model fails on real data. Attributes load lazily so `import compiler`
(and `netspec check`) stays fast and torch is imported only when needed.
"""
from __future__ import annotations

__all__ = ["build", "analyze", "load_weights", "WeightsError", "eject", "locate_failure", "freeze", "select"]


def __getattr__(name):
    if name in ("build", "analyze"):
        from . import builder
        return getattr(builder, name)
    if name in ("load_weights", "WeightsError"):
        from . import weights
        return getattr(weights, name)
    if name in ("freeze", "select"):  # fine-tuning: layers named by patterns (finetune.py)
        from . import finetune
        return getattr(finetune, name)
    if name == "locate_failure":
        from .shapes import locate_failure
        return locate_failure
    if name == "eject":
        from .eject import eject
        return eject
    raise AttributeError(name)
