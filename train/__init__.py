"""netspec's training: a built model and its heads' tasks -> a run folder.

    from netspec import build
    from netspec.train import RunConfig, train, evaluate, load_run

    model = build("lenet")
    result = train(model, RunConfig(data="digits", steps=500), None, "runs/lenet")
    model, cfg, meta = load_run("runs/lenet")           # rebuilt from the run folder alone

    import netspec
    netspec.train(model, data=my_dataset)               # the package itself calls trainer.train

The package is callable: `netspec.train(...)` is `netspec.train.train(...)`, so a torch
`Dataset` or `DataLoader` trains in one line while `import netspec.train.X` still works.

The loop (`trainer`), run configs (`config`), tasks -- the tables of losses, metrics and
output checks that the rows of `netspec.dsl.tasks.TASKS` name (`tasks`, `losses`,
`metrics`, `data.outputs`) --, data sources (`data`), checkpoints committed as one unit
(`checkpoint`, `rng`), torchrun/DDP (`distributed`), run logs (`runlog`, `loggers`,
`tblog`), the run folder with its spec copy, written atomically and locked (`runfolder`,
`speccopy`, `safefile`, `runlock`), checks before and during a run (`preflight`, `guard`),
the best checkpoint and early stopping (`best`), sampling, prediction on new inputs
(`predict`), and the `train` / `eval` / `sample` / `predict` commands (`cli`). It depends
on the compiler's public surface only (`compiler.build`, `model.netspec`,
`compiler.locate_failure`); nothing in `netspec.compiler` or `netspec.dsl` imports it.
Needs the extras of `pip install 'netspec-nn[train]'` (a missing one raises
`extras.MissingExtraError`, naming that command). Attributes load lazily.
"""
from __future__ import annotations

import sys
import types
from importlib import import_module
from typing import TYPE_CHECKING

# public name -> module (relative to this package) that defines it
_API = {
    "train": "trainer", "TrainResult": "trainer", "TrainError": "trainer",
    "evaluate": "validation",
    "generate": "sampling",
    "predict": "predict",
    "RunConfig": "config", "load_config": "config", "ConfigError": "config",
    "load_data": "data", "DataError": "data",
    "load_run": "runfolder", "RunError": "runfolder",
    "CheckpointError": "checkpoint", "DeviceError": "distributed", "SizeError": "preflight",
    "MissingExtraError": "extras",
}

__all__ = sorted(_API)


def __getattr__(name: str):
    if name in _API:
        value = getattr(import_module(f".{_API[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'netspec.train' has no attribute {name!r}")


def __dir__():
    return sorted(set(__all__) | {n for n in globals() if n.startswith("__")})


class _CallablePackage(types.ModuleType):
    """This package's class: calling it trains (`netspec.train(model, data=...)`)."""

    def __call__(self, model, cfg=None, data=None, out_dir=None, **kwargs):
        """`trainer.train(model, cfg, data, out_dir, **kwargs)`; see its docstring."""
        return self.train(model, cfg, data, out_dir, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage


if TYPE_CHECKING:  # for editors and type checkers
    from .checkpoint import CheckpointError  # noqa: F401
    from .config import ConfigError, RunConfig, load_config  # noqa: F401
    from .data import DataError, load_data  # noqa: F401
    from .distributed import DeviceError  # noqa: F401
    from .preflight import SizeError  # noqa: F401
    from .validation import evaluate  # noqa: F401
    from .extras import MissingExtraError  # noqa: F401
    from .runfolder import RunError, load_run  # noqa: F401
    from .predict import predict  # noqa: F401
    from .sampling import generate  # noqa: F401
    from .trainer import TrainError, TrainResult, train  # noqa: F401
