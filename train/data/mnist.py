"""MNIST idx files (`train-images-idx3-ubyte`, `train-labels-idx1-ubyte`, optionally `t10k-*`,
optionally gzipped), each header checked against the file before anything is trusted.

An idx file is a 4-byte magic (0, 0, element type, number of dims), one big-endian
uint32 per dim, then the values. The reader checks the magic, that the dims are few
(idx files have 1 to 4), and that the values fill the file exactly -- for a gzipped
file, by reading at most one byte more than the header promises, so a small archive
cannot unpack into more memory than its header claims.
"""
from __future__ import annotations

import gzip
import math
import re
from pathlib import Path

import torch

from ..extras import require
from .core import MAX_CLASSES, Data, Want, bad_file, split_indices
from .images import array_data

np = require("numpy")

# idx element type byte -> numpy dtype
IDX_TYPES = {0x08: np.dtype(np.uint8), 0x09: np.dtype(np.int8), 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
             0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
MAX_DIMS = 4
MAX_BYTES = 1 << 36  # 64 GiB of values: a header claiming more is damaged


def read_idx(path: Path, name: str, want: Want) -> np.ndarray:
    """The array of an idx file (see the module docstring); raises DataError naming the file."""
    def bad(problem):
        return bad_file(path, problem, name, want)

    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            head = f.read(4)
            if len(head) < 4 or head[0] != 0 or head[1] != 0:
                raise bad("not an idx file (bad magic number)")
            if head[2] not in IDX_TYPES:
                raise bad(f"unknown idx element type 0x{head[2]:02x}")
            ndim = head[3]
            if not 1 <= ndim <= MAX_DIMS:
                raise bad(f"idx header claims {ndim} dimensions (idx files have 1 to {MAX_DIMS})")
            raw_dims = f.read(4 * ndim)
            if len(raw_dims) < 4 * ndim:
                raise bad("file ends inside the idx header")
            dims = tuple(int.from_bytes(raw_dims[4 * i: 4 * i + 4], "big") for i in range(ndim))
            dtype = IDX_TYPES[head[2]]
            nbytes = math.prod(dims) * dtype.itemsize
            if nbytes > MAX_BYTES:
                raise bad(f"idx header claims {list(dims)} values ({nbytes:,} bytes), more than any dataset")
            if opener is open:
                size = path.stat().st_size - 4 - 4 * ndim
                if size != nbytes:
                    raise bad(f"idx header says {list(dims)} ({nbytes:,} bytes of values) but the file holds "
                              f"{size:,} bytes")
            body = f.read(nbytes + 1)
    except (OSError, EOFError, gzip.BadGzipFile) as e:  # unreadable, or a damaged .gz
        raise bad(f"cannot read ({getattr(e, 'strerror', None) or e})") from None
    if len(body) != nbytes:
        raise bad(f"idx header says {list(dims)} ({nbytes:,} bytes of values) but the file holds "
                  f"{'more' if len(body) > nbytes else f'{len(body):,}'} bytes")
    return np.frombuffer(body, dtype=dtype).reshape(dims)


def _find(folder: Path, split: str, what: str) -> Path | None:
    pat = re.compile(rf"^{split}[-_.]{what}[-_.]idx\d[-_.]ubyte(\.gz)?$", re.I)
    hits = sorted(p for p in folder.iterdir() if pat.match(p.name))
    return hits[0] if hits else None


def _pair(img_path: Path, lab_path: Path, name: str, want: Want) -> tuple[torch.Tensor, torch.Tensor]:
    """Images [N, 1, H, W] uint8 and labels [N] int64 of one split, checked against each other."""
    images, labels = read_idx(img_path, name, want), read_idx(lab_path, name, want)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise bad_file(img_path, f"MNIST images must be unsigned bytes [N, H, W], got {images.dtype} "
                                 f"{list(images.shape)}", name, want)
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise bad_file(lab_path, f"MNIST labels must be integers [N], got {labels.dtype} {list(labels.shape)}",
                       name, want)
    if len(images) != len(labels) or len(images) == 0:
        raise bad_file(lab_path, f"{len(labels)} labels for {len(images)} images in '{img_path.name}'", name, want)
    if labels.min() < 0 or labels.max() >= MAX_CLASSES:
        raise bad_file(lab_path, f"label {int(labels.min() if labels.min() < 0 else labels.max())} is out of "
                                 f"range [0, {MAX_CLASSES})", name, want)
    return torch.from_numpy(images.copy()).unsqueeze(1), torch.from_numpy(labels.astype(np.int64))


def load_mnist(name: str, want: Want, seed: int, val_fraction: float, folder: Path, augment: bool = False) -> Data:
    tr_img, tr_lab = _find(folder, "train", "images"), _find(folder, "train", "labels")
    if tr_img is None or tr_lab is None:
        raise bad_file(folder, "no MNIST train-images-idx3-ubyte / train-labels-idx1-ubyte (optionally .gz)",
                       name, want)
    img_t, lab_t = _pair(tr_img, tr_lab, name, want)
    te_img = _find(folder, "t10k", "images") or _find(folder, "test", "images")
    te_lab = _find(folder, "t10k", "labels") or _find(folder, "test", "labels")
    names = [str(i) for i in range(int(lab_t.max()) + 1)]
    if te_img is not None and te_lab is not None:
        # The official test set is the validation split; the train set is all for training.
        vi_t, vl_t = _pair(te_img, te_lab, name, want)
        if vi_t.shape[1:] != img_t.shape[1:]:
            raise bad_file(te_img, f"test images are {list(vi_t.shape[2:])}, training ones "
                                   f"{list(img_t.shape[2:])}", name, want)
        names = [str(i) for i in range(max(len(names), int(vl_t.max()) + 1))]
        return array_data(name, want, img_t, lab_t, 1 / 255, np.arange(len(lab_t)), np.arange(len(vl_t)),
                          names, seed, vi_t, vl_t, augment=augment)
    tr, va = split_indices(len(lab_t), val_fraction, seed)
    return array_data(name, want, img_t, lab_t, 1 / 255, tr, va, names, seed, augment=augment)
