"""Training data for netspec models: sources, splits, resumable loaders, model checks.

`load_data(source, info, cfg)` reads what the model takes and its heads need
from its `ModelInfo`, loads SOURCE in that shape and checks that the two fit.

SOURCE: `digits`, `shapes[:K]`, `pycode` (built in, nothing downloaded),
`text:PATH`, `images:DIR`, `mnist:DIR`, `cifar10:DIR`, or a bare path whose
kind is detected. None picks a built-in source from the model's heads.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ...dsl.tables import FLOAT_DTYPES, INT_DTYPES
from ...dsl.tasks import TASKS

from .core import Data, DataError, Loader, Split, Want, eval_batches, split_indices  # noqa: F401

__all__ = ["Data", "DataError", "Loader", "Split", "Want", "eval_batches", "load_data", "parse_source",
           "want_from_info", "check_model", "outputs_by_head", "probe_shapes", "split_indices", "SOURCES"]

SOURCES = ("digits", "shapes", "pycode", "text", "images", "mnist", "cifar10")
_SEQ_PARAMS = ("block_size", "seq_len", "context", "ctx", "max_len", "n_ctx", "T")


def _shape_str(info_input) -> str:
    return "[" + ", ".join(str(d) for d in info_input.dims) + "]"


def want_from_info(info, seq_len: int | None = None, head_shapes: dict[str, tuple] | None = None) -> Want:
    """The data a model needs, from its ModelInfo (head_shapes: probed output shapes, if known)."""
    if len(info.inputs) != 1:
        names = ", ".join(f"'{i.name}'" for i in info.inputs) or "none"
        raise DataError(f"{info.name} takes {len(info.inputs)} inputs ({names}); training data feeds exactly one")
    inp = info.inputs[0]
    dims = tuple(inp.dims)
    shape = tuple(inp.shape) if inp.shape else ()

    def dim(i: int) -> int:
        d = dims[i]
        if isinstance(d, int):
            return d
        if shape and len(shape) == len(dims):
            return int(shape[i])
        raise DataError(f"input '{inp.name}' of {info.name} has symbolic size {d!r} and no default shape")

    needs: set[str] = set()
    classes = None
    target_dim = None
    lm_heads = []
    head_shapes = head_shapes or {}
    for h in info.heads:
        hshape = head_shapes.get(h.name, h.shape)
        if h.task is None or h.task == "reconstruct":
            continue
        if h.task == "classify":
            needs.add("y")
            if hshape and len(hshape) == 2:
                classes = int(hshape[-1])
        elif h.task == "segment":
            needs.add("mask")
            if hshape and len(hshape) == 4:
                classes = int(hshape[1])
        elif h.task == "regress":
            needs.add("target")
            if hshape:
                target_dim = int(hshape[-1]) if len(hshape) >= 2 else 1
        elif h.task == "lm":
            lm_heads.append(h)
        else:
            raise DataError(f"head '{h.name}' of {info.name} has unknown task '{h.task}' "
                            f"(known: {', '.join(TASKS)})")
    dtype = str(inp.dtype).replace("torch.", "")
    common = dict(model=info.name, input=inp.name, needs=frozenset(needs), classes=classes, target_dim=target_dim)
    if dtype in INT_DTYPES:
        if len(dims) != 2:
            raise DataError(f"input '{inp.name}' of {info.name} takes token ids {_shape_str(inp)}; "
                            "expected [B, T]")
        if needs:
            raise DataError(f"{info.name} takes token ids but has {', '.join(sorted(needs))} heads; "
                            "no built-in data gives labels for text")
        T = seq_len
        if T is None:
            if isinstance(dims[1], int):
                T = dims[1]
            else:
                T = next((int(info.params[k]) for k in _SEQ_PARAMS if isinstance(info.params.get(k), int)), None)
                T = T or dim(1)
        return Want(kind="tokens", seq_len=int(T), **common)
    if dtype not in FLOAT_DTYPES:
        raise DataError(f"input '{inp.name}' of {info.name} has dtype {inp.dtype}; data feeds floats or int64 ids")
    if lm_heads:
        raise DataError(f"head '{lm_heads[0].name}' of {info.name} is an lm head but input '{inp.name}' "
                        f"takes floats {_shape_str(inp)}, not token ids")
    if len(dims) == 4:
        return Want(kind="image", channels=dim(1), height=dim(2), width=dim(3), **common)
    if len(dims) == 2:
        if "mask" in needs:
            raise DataError(f"head of {info.name} segments images but input '{inp.name}' is flat {_shape_str(inp)}")
        return Want(kind="flat", flat_dim=dim(1), **common)
    raise DataError(f"input '{inp.name}' of {info.name} is {_shape_str(inp)}; data feeds images [B, C, H, W], "
                    "flat vectors [B, D] or token ids [B, T]")


def parse_source(source: str) -> tuple[str, str | None]:
    """'mnist:data/mnist' -> ('mnist', 'data/mnist'); a bare path -> its detected kind."""
    s = source.strip()
    kind, sep, arg = s.partition(":")
    if sep and kind in SOURCES and not (len(kind) == 1 and Path(s).exists()):
        if kind in ("digits", "pycode"):
            raise DataError(f"data '{kind}' takes no argument, got '{source}'")
        if kind == "shapes":
            if not arg.isdigit():
                raise DataError(f"data 'shapes:K' needs a number of shape kinds, got '{source}'")
            return kind, arg
        if not arg:
            raise DataError(f"data '{kind}:' needs a path, e.g. {kind}:{'FILE' if kind == 'text' else 'DIR'}")
        return kind, arg
    if s in ("digits", "shapes", "pycode"):
        return s, None
    p = Path(s)
    if not p.exists():
        known = "digits, shapes, pycode, text:PATH, images:DIR, mnist:DIR, cifar10:DIR"
        raise DataError(f"data '{source}' is neither a known source ({known}) nor an existing path")
    if p.is_file():
        return "text", s
    names = {q.name.lower() for q in p.iterdir()}
    if any(n.startswith("data_batch_") for n in names):
        return "cifar10", s
    if any("idx3-ubyte" in n or "idx1-ubyte" in n for n in names):
        return "mnist", s
    if any(q.is_dir() for q in p.iterdir()):
        return "images", s
    raise DataError(f"cannot tell what kind of data folder '{source}' is; write images:DIR, mnist:DIR or cifar10:DIR")


def default_source(want: Want) -> str:
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
    """
    from ..config import RunConfig

    cfg = cfg or RunConfig()
    head_shapes = None
    if model is not None and any(h.shape is None and h.task in ("classify", "segment", "regress")
                                 for h in info.heads):
        head_shapes = probe_shapes(model, info)
    want = want_from_info(info, cfg.seq_len, head_shapes)
    source = source or cfg.data or default_source(want)
    kind, arg = parse_source(source)
    vf = cfg.val_fraction if cfg.val_fraction is not None else (0.1 if kind in ("pycode", "text") else 0.2)
    name = source
    if kind in ("pycode", "text"):
        if want.kind != "tokens":
            raise DataError(f"data '{name}' is text (token ids) but input '{want.input}' of {want.model} "
                            f"takes {_want_str(want)}")
        from . import text

        if kind == "pycode":
            data = text.load_pycode(name, want, cfg.seed, vf)
        else:
            data = text.load_text(name, want, cfg.seed, vf, Path(arg), cfg.vocab, vocab)
    else:
        if want.kind == "tokens":
            raise DataError(f"data '{name}' is images but input '{want.input}' of {want.model} takes token ids "
                            f"[B, {want.seq_len}]")
        if kind == "shapes":
            from .figures import load_shapes

            data = load_shapes(name, want, cfg.seed, int(arg) if arg else None)
        else:
            from . import images

            if kind == "digits":
                data = images.load_digits(name, want, cfg.seed, vf, cfg.augment)
            else:
                folder = Path(arg)
                if not folder.is_dir():
                    raise DataError(f"data '{name}': '{arg}' is not a folder")
                loader = {"mnist": images.load_mnist, "cifar10": images.load_cifar10,
                          "images": images.load_folder}[kind]
                data = loader(name, want, cfg.seed, vf, folder, cfg.augment)
    _check_fit(data, info, head_shapes or {})
    return data


