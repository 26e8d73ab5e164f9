"""Fast output shapes for the common layers and tensor ops, used during meta-device shape
inference.

Running torch's own meta kernels goes through Python decompositions (milliseconds per
Linear), and the first elementwise op on a meta tensor (`x + y`, relu, LayerNorm)
imports torch._dynamo (a second or two, more than the rest of `netspec check`). These
rules compute the same shapes and dtypes directly; anything not listed here runs the
real op on meta tensors. A module rule raises ValueError on a mismatch (shapes.py words
the message); a function rule returns None for anything unusual, and the real op then
reports it in torch's own words.
"""
from __future__ import annotations

import contextlib
import itertools
import math
import operator

import torch
from torch import nn

from . import ops as netspec_ops
from .ops import LayerNorm2d, StochasticDepth

_SAME = (nn.ReLU, nn.ReLU6, nn.GELU, nn.SiLU, nn.Mish, nn.Hardswish, nn.Hardsigmoid, nn.ELU, nn.Tanh, nn.Sigmoid,
         nn.LeakyReLU, nn.Softmax, nn.LogSoftmax, nn.Softplus, nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d,
         nn.Dropout3d, nn.AlphaDropout, StochasticDepth)


def _out(x: torch.Tensor, shape) -> torch.Tensor:
    return torch.empty(tuple(shape), dtype=x.dtype, device="meta")


def _pool_dim(size, k, s, p, d, ceil):
    num = size + 2 * p - d * (k - 1) - 1
    out = (math.ceil(num / s) if ceil else num // s) + 1
    if ceil and (out - 1) * s >= size + p:  # torch drops a window that starts in the padding
        out -= 1
    return out


def _tup(v, n):
    return tuple(v) if isinstance(v, (tuple, list)) else (v,) * n


def linear(m: nn.Linear, x):
    if x.dim() == 0 or x.shape[-1] != m.in_features:
        raise ValueError
    return _out(x, (*x.shape[:-1], m.out_features))


def conv(m: nn.modules.conv._ConvNd, x):
    n = len(m.kernel_size)
    if x.dim() not in (n + 1, n + 2) or x.shape[-n - 1] != m.in_channels:
        raise ValueError
    if x.dim() != n + 2 or isinstance(m.padding, str):
        return None  # unbatched or padding="same": let torch decide
    if isinstance(m, nn.modules.conv._ConvTransposeNd):
        spatial = [(x.shape[2 + i] - 1) * m.stride[i] - 2 * m.padding[i] + m.dilation[i] * (m.kernel_size[i] - 1)
                   + m.output_padding[i] + 1 for i in range(n)]
        return _out(x, (x.shape[0], m.out_channels, *spatial))
    spatial = []
    for i in range(n):
        o = _pool_dim(x.shape[2 + i], m.kernel_size[i], m.stride[i], m.padding[i], m.dilation[i], False)
        if o <= 0:
            raise ValueError
        spatial.append(o)
    return _out(x, (x.shape[0], m.out_channels, *spatial))


def norm_same(m, x):
    if isinstance(m, nn.modules.batchnorm._BatchNorm) and (x.dim() < 2 or x.shape[1] != m.num_features):
        raise ValueError
    if isinstance(m, LayerNorm2d):  # over the channels of (B, C, H, W)
        if x.dim() != 4 or (x.shape[1],) != tuple(m.normalized_shape):
            raise ValueError
        return _out(x, x.shape)
    if isinstance(m, nn.LayerNorm) and tuple(x.shape[-len(m.normalized_shape):]) != tuple(m.normalized_shape):
        raise ValueError
    if isinstance(m, nn.GroupNorm) and (x.dim() < 2 or x.shape[1] != m.num_channels):
        raise ValueError
    return _out(x, x.shape)


def embedding(m: nn.Embedding, x):
    if x.dtype.is_floating_point:
        raise ValueError
    return torch.empty((*x.shape, m.embedding_dim), dtype=m.weight.dtype, device="meta")


def pool(m, x):
    n = 2 if isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)) else 1 if isinstance(m, (nn.MaxPool1d, nn.AvgPool1d)) else 3
    if x.dim() not in (n + 1, n + 2) or getattr(m, "return_indices", False):
        return None
    k, s, p = _tup(m.kernel_size, n), _tup(m.stride or m.kernel_size, n), _tup(m.padding, n)
    d = _tup(getattr(m, "dilation", 1), n)
    lead = x.shape[:-n]
    spatial = []
    for i in range(n):
        o = _pool_dim(x.shape[-n + i], k[i], s[i], p[i], d[i], m.ceil_mode)
        if o <= 0:
            raise ValueError
        spatial.append(o)
    return _out(x, (*lead, *spatial))


