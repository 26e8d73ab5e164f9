"""Your own arrays: `csv:FILE` (a table with a header) and `npy:X.npy[,Y.npy]` (NumPy arrays).

A CSV's rows are samples: its feature columns (`features`, default every column but the
target) make a vector [D] per row, its `target` column(s) the labels (classify heads: any
values, class names sorted, numerically when they are numbers) or regression targets
(regress heads: numbers, one column per output). Empty cells and non-numbers among the
features are errors naming the row and column.

`npy:X.npy` holds the inputs: [N, D] vectors, or images [N, H, W], [N, C, H, W] or
[N, H, W, C] (uint8 pixels 0..255, or floats taken as they are); `Y.npy` (optional when no
head needs it) holds int labels [N], int masks [N, H, W] or float targets [N] / [N, K].
Arrays are read with allow_pickle=False: a file can never run code.

Vectors are standardised per feature with the training split's mean and std; images are
normalised like every image source (one mean and std) and shift-augmented in training,
except under masks. The statistics go to the run folder (data.json) for `predict`.
"""
from __future__ import annotations

import csv
import math
from pathlib import Path

import torch

from ..extras import require
from .core import Data, DataError, Split, Want, fit_images, image_stats, split_indices
from .images import Shifts, shift_images

np = require("numpy")

TARGET_NAMES = ("label", "target", "class", "y")  # a CSV column with one of these names is the default target


class TensorSplit(Split):
    """Samples held in memory: inputs `x` ([N, D] vectors or [N, C, H, W] images) and the
    batch fields the heads need (`y`, `mask`, `target`), indexed through `idx`."""

    def __init__(self, x: torch.Tensor, fields: dict[str, torch.Tensor], idx: np.ndarray, want: Want,
                 images: bool, scale: float = 1.0):
        self.x, self.fields, self.idx, self.want, self.is_images, self.scale = x, fields, idx, want, images, scale
        self.mean: float | torch.Tensor = 0.0
        self.std: float | torch.Tensor = 1.0
        self.shifts: Shifts | None = None

    def __len__(self):
        return len(self.idx)

    def raw(self, indices) -> torch.Tensor:
        return self.x[torch.as_tensor(self.idx[np.asarray(indices)])].float() * self.scale

    def batch(self, indices, epoch=0):
        rows = np.asarray(indices)
        j = torch.as_tensor(self.idx[rows])
        x = self.x[j].float() * self.scale
        if self.is_images:
            x = fit_images(x, self.want, self.mean, self.std)
            if self.shifts is not None:
                x = shift_images(x, self.shifts(rows, epoch))
        else:
            x = vectors_as_input((x - self.mean) / self.std, self.want)
        return {"x": x, **{k: v[j] for k, v in self.fields.items()}}


def vectors_as_input(x: torch.Tensor, want: Want) -> torch.Tensor:
    """Standardised vectors [B, D] in the layout of the model's input: [B, D], or [B, C, H, W]
    when D = C * H * W."""
    if want.kind == "image":
        return x.reshape(x.shape[0], want.channels, want.height, want.width)
    return x


def _check_width(name: str, width: int, want: Want, what: str) -> None:
    if want.kind == "tokens":
        raise DataError(f"data '{name}' holds {what}, but input '{want.input}' of {want.model} takes token ids "
                        f"[B, {want.seq_len}] (use text:FILE for text)")
    need = want.flat_dim if want.kind == "flat" else want.channels * want.height * want.width
    if width != need:
        shape = f"[B, {want.flat_dim}]" if want.kind == "flat" else \
            f"[B, {want.channels}, {want.height}, {want.width}] ({need} values)"
        raise DataError(f"data '{name}' has {width} {what} per sample, but input '{want.input}' of {want.model} "
                        f"takes {shape}")


