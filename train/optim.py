"""Optimizer and learning-rate schedule of a run, and how many steps it takes."""
from __future__ import annotations

import math

import torch

from .config import RunConfig
from .data import Loader
from .recipe import uses

DEFAULT_STEPS = 1000  # when neither steps nor epochs is set


def make_optimizer(model: torch.nn.Module, cfg: RunConfig, device: torch.device) -> torch.optim.Optimizer:
    # nanoGPT's rule: decay every >=2-D tensor (matmul / conv / embedding weights), never
    # biases or norm gains (1-D), which only shift or scale activations.
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    groups = [g for g in groups if g["params"]]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum)
    extra = {"fused": True} if uses("fused_adamw", device, model, cfg) else {}
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=tuple(cfg.betas), **extra)


class Schedule:
    """Learning rate per step: linear warm-up, then cosine / linear decay to min_lr, or constant."""

    def __init__(self, cfg: RunConfig, total_steps: int):
        self.cfg, self.total = cfg, total_steps

    def lr(self, step: int) -> float:
        c = self.cfg
        if step < c.warmup_steps:
            return c.lr * (step + 1) / (c.warmup_steps + 1)
        if c.schedule == "constant":
            return c.lr
        span = max(1, self.total - c.warmup_steps)
        ratio = min(1.0, (step - c.warmup_steps) / span)
        if c.schedule == "linear":
            return c.lr + (c.final_lr - c.lr) * ratio
        return c.final_lr + 0.5 * (1 + math.cos(math.pi * ratio)) * (c.lr - c.final_lr)

    def apply(self, opt: torch.optim.Optimizer, step: int) -> float:
        lr = self.lr(step)
        for g in opt.param_groups:
            g["lr"] = lr
        return lr

    def state_dict(self) -> dict:
        return {"schedule": self.cfg.schedule, "total_steps": self.total, "warmup_steps": self.cfg.warmup_steps}


def resolve_steps(cfg: RunConfig, loader: Loader) -> int:
    if cfg.steps is not None:
        return cfg.steps
    if cfg.epochs is not None:
        return max(1, math.ceil(cfg.epochs * loader.batches_per_epoch / cfg.grad_accum))
    return DEFAULT_STEPS
