"""The data sources: what a SOURCE string names, and loading it in the shape a model wants.

SOURCE: `digits`, `shapes[:K]`, `pycode` (built in, nothing downloaded), `text:PATH`,
`images:DIR`, `mnist:DIR`, `cifar10:DIR`, `csv:FILE`, `npy:X.npy[,Y.npy]`, or a bare path
whose kind is detected. None picks a built-in source from the model's heads.
"""
from __future__ import annotations

from pathlib import Path

import torch

from .core import Data, DataError, Want
from .outputs import check_fit, needs_probe, probe_shapes
from .want import want_from_info

SOURCES = ("digits", "shapes", "pycode", "text", "images", "mnist", "cifar10", "csv", "npy")
_BUILT_IN = ("digits", "shapes", "pycode")  # sources that take no path


def parse_source(source: str) -> tuple[str, str | None]:
    """'mnist:data/mnist' -> ('mnist', 'data/mnist'); a bare path -> its detected kind."""
    s = source.strip()
    if s.startswith("<") and s.endswith(">"):  # how a run names PyTorch data it was given in Python
        raise DataError(f"data '{s}' was a PyTorch dataset given in Python: pass it again "
                        "(netspec.train(model, data=...)), or name a SOURCE with --data")
    kind, sep, arg = s.partition(":")
    if sep and kind in SOURCES and not (len(kind) == 1 and Path(s).exists()):
        if kind in ("digits", "pycode"):
            raise DataError(f"data '{kind}' takes no argument, got '{source}'")
        if kind == "shapes":
            if not arg.isdigit():
                raise DataError(f"data 'shapes:K' needs a number of shape kinds, got '{source}'")
            return kind, arg
        if not arg:
            example = {"text": "FILE", "csv": "FILE", "npy": "X.npy,Y.npy"}.get(kind, "DIR")
            raise DataError(f"data '{kind}:' needs a path, e.g. {kind}:{example}")
        return kind, arg
    if s in _BUILT_IN:
        return s, None
    p = Path(s)
    if not p.exists():
        known = "digits, shapes, pycode, text:PATH, images:DIR, mnist:DIR, cifar10:DIR, csv:FILE, npy:X.npy,Y.npy"
        raise DataError(f"data '{source}' is neither a known source ({known}) nor an existing path")
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
    """The built-in source that fits: text for token inputs, `shapes` for masks and
    regression targets or colour images, `digits` otherwise."""
    if want.kind == "tokens":
        return "pycode"
    if "mask" in want.needs or "target" in want.needs:
        return "shapes"
    return "digits" if want.kind == "flat" or want.channels == 1 else "shapes"


def load_data(source: str | None, info, cfg=None, *, model: torch.nn.Module | None = None,
              vocab: list[str] | None = None) -> Data:
    """Load SOURCE (None: a built-in that fits) shaped for the model described by `info`.

    cfg: a RunConfig (seed, val_fraction, vocab, seq_len; defaults if None).
    model: when given, its heads are probed for output shapes the ModelInfo lacks.
    vocab: a char vocabulary saved with an earlier run (eval / sample / resume).
    Raises DataError when the source cannot be read or does not fit the model.
    """
    from ..config import RunConfig

    cfg = cfg or RunConfig()
    head_shapes = probe_shapes(model, info) if model is not None and needs_probe(info) else {}
    want = want_from_info(info, cfg.seq_len, head_shapes)
    source = source or cfg.data or default_source(want)
    kind, arg = parse_source(source)
    vf = cfg.val_fraction if cfg.val_fraction is not None else (0.1 if kind in ("pycode", "text") else 0.2)
    if kind in ("pycode", "text"):
        data = _load_tokens(source, kind, arg, want, cfg, vf, vocab)
    elif kind in ("csv", "npy"):
        data = _load_arrays(source, kind, arg, want, cfg, vf)
    else:
        data = _load_images(source, kind, arg, want, cfg, vf)
    check_fit(data, info, head_shapes)
    return data


def _load_tokens(name: str, kind: str, arg: str | None, want: Want, cfg, vf: float, vocab) -> Data:
    if want.kind != "tokens":
        raise DataError(f"data '{name}' is text (token ids) but input '{want.input}' of {want.model} "
                        f"takes {_want_text(want)}")
    from . import text

    if kind == "pycode":
        return text.load_pycode(name, want, cfg.seed, vf)
    return text.load_text(name, want, cfg.seed, vf, Path(arg), cfg.vocab, vocab)


def _load_images(name: str, kind: str, arg: str | None, want: Want, cfg, vf: float) -> Data:
    if want.kind == "tokens":
        raise DataError(f"data '{name}' is images but input '{want.input}' of {want.model} takes token ids "
                        f"[B, {want.seq_len}]")
    if kind == "shapes":
        from .figures import load_shapes

        return load_shapes(name, want, cfg.seed, int(arg) if arg else None)
    from . import cifar, images, mnist

    if kind == "digits":
        return images.load_digits(name, want, cfg.seed, vf, cfg.augment)
    folder = Path(arg)
    if not folder.is_dir():
        raise DataError(f"data '{name}': '{arg}' is not a folder")
    loader = {"mnist": mnist.load_mnist, "cifar10": cifar.load_cifar10, "images": images.load_folder}[kind]
    return loader(name, want, cfg.seed, vf, folder, cfg.augment)


def _load_arrays(name: str, kind: str, arg: str, want: Want, cfg, vf: float) -> Data:
    from . import arrays

    if kind == "csv":
        return arrays.load_csv(name, want, cfg.seed, vf, Path(arg), cfg.target, cfg.features)
    return arrays.load_npy(name, want, cfg.seed, vf, arg, cfg.augment)


def _want_text(want: Want) -> str:
    if want.kind == "image":
        return f"images [B, {want.channels}, {want.height}, {want.width}]"
    if want.kind == "flat":
        return f"vectors [B, {want.flat_dim}]"
    return f"token ids [B, {want.seq_len}]"
