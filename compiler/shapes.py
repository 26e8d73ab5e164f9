"""Shape and dtype inference before any real weight exists.

The model is built on the meta device and an fx Interpreter runs it on meta tensors
of the spec's default input sizes (or --input sizes). Each op's output shape is
recorded under its full path ("transformer.h.0.attn.c_attn"); a failing op becomes
a spec-located error such as
    resnet.nn:41:9: error: Linear(512, 1000) expects last dim 512, got [1, 2048]
with notes naming the block instantiations it sits in. No torch traceback escapes.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import fx, nn

from ..dsl.errors import Diagnostic, NetspecError
from ..dsl.ir import BlockGraph
from ..dsl.tables import DTYPE_NAMES

from .metashapes import rule_for

DTYPES = {name: getattr(torch, name) for name in DTYPE_NAMES}  # canonical dtype name -> torch dtype


@dataclass(frozen=True)
class TensorMeta:
    shape: tuple  # ints (a tuple of TensorMeta for tuple results)
    dtype: str

    def __str__(self) -> str:
        return "[" + ", ".join(str(d) for d in self.shape) + "]"


def describe(value):
    if isinstance(value, torch.Tensor):
        return TensorMeta(tuple(value.shape), str(value.dtype).replace("torch.", ""))
    if isinstance(value, (tuple, list)) and value and all(isinstance(v, torch.Tensor) for v in value):
        return tuple(describe(v) for v in value)
    return None


class _Failure(Exception):
    def __init__(self, diag: Diagnostic):
        self.diag = diag


def _shape(t) -> str:
    if isinstance(t, torch.Tensor):
        return "[" + ", ".join(str(d) for d in t.shape) + "]"
    return repr(t)


def _module_message(layer: nn.Module, label: str, args) -> str | None:
    """A precise message for the common layer/shape mismatches, or None."""
    x = args[0] if args else None
    if not isinstance(x, torch.Tensor):
        return None
    if isinstance(layer, nn.Linear) and (x.dim() == 0 or x.shape[-1] != layer.in_features):
        return f"{label} expects last dim {layer.in_features}, got {_shape(x)}"
    if isinstance(layer, nn.modules.conv._ConvNd):
        n = len(layer.kernel_size)
        if x.dim() in (n + 1, n + 2) and x.shape[-n - 1] != layer.in_channels:
            return f"{label} expects {layer.in_channels} input channels (dim 1), got {_shape(x)}"
        if x.dim() not in (n + 1, n + 2):
            return f"{label} expects a {n + 2}-d input (B, C, {'×'.join('HWD'[:n])}), got {_shape(x)}"
        if x.shape[-n - 1] != layer.in_channels:
            return f"{label} expects {layer.in_channels} input channels (dim 1), got {_shape(x)}"
        return f"{label}: input {_shape(x)} is too small for kernel {layer.kernel_size}"
    if isinstance(layer, nn.modules.batchnorm._BatchNorm) and (x.dim() < 2 or x.shape[1] != layer.num_features):
        return f"{label} expects {layer.num_features} channels (dim 1), got {_shape(x)}"
    if isinstance(layer, nn.LayerNorm):
        want = tuple(layer.normalized_shape)
        if tuple(x.shape[-len(want):]) != want:
            return f"{label} expects trailing dims {list(want)}, got {_shape(x)}"
    if isinstance(layer, nn.Embedding) and x.dtype.is_floating_point:
        return f"{label} needs integer indices, got {str(x.dtype).replace('torch.', '')} {_shape(x)}"
    if isinstance(layer, nn.Embedding) and x.device.type != "meta" and x.numel() and \
            not 0 <= int(x.min()) <= int(x.max()) < layer.num_embeddings:
        return (f"{label} has rows 0..{layer.num_embeddings - 1}, got indices {int(x.min())}..{int(x.max())} "
                f"in {_shape(x)}")
    return None


class ShapeProp(fx.Interpreter):
    def __init__(self, gm: fx.GraphModule, block: BlockGraph, prefix: str, table: dict, fast: bool = True):
        super().__init__(gm, garbage_collect_values=True)
        self.block, self.prefix, self.table = block, prefix, table
        self.fast = fast  # shape rules for meta tensors; off when running real tensors
        self.ops = {op.id: op for op in block.ops()}
        self.blocks = {op.path: op for op in self.ops.values() if op.kind == "block"}
        self.symbols: dict[str, int] = {}

    def run_node(self, n: fx.Node):
        op = self.ops.get(n.meta.get("netspec_op"))
        try:
            result = super().run_node(n)
        except _Failure:
            raise
        except Exception as e:  # any torch error becomes a spec-located diagnostic
            if op is None:
                raise
            args, kwargs = self.fetch_args_kwargs_from_env(n)
            msg = None
            if n.op == "call_module" and op.kind == "module":
                msg = _module_message(self.fetch_attr(n.target), op.label, args)
            if msg is None:
                shapes = ", ".join(_shape(a) for a in args if isinstance(a, torch.Tensor))
                first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                msg = f"{op.label} failed" + (f" on inputs {shapes}" if shapes else "") + f": {first}"
            raise _Failure(Diagnostic("error", msg, op.span)) from None
        if op is not None and n.meta.get("netspec_op") == op.id:
            meta = describe(result)
            if meta is not None:
                self.table[self.prefix + (op.path or op.id)] = meta
                n.meta["netspec_shape"] = meta
        return result

    def placeholder(self, target, args, kwargs):
        value = super().placeholder(target, args, kwargs)
        op = self.ops.get(target)
        if op is not None and op.dims is not None and isinstance(value, torch.Tensor):
            self._check_input(op, value)
        return value

    def _check_input(self, op, value):
        want = op.dims
        got = tuple(value.shape)
        bad = len(want) != len(got)
        for w, g in zip(want, got):
            if isinstance(w, int):
                bad |= w != g
            else:
                sym = w[0]
                bad |= self.symbols.setdefault(sym, g) != g
        if bad:
            wanted = ", ".join(str(w) if isinstance(w, int) else w[0] for w in want)
            raise _Failure(Diagnostic("error", f"input '{op.id}' of {self.block.kind} '{self.block.name}' expects "
                                      f"shape [{wanted}], got {list(got)}", op.span))

    def call_module(self, target, args, kwargs):
        sub = self.fetch_attr(target)
        rule = rule_for(sub) if self.fast else None
        if rule is not None and len(args) == 1 and not kwargs and isinstance(args[0], torch.Tensor):
            try:
                out = rule(sub, args[0])
            except ValueError:  # run_node words the mismatch (torch's meta kernels miss some of them)
                raise RuntimeError(f"input shape {list(args[0].shape)} does not fit {type(sub).__name__}") from None
            if out is not None:
                return out
        op = self.blocks.get(target)
        if isinstance(sub, fx.GraphModule) and op is not None:
            try:
                return ShapeProp(sub, op.block, f"{self.prefix}{target}.", self.table, self.fast).run(*args)
            except _Failure as f:
                f.diag.notes.append((op.span, f"in {op.block.kind} '{op.block.name}' instantiated here"))
                raise
        return super().call_module(target, args, kwargs)


def default_input_shapes(block: BlockGraph, overrides: dict | None = None) -> dict[str, tuple]:
    out = {}
    overrides = overrides or {}
    unknown = set(overrides) - {op.id for op in block.inputs}
    if unknown:
        names = ", ".join(op.id for op in block.inputs)
        raise NetspecError([Diagnostic("error", f"--input: model '{block.name}' has no input "
                                       f"'{sorted(unknown)[0]}'; inputs: {names}")])
    for op in block.inputs:
        if op.id in overrides:
            shape = tuple(overrides[op.id])
            if op.dims is not None and len(shape) != len(op.dims):
                raise NetspecError([Diagnostic("error", f"--input {op.id}: expected {len(op.dims)} dims, "
                                               f"got {list(shape)}", op.span)])
            out[op.id] = shape
            continue
        out[op.id] = tuple(d if isinstance(d, int) else (d[1] or 1) for d in (op.dims or ()))
    return out


def _meta_input(op, shape) -> torch.Tensor:
    """A meta tensor for an input; a size no tensor can have is an error at the input."""
    try:
        return torch.empty(shape, dtype=DTYPES[op.dtype], device="meta")
    except (RuntimeError, TypeError, ValueError, OverflowError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise NetspecError([Diagnostic("error", f"input '{op.id}' of size {list(shape)} is too large for a tensor: "
                                       f"{first}", op.span)]) from None


def propagate(gm: fx.GraphModule, block: BlockGraph, input_shapes: dict[str, tuple]):
    """Run `gm` (built on the meta device) on meta inputs; returns (table, outputs)."""
    inputs = [_meta_input(op, input_shapes[op.id]) for op in block.inputs]
    table: dict = {}
    try:
        with torch.no_grad():
            out = ShapeProp(gm, block, "", table).run(*inputs)
    except _Failure as f:
        raise NetspecError([f.diag]) from None
    return table, out


def locate_failure(model: fx.GraphModule, *inputs) -> NetspecError | None:
    """Why `model(*inputs)` fails, as an error at the spec line of the failing op (None if it
    does not fail, or the model was not built by netspec). For runtime errors that only real
    data reveals: an index past an Embedding, a size the default inputs did not have."""
    block = getattr(model, "_netspec_graph", None)
    if block is None:
        return None
    try:
        with torch.no_grad():
            ShapeProp(model, block, "", {}, fast=False).run(*inputs)
    except _Failure as f:
        return NetspecError([f.diag])
    except Exception:  # noqa: BLE001 - not attributable to one op: the caller reports the original error
        return None
    return None
