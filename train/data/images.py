"""Image classification sources: digits (built in) and image folders, and what every image
source shares: in-memory splits, shift augmentation, normalisation (MNIST: mnist.py,
CIFAR-10: cifar.py).

All of them give labels for classify heads and the image itself for
reconstruct heads; none has masks or regression targets (use `shapes`).
Images are kept at their native size and converted per batch to the model's
channels and H x W (`core.fit_images`), normalised by the training split's
mean and std.
"""
from __future__ import annotations

import re
import warnings
from pathlib import Path

import torch

from ..extras import require
from .core import (MAX_PIXELS, Data, DataError, Split, Want, bad_file, fit_images, image_stats, seeded_rng,
                   split_indices)

np = require("numpy")

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}


def shift_images(x: torch.Tensor, shifts: np.ndarray) -> torch.Tensor:
    """Translate each image by (dy, dx) whole pixels, filling with each channel's darkest value."""
    out = torch.empty_like(x)
    h, w = x.shape[-2:]
    for i, (dy, dx) in enumerate(shifts):
        out[i] = x[i].amin(dim=(-2, -1), keepdim=True)
        ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
        xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
        out[i, :, yd, xd] = x[i, :, ys, xs]
    return out


class Shifts:
    """Per-epoch random translations of up to 1/16 of the model's image side: a pure
    function of (seed, epoch, sample), so augmented training stays exactly resumable."""

    def __init__(self, n: int, side: int, seed: int):
        self.n, self.max, self.seed = n, max(1, side // 16), seed
        self._epoch, self._table = None, None

    def __call__(self, rows: np.ndarray, epoch: int) -> np.ndarray:
        if self._epoch != epoch:
            self._table = seeded_rng(self.seed, 0xA06, epoch).integers(-self.max, self.max + 1, size=(self.n, 2))
            self._epoch = epoch
        return self._table[rows]


class ArraySplit(Split):
    """Images held in memory as a [N, C, H, W] tensor (uint8 or float) with int labels."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, idx: np.ndarray, want: Want,
                 scale: float, mean: float = 0.0, std: float = 1.0):
        self.images, self.labels, self.idx, self.want = images, labels, idx, want
        self.scale, self.mean, self.std = scale, mean, std
        self.shifts: Shifts | None = None  # set on the training split when augmenting

    def __len__(self):
        return len(self.idx)

    def raw(self, indices: np.ndarray) -> torch.Tensor:
        j = torch.as_tensor(self.idx[indices])
        return self.images[j].float() * self.scale

    def batch(self, indices, epoch=0):
        rows = np.asarray(indices)
        j = torch.as_tensor(self.idx[rows])
        x = fit_images(self.images[j].float() * self.scale, self.want, self.mean, self.std)
        if self.shifts is not None:  # at the model's resolution, so small images still move less than a pixel's worth
            x = shift_images(x, self.shifts(rows, epoch))
        return {"x": x, "y": self.labels[j]}


def array_data(name: str, want: Want, images: torch.Tensor, labels: torch.Tensor, scale: float,
                train_idx: np.ndarray, val_idx: np.ndarray, class_names: list[str], seed: int,
                val_images: torch.Tensor | None = None, val_labels: torch.Tensor | None = None,
                augment: bool = False) -> Data:
    train = ArraySplit(images, labels, train_idx, want, scale)
    if val_images is None:
        val = ArraySplit(images, labels, val_idx, want, scale)
    else:
        val = ArraySplit(val_images, val_labels, val_idx, want, scale)
    return _labelled_images(name, train, val, want, class_names, seed, augment)


# --------------------------------------------------------------------------


def load_digits(name: str, want: Want, seed: int, val_fraction: float, augment: bool = False) -> Data:
    d = require("sklearn.datasets").load_digits()  # ships inside scikit-learn: nothing is downloaded
    images = torch.as_tensor(d.images, dtype=torch.float32).unsqueeze(1)  # [1797, 1, 8, 8], 0..16
    labels = torch.as_tensor(d.target, dtype=torch.int64)
    tr, va = split_indices(len(labels), val_fraction, seed)
    return array_data(name, want, images, labels, 1 / 16, tr, va, [str(i) for i in range(10)], seed,
                       augment=augment)


# --------------------------------------------------------------------------


def open_image(path: Path, name: str, want: Want):
    """An image file opened (its header read, nothing decoded) and checked: readable by Pillow,
    at most MAX_PIXELS pixels. Raises DataError naming the file and the spec input."""
    Image = require("PIL.Image")
    try:
        with warnings.catch_warnings():  # our cap is below Pillow's warning threshold
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(path)
    except Image.DecompressionBombError as e:
        pixels = re.search(r"\((\d+) pixels\)", str(e))
        size = f"{int(pixels.group(1)):,} pixels" if pixels else "too many pixels"
        raise bad_file(path, f"image of {size} is over the cap of {MAX_PIXELS:,} pixels", name, want) from None
    except (OSError, SyntaxError, ValueError) as e:  # Pillow's ways to say "not an image it reads"
        raise bad_file(path, f"cannot read image ({e})", name, want) from None
    w, h = im.size
    if w * h > MAX_PIXELS or w < 1 or h < 1:
        im.close()
        raise bad_file(path, f"image of {w}x{h} = {w * h:,} pixels is over the cap of {MAX_PIXELS:,} pixels"
                       if w * h > MAX_PIXELS else f"image of {w}x{h} pixels is empty", name, want)
    return im


def read_images(files: list[Path], want: Want, name: str = "images") -> torch.Tensor:
    """Image files -> [N, C, H, W] floats in [0, 1]: grey or RGB as the model takes them, at its
    H x W (flat inputs: at the files' own size, which must then agree). Each file is checked
    before it is decoded (open_image); `name` is the data source, for messages."""
    Image = require("PIL.Image")
    mode = "L" if want.channels == 1 and want.kind == "image" else "RGB"
    h, w = (want.height, want.width) if want.kind == "image" else (0, 0)
    out = []
    for f in files:
        try:
            with open_image(f, name, want) as im:
                im = im.convert(mode)
                if h and w and im.size != (w, h):
                    im = im.resize((w, h), Image.BILINEAR)
                a = np.asarray(im, dtype=np.uint8)
        except (OSError, SyntaxError, ValueError) as e:  # a header that reads, a body that does not
            raise bad_file(f, f"cannot decode image ({e})", name, want) from None
        out.append(torch.from_numpy(a.copy()).reshape(a.shape[0], a.shape[1], -1).permute(2, 0, 1))
    if len({tuple(t.shape) for t in out}) > 1:
        raise DataError(f"data '{name}': images of different sizes cannot feed the flat input "
                        f"'{want.input}' of {want.model}; resize the folder first")
    return torch.stack(out).float() / 255


class FolderSplit(Split):
    """Image files decoded on demand (folders can be larger than memory)."""

    def __init__(self, files: list[Path], labels: torch.Tensor, idx: np.ndarray, want: Want, name: str,
                 mean: float = 0.0, std: float = 1.0):
        self.files, self.labels, self.idx, self.want, self.name = files, labels, idx, want, name
        self.mean, self.std = mean, std
        self.shifts: Shifts | None = None

    def __len__(self):
        return len(self.idx)

    def raw(self, indices) -> torch.Tensor:
        return read_images([self.files[j] for j in self.idx[np.asarray(indices)]], self.want, self.name)

    def batch(self, indices, epoch=0):
        rows = np.asarray(indices)
        j = torch.as_tensor(self.idx[rows])
        x = fit_images(self.raw(rows), self.want, self.mean, self.std)
        if self.shifts is not None:
            x = shift_images(x, self.shifts(rows, epoch))
        return {"x": x, "y": self.labels[j]}


def load_folder(name: str, want: Want, seed: int, val_fraction: float, folder: Path, augment: bool = False) -> Data:
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DataError(f"{folder}: no class sub-folders (expected DIR/<class>/<image files>)")
    files, labels = [], []
    for c, cname in enumerate(classes):
        found = sorted(p for p in (folder / cname).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        files += found
        labels += [c] * len(found)
    if not files:
        raise DataError(f"{folder}: the class folders hold no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    for f in files:  # every header, before training: a bad file an hour in would lose the hour
        open_image(f, name, want).close()
    lab = torch.tensor(labels, dtype=torch.int64)
    tr, va = split_indices(len(files), val_fraction, seed)
    train = FolderSplit(files, lab, tr, want, name)
    val = FolderSplit(files, lab, va, want, name)
    return _labelled_images(name, train, val, want, classes, seed, augment, stats_limit=256)


def _labelled_images(name, train, val, want, class_names, seed, augment, stats_limit=2048) -> Data:
    """Normalize both splits with the training split's statistics (or to the pixel scale the heads
    ask for); shift-augment training images."""
    mean, std = image_stats(train.raw, len(train), seed, limit=stats_limit, pixels=want.pixels)
    for s in (train, val):
        s.mean, s.std = mean, std
    if augment and want.kind == "image":
        train.shifts = Shifts(len(train), min(want.height, want.width), seed)
    counts = np.bincount(train.labels[torch.as_tensor(train.idx)].numpy(), minlength=len(class_names))
    return Data(name=name, kind="image", train=train, val=val, want=want, num_classes=len(class_names),
                class_names=class_names, provides=frozenset({"y"}), norm={"mean": mean, "std": std},
                counts=counts)
