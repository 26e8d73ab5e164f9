"""netspec: a graph-based architecture DSL and compiler for neural networks.

    import netspec
    model = netspec.build("gpt2", n_layer=4)          # a torch.fx.GraphModule, keys from the spec
    netspec.load_weights(model, "gpt2.safetensors")  # strict: every key, every shape
    netspec.train(model, data=dataset)               # a torch Dataset / DataLoader, or a SOURCE
    info = netspec.analyze("resnet", "ResNet50")     # shapes and counts on the meta device
    code = netspec.eject("unet")                     # standalone PyTorch source

The package maps the repository's stage folders into one import root: `netspec.dsl`
(text -> AST -> graph IR -> checks -> diagrams, no torch), `netspec.compiler` (graph IR
-> torch.fx -> passes, eject, summary, weights), `netspec.train` (the training loop,
data, tasks, checkpoints) and `netspec.stdlib` (the standard library of specs). Imports
run one way: train -> compiler -> dsl. Attributes load lazily, so `import netspec`
imports no torch.
"""
from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

# public name -> (module, attribute); one table, read by __getattr__ and __dir__. An attribute of
# None is the module itself: `netspec.train` is the training package, which is also callable
# (`netspec.train(model, data=dataset)`, see netspec/train/__init__.py).
_API = {
    "build": ("netspec.compiler.builder", "build"),
    "train": ("netspec.train", None),
    "analyze": ("netspec.compiler.builder", "analyze"),
    "load_weights": ("netspec.compiler.weights", "load_weights"),
    "eject": ("netspec.compiler.eject", "eject"),
    "NetspecError": ("netspec.dsl.errors", "NetspecError"),
}

__all__ = sorted(_API) + ["__version__"]


def __getattr__(name: str):
    if name in _API:
        module, attr = _API[name]
        value = import_module(module) if attr is None else getattr(import_module(module), attr)
        globals()[name] = value  # later look-ups skip this function
        return value
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version
        try:
            return version("netspec-nn")
        except PackageNotFoundError:
            return "unknown"
    raise AttributeError(f"module 'netspec' has no attribute {name!r}")


def __dir__():
    return sorted(set(__all__) | {n for n in globals() if n.startswith("__")})


if TYPE_CHECKING:  # for editors and type checkers; nothing is imported at run time
    from .compiler.builder import analyze, build  # noqa: F401
    from .compiler.eject import eject  # noqa: F401
    from .compiler.weights import load_weights  # noqa: F401
    from .dsl.errors import NetspecError  # noqa: F401