def _want_str(want: Want) -> str:
    if want.kind == "image":
        return f"images [B, {want.channels}, {want.height}, {want.width}]"
    if want.kind == "flat":
        return f"vectors [B, {want.flat_dim}]"
    return f"token ids [B, {want.seq_len}]"


def _check_fit(data: Data, info, head_shapes: dict) -> None:
    want = data.want
    missing = {"y": ("class labels", "classify", ""), "mask": ("segmentation masks", "segment", " (try --data shapes)"),
               "target": ("regression targets", "regress", " (try --data shapes: x, y, radius)")}
    for key, (what, task, hint) in missing.items():
        if key in want.needs and key not in data.provides:
            head = next(h.name for h in info.heads if h.task == task)
            raise DataError(f"data '{data.name}' has no {what}, but head '{head}' of {info.name} is a {task} head{hint}")
    for h in info.heads:
        shape = head_shapes.get(h.name, h.shape)
        if not shape:
            continue
        if h.task == "classify" and len(shape) == 2 and data.num_classes != shape[-1]:
            raise DataError(f"data '{data.name}' has {data.num_classes} classes but head '{h.name}' of "
                            f"{info.name} outputs {shape[-1]}")
        if h.task == "segment" and len(shape) == 4 and data.num_classes != shape[1]:
            raise DataError(f"data '{data.name}' has {data.num_classes} classes (with background) but head "
                            f"'{h.name}' of {info.name} outputs {shape[1]}")
        if h.task == "lm" and data.vocab_size and shape[-1] < data.vocab_size:
            raise DataError(f"data '{data.name}' has a vocabulary of {data.vocab_size} but head '{h.name}' of "
                            f"{info.name} outputs {shape[-1]}")
    if want.kind == "flat" and data.kind == "image":
        from .core import flat_ok

        if hasattr(data.train, "images"):
            native = tuple(data.train.images.shape[1:])
            if not flat_ok(want, native):
                raise DataError(f"data '{data.name}' has {'x'.join(map(str, native))} images, which do not fit "
                                f"input '{want.input}' of {info.name} taking [B, {want.flat_dim}]")


