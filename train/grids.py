"""Pictures a validation pass draws into the run folder, by the names `netspec.dsl.tasks.TASKS`
gives them (a Task's `figure`): a reconstruct head's inputs above their reconstructions, a
generator's samples. Each lands in `figures/<figure>_<step>.png`, so a run keeps its history.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch

from .extras import require
from .heads import outputs_by_head

FOLDER = "figures"
MIN_SIDE = 56  # small images are scaled up by a whole factor to at least this many pixels
GAP = 2  # pixels between images


def to_unit(x: torch.Tensor, data) -> torch.Tensor:
    """Model-side images back to [0, 1] pixels: undo the data's normalisation (see core.PIXEL_NORMS)."""
    mean, std = getattr(data.val, "mean", 0.0), getattr(data.val, "std", 1.0)
    return (x.float() * std + mean).clamp(0, 1)


def image_grid(rows: list[torch.Tensor], path: Path) -> Path:
    """Write rows of images (each [N, C, H, W], C 1 or 3, pixels in [0, 1]) as one PNG."""
    Image = require("PIL.Image")
    np = require("numpy")
    n, c, h, w = rows[0].shape
    scale = max(1, -(-MIN_SIDE // max(h, w)))
    H, W = h * scale, w * scale
    canvas = np.full((len(rows) * (H + GAP) + GAP, n * (W + GAP) + GAP, 3), 255, np.uint8)
    for r, imgs in enumerate(rows):
        for i, img in enumerate(imgs.detach().cpu()):
            a = img.clamp(0, 1).expand(3, h, w) if img.shape[0] == 1 else img[:3].clamp(0, 1)
            a = (a.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
            a = a.repeat(scale, 0).repeat(scale, 1)
            y, x = GAP + r * (H + GAP), GAP + i * (W + GAP)
            canvas[y : y + H, x : x + W] = a
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(canvas).save(path)
    return path


@torch.no_grad()
def reconstructions(model: torch.nn.Module, head: str, data, device, seed: int) -> list[torch.Tensor]:
    """The first 8 validation images above the model's reconstructions of them."""
    batch = data.val.batch(list(range(min(8, len(data.val)))), 0)
    xs = [t.to(device) for t in data.model_inputs(batch)]
    out = outputs_by_head(model(*xs), model.netspec)[head]
    x = batch["x"]
    return [to_unit(x, data), to_unit(out.reshape(x.shape).cpu(), data)]


@torch.no_grad()
def samples(model: torch.nn.Module, head: str, data, device, seed: int) -> list[torch.Tensor]:
    """An 8 x 8 grid of a generator's samples from fixed noise (the same every pass, so the
    pictures of a run show one set of samples improving)."""
    z = fixed_noise(model.netspec, 64, seed).to(device)
    out = outputs_by_head(model(z), model.netspec)[head].cpu()
    return [to_unit(r, data) for r in out.reshape(8, 8, *out.shape[1:])]


def fixed_noise(info, n: int, seed: int) -> torch.Tensor:
    """n standard normal noise vectors shaped like the generator's input, drawn from `seed` alone."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, *info.inputs[0].shape[1:], generator=g)


# figure name (a Task's `figure`) -> (model, head, data, device, seed) -> rows of [0, 1] images
FIGURES: dict[str, Callable] = {"reconstructions": reconstructions, "samples": samples}


def draw(figure: str, model: torch.nn.Module, head: str, data, device, seed: int, out_dir: Path, step: int) -> Path:
    """Draw one head's figure for this step into the run folder; returns the file."""
    was = model.training
    model.eval()
    try:
        rows = FIGURES[figure](model, head, data, device, seed)
    finally:
        model.train(was)
    return image_grid(rows, Path(out_dir) / FOLDER / f"{figure}_{step:06d}.png")
