"""`seq2seq:TASK`: generated character-level pairs for encoder-decoder models.

    reverse   a string of 1..L lowercase letters -> the string reversed
    add       "123+456=" (two 3-digit numbers) -> "579"

A batch holds `src` [B, S] (the source, padded with <pad>) for the encoder and `x`
[B, T] for the decoder: <bos>, the target, <eos>, then <pad>. The decoder reads `x`
and predicts it shifted by one (teacher forcing); `x_valid` [B, T] marks its real
tokens, so padding is never a target. S and T are the model's input lengths.

The validation split is a fixed set of pairs. Training draws fresh pairs every epoch, a
pure function of (seed, epoch, index); for `add` it never draws a validation pair, so
validation measures held-out pairs (reversal draws from 26^L strings and repeats none
of length > 3 in practice, while the few short ones are all worth seeing).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from ..extras import require
from .core import Data, DataError, Split, Want, seeded_rng

np = require("numpy")

PAD, BOS, EOS = "<pad>", "<bos>", "<eos>"
SPECIALS = (PAD, BOS, EOS)  # ids 0, 1, 2 of every seq2seq vocabulary
TRAIN_SIZE = 20000  # pairs per training epoch (fresh each epoch)
VAL_SIZE = 2000
VAL_EPOCH = -1
ADD_DIGITS = 3


@dataclass(frozen=True)
class PairTask:
    alphabet: str  # the characters of sources and targets
    # (rng, longest source, longest target) -> (source, target)
    draw: Callable[[np.random.Generator, int, int], tuple[str, str]]
    needs: tuple[int, int]  # the shortest source and target (without <bos>/<eos>) the task can use
    held_out: bool  # training never draws a validation pair


def _reverse(rng: np.random.Generator, s_max: int, t_max: int) -> tuple[str, str]:
    n = int(rng.integers(1, min(s_max, t_max) + 1))
    s = "".join(chr(97 + int(c)) for c in rng.integers(0, 26, size=n))
    return s, s[::-1]


def _add(rng: np.random.Generator, s_max: int, t_max: int) -> tuple[str, str]:
    # both numbers have exactly ADD_DIGITS digits, so each digit has its place in every source
    a, b = (int(v) for v in rng.integers(10 ** (ADD_DIGITS - 1), 10 ** ADD_DIGITS, size=2))
    return f"{a}+{b}=", str(a + b)


TASKS: dict[str, PairTask] = {
    "reverse": PairTask("abcdefghijklmnopqrstuvwxyz", _reverse, (1, 1), held_out=False),
    "add": PairTask("0123456789+=", _add, (2 * ADD_DIGITS + 2, ADD_DIGITS + 1), held_out=True),
}


def vocabulary(task: str) -> list[str]:
    return list(SPECIALS) + list(TASKS[task].alphabet)


class PairSplit(Split):
    def __init__(self, task: PairTask, n: int, S: int, T: int, seed: int, fixed_epoch: int | None,
                 index: dict[str, int], avoid: frozenset = frozenset()):
        self.task, self.n, self.S, self.T, self.seed = task, n, S, T, seed
        self.fixed_epoch, self.index, self.avoid = fixed_epoch, index, avoid

    def __len__(self):
        return self.n

    def pair(self, i: int, epoch: int) -> tuple[str, str]:
        e = self.fixed_epoch if self.fixed_epoch is not None else epoch
        rng = seeded_rng(self.seed, 0x5E02, e + 2, i)
        while True:  # a held-out pair is redrawn from the same stream: still a pure function
            src, tgt = self.task.draw(rng, self.S, self.T - 2)
            if src not in self.avoid:
                return src, tgt

    def batch(self, indices, epoch=0):
        pad, bos, eos = (self.index[s] for s in SPECIALS)
        B = len(indices)
        src = torch.full((B, self.S), pad, dtype=torch.int64)
        x = torch.full((B, self.T), pad, dtype=torch.int64)
        valid = torch.zeros((B, self.T), dtype=torch.bool)
        for row, i in enumerate(indices):
            s, t = self.pair(int(i), epoch)
            src[row, : len(s)] = torch.tensor([self.index[c] for c in s])
            ids = [bos] + [self.index[c] for c in t] + [eos]
            x[row, : len(ids)] = torch.tensor(ids)
            valid[row, : len(ids)] = True
        return {"src": src, "x": x, "x_valid": valid}


def load_seq2seq(name: str, task_name: str, want: Want, seed: int) -> Data:
    task = TASKS[task_name]
    tgt_want = want.rest[0]
    S, T = want.seq_len, tgt_want.seq_len
    need_s, need_t = task.needs
    if S < need_s or T < need_t + 2:
        raise DataError(f"data '{name}' needs sources of {need_s} tokens and targets of {need_t + 2} (with "
                        f"<bos> and <eos>), but inputs '{want.input}' and '{tgt_want.input}' of {want.model} take "
                        f"{S} and {T} (try --input {want.input}=1x{max(S, need_s)} "
                        f"{tgt_want.input}=1x{max(T, need_t + 2)})")
    vocab = vocabulary(task_name)
    index = {c: i for i, c in enumerate(vocab)}
    val = PairSplit(task, VAL_SIZE, S, T, seed, VAL_EPOCH, index)
    avoid = frozenset(val.pair(i, 0)[0] for i in range(VAL_SIZE)) if task.held_out else frozenset()
    train = PairSplit(task, TRAIN_SIZE, S, T, seed, None, index, avoid)
    return Data(name=name, kind="seq2seq", train=train, val=val, want=want, vocab_size=len(vocab), vocab=vocab,
                provides=frozenset({"x_valid"}), inputs=("src", "x"),
                specials={"pad": index[PAD], "bos": index[BOS], "eos": index[EOS]})