# --------------------------------------------------------------------------
# Model <-> data checks


def outputs_by_head(out: Any, info) -> dict[str, torch.Tensor]:
    """forward()'s result as a dict head -> tensor, whatever the number of heads."""
    if isinstance(out, dict):
        return out
    if isinstance(out, (tuple, list)) and len(out) == len(info.heads):
        return {h.name: o for h, o in zip(info.heads, out)}
    return {info.heads[0].name: out}


def _probe_input(inp, batch: int = 2) -> torch.Tensor:
    shape = list(inp.shape) if inp.shape else [d if isinstance(d, int) else 1 for d in inp.dims]
    shape[0] = batch
    return torch.zeros(shape, dtype=getattr(torch, str(inp.dtype).replace("torch.", ""), torch.float32))


def _device_of(model: torch.nn.Module) -> torch.device:
    p = next(iter(model.parameters()), None)
    return p.device if p is not None else torch.device("cpu")


@torch.no_grad()
def probe_shapes(model: torch.nn.Module, info) -> dict[str, tuple]:
    """Output shape per head at the model's default input shape (batch 2)."""
    was = model.training
    model.eval()
    try:
        dev = _device_of(model)
        out = model(*[_probe_input(i).to(dev) for i in info.inputs])
    except Exception as e:  # noqa: BLE001 - report any failure as a readable data/model mismatch
        raise DataError(f"{info.name} failed on a zero input of its default shape: {e}")
    finally:
        model.train(was)
    return {k: tuple(v.shape) for k, v in outputs_by_head(out, info).items()}


@torch.no_grad()
def check_model(model: torch.nn.Module, data: Data, info) -> None:
    """Run two validation samples through the model and check every head's output against the data."""
    b = data.val.batch(list(range(min(2, len(data.val)))), 0)
    x = b["x"]
    was = model.training
    model.eval()
    try:
        out = outputs_by_head(model(x.to(_device_of(model))), info)
    except Exception as e:  # noqa: BLE001
        from ...compiler.shapes import locate_failure
        located = locate_failure(model, x.to(_device_of(model)))
        if located is not None:  # the spec line of the op that failed on this data
            located.diagnostics[0].notes.append((None, f"while running data '{data.name}' (input "
                                                 f"'{data.want.input}' {list(x.shape)}) through {info.name}"))
            raise located from None
        raise DataError(f"{info.name} failed on data '{data.name}' (input '{data.want.input}' "
                        f"{list(x.shape)} {str(x.dtype).replace('torch.', '')}): {e}")
    finally:
        model.train(was)
    B = x.shape[0]
    for h in info.heads:
        if h.name not in out:
            raise DataError(f"{info.name} returned no output for head '{h.name}' (got {', '.join(out)})")
        o = tuple(out[h.name].shape)
        where = f"head '{h.name}' of {info.name}"
        if h.task == "classify":
            if len(o) != 2 or o[0] != B:
                raise DataError(f"{where} outputs {list(o)}; a classify head must give logits [B, classes]")
            if o[1] != data.num_classes:
                raise DataError(f"data '{data.name}' has {data.num_classes} classes but {where} outputs {o[1]}")
        elif h.task == "segment":
            m = tuple(b["mask"].shape)
            if len(o) != 4 or o[0] != B or o[2:] != m[1:]:
                raise DataError(f"{where} outputs {list(o)}; a segment head must give [B, classes, {m[1]}, {m[2]}]")
            if o[1] != data.num_classes:
                raise DataError(f"data '{data.name}' has {data.num_classes} classes (with background) but "
                                f"{where} outputs {o[1]}")
        elif h.task == "lm":
            if len(o) != 3 or o[:2] != tuple(x.shape):
                raise DataError(f"{where} outputs {list(o)}; an lm head must give logits [B, T, vocab] for "
                                f"input {list(x.shape)}")
            if o[2] < data.vocab_size:
                raise DataError(f"data '{data.name}' has a vocabulary of {data.vocab_size} but {where} outputs {o[2]}")
        elif h.task == "reconstruct":
            if o != tuple(x.shape):
                raise DataError(f"{where} outputs {list(o)} but reconstructs input '{data.want.input}' {list(x.shape)}")
        elif h.task == "regress":
            k = data.target_dim or 1
            if o not in ((B, k),) + (((B,),) if k == 1 else ()):
                raise DataError(f"data '{data.name}' has {k} regression targets but {where} outputs {list(o)}")
