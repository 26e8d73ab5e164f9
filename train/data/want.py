"""What data a model needs, read from its ModelInfo: the inputs it takes and what its heads' tasks need.

Each input's dtype and rank give the kind of data (images, video clips, flat vectors,
token ids, single ids) and its size; each trained head's task (`netspec.dsl.tasks.TASKS`)
adds the batch fields it needs and the pixel scale it learns in, and its output rule
(`outputs.OUTPUTS`) the sizes its output fixes (classes, regression targets) and the input
kinds it can learn from. A model with several inputs gets one Want per input (`Want.rest`).
"""
from __future__ import annotations

from dataclasses import replace

from ...dsl.tables import FLOAT_DTYPES, INT_DTYPES
from ..heads import task_of, trained_heads, unknown_task
from .core import INPUT_KINDS, DataError, Want
from .outputs import OUTPUTS

# model parameters that name the sequence length of a token input whose T is symbolic
_SEQ_PARAMS = ("block_size", "seq_len", "context", "ctx", "max_len", "n_ctx", "T")


def shape_text(inp) -> str:
    """An input's dims as the spec writes them: [B, 1, 28, 28]."""
    return "[" + ", ".join(str(d) for d in inp.dims) + "]"


def want_from_info(info, seq_len: int | None = None, head_shapes: dict[str, tuple] | None = None,
                   pixels: str | None = None) -> Want:
    """The data a model needs, from its ModelInfo (head_shapes: probed output shapes, if known).
    seq_len: tokens per sequence for a token input (default: the model's T).
    pixels: the pixel scale of image data (default: the one the heads' tasks ask for). Raises DataError."""
    if not info.inputs:
        raise DataError(f"{info.name} takes no input; training data feeds a model's inputs")
    problem = unknown_task(info)
    if problem:
        raise DataError(problem)
    heads = trained_heads(info)
    for h in heads:  # lm / reconstruct read their `target=` input, which must be the one fed
        if h.target is not None and h.target != inp.name:
            raise DataError(f"head '{h.name}' of {info.name} reads input '{h.target}', but training data feeds "
                            f"'{inp.name}'")
    needs = frozenset(f for h in heads for f in task_of(h).needs)
    sizes: dict = {}
    for h in heads:
        shape = (head_shapes or {}).get(h.name, h.shape)
        rule = OUTPUTS[task_of(h).output]
        if shape and rule.sizes is not None:
            sizes.update(rule.sizes(tuple(shape)))
    pixels = pixels or next((task_of(h).pixels for h in heads if task_of(h).pixels), "standard")
    common = dict(model=info.name, needs=needs, pixels=pixels, **sizes)
    wants = []
    for i, inp in enumerate(info.inputs):
        kind, size = _input_kind(info, inp, needs, seq_len if i == 0 else None)
        wants.append(Want(input=inp.name, kind=kind, **size, **common))
    kind, first = wants[0].kind, wants[0]
    for h in heads:
        if kind not in OUTPUTS[task_of(h).output].inputs:
            wanted = " or ".join(INPUT_KINDS[k] for k in OUTPUTS[task_of(h).output].inputs)
            have = "token ids" if kind in ("tokens", "ids") else "floats"
            raise DataError(f"head '{h.name}' of {info.name} has task '{h.task}', which needs {wanted}, "
                            f"but input '{first.input}' takes {have} {shape_text(info.inputs[0])}")
    return replace(first, rest=tuple(wants[1:]))


def _input_kind(info, inp, needs: frozenset, seq_len: int | None) -> tuple[str, dict]:
    """(kind, its size fields of Want) of one of the model's inputs."""
    dims = tuple(inp.dims)
    shape = tuple(inp.shape) if inp.shape else ()

    def dim(i: int) -> int:
        d = dims[i]
        if isinstance(d, int):
            return d
        if shape and len(shape) == len(dims):
            return int(shape[i])
        raise DataError(f"input '{inp.name}' of {info.name} has symbolic size {d!r} and no default shape")

    dtype = str(inp.dtype).replace("torch.", "")
    if dtype in INT_DTYPES:
        if len(dims) == 1:
            return "ids", {}
        if len(dims) != 2:
            raise DataError(f"input '{inp.name}' of {info.name} takes token ids {shape_text(inp)}; "
                            "expected [B, T] (or [B] single ids)")
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
        return "tokens", {"seq_len": int(T)}
    if dtype not in FLOAT_DTYPES:
        raise DataError(f"input '{inp.name}' of {info.name} has dtype {inp.dtype}; data feeds floats or int64 ids")
    if len(dims) == 5:
        return "video", {"channels": dim(1), "frames": dim(2), "height": dim(3), "width": dim(4)}
    if len(dims) == 4:
        return "image", {"channels": dim(1), "height": dim(2), "width": dim(3)}
    if len(dims) == 2:
        return "flat", {"flat_dim": dim(1)}
    raise DataError(f"input '{inp.name}' of {info.name} is {shape_text(inp)}; data feeds images [B, C, H, W], "
                    "video clips [B, C, T, H, W], flat vectors [B, D], token ids [B, T] or ids [B]")
