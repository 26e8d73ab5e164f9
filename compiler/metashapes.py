"""Fast output shapes for the common layers, used during meta-device shape inference.

Running torch's own meta kernels goes through Python decompositions (milliseconds per
Linear) and initializers on meta tensors import torch._dynamo (seconds). These rules
compute the same shapes directly; anything not listed here runs the real module on
meta tensors. Each rule raises ValueError on a mismatch; shapes.py words the message.
"""
from __future__ import annotations

import contextlib
import math

import torch
from torch import nn

_SAME = (nn.ReLU, nn.ReLU6, nn.GELU, nn.SiLU, nn.Mish, nn.ELU, nn.Tanh, nn.Sigmoid, nn.LeakyReLU, nn.Softmax,
         nn.LogSoftmax, nn.Softplus, nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d,
         nn.AlphaDropout)


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
