"""Token sources for lm heads: `pycode` (the Python standard library's own sources) and text files.

A source is one token stream; the last `val_fraction` of it is the
validation split (contiguous, so no validation text leaks into training).
Training sequences are non-overlapping windows of T tokens whose phase moves
by a seeded random shift each epoch; validation windows are fixed.
Vocabulary: bytes (256 ids) or, for text files with `vocab: char`, the
sorted set of characters, saved with the run as vocab.json.
"""
from __future__ import annotations

import functools
import math
import sysconfig
from pathlib import Path

import torch

from ..extras import require
from .core import Data, DataError, Split, Want, bad_file, seeded_rng

np = require("numpy")

PYCODE_CAP = 8 << 20  # bytes of stdlib source read: enough for minutes of CPU training, read in well under a second
# Skipped: installed packages, test suites (heavy on odd literals) and generated tables.
PYCODE_SKIP = {"site-packages", "dist-packages", "test", "tests", "idle_test", "encodings", "pydoc_data",
               "__pycache__", "lib2to3"}


class TokenSplit(Split):
    def __init__(self, tokens: np.ndarray, seq_len: int, seed: int, shift: bool):
        self.tokens, self.T, self.seed, self.shift = tokens, seq_len, seed, shift
        # Training keeps room for the per-epoch shift (< T); validation starts at 0.
        self.n = (len(tokens) - seq_len) // seq_len if shift else len(tokens) // seq_len

    def __len__(self):
        return self.n

    def batch(self, indices, epoch=0):
        off = int(seeded_rng(self.seed, 0x70C5, epoch).integers(self.T)) if self.shift else 0
        starts = np.asarray(indices, dtype=np.int64) * self.T + off
        rows = self.tokens[starts[:, None] + np.arange(self.T)[None, :]]
        return {"x": torch.from_numpy(rows.astype(np.int64))}


def pycode_files(root: str | None = None) -> list[Path]:
    base = Path(root or sysconfig.get_paths()["stdlib"])
    files = []
    for p in sorted(base.rglob("*.py")):
        rel = p.relative_to(base).parts
        if any(part in PYCODE_SKIP for part in rel[:-1]) or p.name.startswith("_sysconfigdata"):
            continue
        files.append(p)
    return files


@functools.lru_cache(maxsize=2)  # read once per process: eval, resume and tests reuse it
def pycode_bytes(cap: int = PYCODE_CAP) -> bytes:
    chunks, total = [], 0
    for p in pycode_files():
        try:
            b = p.read_bytes()
        except OSError:
            continue
        chunks.append(b)
        total += len(b)
        if total >= cap:
            break
    data = b"".join(chunks)[:cap]
    if not data:
        raise DataError("data 'pycode': found no Python sources under " + sysconfig.get_paths()["stdlib"])
    return data


def _token_data(name: str, want: Want, tokens: np.ndarray, vocab: list[str] | None, seed: int,
                val_fraction: float) -> Data:
    T = want.seq_len
    n_val = max(T, int(len(tokens) * val_fraction))
    train_tok, val_tok = tokens[:-n_val], tokens[-n_val:]
    if len(train_tok) < 2 * T or len(val_tok) < T:
        raise DataError(f"data '{name}' has {len(tokens)} tokens, too few for sequences of {T} "
                        f"(input '{want.input}' of {want.model}); need at least "
                        f"{max(3 * T, math.ceil(2 * T / (1 - val_fraction)))}")
    train, val = TokenSplit(train_tok, T, seed, True), TokenSplit(val_tok, T, seed, False)
    size = 256 if vocab is None else len(vocab)
    return Data(name=name, kind="tokens", train=train, val=val, want=want, vocab_size=size, vocab=vocab,
                provides=frozenset(), counts=np.bincount(train_tok, minlength=size))


def load_pycode(name: str, want: Want, seed: int, val_fraction: float) -> Data:
    tokens = np.frombuffer(pycode_bytes(), dtype=np.uint8)
    return _token_data(name, want, tokens, None, seed, val_fraction)


def load_text(name: str, want: Want, seed: int, val_fraction: float, path: Path, vocab_kind: str,
              vocab: list[str] | None = None) -> Data:
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise DataError(f"cannot read text file '{path}': {e.strerror or e}")
    if vocab_kind == "bytes" and vocab is None:
        return _token_data(name, want, np.frombuffer(raw, dtype=np.uint8), None, seed, val_fraction)
    try:  # characters need an encoding; a wrong guess would silently train on U+FFFD
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise bad_file(path, f"not UTF-8 text (byte 0x{raw[e.start]:02x} at offset {e.start}); convert it to "
                             "UTF-8, or train on its bytes (--vocab bytes)", name, want) from None
    if vocab is None:
        vocab = sorted(set(text))
    index = {c: i for i, c in enumerate(vocab)}
    unknown = sorted({c for c in text if c not in index})
    if unknown:
        raise DataError(f"text '{path}' has characters missing from the run's vocabulary: "
                        f"{''.join(unknown[:20])!r}")
    dtype = np.uint8 if len(vocab) <= 256 else np.int32
    tokens = np.fromiter((index[c] for c in text), dtype=dtype, count=len(text))
    return _token_data(name, want, tokens, vocab, seed, val_fraction)