def _classes(values: list[str]) -> list[str]:
    """Class names in label order: numerically when every value is a number, else as text."""
    unique = set(values)
    try:
        return sorted(unique, key=float)
    except ValueError:
        return sorted(unique)


# --------------------------------------------------------------------------
# csv:FILE


def read_csv(path: Path, min_rows: int = 2) -> tuple[list[str], list[list[str]]]:
    """A CSV's header (names stripped) and its non-blank rows of cells; every row as wide as the header."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = [r for r in csv.reader(f) if any(c.strip() for c in r)]
    except OSError as e:
        raise DataError(f"cannot read CSV file '{path}': {e.strerror or e}")
    except (UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"{path}: not a readable CSV file ({e})")
    if len(rows) < min_rows + 1:
        raise DataError(f"{path}: needs a header row and at least {min_rows} row{'s' if min_rows > 1 else ''} "
                        f"of data, got {max(0, len(rows) - 1)}")
    header = [h.strip() for h in rows[0]]
    if len(set(header)) != len(header) or not all(header):
        raise DataError(f"{path}: the header row must name every column once, got {', '.join(header)}")
    for n, r in enumerate(rows[1:], start=2):
        if len(r) != len(header):
            raise DataError(f"{path}:{n}: {len(r)} values, but the header names {len(header)} columns")
    return header, [[c.strip() for c in r] for r in rows[1:]]


def _columns(path: Path, header: list[str], spec: str | None, what: str) -> list[int]:
    names = [c.strip() for c in (spec or "").split(",") if c.strip()]
    out = []
    for c in names:
        if c not in header:
            from ...dsl.errors import did_you_mean

            raise DataError(f"{path}: no {what} column '{c}'{did_you_mean(c, header)}; columns: {', '.join(header)}")
        out.append(header.index(c))
    return out


def numbers(path: Path, header: list[str], rows: list[list[str]], cols: list[int]) -> np.ndarray:
    """Columns `cols` of the rows as float32 [N, len(cols)]; a cell that is no finite number is an error."""
    out = np.empty((len(rows), len(cols)), np.float32)
    for n, r in enumerate(rows):
        for k, c in enumerate(cols):
            try:
                v = float(r[c])
            except ValueError:
                cell = f"'{r[c]}'" if r[c] else "an empty cell"
                raise DataError(f"{path}:{n + 2}: column '{header[c]}' holds {cell}, not a number") from None
            if not math.isfinite(v):
                raise DataError(f"{path}:{n + 2}: column '{header[c]}' holds {r[c]}")
            out[n, k] = v
    return out


def load_csv(name: str, want: Want, seed: int, val_fraction: float, path: Path, target: str | None,
             features: str | None) -> Data:
    header, rows = read_csv(path)
    tcols = _columns(path, header, target, "target")
    if not tcols:
        named = [i for i, h in enumerate(header) if h.lower() in TARGET_NAMES]
        tcols = named[:1] or [len(header) - 1]
    fcols = _columns(path, header, features, "feature") or [i for i in range(len(header)) if i not in tcols]
    both = [header[i] for i in fcols if i in tcols]
    if both:
        raise DataError(f"{path}: column '{both[0]}' cannot be both a feature and the target")
    if not fcols:
        raise DataError(f"{path}: no feature columns left beside the target {', '.join(header[i] for i in tcols)}")
    _check_width(name, len(fcols), want, "feature columns")
    x = torch.from_numpy(numbers(path, header, rows, fcols))
    fields: dict[str, torch.Tensor] = {}
    classes: list[str] = []
    target_dim = None
    tnames = [header[i] for i in tcols]
    if "y" in want.needs:
        if len(tcols) != 1:
            raise DataError(f"{path}: a classify head takes one label column, got --target {','.join(tnames)}")
        values = [r[tcols[0]] for r in rows]
        if "" in values:
            raise DataError(f"{path}:{values.index('') + 2}: column '{tnames[0]}' has an empty label")
        classes = _classes(values)
        index = {c: i for i, c in enumerate(classes)}
        fields["y"] = torch.tensor([index[v] for v in values], dtype=torch.int64)
    if "target" in want.needs:
        fields["target"] = torch.from_numpy(numbers(path, header, rows, tcols))
        target_dim = len(tcols)
    if "mask" in want.needs:
        raise DataError(f"data '{name}' is a table: it has no segmentation masks (npy:X.npy,Y.npy can hold them)")
    data = _vector_data(name, want, x, fields, seed, val_fraction, classes, target_dim)
    data.features, data.targets = [header[i] for i in fcols], tnames
    return data


def _vector_data(name, want, x, fields, seed, val_fraction, classes, target_dim) -> Data:
    tr, va = split_indices(len(x), val_fraction, seed)
    train = TensorSplit(x, fields, tr, want, images=False)
    val = TensorSplit(x, fields, va, want, images=False)
    xt = x[torch.as_tensor(tr)]
    mean = xt.mean(0)
    std = xt.std(0) if len(tr) > 1 else torch.ones_like(mean)
    std = torch.where(std > 1e-6, std, torch.ones_like(std))  # a constant feature stays as it is, centred
    for s in (train, val):
        s.mean, s.std = mean, std
    return Data(name=name, kind="image", train=train, val=val, want=want, num_classes=len(classes) or None,
                class_names=classes, provides=frozenset(fields), target_dim=target_dim,
                norm={"mean": [float(v) for v in mean], "std": [float(v) for v in std]})


# --------------------------------------------------------------------------
# npy:X.npy[,Y.npy]


def load_array(path: Path) -> np.ndarray:
    """A .npy of numbers, read without pickles."""
    try:
        a = np.load(path, allow_pickle=False)
    except OSError as e:
        raise DataError(f"cannot read '{path}': {e.strerror or e}")
    except ValueError as e:  # object arrays (pickles) and damaged files
        raise DataError(f"{path}: not a NumPy array file of numbers ({e})")
    if not isinstance(a, np.ndarray) or a.dtype.kind not in "uifb":
        raise DataError(f"{path}: holds {getattr(a, 'dtype', type(a).__name__)} values, not numbers")
    return a


def as_images(x: np.ndarray) -> np.ndarray | None:
    """[N, H, W], [N, C, H, W] or [N, H, W, C] -> [N, C, H, W]; None for other ranks."""
    if x.ndim == 3:
        return x[:, None]
    if x.ndim == 4:
        if x.shape[1] in (1, 3, 4) or x.shape[3] not in (1, 3, 4):
            return x
        return x.transpose(0, 3, 1, 2)
    return None


def _npy_fields(name: str, want: Want, y: np.ndarray | None, n: int, ypath: str | None,
                hw: tuple[int, int] | None) -> tuple[dict, list[str], int | None]:
    fields: dict[str, torch.Tensor] = {}
    classes: list[str] = []
    target_dim = None
    needed = sorted(want.needs)
    if y is None:
        if needed:
            raise DataError(f"data '{name}' has no Y.npy, but the heads of {want.model} need "
                            f"{', '.join({'y': 'labels', 'mask': 'masks', 'target': 'targets'}[k] for k in needed)}: "
                            "write npy:X.npy,Y.npy")
        return fields, classes, target_dim
    if len(y) != n:
        raise DataError(f"data '{name}': X has {n} samples but {ypath} has {len(y)}")
    if len(needed) > 1:
        raise DataError(f"data '{name}' has one Y, but the heads of {want.model} need {', '.join(needed)}")
    if not needed:
        return fields, classes, target_dim
    key = needed[0]
    if key in ("y", "mask"):
        if y.dtype.kind not in "iub":
            raise DataError(f"{ypath}: {'labels' if key == 'y' else 'masks'} must be integers, got {y.dtype}")
        if y.size and y.min() < 0:
            raise DataError(f"{ypath}: labels must not be negative, got {int(y.min())}")
        if key == "y" and y.ndim != 1:
            raise DataError(f"{ypath}: class labels are [N], got {list(y.shape)}")
        if key == "mask" and (y.ndim != 3 or hw is None or tuple(y.shape[1:]) != hw):
            raise DataError(f"{ypath}: masks must be [N, H, W] at the images' size {list(hw or ())}, "
                            f"got {list(y.shape)}")
        k = max(int(y.max()) + 1 if y.size else 0, want.classes or 0)
        classes = [str(i) for i in range(k)]
        fields[key] = torch.from_numpy(y.astype(np.int64))
    else:
        if y.ndim not in (1, 2):
            raise DataError(f"{ypath}: regression targets are [N] or [N, K], got {list(y.shape)}")
        t = y.astype(np.float32).reshape(n, -1)
        target_dim = t.shape[1]
        fields["target"] = torch.from_numpy(t)
    return fields, classes, target_dim


def load_npy(name: str, want: Want, seed: int, val_fraction: float, arg: str, augment: bool) -> Data:
    paths = [p.strip() for p in arg.split(",")]
    if len(paths) > 2 or not all(paths):
        raise DataError(f"data '{name}': write npy:X.npy or npy:X.npy,Y.npy")
    x = load_array(Path(paths[0]))
    y = load_array(Path(paths[1])) if len(paths) == 2 else None
    if x.ndim < 2 or len(x) < 2:
        raise DataError(f"{paths[0]}: expected samples [N, D] or images [N, (C,) H, W], got {list(x.shape)}")
    images = as_images(x) if want.kind == "image" else None
    if images is None and want.kind == "flat":
        x = x.reshape(len(x), -1)  # images [N, H, W] for a flat input: their pixels as features
    if images is None:  # vectors, for flat inputs (or image inputs of C*H*W values)
        if x.ndim != 2:
            raise DataError(f"{paths[0]}: holds {list(x.shape)} arrays, but input '{want.input}' of {want.model} "
                            f"takes vectors [B, {want.flat_dim}]")
        _check_width(name, x.shape[1], want, "values")
        fields, classes, target_dim = _npy_fields(name, want, y, len(x), paths[-1], None)
        return _vector_data(name, want, torch.from_numpy(x.astype(np.float32)), fields, seed, val_fraction,
                            classes, target_dim)
    if images.shape[1] not in (1, 3, 4):
        raise DataError(f"{paths[0]}: images with {images.shape[1]} channels; expected 1, 3 or 4")
    images = images[:, :3] if images.shape[1] == 4 else images  # RGBA: the alpha channel is not a colour
    fields, classes, target_dim = _npy_fields(name, want, y, len(x), paths[-1], tuple(images.shape[2:]))
    if "mask" in fields and tuple(images.shape[2:]) != (want.height, want.width):
        raise DataError(f"data '{name}' has {images.shape[2]}x{images.shape[3]} images and masks, but input "
                        f"'{want.input}' of {want.model} takes {want.height}x{want.width}; masks are not resized")
    scale = 1 / 255 if images.dtype == np.uint8 else 1.0
    xt = torch.from_numpy(np.ascontiguousarray(images))
    tr, va = split_indices(len(xt), val_fraction, seed)
    train = TensorSplit(xt, fields, tr, want, images=True, scale=scale)
    val = TensorSplit(xt, fields, va, want, images=True, scale=scale)
    mean, std = image_stats(train.raw, len(train), seed)
    for s in (train, val):
        s.mean, s.std = mean, std
    if augment and "mask" not in fields:
        train.shifts = Shifts(len(train), min(want.height, want.width), seed)
    return Data(name=name, kind="image", train=train, val=val, want=want, num_classes=len(classes) or None,
                class_names=classes, provides=frozenset(fields), target_dim=target_dim,
                norm={"mean": mean, "std": std, "scale": scale})
