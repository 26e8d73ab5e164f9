"""Data plumbing shared by every source: what the model wants, splits, loaders.

A source (digits, shapes, a text file, ...) turns a `Want` -- the input the
model takes and the targets its heads need -- into a `Data`: a train and a
validation `Split` plus facts (classes, vocabulary) for the checks.

A `Split` is map-style and batched: `split.batch(indices, epoch)` returns a
dict of tensors. `x` is the model input; `y` int64 class labels [B]; `mask`
int64 per-pixel labels [B, H, W]; `target` float32 regression targets [B, K].
A source that feeds several inputs names the batch field of each in `Data.inputs`
(`seq2seq`: `src`, then `x`, the target sequence the loss reads, with `x_valid`
marking its real tokens).
Everything is a pure function of (seed, epoch, indices), so a `Loader` only
has to remember (epoch, batches consumed) to resume exactly where it was.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Callable, Iterator

import torch
import torch.nn.functional as F

from ...dsl.errors import NetspecError
from ..extras import require

np = require("numpy")


class DataError(NetspecError):
    """Data that cannot be read or does not fit the model. The message is user-facing."""


MAX_CLASSES = 100_000  # labels past this are a damaged file, not a dataset (class names are listed)
MAX_PIXELS = 1 << 26  # pixels per image file (8192 x 8192): larger ones are refused before decoding


def bad_file(path, problem: str, name: str, want: "Want") -> DataError:
    """A DataError naming the file, what is wrong with it, the data source and the spec input it feeds."""
    return DataError(f"{path}: {problem} (data '{name}' for input '{want.input}' of {want.model})")


@dataclass(frozen=True)
class Want:
    """What the model needs, read from its ModelInfo (see `want.want_from_info`)."""

    model: str  # model name, for messages
    input: str  # name of the (first) input the data feeds
    kind: str  # a key of INPUT_KINDS: "image", "video", "flat", "tokens" or "ids"
    channels: int = 1
    height: int = 0
    width: int = 0
    frames: int = 0  # kind "video": T
    flat_dim: int = 0  # kind "flat": D
    seq_len: int = 0  # kind "tokens": T
    needs: frozenset = frozenset()  # subset of {"y", "mask", "target"}
    classes: int | None = None  # classes the classify / segment head outputs (segment: incl. background)
    target_dim: int | None = None  # regress: K
    pixels: str = "standard"  # images: "standard" (the training split's mean and std), or a scale of
    # netspec.dsl.tasks.PIXELS a head's task asks for: "unit" [0, 1], "signed" [-1, 1]
    rest: tuple = ()  # Wants of the model's further inputs, in order (a model with several inputs)

    @property
    def arity(self) -> int:
        """How many inputs the model takes."""
        return 1 + len(self.rest)


# input kind -> how messages name it
INPUT_KINDS = {"image": "images [B, C, H, W]", "video": "video clips [B, C, T, H, W]", "flat": "flat vectors [B, D]",
               "tokens": "token ids [B, T]", "ids": "ids [B]"}


class Split:
    """A map-style, batched dataset. Subclasses implement __len__ and batch()."""

    def __len__(self) -> int:
        raise NotImplementedError

    def batch(self, indices: np.ndarray, epoch: int = 0) -> dict[str, torch.Tensor]:
        raise NotImplementedError


@dataclass
class Data:
    name: str  # the source as written, for messages ('digits', 'text:notes.txt')
    kind: str  # "image" or "tokens"
    train: Split
    val: Split | None  # None: no validation (a PyTorch DataLoader given without val=)
    want: Want
    num_classes: int | None = None  # image labels (segment: incl. background)
    class_names: list[str] = field(default_factory=list)
    vocab_size: int | None = None  # tokens
    vocab: list[str] | None = None  # char vocabulary; None: bytes
    provides: frozenset = frozenset()  # keys of batch() beyond x
    target_dim: int | None = None  # width of "target" when provided
    inputs: tuple[str, ...] = ("x",)  # the batch field fed to each of the model's inputs, in order
    counts: object = None  # np.ndarray [classes]: how often each class (word, token) is a training
    # target, for the output losses that need it (hierarchical softmax's tree, the noise of nce and
    # negative sampling); None: every class as often
    specials: dict = field(default_factory=dict)  # token data: role ("pad", "bos", "eos") -> id

    # How raw inputs become the model's: images {"mean": m, "std": s} of [0, 1] pixels (one value for
    # every channel); vectors {"mean": [...], "std": [...]} per feature. None: fed as given.
    norm: dict | None = None
    features: list[str] | None = None  # vectors from a CSV: the feature columns, in input order
    targets: list[str] | None = None  # a CSV's label / target columns

    def model_inputs(self, batch: dict) -> list:
        """The batch's tensors in the order of the model's inputs: `model(*data.model_inputs(batch))`."""
        return [batch[f] for f in self.inputs]

    def facts(self) -> dict:
        """What a run folder keeps of its data, so that `predict` turns new inputs into the model's
        and its outputs into names without reading the data again (data.json)."""
        return {"source": self.name, "inputs": self.input_kind, "classes": list(self.class_names) or None,
                "normalize": self.norm, "features": self.features, "targets": self.targets}

    @property
    def input_kind(self) -> str:
        """What raw inputs are: "tokens" (text), "vectors" (normalised per feature), "images", or
        "ids" / "video" (words, clips)."""
        if self.kind in ("tokens", "seq2seq", "ids", "video"):
            return "tokens" if self.kind == "seq2seq" else self.kind
        if self.norm is not None:
            return "vectors" if isinstance(self.norm.get("mean"), list) else "images"
        return "vectors" if self.want is not None and self.want.kind == "flat" else "images"

    # --- text helpers (tokens only) ---------------------------------------
    def encode(self, text: str) -> list[int]:
        if self.vocab is None:
            return list(text.encode("utf-8"))
        index = {c: i for i, c in enumerate(self.vocab)}
        missing = sorted({c for c in text if c not in index})
        if missing:
            raise DataError(f"prompt has characters outside the run's vocabulary: {''.join(missing)!r}")
        return [index[c] for c in text]

    def decode(self, ids) -> str:
        if self.vocab is None:
            return bytes(int(i) % 256 for i in ids).decode("utf-8", errors="replace")
        return "".join(self.vocab[int(i)] if 0 <= int(i) < len(self.vocab) else "\ufffd" for i in ids)

    def describe(self) -> str:
        if self.kind == "seq2seq":
            return (f"{self.name}: {len(self.train)} fresh pairs per epoch / {len(self.val)} val pairs "
                    f"({self.vocab_size} symbols)")
        if self.kind == "tokens":
            v = f"{self.vocab_size} chars" if self.vocab is not None else "bytes"
            val = f"{len(self.val)} val" if self.val is not None else "no validation"
            return f"{self.name}: {len(self.train)} train / {val} sequences of {self.want.seq_len} ({v})"
        c = f", {self.num_classes} classes" if self.num_classes else ""
        what = "words" if self.kind == "ids" else "clips" if self.kind == "video" else "samples"
        val = f"{len(self.val)} val {what}" if self.val is not None else f"no validation {what}"
        return f"{self.name}: {len(self.train)} train / {val}{c}"


# --------------------------------------------------------------------------
# Loaders


def seeded_rng(seed: int, *tags: int) -> np.random.Generator:
    """A generator drawn from (seed, *tags): independent streams per purpose, none touching
    the global numpy RNG."""
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, *[int(t) & 0xFFFFFFFF for t in tags]])


class _EpochBatches(torch.utils.data.Dataset):
    """One epoch's batches as a dataset, so DataLoader workers can build them."""

    def __init__(self, split: Split, batches: list[np.ndarray], epoch: int):
        self.split, self.batches, self.epoch = split, batches, epoch

    def __len__(self):
        return len(self.batches)

    def __getitem__(self, i):
        return self.split.batch(self.batches[i], self.epoch)