def adaptive(m, x):
    n = 1 if "1d" in type(m).__name__ else 2 if "2d" in type(m).__name__ else 3
    size = _tup(m.output_size, n)
    if x.dim() not in (n + 1, n + 2):
        return None
    spatial = [x.shape[-n + i] if s is None else s for i, s in enumerate(size)]
    return _out(x, (*x.shape[:-n], *spatial))


def recurrent(m: nn.RNNBase, x):
    """LSTM / GRU / RNN: torch's meta kernels step through every time step of every layer
    in Python (a 64-layer LSTM over 100 steps took minutes); the shapes follow directly."""
    if x.dim() not in (2, 3) or x.shape[-1] != m.input_size:
        raise ValueError
    d = 2 if m.bidirectional else 1
    out_size = getattr(m, "proj_size", 0) or m.hidden_size
    lead = () if x.dim() == 2 else (x.shape[0] if m.batch_first else x.shape[1],)
    out = _out(x, (*x.shape[:-1], d * out_size))
    h = _out(x, (d * m.num_layers, *lead, out_size))
    if isinstance(m, nn.LSTM):
        return out, (h, _out(x, (d * m.num_layers, *lead, m.hidden_size)))
    return out, h


def rule_for(m: nn.Module):
    """The fast shape rule of a layer, or None."""
    if isinstance(m, _SAME):
        return lambda m, x: _out(x, x.shape)
    if type(m) is nn.Linear:
        return linear
    if isinstance(m, nn.modules.conv._ConvNd):
        return conv
    if isinstance(m, (nn.modules.batchnorm._BatchNorm, nn.LayerNorm, nn.GroupNorm)):
        return norm_same
    if type(m) is nn.Embedding:
        return embedding
    if isinstance(m, (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)):
        return pool
    if isinstance(m, (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d, nn.AdaptiveMaxPool1d,
                      nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d)):
        return adaptive
    if type(m) in (nn.LSTM, nn.GRU, nn.RNN):
        return recurrent
    return None


_INITS = ("normal_", "uniform_", "trunc_normal_", "kaiming_uniform_", "kaiming_normal_", "xavier_uniform_",
          "xavier_normal_", "orthogonal_", "zeros_", "ones_", "constant_", "eye_", "dirac_", "sparse_")


@contextlib.contextmanager
def no_init():
    """Layers built on the meta device skip their initializers (values are meaningless there)."""
    saved = {n: getattr(nn.init, n) for n in _INITS if hasattr(nn.init, n)}
    try:
        for n in saved:
            setattr(nn.init, n, lambda tensor, *a, **k: tensor)
        yield
    finally:
        for n, f in saved.items():
            setattr(nn.init, n, f)


# ---- tensor ops (call_function / call_method targets) ----
_FLOAT_UNARY = {torch.sqrt, torch.rsqrt, torch.exp, torch.log, torch.sin, torch.cos, torch.tanh, torch.sigmoid,
                torch.nn.functional.gelu, torch.nn.functional.silu, "sqrt", "rsqrt", "exp", "log", "tanh",
                "sigmoid"}
_SAME_UNARY = {torch.relu, torch.abs, operator.neg, torch.tril, torch.triu, torch.nn.functional.relu,
               torch.nn.functional.dropout, "relu", "abs", "tril", "triu", "contiguous", "detach", "clone"}
_ARITHMETIC = {operator.add, operator.sub, operator.mul, operator.truediv, torch.add, torch.sub, torch.mul,
               torch.div, "add", "sub", "mul", "div"}
_COMPARE = {operator.eq, operator.ne, operator.lt, operator.le, operator.gt, operator.ge}
_REDUCE = {torch.mean, torch.sum, torch.amax, "mean", "sum", "amax"}


def _meta(x) -> bool:
    return isinstance(x, torch.Tensor) and x.device.type == "meta"


def _broadcast(*shapes):
    out = []
    for dims in itertools.zip_longest(*(reversed(s) for s in shapes), fillvalue=1):
        big = {d for d in dims if d != 1}
        if len(big) > 1:
            return None  # not broadcastable: torch says so in its words
        out.append(big.pop() if big else 1)
    return tuple(reversed(out))


def _elementwise(a, b, compare=False, divide=False):
    if not (_meta(a) or _meta(b)) or not all(_meta(v) or isinstance(v, (int, float, bool)) for v in (a, b)):
        return None
    shape = _broadcast(*(tuple(v.shape) for v in (a, b) if isinstance(v, torch.Tensor)))
    if shape is None:
        return None
    dtype = torch.bool if compare else torch.result_type(a, b)
    if divide and not (dtype.is_floating_point or dtype.is_complex):
        dtype = torch.get_default_dtype()
    return torch.empty(shape, dtype=dtype, device="meta")


