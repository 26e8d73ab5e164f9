"""`shapes`: procedurally drawn shapes, for classify, segment, reconstruct and regress heads.

Each sample is a pure function of (seed, epoch, index): the validation split
is a fixed set, the training split draws fresh images every epoch (so longer
runs never overfit a small set). Drawn at the model's H x W and channels.

- classify: one shape per image, label = its kind.
- segment: one to three shapes, later ones on top; mask 0 = background,
  k + 1 = kind k.
- regress: target = (centre x, centre y, radius) of the (first) shape, in [0, 1].

The number of kinds follows the head (2..6): circle, square, triangle,
cross, ring, diamond, in that order; `shapes:K` fixes it.
"""
from __future__ import annotations

import torch

from ..extras import require
from .core import Data, DataError, Split, Want, fit_images, image_stats, seeded_rng

np = require("numpy")

KINDS = ["circle", "square", "triangle", "cross", "ring", "diamond"]
TRAIN_SIZE = 8000  # samples per training epoch (fresh each epoch)
VAL_SIZE = 1000
VAL_EPOCH = -1  # the validation split's fixed "epoch" tag


def _mask(kind: int, yy: np.ndarray, xx: np.ndarray, cx: float, cy: float, r: float) -> np.ndarray:
    dx, dy = xx - cx, yy - cy
    name = KINDS[kind]
    if name == "circle":
        return dx * dx + dy * dy <= r * r
    if name == "square":
        return np.maximum(np.abs(dx), np.abs(dy)) <= 0.8 * r
    if name == "diamond":
        return np.abs(dx) + np.abs(dy) <= 1.1 * r
    if name == "ring":
        d2 = dx * dx + dy * dy
        return (d2 <= r * r) & (d2 >= (0.55 * r) ** 2)
    if name == "cross":
        t = 0.33 * r
        return ((np.abs(dx) <= t) & (np.abs(dy) <= r)) | ((np.abs(dy) <= t) & (np.abs(dx) <= r))
    # upright triangle: apex up, base below the centre
    top, bottom = cy - r, cy + 0.6 * r
    half = (yy - top) / (1.6 * r) * r  # half-width grows linearly from the apex
    return (yy >= top) & (yy <= bottom) & (np.abs(dx) <= half)


