"""The speed recipe of a run: what a tuned GPU script turns on, and when -- one table.

`RECIPE` lists each setting with the condition that turns it on (device, model, RunConfig);
`recipe(device, model, cfg)` evaluates it once per run and `recipe_line` says in one line
which were used. Everything CUDA-only is decided here by device type, so CPU runs (and the
tests) take the plain path and a CPU-only torch never touches the CUDA APIs.

    tf32           TF32 for float32 matmuls and cuDNN convolutions (cfg.tf32; fp32 math under
                   bf16 autocast too): ~8x the fp32 rate on Ampere+, 10-bit mantissa products,
                   fp32 accumulation -- what PyTorch's own docs recommend for training
    fused_adamw    AdamW's update as one fused kernel over all parameters (optim.py)
    pinned         batches copied from page-locked host memory with non_blocking=True, so the
                   copy overlaps the previous step's kernels
    channels_last  NHWC layout for models with Conv2d and their 4-D batches (cfg.channels_last:
                   auto = CUDA only; true forces it, e.g. to test it on CPU; false turns it off)
    bf16, fp16     autocast (cfg.precision, precision.py) -- listed so the line tells the whole recipe
    compile        torch.compile (cfg.compile)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from .config import RunConfig


def is_convolutional(model: torch.nn.Module) -> bool:
    """A model with a 2-D convolution: the one kind channels_last speeds up."""
    return any(isinstance(m, torch.nn.Conv2d) for m in model.modules())


def _channels_last(device: torch.device, model: torch.nn.Module, cfg: RunConfig) -> bool:
    if cfg.channels_last == "auto":
        return device.type == "cuda" and is_convolutional(model)
    return cfg.channels_last == "true"


@dataclass(frozen=True)
class Setting:
    name: str
    words: str  # how recipe_line names it
    on: Callable[[torch.device, torch.nn.Module, RunConfig], bool]


RECIPE: tuple[Setting, ...] = (
    Setting("tf32", "TF32 matmuls", lambda d, m, c: d.type == "cuda" and c.tf32),
    Setting("fused_adamw", "fused AdamW", lambda d, m, c: d.type == "cuda" and c.optimizer == "adamw"),
    Setting("pinned", "pinned memory", lambda d, m, c: d.type == "cuda"),
    Setting("channels_last", "channels_last", _channels_last),
    Setting("bf16", "bf16 autocast", lambda d, m, c: c.precision == "bf16"),
    Setting("fp16", "fp16 autocast", lambda d, m, c: c.precision == "fp16"),
    Setting("compile", "torch.compile", lambda d, m, c: c.compile),
)


def recipe(device: torch.device, model: torch.nn.Module, cfg: RunConfig) -> dict[str, bool]:
    """Setting name -> whether this run uses it."""
    return {s.name: bool(s.on(device, model, cfg)) for s in RECIPE}


def uses(name: str, device: torch.device, model: torch.nn.Module, cfg: RunConfig) -> bool:
    """Whether the run uses setting `name` (one row of RECIPE)."""
    return bool(next(s for s in RECIPE if s.name == name).on(device, model, cfg))


def recipe_line(settings: dict[str, bool]) -> str:
    """'recipe: TF32 matmuls, fused AdamW, pinned memory' (or 'recipe: plain fp32')."""
    used = [s.words for s in RECIPE if settings.get(s.name)]
    return "recipe: " + (", ".join(used) if used else "plain fp32")


def apply_backend(settings: dict[str, bool]) -> None:
    """Set torch's process-wide switches the recipe names (TF32 on CUDA)."""
    if settings.get("tf32"):
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.set_float32_matmul_precision("high")


def prepare_model(model: torch.nn.Module, settings: dict[str, bool]) -> torch.nn.Module:
    """The model in the recipe's memory format (in place, as nn.Module.to is)."""
    if settings.get("channels_last"):
        model.to(memory_format=torch.channels_last)
    return model


def to_device(batch: dict[str, torch.Tensor], device: torch.device,
              settings: dict[str, bool]) -> dict[str, torch.Tensor]:
    """A batch on `device`: pinned and copied without blocking on CUDA, 4-D float images in
    channels_last when the model is."""
    out = {}
    for k, v in batch.items():
        if settings.get("pinned") and v.device.type == "cpu":
            v = v.pin_memory()
        if settings.get("channels_last") and v.dim() == 4 and v.is_floating_point():
            out[k] = v.to(device, non_blocking=True, memory_format=torch.channels_last)
        else:
            out[k] = v.to(device, non_blocking=True)
    return out