class EpochCursor:
    """Endless batches from a subclass's `_generate`, which advances (epoch, offset): the
    position a checkpoint keeps and a resumed run starts the generator from again."""

    epoch = offset = 0
    _it: Iterator | None = None

    def _generate(self) -> Iterator[dict]:
        raise NotImplementedError

    def next(self) -> dict[str, torch.Tensor]:
        if self._it is None:
            self._it = self._generate()
        return next(self._it)

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "offset": self.offset}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.offset = int(state["epoch"]), int(state["offset"])
        self._it = None


class Loader(EpochCursor):
    """Endless shuffled batches of a split, sharded across processes, resumable.

    Epoch e visits a permutation drawn from (seed, e); under torchrun each rank
    takes every world-th index (padded like DistributedSampler so all ranks run
    the same number of steps). The last short batch is dropped so every step
    sees the same batch size.
    """

    def __init__(self, split: Split, batch_size: int, seed: int, *, rank: int = 0, world: int = 1,
                 num_workers: int = 0):
        self.split, self.batch_size, self.seed = split, batch_size, seed
        self.rank, self.world, self.num_workers = rank, world, num_workers
        n = len(split)
        per_rank = math.ceil(n / world)
        if per_rank < 1:
            raise DataError("the training split is empty")
        # Fewer samples than a batch: use them all as one (smaller) batch.
        self.batches_per_epoch = max(1, per_rank // batch_size)

    def _epoch_batches(self, epoch: int) -> list[np.ndarray]:
        n = len(self.split)
        perm = seeded_rng(self.seed, 0x5EED, epoch).permutation(n)
        per_rank = math.ceil(n / self.world)
        if per_rank * self.world > n:
            perm = np.concatenate([perm, perm[: per_rank * self.world - n]])
        mine = perm[self.rank :: self.world]
        bs = min(self.batch_size, len(mine))
        return [mine[i * bs : (i + 1) * bs] for i in range(self.batches_per_epoch)]

    def _generate(self) -> Iterator[dict]:
        while True:
            batches = self._epoch_batches(self.epoch)[self.offset :]
            if self.num_workers > 0:
                dl = torch.utils.data.DataLoader(
                    _EpochBatches(self.split, batches, self.epoch), batch_size=None, shuffle=False,
                    num_workers=self.num_workers, persistent_workers=False)
                source = iter(dl)
            else:
                source = (self.split.batch(b, self.epoch) for b in batches)
            for b in source:
                self.offset += 1
                yield b
            self.epoch, self.offset = self.epoch + 1, 0

    def state_dict(self) -> dict:
        if self.offset >= self.batches_per_epoch:  # finished an epoch the generator has not rolled over yet
            return {"epoch": self.epoch + 1, "offset": 0}
        return super().state_dict()


def eval_batches(split: Split, batch_size: int, max_batches: int = 0, seed: int = 0) -> Iterator[dict]:
    """Validation batches: the whole split in order, or a fixed random subset when capped
    (a split that makes its own batches, a DataLoader's: its first max_batches)."""
    if hasattr(split, "batches"):
        yield from itertools.islice(split.batches(), max_batches or None)
        return
    n = len(split)
    order = np.arange(n)
    if max_batches and max_batches * batch_size < n:
        # Fixed by the seed alone, so every evaluation of a run scores the same samples.
        order = np.sort(seeded_rng(seed, 0xE7A1).permutation(n)[: max_batches * batch_size])
    for i in range(0, len(order), batch_size):
        yield split.batch(order[i : i + batch_size], 0)


# --------------------------------------------------------------------------
# Image helpers


def fit_images(x: torch.Tensor, want: Want, mean: float, std: float) -> torch.Tensor:
    """[B, C0, H0, W0] floats in [0, 1] -> the model's layout, normalised."""
    c = want.channels if want.kind == "image" else _flat_channels(x, want)
    if x.shape[1] != c:
        if c == 1:  # colour -> luminance
            if x.shape[1] == 3:
                x = (x * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
            else:
                x = x.mean(1, keepdim=True)
        elif x.shape[1] == 1:
            x = x.expand(-1, c, -1, -1)
        else:
            raise DataError(f"cannot turn {x.shape[1]}-channel images into {c} channels")
    h, w = (want.height, want.width) if want.kind == "image" else _flat_hw(x, want, c)
    if (h, w) != tuple(x.shape[-2:]):
        shrink = h < x.shape[-2] or w < x.shape[-1]
        x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False, antialias=shrink)
    x = (x - mean) / std
    if want.kind == "flat":
        x = x.reshape(x.shape[0], -1)
    return x.contiguous()


def _flat_channels(x: torch.Tensor, want: Want) -> int:
    d = want.flat_dim
    if d == x.shape[1] * x.shape[2] * x.shape[3]:
        return x.shape[1]
    for c in (1, 3):
        if d % c == 0 and math.isqrt(d // c) ** 2 == d // c:
            return c
    return x.shape[1]


def _flat_hw(x: torch.Tensor, want: Want, c: int) -> tuple[int, int]:
    d = want.flat_dim
    if d == c * x.shape[2] * x.shape[3]:
        return tuple(x.shape[-2:])
    side = math.isqrt(d // c)
    return side, side


def flat_ok(want: Want, native: tuple[int, int, int]) -> bool:
    c0, h0, w0 = native
    d = want.flat_dim
    if d == c0 * h0 * w0:
        return True
    return any(d % c == 0 and math.isqrt(d // c) ** 2 == d // c for c in (1, 3))


# pixel scale (Want.pixels) -> the (mean, std) that brings raw [0, 1] pixels to it
PIXEL_NORMS = {"unit": (0.0, 1.0), "signed": (0.5, 0.5)}


def image_stats(fetch: Callable[[np.ndarray], torch.Tensor], n: int, seed: int, limit: int = 2048,
                pixels: str = "standard"):
    """The (mean, std) images are normalised with: the pixel scale's own (`PIXEL_NORMS`), else
    the mean and std of raw [0, 1] pixels over (a fixed sample of) the training split."""
    if pixels in PIXEL_NORMS:
        return PIXEL_NORMS[pixels]
    idx = np.arange(n) if n <= limit else np.sort(seeded_rng(seed, 0x57A7).permutation(n)[:limit])
    x = torch.cat([fetch(idx[i : i + 256]) for i in range(0, len(idx), 256)])
    return float(x.mean()), max(float(x.std()), 1e-3)


def split_indices(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A deterministic split of range(n): same seed, same split; at least one sample each side."""
    if n < 2:
        raise DataError(f"need at least 2 samples to split into train and validation, got {n}")
    n_val = min(n - 1, max(1, round(n * val_fraction)))
    perm = seeded_rng(seed, 0x5B117).permutation(n)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])
