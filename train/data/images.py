"""Image classification sources: digits (built in), MNIST idx, CIFAR-10 batches, image folders.

All of them give labels for classify heads and the image itself for
reconstruct heads; none has masks or regression targets (use `shapes`).
Images are kept at their native size and converted per batch to the model's
channels and H x W (`core.fit_images`), normalised by the training split's
mean and std.
"""
from __future__ import annotations

import gzip
import pickle
import re
from pathlib import Path

import torch

from ..extras import require
from .core import Data, DataError, Split, Want, seeded_rng, fit_images, image_stats, split_indices

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


def _array_data(name: str, want: Want, images: torch.Tensor, labels: torch.Tensor, scale: float,
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
    return _array_data(name, want, images, labels, 1 / 16, tr, va, [str(i) for i in range(10)], seed,
                       augment=augment)


# --------------------------------------------------------------------------


def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:  # unreadable, or a damaged .gz
        raise DataError(f"{path}: cannot read ({getattr(e, 'strerror', None) or e})")
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataError(f"{path}: not an idx file (bad magic number)")
    dtypes = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if raw[2] not in dtypes:
        raise DataError(f"{path}: unknown idx element type 0x{raw[2]:02x}")
    ndim = raw[3]
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(raw, dtype=dtypes[raw[2]], offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise DataError(f"{path}: header says {dims} but holds {data.size} values")
    return data.reshape(dims)


def _find(folder: Path, split: str, what: str) -> Path | None:
    pat = re.compile(rf"^{split}[-_.]{what}[-_.]idx\d[-_.]ubyte(\.gz)?$", re.I)
    hits = sorted(p for p in folder.iterdir() if pat.match(p.name))
    return hits[0] if hits else None


def load_mnist(name: str, want: Want, seed: int, val_fraction: float, folder: Path, augment: bool = False) -> Data:
    tr_img, tr_lab = _find(folder, "train", "images"), _find(folder, "train", "labels")
    if tr_img is None or tr_lab is None:
        raise DataError(f"{folder}: no MNIST train-images-idx3-ubyte / train-labels-idx1-ubyte (optionally .gz)")
    images, labels = _read_idx(tr_img), _read_idx(tr_lab)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DataError(f"{folder}: images {images.shape} and labels {labels.shape} do not match")
    img_t = torch.from_numpy(images.copy()).unsqueeze(1)
    lab_t = torch.from_numpy(labels.astype(np.int64))
    te_img, te_lab = _find(folder, "t10k", "images") or _find(folder, "test", "images"), \
        _find(folder, "t10k", "labels") or _find(folder, "test", "labels")
    n_classes = int(labels.max()) + 1
    names = [str(i) for i in range(n_classes)]
    if te_img is not None and te_lab is not None:
        # The official test set is the validation split; the train set is all for training.
        vi, vl = _read_idx(te_img), _read_idx(te_lab)
        vi_t, vl_t = torch.from_numpy(vi.copy()).unsqueeze(1), torch.from_numpy(vl.astype(np.int64))
        return _array_data(name, want, img_t, lab_t, 1 / 255, np.arange(len(lab_t)), np.arange(len(vl_t)),
                           names, seed, vi_t, vl_t, augment=augment)
    tr, va = split_indices(len(lab_t), val_fraction, seed)
    return _array_data(name, want, img_t, lab_t, 1 / 255, tr, va, names, seed, augment=augment)


# --------------------------------------------------------------------------


def _unpickle(path: Path) -> dict:
    # CIFAR-10 "python version" batches are pickles. Unpickling runs code from the
    # file, so the folder must be trusted input, like any script you run.
    try:
        with open(path, "rb") as f:
            return pickle.load(f, encoding="bytes")
    except Exception as e:  # noqa: BLE001 - any failure means "not a CIFAR batch"
        raise DataError(f"{path}: cannot read as a CIFAR-10 python batch ({e})")


def _cifar_arrays(batches: list[dict], path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    try:
        data = np.concatenate([np.asarray(b[b"data"], dtype=np.uint8) for b in batches])
        labels = np.concatenate([np.asarray(b.get(b"labels", b.get(b"fine_labels")), dtype=np.int64)
                                 for b in batches])
    except (KeyError, TypeError, ValueError) as e:
        raise DataError(f"{path}: CIFAR batch without data/labels ({e})")
    if data.ndim != 2 or data.shape[1] % 3 != 0:
        raise DataError(f"{path}: CIFAR data has shape {data.shape}, expected [N, 3*H*W]")
    side = int(round((data.shape[1] // 3) ** 0.5))
    return torch.from_numpy(data.reshape(-1, 3, side, side).copy()), torch.from_numpy(labels)


def load_cifar10(name: str, want: Want, seed: int, val_fraction: float, folder: Path, augment: bool = False) -> Data:
    train_files = sorted(folder.glob("data_batch_*"), key=lambda p: p.name)
    if not train_files:
        raise DataError(f"{folder}: no CIFAR-10 data_batch_* files")
    images, labels = _cifar_arrays([_unpickle(p) for p in train_files], folder)
    meta = folder / "batches.meta"
    names = None
    if meta.exists():
        m = _unpickle(meta)
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in m.get(b"label_names", [])] or None
    n_classes = max(int(labels.max()) + 1, len(names or []))
    names = names or [str(i) for i in range(n_classes)]
    test = folder / "test_batch"
    if test.exists():
        vi, vl = _cifar_arrays([_unpickle(test)], test)
        return _array_data(name, want, images, labels, 1 / 255, np.arange(len(labels)), np.arange(len(vl)),
                           names, seed, vi, vl, augment=augment)
    tr, va = split_indices(len(labels), val_fraction, seed)
    return _array_data(name, want, images, labels, 1 / 255, tr, va, names, seed, augment=augment)


# --------------------------------------------------------------------------


class FolderSplit(Split):
    """Image files decoded on demand (folders can be larger than memory)."""

    def __init__(self, files: list[Path], labels: torch.Tensor, idx: np.ndarray, want: Want,
                 mean: float = 0.0, std: float = 1.0):
        self.files, self.labels, self.idx, self.want = files, labels, idx, want
        self.mean, self.std = mean, std
        self.shifts: Shifts | None = None

    def __len__(self):
        return len(self.idx)

    def raw(self, indices) -> torch.Tensor:
        Image = require("PIL.Image")
        mode = "L" if self.want.channels == 1 and self.want.kind == "image" else "RGB"
        h, w = (self.want.height, self.want.width) if self.want.kind == "image" else (0, 0)
        out = []
        for j in self.idx[np.asarray(indices)]:
            try:
                with Image.open(self.files[j]) as im:
                    im = im.convert(mode)
                    if h and w and im.size != (w, h):
                        im = im.resize((w, h), Image.BILINEAR)
                    a = np.asarray(im, dtype=np.uint8)
            except OSError as e:
                raise DataError(f"{self.files[j]}: cannot read image ({e})")
            out.append(torch.from_numpy(a.copy()).reshape(a.shape[0], a.shape[1], -1).permute(2, 0, 1))
        if len({tuple(t.shape) for t in out}) > 1:
            raise DataError("images of different sizes cannot feed a flat input; resize the folder first")
        return torch.stack(out).float() / 255

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
    lab = torch.tensor(labels, dtype=torch.int64)
    tr, va = split_indices(len(files), val_fraction, seed)
    train = FolderSplit(files, lab, tr, want)
    val = FolderSplit(files, lab, va, want)
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
                class_names=class_names, provides=frozenset({"y"}), counts=counts)
