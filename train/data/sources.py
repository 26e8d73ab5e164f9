"""The data sources, one table: what a SOURCE string names, and loading it in the shape a model wants.

SOURCE: `digits`, `shapes[:K]`, `pycode`, `pywords`, `seq2seq:TASK`, `moving[:K]` (built in,
nothing downloaded), `text:PATH`, `images:DIR`, `mnist:DIR`, `cifar10:DIR`, `csv:FILE`,
`npy:X.npy[,Y.npy]`, or a bare path whose kind is detected. None picks a built-in source from the model's inputs and heads.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from .core import Data, DataError, Want
from .outputs import check_fit, needs_probe, probe_shapes
from .want import want_from_info


@dataclass(frozen=True)
class Source:
    name: str
    arg: str  # what follows "name:": "" nothing, "count" an optional number, "path" a file or folder,
    # "choice" one of `choices`
    kinds: tuple[str, ...]  # the input kinds it feeds (core.INPUT_KINDS)
    inputs: int  # how many inputs it feeds (a model must take that many)
    what: str  # what it is, for messages: "data 'pycode' is text (token ids) but ..."
    # (name as written, its argument, Want, RunConfig, validation fraction, saved vocabulary) -> Data
    load: Callable[..., Data]
    choices: tuple[str, ...] = ()


def _digits(name, arg, want, cfg, vf, vocab):
    from .images import load_digits

    return load_digits(name, want, cfg.seed, vf, cfg.augment)


def _shapes(name, arg, want, cfg, vf, vocab):
    from .figures import load_shapes

    return load_shapes(name, want, cfg.seed, int(arg) if arg else None)


def _pycode(name, arg, want, cfg, vf, vocab):
    from .text import load_pycode

    return load_pycode(name, want, cfg.seed, vf)


def _text(name, arg, want, cfg, vf, vocab):
    from .text import load_text

    return load_text(name, want, cfg.seed, vf, Path(arg), cfg.vocab, vocab)


def _folder(module: str, reader: str):
    """A folder source read by `reader` of train/data/`module`.py (imported when used)."""
    def load(name, arg, want, cfg, vf, vocab):
        folder = Path(arg)
        if not folder.is_dir():
            raise DataError(f"data '{name}': '{arg}' is not a folder")
        read = getattr(importlib.import_module(f".{module}", __package__), reader)
        return read(name, want, cfg.seed, vf, folder, cfg.augment)
    return load


def _csv(name, arg, want, cfg, vf, vocab):
    from .arrays import load_csv

    return load_csv(name, want, cfg.seed, vf, Path(arg), cfg.target, cfg.features)


def _npy(name, arg, want, cfg, vf, vocab):
    from .arrays import load_npy

    return load_npy(name, want, cfg.seed, vf, arg, cfg.augment)


def _pywords(name, arg, want, cfg, vf, vocab):
    from .words import load_pywords

    return load_pywords(name, want, cfg.seed, vf)


def _seq2seq(name, arg, want, cfg, vf, vocab):
    from .seq2seq import load_seq2seq

    return load_seq2seq(name, arg, want, cfg.seed)


def _moving(name, arg, want, cfg, vf, vocab):
    from .moving import load_moving

    return load_moving(name, want, cfg.seed, int(arg) if arg else None)


_IMAGES = ("image", "flat")
# SOURCE name -> what it is and how it loads; `netspec train --help` and docs/TRAINING.md list them
SOURCES: dict[str, Source] = {s.name: s for s in (
    Source("digits", "", _IMAGES, 1, "images", _digits),
    Source("shapes", "count", _IMAGES, 1, "images", _shapes),
    Source("pycode", "", ("tokens",), 1, "text (token ids)", _pycode),
    Source("pywords", "", ("ids",), 1, "words with their context words (ids)", _pywords),
    Source("seq2seq", "choice", ("tokens",), 2, "source and target token sequences", _seq2seq,
           ("reverse", "add")),
    Source("moving", "count", ("video",), 1, "video clips", _moving),
    Source("text", "path", ("tokens",), 1, "text (token ids)", _text),
    Source("images", "path", _IMAGES, 1, "images", _folder("images", "load_folder")),
    Source("mnist", "path", _IMAGES, 1, "images", _folder("mnist", "load_mnist")),
    Source("cifar10", "path", _IMAGES, 1, "images", _folder("cifar", "load_cifar10")),
    Source("csv", "path", _IMAGES, 1, "a table of vectors", _csv),
    Source("npy", "path", _IMAGES, 1, "NumPy arrays", _npy),
)}

_EXAMPLE = {"": "{0}", "count": "{0}[:K]", "path": "{0}:PATH", "choice": "{0}:TASK"}
_PATH_EXAMPLE = {"text": "FILE", "csv": "FILE", "npy": "X.npy,Y.npy"}  # what `kind:` takes; others a DIR


def known_sources() -> str:
    """'digits, shapes[:K], pycode, ...' for messages and --help."""
    return ", ".join(_EXAMPLE[s.arg].format(s.name) for s in SOURCES.values())


def parse_source(source: str) -> tuple[str, str | None]:
    """'mnist:data/mnist' -> ('mnist', 'data/mnist'); a bare path -> its detected kind."""
    s = source.strip()
    if s.startswith("<") and s.endswith(">"):  # how a run names PyTorch data it was given in Python
        raise DataError(f"data '{s}' was a PyTorch dataset given in Python: pass it again "
                        "(netspec.train(model, data=...)), or name a SOURCE with --data")
    kind, sep, arg = s.partition(":")
    if sep and kind in SOURCES and not (len(kind) == 1 and Path(s).exists()):
        src = SOURCES[kind]
        if src.arg == "":
            raise DataError(f"data '{kind}' takes no argument, got '{source}'")
        if src.arg == "count" and not arg.isdigit():
            raise DataError(f"data '{kind}:K' needs a number of {'shape kinds' if kind == 'shapes' else 'classes'}, "
                            f"got '{source}'")
        if src.arg == "choice" and arg not in src.choices:
            raise DataError(f"data '{kind}:' is one of {', '.join(f'{kind}:{c}' for c in src.choices)}, "
                            f"got '{source}'")
        if not arg:
            raise DataError(f"data '{kind}:' needs a path, e.g. {kind}:{_PATH_EXAMPLE.get(kind, 'DIR')}")
        return kind, arg
    if s in SOURCES and SOURCES[s].arg in ("", "count"):
        return s, None
    if s in SOURCES and SOURCES[s].arg == "choice":
        raise DataError(f"data '{s}' needs a task: {', '.join(f'{s}:{c}' for c in SOURCES[s].choices)}")
    p = Path(s)
    if not p.exists():
        raise DataError(f"data '{source}' is neither a known source ({known_sources()}) nor an existing path")
    if p.is_file():
        return {".csv": "csv", ".npy": "npy"}.get(p.suffix.lower(), "text"), s
    try:
        entries = list(p.iterdir())
    except OSError as e:
        raise DataError(f"cannot read data folder '{source}': {e.strerror or e}")
    names = {q.name.lower() for q in entries}
    if any(n.startswith("data_batch_") for n in names):
        return "cifar10", s
    if any("idx3-ubyte" in n or "idx1-ubyte" in n for n in names):
        return "mnist", s
    if any(q.is_dir() for q in entries):
        return "images", s
    raise DataError(f"cannot tell what kind of data folder '{source}' is; write images:DIR, mnist:DIR or cifar10:DIR")


def default_source(want: Want) -> str:
    """The built-in source that fits: reversal pairs for two token inputs, text for token inputs,
    words for single ids, moving shapes for video, `shapes` for masks and regression targets or
    colour images, `digits` otherwise."""
    if want.kind == "tokens":
        return "seq2seq:reverse" if want.arity == 2 else "pycode"
    if want.kind == "ids":
        return "pywords"
    if want.kind == "video":
        return "moving"
    if "mask" in want.needs or "target" in want.needs:
        return "shapes"
    return "digits" if want.kind == "flat" or want.channels == 1 else "shapes"


def load_data(source: str | None, info, cfg=None, *, model: torch.nn.Module | None = None,
              vocab: list[str] | None = None, pixels: str | None = None) -> Data:
    """Load SOURCE (None: a built-in that fits) shaped for the model described by `info`.

    cfg: a RunConfig (seed, val_fraction, vocab, seq_len; defaults if None).
    model: when given, its heads are probed for output shapes the ModelInfo lacks.
    vocab: a char vocabulary saved with an earlier run (eval / sample / resume).
    pixels: the pixel scale of images (default: what the heads' tasks ask for).
    Raises DataError when the source cannot be read or does not fit the model.
    """
    from ..config import RunConfig

    cfg = cfg or RunConfig()
    head_shapes = probe_shapes(model, info) if model is not None and needs_probe(info) else {}
    want = want_from_info(info, cfg.seq_len, head_shapes, pixels)
    source = source or cfg.data or default_source(want)
    kind, arg = parse_source(source)
    src = SOURCES[kind]
    if want.kind not in src.kinds:
        raise DataError(f"data '{source}' is {src.what} but input '{want.input}' of {want.model} "
                        f"takes {_want_text(want)}")
    if want.arity != src.inputs:
        names = ", ".join(w.input for w in (want, *want.rest))
        raise DataError(f"data '{source}' feeds {src.inputs} input{'s' if src.inputs > 1 else ''} but "
                        f"{want.model} takes {want.arity} ({names})")
    vf = cfg.val_fraction if cfg.val_fraction is not None else (0.1 if src.kinds == ("tokens",) or
                                                                 kind == "pywords" else 0.2)
    data = src.load(source, arg, want, cfg, vf, vocab)
    check_fit(data, info, head_shapes)
    return data


def _want_text(want: Want) -> str:
    if want.kind == "image":
        return f"images [B, {want.channels}, {want.height}, {want.width}]"
    if want.kind == "video":
        return f"video clips [B, {want.channels}, {want.frames}, {want.height}, {want.width}]"
    if want.kind == "flat":
        return f"vectors [B, {want.flat_dim}]"
    if want.kind == "ids":
        return "ids [B]"
    return f"token ids [B, {want.seq_len}]"
