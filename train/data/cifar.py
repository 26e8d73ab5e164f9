"""CIFAR-10 "python version" batches (`data_batch_1`..., `test_batch`, `batches.meta`), read
without ever running code from them.

The batches are Python pickles, and plain `pickle.load` runs whatever a file asks for: a
received folder (or a run folder's `"data": "cifar10:..."`) could hold a payload. They are
read by an unpickler that admits only what CIFAR batches contain -- dicts, lists, bytes,
str, numbers and numpy arrays -- and refuses every other reference, naming it. The
result is then checked like any header: a [N, 3*S*S] uint8 array, N labels in range,
the same image size in every batch.
"""
from __future__ import annotations

import math
import pickle
from pathlib import Path

import torch

from ..extras import require
from .core import MAX_CLASSES, Data, Want, bad_file, split_indices
from .images import array_data

np = require("numpy")


class Refused(pickle.UnpicklingError):
    """The pickle asks for something a CIFAR batch never holds."""


def _ndarray_reconstruct(subtype, shape, dtype):
    # numpy pickles every array as _reconstruct(ndarray, (0,), b'b') + __setstate__ with the data:
    # anything else (another class, a real shape to allocate) is not an array numpy wrote
    if subtype is not np.ndarray or tuple(shape) != (0,):
        raise Refused("an array that numpy's pickling does not produce")
    return np.ndarray.__new__(np.ndarray, (0,), dtype)


def _latin1(text, encoding="latin1"):
    # how python 3 pickles bytes at protocol 2: _codecs.encode(str, 'latin1')
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise Refused("an encoding call that is not bytes' own")
    return text.encode("latin1")


def _scalar(dtype, data=None):
    if not isinstance(dtype, np.dtype) or dtype.hasobject or not isinstance(data, bytes):
        raise Refused("a numpy scalar of objects")
    return np.frombuffer(data, dtype=dtype, count=1)[0]


def _frombuffer(buf, dtype, shape, order):
    # how numpy pickles arrays at protocol 5: _frombuffer(bytearray, dtype, shape, order)
    ok = (isinstance(buf, (bytes, bytearray)) and isinstance(dtype, np.dtype) and not dtype.hasobject
          and isinstance(shape, tuple) and all(isinstance(d, int) and d >= 0 for d in shape) and order in ("C", "F")
          and len(buf) == math.prod(shape) * dtype.itemsize)
    if not ok:
        raise Refused("an array whose buffer does not match its shape")
    return np.frombuffer(buf, dtype=dtype).reshape(shape, order=order)


_multiarray = {"_reconstruct": _ndarray_reconstruct, "scalar": _scalar}
# (module, name) a pickle may refer to -> what it gets instead
ADMITTED = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _latin1,
    **{(m, n): f for m in ("numpy.core.multiarray", "numpy._core.multiarray") for n, f in _multiarray.items()},
    **{(m, "_frombuffer"): _frombuffer for m in ("numpy.core.numeric", "numpy._core.numeric")},
}


class _Restricted(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) in ADMITTED:
            return ADMITTED[(module, name)]
        raise Refused(f"it refers to '{module}.{name}', which CIFAR batches never do "
                                     "(only dicts, lists, bytes, str, numbers and numpy arrays are read)")


def _plain(x, depth: int = 0) -> bool:
    """Only the kinds of value a CIFAR batch holds (arrays of numbers, not of objects)."""
    if depth > 8:
        return False
    if isinstance(x, np.ndarray):
        return not x.dtype.hasobject
    if isinstance(x, dict):
        return all(_plain(k, depth + 1) and _plain(v, depth + 1) for k, v in x.items())
    if isinstance(x, (list, tuple)):
        return all(_plain(v, depth + 1) for v in x)
    return x is None or isinstance(x, (bytes, str, bool, int, float, np.generic))


def read_batch(path: Path, name: str, want: Want) -> dict:
    """One CIFAR python batch as a dict, read safely (see the module docstring)."""
    try:
        with open(path, "rb") as f:
            obj = _Restricted(f, encoding="bytes").load()
    except Refused as e:
        raise bad_file(path, f"refused as a CIFAR-10 python batch: {e}", name, want) from None
    except Exception as e:  # noqa: BLE001 - truncated, not a pickle, a broken array: one user problem
        raise bad_file(path, f"cannot read as a CIFAR-10 python batch ({type(e).__name__}: {e})", name, want) from None
    if not isinstance(obj, dict) or not _plain(obj):
        raise bad_file(path, "not a CIFAR-10 python batch (expected a dict of arrays, lists and bytes)", name, want)
    return obj