def _reduce(x, dim=None, keepdim=False, **extra):
    if not _meta(x) or extra or not x.dtype.is_floating_point:
        return None  # sum of ints is long, mean of ints an error: leave those to torch
    dims = range(x.dim()) if dim is None or dim == () else (dim,) if isinstance(dim, int) else dim
    norm = set()
    for d in dims:
        if not isinstance(d, int) or not -x.dim() <= d < max(x.dim(), 1):
            return None
        norm.add(d % max(x.dim(), 1))
    shape = [1 if i in norm else n for i, n in enumerate(x.shape) if keepdim or i not in norm]
    return torch.empty(shape, dtype=x.dtype, device="meta")


def _matmul(a, b):
    """a @ b for the common case: both at least 2-d, same dtype (1-d operands: torch decides)."""
    if not (_meta(a) and _meta(b)) or a.dim() < 2 or b.dim() < 2 or a.dtype != b.dtype or a.shape[-1] != b.shape[-2]:
        return None
    batch = _broadcast(tuple(a.shape[:-2]), tuple(b.shape[:-2]))
    if batch is None:
        return None
    return torch.empty((*batch, a.shape[-2], b.shape[-1]), dtype=a.dtype, device="meta")


def _factory_size(args):
    size = args[0] if len(args) == 1 and isinstance(args[0], (tuple, list)) else args
    return tuple(size) if all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in size) else None


def _extras_ok(target, kwargs) -> bool:
    """The keyword arguments of a unary op are ones it takes, with values it accepts."""
    if target is torch.nn.functional.gelu:
        return set(kwargs) <= {"approximate"} and kwargs.get("approximate", "none") in ("none", "tanh")
    if target in (torch.tril, torch.triu, "tril", "triu"):
        d = kwargs.get("diagonal", 0)
        return set(kwargs) <= {"diagonal"} and isinstance(d, int) and not isinstance(d, bool)
    return not kwargs


def function_shape(target, args, kwargs):
    """A meta tensor shaped as target(*args, **kwargs) would be, or None: run the real op.
    `target` is a call_function's function or a call_method's name."""
    if target in _ARITHMETIC and len(args) == 2 and not kwargs:
        return _elementwise(*args, divide=target in (operator.truediv, torch.div, "div"))
    if target in _COMPARE and len(args) == 2 and not kwargs:
        return _elementwise(*args, compare=True)
    if (target in _SAME_UNARY or target in _FLOAT_UNARY) and args and _meta(args[0]):
        x = args[0]
        if target in _FLOAT_UNARY and not x.dtype.is_floating_point:
            return None
        if len(args) > 1 or not _extras_ok(target, kwargs):
            return None
        return torch.empty(x.shape, dtype=x.dtype, device="meta")
    if target in (torch.masked_fill, "masked_fill", netspec_ops.causal_mask) and args and _meta(args[0]):
        x = args[0]
        if target is netspec_ops.causal_mask:
            return torch.empty(x.shape, dtype=x.dtype, device="meta") if x.dim() >= 2 else None
        mask = args[1] if len(args) > 1 else kwargs.get("mask")
        if not _meta(mask) or mask.dtype != torch.bool \
                or _broadcast(tuple(x.shape), tuple(mask.shape)) != tuple(x.shape):
            return None
        return torch.empty(x.shape, dtype=x.dtype, device="meta")
    if target in (operator.matmul, torch.matmul) and len(args) == 2 and not kwargs:
        return _matmul(*args)
    if target in (torch.softmax, torch.log_softmax, "softmax", "log_softmax") and args and _meta(args[0]):
        x, dim = args[0], args[1] if len(args) > 1 else kwargs.get("dim")
        if len(args) > 2 or set(kwargs) - {"dim"} or not x.dtype.is_floating_point or not isinstance(dim, int) \
                or not -max(x.dim(), 1) <= dim < max(x.dim(), 1):
            return None
        return torch.empty(x.shape, dtype=x.dtype, device="meta")
    if target in _REDUCE and args:
        return _reduce(*args, **kwargs)
    if target in (torch.ones, torch.zeros) and kwargs.get("device") is not None \
            and torch.device(kwargs["device"]).type == "meta" and set(kwargs) <= {"device", "dtype"}:
        size = _factory_size(args)
        return None if size is None else torch.empty(size, dtype=kwargs.get("dtype"), device="meta")
    if target is torch.arange and kwargs.get("device") is not None \
            and torch.device(kwargs["device"]).type == "meta" and set(kwargs) <= {"device", "dtype"}:
        if not 1 <= len(args) <= 3 or not all(isinstance(a, int) and not isinstance(a, bool) for a in args):
            return None
        start, end, step = (0, args[0], 1) if len(args) == 1 else (*args, 1)[:3]
        if step == 0:
            return None
        n = max(0, -(-(end - start) // step))
        return torch.empty((n,), dtype=kwargs.get("dtype") or torch.int64, device="meta")
    return None
