"""`moving[:K]`: generated video clips of a shape moving in one of K directions, for video classifiers.

A clip [C, T, H, W] shows one shape (any kind of `figures.KINDS`, any size and
brightness) crossing a noisy background at a steady speed in direction k of K, evenly
spaced around the circle (K = 4: right, up, left, down); the label is k. The shape starts
anywhere its whole path stays in view, so no single frame tells the class: a model has to
compare frames. Drawn at the model's T, H, W and channels; each clip is a pure function of
(seed, epoch, index): the validation split is fixed, training draws fresh clips every epoch.
The number of directions follows the classify head (2..8), or `:K`.
"""
from __future__ import annotations

import math

import torch

from ..extras import require
from .core import Data, DataError, Split, Want, image_stats, seeded_rng
from .figures import KINDS, _mask

np = require("numpy")

TRAIN_SIZE = 4000  # clips per training epoch (fresh each epoch)
VAL_SIZE = 500
VAL_EPOCH = -1
DIRECTIONS = (2, 8)  # the fewest and most directions


def clip(rng: np.random.Generator, frames: int, h: int, w: int, channels: int, k: int, directions: int):
    """One clip [C, T, H, W] in [0, 1] of a shape moving in direction k of `directions`."""
    side = min(h, w)
    r = rng.uniform(0.12, 0.2) * side
    travel = rng.uniform(0.3, 0.5) * side  # from the first frame to the last
    angle = 2 * math.pi * k / directions
    dx, dy = math.cos(angle) * travel, -math.sin(angle) * travel  # image y grows downwards
    # the start is anywhere the whole path stays in view
    x0 = rng.uniform(r + max(0.0, -dx), w - r - max(0.0, dx))
    y0 = rng.uniform(r + max(0.0, -dy), h - r - max(0.0, dy))
    kind = int(rng.integers(len(KINDS)))
    bg = rng.uniform(0.0, 0.35, size=3)
    color = rng.uniform(0.5, 1.0, size=3)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32) + 0.5
    out = np.empty((3, frames, h, w), np.float32)
    out[:] = bg[:, None, None, None]
    for t in range(frames):
        f = t / max(1, frames - 1)
        m = _mask(kind, yy, xx, x0 + f * dx, y0 + f * dy, r)
        out[:, t][:, m] = color[:, None]
    out += rng.normal(0, 0.04, size=out.shape).astype(np.float32)
    out = np.clip(out, 0, 1)
    if channels == 1:
        out = (0.299 * out[0] + 0.587 * out[1] + 0.114 * out[2])[None]
    return out


class ClipSplit(Split):
    def __init__(self, n: int, want: Want, seed: int, directions: int, fixed_epoch: int | None):
        self.n, self.want, self.seed, self.directions, self.fixed_epoch = n, want, seed, directions, fixed_epoch
        self.mean, self.std = 0.0, 1.0

    def __len__(self):
        return self.n

    def _clip(self, i: int, epoch: int):
        e = self.fixed_epoch if self.fixed_epoch is not None else epoch
        rng = seeded_rng(self.seed, 0x3071E, e + 2, i)
        k = int(rng.integers(self.directions))
        w = self.want
        return clip(rng, w.frames, w.height, w.width, w.channels, k, self.directions), k

    def raw(self, indices, epoch=0) -> torch.Tensor:
        return torch.from_numpy(np.stack([self._clip(int(i), epoch)[0] for i in indices]))

    def batch(self, indices, epoch=0):
        clips, ys = zip(*(self._clip(int(i), epoch) for i in indices))
        x = (torch.from_numpy(np.stack(clips)) - self.mean) / self.std
        return {"x": x, "y": torch.tensor(ys, dtype=torch.int64)}


def load_moving(name: str, want: Want, seed: int, directions: int | None) -> Data:
    k = directions or want.classes or 4
    lo, hi = DIRECTIONS
    if not lo <= k <= hi:
        raise DataError(f"data '{name}' has {lo} to {hi} directions, but the head of {want.model} asks for {k}")
    if want.frames < 2:
        raise DataError(f"data '{name}' needs clips of at least 2 frames to show motion, but input "
                        f"'{want.input}' of {want.model} takes {want.frames}")
    train = ClipSplit(TRAIN_SIZE, want, seed, k, None)
    val = ClipSplit(VAL_SIZE, want, seed, k, VAL_EPOCH)
    mean, std = image_stats(lambda idx: train.raw(idx, 0), 64, seed, pixels=want.pixels)
    for s in (train, val):
        s.mean, s.std = mean, std
    names = [f"{round(360 * i / k)}deg" for i in range(k)]
    return Data(name=name, kind="video", train=train, val=val, want=want, num_classes=k, class_names=names,
                provides=frozenset({"y"}))
