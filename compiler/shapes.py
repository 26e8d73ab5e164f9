"""Shape and dtype inference before any real weight exists.

The model is built on the meta device and an fx Interpreter runs it on meta tensors
of the spec's default input sizes (or --input sizes). Each op's output shape is
recorded under its full path ("transformer.h.0.attn.c_attn"); a failing op becomes
a spec-located error such as
    resnet.nn:41:9: error: Linear(512, 1000) expects last dim 512, got [1, 2048]
with notes naming the block instantiations it sits in. No torch traceback escapes.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import torch
from torch import fx, nn

from ..dsl.errors import Diagnostic, NetspecError
from ..dsl.ir import BlockGraph
from ..dsl.tables import DTYPE_NAMES

from .metashapes import function_shape, rule_for
from .ops import LayerNorm2d

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
    if isinstance(value, (tuple, list)) and value:  # LSTM's (output, (h, c)): nested as it is
        parts = tuple(describe(v) for v in value)
        return parts if all(p is not None for p in parts) else None
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
    if isinstance(layer, LayerNorm2d):
        if x.dim() != 4 or (x.shape[1],) != tuple(layer.normalized_shape):
            return f"{label} expects [B, {layer.normalized_shape[0]}, H, W], got {_shape(x)}"
        return None
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


def _signature(args) -> tuple:
    """What a block's result depends on when it runs on meta tensors: their shapes and dtypes."""
    return tuple((tuple(a.shape), a.dtype) if isinstance(a, torch.Tensor) else repr(a) for a in args)


class ShapeProp(fx.Interpreter):
    def __init__(self, gm: fx.GraphModule, block: BlockGraph, prefix: str, table: dict, fast: bool = True,
                 memo: dict | None = None, in_loop: bool = False, where: str = ""):
        super().__init__(gm, garbage_collect_values=True)
        self.block, self.prefix, self.table = block, prefix, table
        self.fast = fast  # shape rules for meta tensors; off when running real tensors
        # (block, input shapes) -> (outputs, shapes inside): identical instantiations of a block
        # on identical shapes (GPT-2's layers) are inferred once; meta tensors only
        self.memo = memo if memo is not None else {}
        self.ops = {op.id: op for op in block.ops()}
        self.blocks = {op.path: op for op in self.ops.values() if op.kind == "block"}
        self.symbols: dict[str, int] = {}
        # a line that made several layers (a loop's body) does not say which one failed: the path does
        spans = Counter(op.span for op in self.ops.values() if op.path)
        self.shared = {sp for sp, n in spans.items() if n > 1}
        self.in_loop = in_loop  # this block was instantiated on such a line
        # the instance's path for messages; `prefix` is where shapes go in the table, and a block
        # inferred once for several instances records its shapes relative to itself
        self.where = where

    def _where(self, op) -> str:
        """`features.30: ` when the op's line alone does not say which layer failed, else ''."""
        if op.path and (self.in_loop or op.span in self.shared):
            return f"{self.where}{op.path}: "
        return ""

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
            raise _Failure(Diagnostic("error", self._where(op) + msg, op.span)) from None
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

    def call_function(self, target, args, kwargs):
        out = function_shape(target, args, kwargs) if self.fast else None
        return out if out is not None else super().call_function(target, args, kwargs)

    def call_method(self, target, args, kwargs):
        out = function_shape(target, args, kwargs) if self.fast else None
        return out if out is not None else super().call_method(target, args, kwargs)

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
            return self._run_block(sub, op, target, args)
        return super().call_module(target, args, kwargs)

    def _run_block(self, sub: fx.GraphModule, op, target: str, args):
        meta = self.fast and all(a.device.type == "meta" for a in args if isinstance(a, torch.Tensor))
        key = (id(op.block), _signature(args)) if meta else None
        if key not in self.memo:
            inner: dict = {}
            try:
                out = ShapeProp(sub, op.block, "", inner, self.fast, self.memo,
                                self.in_loop or op.span in self.shared, f"{self.where}{target}.").run(*args)
            except _Failure as f:
                f.diag.notes.append((op.span, f"in {op.block.kind} '{op.block.name}' instantiated here"))
                raise
            if key is None:
                self._record(target, inner)
                return out
            self.memo[key] = (out, inner)
        out, inner = self.memo[key]
        self._record(target, inner)
        return out

    def _record(self, target: str, inner: dict) -> None:
        prefix = f"{self.prefix}{target}."
        for path, meta in inner.items():
            self.table[prefix + path] = meta


def default_input_shapes(block: BlockGraph, overrides: dict | None = None) -> dict[str, tuple]:
    out = {}
    overrides = overrides or {}
    unknown = set(overrides) - {op.id for op in block.inputs}
    if unknown:
        names = ", ".join(op.id for op in block.inputs)
        raise NetspecError([Diagnostic("error", f"--input: model '{block.name}' has no input "
                                       f"'{sorted(unknown)[0]}'; inputs: {names}")])
    sizes: dict[str, int] = {}  # symbol -> its size: from an --input, else from its default anywhere
    for op in block.inputs:
        if op.id in overrides:
            shape = tuple(overrides[op.id])
            if op.dims is not None and len(shape) != len(op.dims):
                raise NetspecError([Diagnostic("error", f"--input {op.id}: expected {len(op.dims)} dims, "
                                               f"got {list(shape)}", op.span)])
            out[op.id] = shape
            for d, n in zip(op.dims or (), shape):
                if isinstance(d, tuple):
                    sizes.setdefault(d[0], n)
    for op in block.inputs:
        for d in op.dims or ():
            if isinstance(d, tuple) and d[1] is not None:
                sizes.setdefault(d[0], d[1])  # `input h: [1, B, 8]` after `input x: [B=3, ...]`: B is 3
    for op in block.inputs:
        if op.id not in out:
            out[op.id] = tuple(d if isinstance(d, int) else sizes.get(d[0], 1) for d in (op.dims or ()))
    return {op.id: out[op.id] for op in block.inputs}


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