def _arrays(batch: dict, path: Path, name: str, want: Want) -> tuple[np.ndarray, np.ndarray, int]:
    """(images [N, 3*S*S] uint8, labels [N] int64, S) of a batch, each checked."""
    data = batch.get(b"data", batch.get("data"))
    labels = batch.get(b"labels", batch.get(b"fine_labels", batch.get("labels")))
    if not isinstance(data, np.ndarray) or labels is None:
        raise bad_file(path, "CIFAR batch without 'data' (an array) and 'labels'", name, want)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[0] == 0:
        raise bad_file(path, f"CIFAR data is {data.dtype} {list(data.shape)}, expected uint8 [N, 3*S*S]", name, want)
    side = int(round((data.shape[1] / 3) ** 0.5))
    if 3 * side * side != data.shape[1]:
        raise bad_file(path, f"CIFAR rows of {data.shape[1]} bytes are not 3 square colour planes", name, want)
    try:
        lab = np.asarray(labels)
        ok = lab.ndim == 1 and lab.dtype.kind in "iu"
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise bad_file(path, "CIFAR labels are not a list of integers", name, want)
    if len(lab) != len(data):
        raise bad_file(path, f"{len(data)} images but {len(lab)} labels", name, want)
    if lab.min() < 0 or lab.max() >= MAX_CLASSES:
        raise bad_file(path, f"label {int(lab.min() if lab.min() < 0 else lab.max())} is out of range "
                             f"[0, {MAX_CLASSES})", name, want)
    return data, lab.astype(np.int64), side


def _stack(files: list[Path], name: str, want: Want) -> tuple[torch.Tensor, torch.Tensor]:
    parts = [(_arrays(read_batch(p, name, want), p, name, want), p) for p in files]
    sides = {side for (_, _, side), _ in parts}
    if len(sides) > 1:
        raise bad_file(files[0].parent, f"batches hold images of different sizes {sorted(sides)}", name, want)
    side = sides.pop()
    data = np.concatenate([d for (d, _, _), _ in parts])
    labels = np.concatenate([lab for (_, lab, _), _ in parts])
    return torch.from_numpy(data.reshape(-1, 3, side, side).copy()), torch.from_numpy(labels)


def load_cifar10(name: str, want: Want, seed: int, val_fraction: float, folder: Path, augment: bool = False) -> Data:
    train_files = sorted(folder.glob("data_batch_*"), key=lambda p: p.name)
    if not train_files:
        raise bad_file(folder, "no CIFAR-10 data_batch_* files", name, want)
    images, labels = _stack(train_files, name, want)
    names = None
    meta = folder / "batches.meta"
    if meta.exists():
        m = read_batch(meta, name, want)
        raw = m.get(b"label_names", m.get("label_names", []))
        if not isinstance(raw, list) or not all(isinstance(n, (bytes, str)) for n in raw):
            raise bad_file(meta, "label_names is not a list of strings", name, want)
        names = [n.decode("utf-8", "replace") if isinstance(n, bytes) else n for n in raw] or None
    test = folder / "test_batch"
    vi, vl = _stack([test], name, want) if test.exists() else (None, None)
    n_classes = max(int(labels.max()) + 1, len(names or []), int(vl.max()) + 1 if vl is not None else 0)
    names = (names or []) + [str(i) for i in range(len(names or []), n_classes)]
    if vi is not None:
        if vi.shape[1:] != images.shape[1:]:
            raise bad_file(test, f"test images are {list(vi.shape[1:])}, training ones {list(images.shape[1:])}",
                           name, want)
        return array_data(name, want, images, labels, 1 / 255, np.arange(len(labels)), np.arange(len(vl)),
                           names, seed, vi, vl, augment=augment)
    tr, va = split_indices(len(labels), val_fraction, seed)
    return array_data(name, want, images, labels, 1 / 255, tr, va, names, seed, augment=augment)
