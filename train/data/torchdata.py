"""PyTorch data as a netspec source: `netspec.train(model, data=dataset)` with a
`torch.utils.data.Dataset` or `DataLoader`.

An item (Dataset) or batch (DataLoader) is a tensor `x`, a pair `(x, t)`, or a dict with
the batch fields by name (`x`, and `y` / `mask` / `target`). In a pair, `t` is what the
model's heads need: class labels `y` for classify, masks for segment, targets for
regress (a model whose heads need two of them takes dicts). Inputs and targets are used
as they come: normalise in your dataset's transform.

A Dataset is batched by netspec's own `Loader` (seeded shuffling, sharded under torchrun,
exactly resumable); without `val=` the validation split is a seeded `val_fraction` of it.
A DataLoader's batches are used as it makes them (its sampler, batch size, collate_fn,
workers): an epoch is one pass; resuming skips the batches already seen, which is exact
when its order depends on its epoch alone (no shuffling, or a sampler with `set_epoch`).
Under torchrun give it a DistributedSampler. Without `val=` a DataLoader trains without
validation metrics.
"""
from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, default_collate

from .core import Data, DataError, EpochCursor, Loader, Split, Want, split_indices

FIELDS = ("x", "y", "mask", "target")
_DTYPES = {"y": torch.int64, "mask": torch.int64, "target": torch.float32}


def is_torch_data(obj) -> bool:
    return isinstance(obj, (Dataset, DataLoader))


def as_batch(obj, want: Want, where: str) -> dict[str, torch.Tensor]:
    """A collated item / batch -> netspec's batch dict, with the dtypes the losses take."""
    if isinstance(obj, torch.Tensor):
        fields = {"x": obj}
    elif isinstance(obj, Mapping):
        unknown = [k for k in obj if k not in FIELDS]
        if unknown or "x" not in obj:
            raise DataError(f"{where}: dict items need key 'x' and may have {', '.join(FIELDS[1:])}; "
                            f"got {', '.join(map(str, obj))}")
        fields = dict(obj)
    elif isinstance(obj, Sequence) and not isinstance(obj, str) and 1 <= len(obj) <= 2:
        fields = {"x": obj[0]}
        if len(obj) == 2:
            needed = sorted(want.needs)
            if len(needed) > 1:
                raise DataError(f"{where}: the heads of {want.model} need {', '.join(needed)}; give items as "
                                f"dicts {{'x': ..., {', '.join(repr(k) + ': ...' for k in needed)}}}")
            if needed:
                fields[needed[0]] = obj[1]
    else:
        raise DataError(f"{where}: an item must be a tensor x, a pair (x, target) or a dict, "
                        f"got {type(obj).__name__}")
    out = {}
    for k, v in fields.items():
        if not isinstance(v, torch.Tensor):
            try:
                v = torch.as_tensor(v)
            except (TypeError, ValueError, RuntimeError):
                raise DataError(f"{where}: '{k}' is a {type(v).__name__}, not a tensor") from None
        dtype = torch.int64 if k == "x" and want.kind == "tokens" else _DTYPES.get(k, torch.float32)
        out[k] = v.to(dtype)
    if "target" in out and out["target"].dim() == 1:
        out["target"] = out["target"][:, None]  # [B] -> [B, 1], as one regression output
    return out


class DatasetSplit(Split):
    """Samples `idx` of a map-style Dataset, collated with torch's default_collate."""

    def __init__(self, dataset: Dataset, idx, want: Want, where: str):
        self.dataset, self.idx, self.want, self.where = dataset, idx, want, where

    def __len__(self):
        return len(self.idx)

    def batch(self, indices, epoch=0):
        items = [self.dataset[int(self.idx[i])] for i in indices]
        if items and isinstance(items[0], (str, bytes)):  # collated, strings would pass as pairs
            raise DataError(f"{self.where}: an item must be a tensor x, a pair (x, target) or a dict, "
                            f"got {type(items[0]).__name__}")
        try:
            collated = default_collate(items)
        except (TypeError, RuntimeError) as e:  # items of different shapes or types
            raise DataError(f"{self.where}: cannot batch its items ({e})") from None
        return as_batch(collated, self.want, self.where)


