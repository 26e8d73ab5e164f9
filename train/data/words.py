"""`pywords`: skip-gram pairs from the words of this Python's own documentation, for word2vec.

The corpus is built from data on the machine, nothing downloaded: the comments and
triple-quoted strings (docstrings, mostly) of every `*.py` file of the standard library
(`sysconfig.get_paths()["stdlib"]`, tests included; installed packages and the generated
code tables of `encodings` not), in sorted
order, and the reference manual's topics (`pydoc_data/topics.py`, read with `ast`, never
run). A word is a lowercase run of letters, digits and underscores starting with a letter
(identifiers such as `getattr` or `sys_path` are words of these texts): about a million
words, 28k distinct on CPython 3.11.

The vocabulary is the C most frequent words, C the classes the head outputs (ties by
first appearance); other words are dropped, like word2vec's min-count. Frequent words
are subsampled once, seeded (word2vec's rule, t = 1e-4: a word of frequency f is kept
with probability sqrt(t/f) + t/f). The last `val_fraction` of the stream is the
validation split. Sample i of a split is the word at position i with one of its context
words: a window b drawn from 1..WINDOW (word2vec's dynamic window), then an offset
within +-b, drawn per (seed, epoch), so resuming is exact; validation pairs are fixed.
Batches: `x` the centre word ids [B], `y` the context word ids [B].
"""
from __future__ import annotations

import ast
import functools
import re
import sysconfig
from collections import Counter
from pathlib import Path

import torch

from ..extras import require
from .core import Data, DataError, Split, Want, seeded_rng

np = require("numpy")

WINDOW = 5  # the largest distance of a context word
SUBSAMPLE = 1e-4  # word2vec's t; 1e-5 suits billion-word corpora, this one has a million
SKIP = {"site-packages", "dist-packages", "__pycache__", "encodings"}  # encodings: generated code tables
WORD = re.compile(r"[a-z][a-z0-9_]*")
TEXT = re.compile(r'("""|\'\'\')(.*?)\1|#([^\n]*)', re.S)  # a triple-quoted string, or a comment


def _files(base: Path) -> list[Path]:
    return [p for p in sorted(base.rglob("*.py")) if not SKIP & set(p.relative_to(base).parts[:-1])]


ESCAPE = re.compile(r"\\\w")  # "\n" in a docstring is no word "n"


def _words(text: str) -> list[str]:
    return [w.rstrip("_") for w in WORD.findall(ESCAPE.sub(" ", text.lower()))]


@functools.lru_cache(maxsize=1)  # read once per process: eval, resume and tests reuse it
def corpus(root: str | None = None) -> tuple[str, ...]:
    """Every word of the standard library's comments, docstrings and reference topics, in order."""
    base = Path(root or sysconfig.get_paths()["stdlib"])
    words: list[str] = []
    for p in _files(base):
        try:
            src = p.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        for m in TEXT.finditer(src):
            words += _words(m.group(2) if m.group(2) is not None else m.group(3))
    topics = base / "pydoc_data" / "topics.py"
    try:  # the reference manual's text: the values of one dict literal, parsed, not run
        for node in ast.walk(ast.parse(topics.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Dict):
                for v in node.values:
                    if isinstance(v, ast.Constant) and isinstance(v.value, str):
                        words += _words(v.value)
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        pass
    if not words:
        raise DataError(f"data 'pywords': found no documentation under {base}")
    return tuple(words)


def vocabulary(words, size: int) -> tuple[list[str], np.ndarray]:
    """The `size` most frequent words (ties: first seen first) and their counts."""
    common = Counter(words).most_common(size)  # most_common keeps first-seen order among equal counts
    return [w for w, _ in common], np.array([c for _, c in common], dtype=np.int64)


def subsample(ids: np.ndarray, counts: np.ndarray, seed: int, t: float = SUBSAMPLE) -> np.ndarray:
    """Drop frequent words: keep word w with probability sqrt(t / f) + t / f (f its frequency)."""
    f = counts / counts.sum()
    keep = np.minimum(1.0, np.sqrt(t / f) + t / f)
    return ids[seeded_rng(seed, 0x5AB5).random(len(ids)) < keep[ids]]


class PairSplit(Split):
    """Skip-gram pairs of a word stream: sample i is (word i, a word of its window)."""

    def __init__(self, ids: np.ndarray, seed: int, fixed_epoch: int | None, window: int = WINDOW):
        self.ids, self.seed, self.fixed_epoch, self.window = ids, seed, fixed_epoch, window
        self._epoch, self._offsets = None, None

    def __len__(self):
        return len(self.ids)

    def offsets(self, epoch: int) -> np.ndarray:
        """Each position's context offset this epoch (never 0, never outside the stream)."""
        e = self.fixed_epoch if self.fixed_epoch is not None else epoch
        if self._epoch != e:
            rng = seeded_rng(self.seed, 0xC0E7, e + 2)
            n = len(self.ids)
            b = rng.integers(1, self.window + 1, size=n)  # the dynamic window
            o = rng.integers(1, b + 1) * rng.choice(np.array([-1, 1]), size=n)
            pos = np.arange(n)
            o = np.where((pos + o < 0) | (pos + o >= n), -o, o)  # at the ends: the other side
            self._epoch, self._offsets = e, o
        return self._offsets

    def batch(self, indices, epoch=0):
        i = np.asarray(indices, dtype=np.int64)
        j = i + self.offsets(epoch)[i]
        return {"x": torch.from_numpy(self.ids[i]), "y": torch.from_numpy(self.ids[j])}


def load_pywords(name: str, want: Want, seed: int, val_fraction: float) -> Data:
    words = corpus()
    distinct = len(set(words))
    size = want.classes
    if size is None:
        raise DataError(f"data '{name}' needs a classify head whose output size is the vocabulary size")
    if not 2 <= size <= distinct:
        raise DataError(f"data '{name}' has {distinct} distinct words, but head of {want.model} outputs {size} "
                        f"classes; choose a vocabulary of 2 to {distinct} (e.g. --set vocab=20000)")
    vocab, counts = vocabulary(words, size)
    index = {w: i for i, w in enumerate(vocab)}
    ids = np.fromiter((index[w] for w in words if w in index), dtype=np.int64)
    ids = subsample(ids, counts, seed)
    n_val = max(1, int(len(ids) * val_fraction))
    if len(ids) - n_val < 2:
        raise DataError(f"data '{name}' has too few words ({len(ids)}) to split")
    train, val = PairSplit(ids[:-n_val], seed, None), PairSplit(ids[-n_val:], seed, -1)
    return Data(name=name, kind="ids", train=train, val=val, want=want, num_classes=size, class_names=vocab,
                provides=frozenset({"y"}), counts=counts)
