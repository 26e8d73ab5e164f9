"""The pair of an adversarial run: the critic a generator's head names, building and loading it,
the --set values each model takes, the real data shaped for the critic, and the check that the
two models fit each other. The training loop is adversarial.py.
"""
from __future__ import annotations

from pathlib import Path

import torch

from . import checkpoint as ckpt
from .config import RunConfig
from .data import Data, load_data
from .errors import TrainError
from .heads import head_arg, outputs_by_head, task_of, trained_heads
from .runfolder import build_model

CRITIC_WEIGHTS = ckpt.CRITIC  # in last/, beside the generator's model.safetensors


def adversarial_head(info):
    """The generator's adversarial head, or None."""
    return next((h for h in trained_heads(info) if h.task == "adversarial"), None)


def critic_name(info) -> str:
    """The model an adversarial head names as its critic (not the generator itself)."""
    head = adversarial_head(info)
    name = head_arg(head, "critic")
    if name == info.name:
        raise TrainError(f"head '{head.name}' of {info.name}: a model cannot be its own critic")
    return name


def generator_overrides(spec, model: str | None, overrides: dict, extra_paths=()) -> dict | None:
    """The --set values a generator takes when the others are its critic's (see `split_overrides`),
    or None when `model` has no adversarial head or every value is its own."""
    from .. import compiler

    if not overrides or str(spec) == "-":  # standard input can be read once only
        return None
    info = compiler.analyze(str(spec), model, extra_paths=extra_paths).info
    if adversarial_head(info) is None:
        return None
    critic = compiler.analyze(info.source, critic_name(info), extra_paths=info.search_path).info
    # a value neither model has stays with the generator, whose build names it
    mine = {k: v for k, v in overrides.items() if k in info.params or k not in critic.params}
    return mine if mine != overrides else None


def split_overrides(info, overrides: dict | None) -> tuple[dict | None, dict]:
    """A new run's --set values as (the generator's, its critic's): each goes to the model that
    has the parameter, so model.json records which model took which."""
    from .. import compiler

    if not overrides:
        return overrides, {}
    critic = compiler.analyze(info.source, critic_name(info), extra_paths=info.search_path).info
    return ({k: v for k, v in overrides.items() if k in info.params},
            {k: v for k, v in overrides.items() if k in critic.params})


def build_critic(info, overrides: dict | None = None) -> torch.nn.Module:
    """The critic an adversarial head names, built from the generator's spec file (overrides: its
    --set values)."""
    return build_model(info.source, critic_name(info), overrides or {}, extra_paths=info.search_path)


def load_critic(run_dir: str | Path, info, device="cpu", checkpoint: str = ckpt.LAST) -> torch.nn.Module:
    """A GAN run's critic, rebuilt from the run's spec copy (the generator's `info`) with the
    overrides model.json keeps, its weights loaded from the checkpoint (a GAN run has last/ only)."""
    from .runfolder import RunError, read_meta

    if checkpoint != ckpt.LAST:
        raise RunError(f"'{run_dir}' is a GAN run, which keeps no {checkpoint}/ checkpoint; use the last one "
                       "(leave out --checkpoint)")
    overrides = (read_meta(run_dir).get("critic") or {}).get("overrides") or {}
    critic = build_critic(info, overrides).to(device)
    ck = ckpt.open_checkpoint(run_dir, checkpoint, state=False, files=(CRITIC_WEIGHTS,))
    ckpt.load_weights_file(critic, ck.file(CRITIC_WEIGHTS))
    return critic


def critic_data(source: str | None, gen_info, critic: torch.nn.Module, cfg: RunConfig) -> Data:
    """The real samples, shaped for the critic's input in the adversarial task's pixel scale."""
    pixels = task_of(adversarial_head(gen_info)).pixels
    return load_data(source, critic.netspec, cfg, model=critic, pixels=pixels)


def noise(info, n: int, device) -> torch.Tensor:
    """n standard normal vectors shaped like the generator's input."""
    return torch.randn(n, *info.inputs[0].shape[1:], device=device)


@torch.no_grad()
def check_pair(gen: torch.nn.Module, critic: torch.nn.Module, head: str, data: Data) -> None:
    """The generator's samples fit the critic's input, and the critic gives one logit per sample."""
    gi, ci = gen.netspec, critic.netspec
    device = next(gen.parameters()).device
    real = data.val.batch([0, 1], 0)["x"].to(device)
    was = (gen.training, critic.training)
    gen.eval(), critic.eval()
    try:
        fake = outputs_by_head(gen(noise(gi, 2, device)), gi)[head]
        if tuple(fake.shape[1:]) != tuple(real.shape[1:]):
            raise TrainError(f"head '{head}' of {gi.name} outputs {list(fake.shape)}, but its critic {ci.name} "
                             f"takes {list(real.shape)} (input '{ci.inputs[0].name}')")
        score = critic(fake)
        if not isinstance(score, torch.Tensor) or score.numel() != 2:
            raise TrainError(f"critic {ci.name} must give one logit per sample ([B, 1] or [B]), got "
                             f"{list(score.shape) if isinstance(score, torch.Tensor) else type(score).__name__}")
    finally:
        gen.train(was[0]), critic.train(was[1])