class LoaderSplit(Split):
    """A DataLoader: its own batches, in its own order. `batch(indices)` gives rows of its first
    batch (the model check); training and validation iterate it."""

    def __init__(self, loader: DataLoader, want: Want, where: str):
        self.loader, self.want, self.where = loader, want, where

    def __len__(self):
        """Samples per pass when the loader knows them, else 0."""
        for sized in (self.loader.dataset, self.loader):
            try:
                return len(sized) * (1 if sized is self.loader.dataset else self.loader.batch_size or 1)
            except TypeError:  # an IterableDataset: only the loader may know its batches
                continue
        return 0

    def batches_per_epoch(self) -> int:
        try:
            return len(self.loader)
        except TypeError:
            raise DataError(f"{self.where} has no length: give `steps`, not `epochs`") from None

    def batches(self, epoch: int = 0):
        sampler = getattr(self.loader, "sampler", None)
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)
        for b in self.loader:
            yield as_batch(b, self.want, self.where)

    def batch(self, indices, epoch=0):
        first = next(iter(self.batches(epoch)), None)
        if first is None:
            raise DataError(f"{self.where} gave no batch")
        rows = torch.as_tensor(list(indices))[: len(first["x"])]
        return {k: v[rows] for k, v in first.items()}


class LoaderBatches(EpochCursor):
    """The trainer's loader over a DataLoader: endless passes, resumable by (epoch, batches seen)."""

    def __init__(self, split: LoaderSplit):
        self.split = split

    @property
    def batches_per_epoch(self) -> int:  # asked only to turn `epochs` into steps
        return self.split.batches_per_epoch()

    def _generate(self):
        while True:
            seen = 0
            for b in itertools.islice(self.split.batches(self.epoch), self.offset, None):
                self.offset += 1
                seen += 1
                yield b
            if seen == 0 and self.offset == 0:
                raise DataError(f"{self.split.where} gave no batch")
            self.epoch, self.offset = self.epoch + 1, 0


def make_loader(split: Split, batch_size: int, seed: int, *, rank: int = 0, world: int = 1, num_workers: int = 0):
    """netspec's Loader for a split, or the DataLoader's own batches for a LoaderSplit."""
    if isinstance(split, LoaderSplit):
        return LoaderBatches(split)
    return Loader(split, batch_size, seed, rank=rank, world=world, num_workers=num_workers)


def _describe(obj) -> str:
    inner = obj.dataset if isinstance(obj, DataLoader) else obj
    return f"<{type(obj).__name__} {type(inner).__name__}>" if isinstance(obj, DataLoader) else \
        f"<{type(obj).__name__}>"


def _split(obj, want: Want, where: str, idx=None) -> Split:
    if isinstance(obj, DataLoader):
        return LoaderSplit(obj, want, where)
    if isinstance(obj, IterableDataset):
        raise DataError(f"{where} is an IterableDataset: wrap it in a DataLoader")
    try:
        n = len(obj)
    except TypeError:
        raise DataError(f"{where} has no length: give a map-style Dataset or a DataLoader") from None
    import numpy as np

    return DatasetSplit(obj, np.arange(n) if idx is None else idx, want, where)


def load_torch(data, val, model: torch.nn.Module, cfg) -> Data:
    """A Data over a Dataset / DataLoader (`val`: the validation one, or None) for `model`
    under RunConfig `cfg`, checked against its heads like every source. Raises DataError."""
    from .outputs import check_fit, needs_probe, probe_shapes
    from .want import want_from_info

    info = model.netspec
    shapes = probe_shapes(model, info) if needs_probe(info) else {}
    want = want_from_info(info, cfg.seq_len, shapes)
    loaded = _torch_data(data, val, want, cfg.seed, cfg.val_fraction if cfg.val_fraction is not None else 0.2)
    check_fit(loaded, info, shapes)
    return loaded


def _torch_data(data, val, want: Want, seed: int, val_fraction: float) -> Data:
    name = _describe(data)
    if val is None and not isinstance(data, DataLoader):
        if isinstance(data, IterableDataset):
            raise DataError(f"{name} is an IterableDataset: wrap it in a DataLoader")
        tr, va = split_indices(len(data), val_fraction, seed)
        train, valid = _split(data, want, name, tr), _split(data, want, name, va)
    else:
        train = _split(data, want, name)
        valid = _split(val, want, f"validation {_describe(val)}") if val is not None else None
    first = train.batch([0] if isinstance(train, LoaderSplit) or len(train) < 2 else [0, 1], 0)
    provides = frozenset(k for k in first if k != "x")
    source = data.dataset if isinstance(data, DataLoader) else data
    names = getattr(source, "classes", None)  # torchvision's ImageFolder, CIFAR10, MNIST, ... have them
    names = [str(c) for c in names] if isinstance(names, (list, tuple)) and names else None
    classes = len(names) if names else want.classes
    target_dim = int(first["target"].shape[-1]) if "target" in first else None
    kind = "tokens" if want.kind == "tokens" else "image"
    return Data(name=name, kind=kind, train=train, val=valid, want=want, num_classes=classes,
                class_names=names or ([str(i) for i in range(classes)] if classes and "y" in provides else []),
                provides=provides, target_dim=target_dim)