def draw(rng: np.random.Generator, h: int, w: int, channels: int, n_kinds: int, n_shapes: int,
         sizes: tuple[float, float]):
    """One image [C, H, W] in [0, 1], its mask [H, W] and (cx, cy, r) of the first shape."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32) + 0.5
    side = min(h, w)
    bg = rng.uniform(0.0, 0.35, size=3)
    img = np.empty((3, h, w), np.float32)
    img[:] = bg[:, None, None]
    # a soft gradient so the background is not a single value
    img += (rng.uniform(-0.08, 0.08) * (xx / w) + rng.uniform(-0.08, 0.08) * (yy / h))[None]
    mask = np.zeros((h, w), np.int64)
    first = None
    for _ in range(n_shapes):
        kind = int(rng.integers(n_kinds))
        r = rng.uniform(*sizes) * side
        cx, cy = rng.uniform(r, w - r), rng.uniform(r, h - r)
        color = rng.uniform(0.5, 1.0, size=3)  # brighter than any background: always visible
        m = _mask(kind, yy, xx, cx, cy, r)
        if not m.any():  # very small images: make sure at least one pixel is the shape
            m[min(int(cy), h - 1), min(int(cx), w - 1)] = True
        img[:, m] = color[:, None]
        mask[m] = kind + 1
        if first is None:
            first = (kind, cx / w, cy / h, r / side)
    img += rng.normal(0, 0.04, size=img.shape).astype(np.float32)
    img = np.clip(img, 0, 1)
    if channels == 1:
        img = (0.299 * img[0] + 0.587 * img[1] + 0.114 * img[2])[None]
    return img, mask, first


class ShapesSplit(Split):
    def __init__(self, n: int, want: Want, seed: int, n_kinds: int, fixed_epoch: int | None,
                 mean: float = 0.0, std: float = 1.0):
        self.n, self.want, self.seed, self.n_kinds = n, want, seed, n_kinds
        self.fixed_epoch, self.mean, self.std = fixed_epoch, mean, std
        self.segment = "mask" in want.needs
        if want.kind == "image":
            self.h, self.w, self.c = want.height, want.width, want.channels
        else:
            import math

            c = 3 if want.flat_dim % 3 == 0 and math.isqrt(want.flat_dim // 3) ** 2 == want.flat_dim // 3 else 1
            self.c, self.h = c, math.isqrt(want.flat_dim // c)
            self.w = self.h
            if c * self.h * self.w != want.flat_dim:
                raise DataError(f"data 'shapes' draws square images, but input '{want.input}' of "
                                f"{want.model} takes {want.flat_dim} values (not C*S*S with C 1 or 3)")

    def __len__(self):
        return self.n

    def _sample(self, i: int, epoch: int):
        e = self.fixed_epoch if self.fixed_epoch is not None else epoch
        rng = seeded_rng(self.seed, 0x5A9E5, e + 2, i)
        if self.segment:
            return draw(rng, self.h, self.w, self.c, self.n_kinds, int(rng.integers(1, 4)), (0.1, 0.28))
        return draw(rng, self.h, self.w, self.c, self.n_kinds, 1, (0.15, 0.4))

    def raw(self, indices, epoch=0):
        return torch.from_numpy(np.stack([self._sample(int(i), epoch)[0] for i in indices]))

    def batch(self, indices, epoch=0):
        imgs, masks, ys, tg = [], [], [], []
        for i in indices:
            img, mask, (kind, cx, cy, r) = self._sample(int(i), epoch)
            imgs.append(img), masks.append(mask), ys.append(kind), tg.append((cx, cy, r))
        x = torch.from_numpy(np.stack(imgs))
        out = {"x": fit_images(x, self.want, self.mean, self.std),
               "y": torch.tensor(ys, dtype=torch.int64),
               "target": torch.tensor(tg, dtype=torch.float32)}
        if self.segment:
            out["mask"] = torch.from_numpy(np.stack(masks))
        return out


def load_shapes(name: str, want: Want, seed: int, kinds: int | None) -> Data:
    segment = "mask" in want.needs
    if kinds is None:
        if want.classes is not None:
            kinds = want.classes - 1 if segment else want.classes
        else:
            kinds = 4
    what = "segment classes (background + kinds)" if segment else "classes"
    if not 2 <= kinds <= len(KINDS):
        asked = kinds + 1 if segment else kinds
        raise DataError(f"data '{name}' has 2 to {len(KINDS)} shape kinds ({what} "
                        f"{3 if segment else 2}..{len(KINDS) + (1 if segment else 0)}), "
                        f"but the head of {want.model} asks for {asked}")
    if "target" in want.needs and want.target_dim not in (None, 3):
        raise DataError(f"data '{name}' has 3 regression targets (x, y, radius) but the regress head "
                        f"of {want.model} outputs {want.target_dim}")
    train = ShapesSplit(TRAIN_SIZE, want, seed, kinds, None)
    val = ShapesSplit(VAL_SIZE, want, seed, kinds, VAL_EPOCH)
    # Stats from a fixed sample of the first epoch: no need to draw thousands.
    mean, std = image_stats(lambda idx: train.raw(idx, 0), min(256, TRAIN_SIZE), seed, pixels=want.pixels)
    for s in (train, val):
        s.mean, s.std = mean, std
    n_classes = kinds + 1 if segment else kinds
    names = (["background"] if segment else []) + KINDS[:kinds]
    return Data(name=name, kind="image", train=train, val=val, want=want, num_classes=n_classes,
                class_names=names, provides=frozenset({"y", "mask", "target"} if segment else {"y", "target"}),
                target_dim=3, norm={"mean": mean, "std": std})
