"""A trained generator's samples: drawn as a grid (`netspec sample -o`) and labelled by a
classifier trained by netspec (`netspec eval --judge`).
"""
from __future__ import annotations

from pathlib import Path

import torch

from .data import load_data
from .grids import fixed_noise, image_grid
from .heads import outputs_by_head, trained_heads
from .pair import noise


@torch.no_grad()
def generate_images(gen: torch.nn.Module, head: str, n: int, seed: int | None = None) -> torch.Tensor:
    """n samples [n, C, H, W] as the generator gives them (eval mode), from noise drawn from
    `seed` (None: torch's global generator)."""
    info = gen.netspec
    device = next(gen.parameters()).device
    z = fixed_noise(info, n, seed).to(device) if seed is not None else noise(info, n, device)
    was = gen.training
    gen.eval()
    try:
        return outputs_by_head(gen(z), info)[head].float().cpu()
    finally:
        gen.train(was)


def sample_grid(gen: torch.nn.Module, head: str, n: int, path: Path) -> Path:
    """n samples in rows of 8 (signed pixels shown as [0, 1]), written to `path` as a PNG."""
    imgs = to_unit_signed(generate_images(gen, head, n))
    rows = [imgs[i : i + 8] for i in range(0, n, 8)]
    if len(rows[-1]) < len(rows[0]):  # a short last row, padded with white
        pad = torch.ones(len(rows[0]) - len(rows[-1]), *imgs.shape[1:])
        rows[-1] = torch.cat([rows[-1], pad])
    return image_grid(rows, path)


def to_unit_signed(x: torch.Tensor) -> torch.Tensor:
    """Pixels of the adversarial task's scale, [-1, 1], as [0, 1]."""
    return ((x + 1) / 2).clamp(0, 1)


@torch.no_grad()
def judge(gen: torch.nn.Module, head: str, classifier_run: str | Path, n: int = 1000, seed: int = 0,
          covered_share: float = 0.01) -> dict:
    """What a classifier trained by netspec (a run folder with a classify head) makes of n samples:
    the share of samples per class (by their likeliest class), how many classes hold at least
    `covered_share` of them, and the mean probability of each sample's likeliest class."""
    from .data.core import fit_images
    from .runfolder import RunError, load_run

    model, cfg, meta = load_run(classifier_run)
    heads = [h for h in trained_heads(model.netspec) if h.task == "classify"]
    if not heads:
        raise RunError(f"'{classifier_run}' has no classify head to judge samples with")
    data = load_data(meta.get("data") or cfg.data, model.netspec, cfg, model=model)
    imgs = to_unit_signed(generate_images(gen, head, n, seed))
    x = fit_images(imgs, data.want, data.val.mean, data.val.std)
    model.eval()
    probs = torch.cat([torch.softmax(outputs_by_head(model(x[i : i + 256]), model.netspec)[heads[0].name].float(), -1)
                       for i in range(0, n, 256)])
    top, cls = probs.max(1)
    shares = torch.bincount(cls, minlength=probs.shape[1]).double() / n
    names = data.class_names or [str(i) for i in range(probs.shape[1])]
    return {"samples": n, "classes": len(names), "classes_covered": int((shares >= covered_share).sum()),
            "mean_top_probability": float(top.mean()),
            "class_shares": {names[i]: round(float(s), 4) for i, s in enumerate(shares)}}
