"""The few layers and tensor ops netspec adds to PyTorch's own.

Each is small, plain PyTorch; `compiler.eject` copies their source into ejected
model files so those import only torch.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def center_crop(input: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Crop the trailing spatial dims of `input` to those of `like` (U-Net's crop-and-concat)."""
    spatial = like.dim() - 2  # (B, C, *spatial)
    out = input
    for axis in range(2, 2 + spatial):
        start = (input.shape[axis] - like.shape[axis]) // 2
        out = out.narrow(axis, start, like.shape[axis])
    return out


def causal_mask(input: torch.Tensor, value: float = float("-inf")) -> torch.Tensor:
    """Fill scores above the diagonal of the last two dims: masked_fill(tril(ones(T, T)) == 0, value)."""
    T, S = input.shape[-2], input.shape[-1]
    keep = torch.ones(T, S, dtype=torch.bool, device=input.device).tril()
    return input.masked_fill(~keep, value)


def attention(query, key, value, attn_mask=None, dropout=None, is_causal=False, scale=None):
    """F.scaled_dot_product_attention dropping attention weights as the nn.Dropout `dropout`
    would: with its p while it is training, not at all in eval."""
    p = dropout.p if dropout is not None and dropout.training else 0.0
    return F.scaled_dot_product_attention(query, key, value, attn_mask=attn_mask, dropout_p=p,
                                          is_causal=is_causal, scale=scale)


class ScaledDotProductAttention(nn.Module):
    """F.scaled_dot_product_attention with dropout active only in training mode."""

    def __init__(self, dropout: float = 0.0, is_causal: bool = False, scale=None):
        super().__init__()
        self.dropout, self.is_causal, self.scale = dropout, is_causal, scale

    def forward(self, q, k, v):  # (B, nh, T, hs) each
        return F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0,
                                              is_causal=self.is_causal, scale=self.scale)


def batch_norm(input, running_mean, running_var, eps=1e-5):
    """Batch normalization over every dim but 1 (no scale, no shift), its running statistics in
    the RunningStat layers `running_mean` and `running_var`: F.batch_norm with their buffers,
    moved as the layers move them (by their momentum, towards the batch mean and the unbiased
    batch variance) in training, used in eval."""
    training = running_mean.training
    one_value = training and input.numel() <= input.size(1)  # F.batch_norm refuses one value per channel
    if running_var.training != training or running_var.momentum != running_mean.momentum or one_value:
        dims = [d for d in range(input.dim()) if d != 1]  # the layers set apart: as they compute it
        mean = running_mean(input.mean(dims, keepdim=True))
        var = running_var(input.var(dims, correction=1, keepdim=True), input.var(dims, correction=0, keepdim=True))
        return (input - mean) / torch.sqrt(var + eps)
    return F.batch_norm(input, running_mean.value.view(-1), running_var.value.view(-1), training=training,
                        momentum=running_mean.momentum, eps=eps)


class RunningStat(nn.Module):
    """A running statistic, as BatchNorm keeps them. Training: `value` moves towards the
    first input by lerp(momentum) and the last input is returned (the batch statistic);
    eval: the stored `value` is returned."""

    def __init__(self, *shape: int, momentum: float = 0.1, init=None):
        super().__init__()
        self.momentum = momentum
        fill = 0.0 if init is None else float(init)
        self.register_buffer("value", torch.full(shape, fill))

    def forward(self, update, use=None):
        if self.training:
            with torch.no_grad():
                self.value.lerp_(update.detach().reshape(self.value.shape), self.momentum)
            return update if use is None else use
        return self.value.reshape((update if use is None else use).shape)


class Permute(nn.Module):
    """x.permute(*dims) as a layer (torchvision.ops.Permute): ConvNeXt's NCHW <-> NHWC."""

    def __init__(self, *dims):
        super().__init__()
        self.dims = tuple(dims[0]) if len(dims) == 1 and isinstance(dims[0], (tuple, list)) else tuple(dims)

    def forward(self, x):
        return x.permute(*self.dims)


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of an NCHW tensor (ConvNeXt's): each pixel's C values are
    normalized; `weight` and `bias` have shape (C,)."""

    def forward(self, x):  # (B, C, H, W)
        x = x.permute(0, 2, 3, 1)  # (B, H, W, C)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)  # (B, C, H, W)


def stochastic_depth(input: torch.Tensor, p: float, mode: str = "row", training: bool = True) -> torch.Tensor:
    """Drop whole residual branches with probability p (Huang et al. 2016), scaling what is
    kept by 1 / (1 - p). mode "row": one draw per sample; "batch": one for the whole batch.
    The identity when not training or p == 0."""
    if not training or p == 0.0:
        return input
    keep = 1.0 - p
    size = [input.shape[0]] + [1] * (input.dim() - 1) if mode == "row" else [1] * input.dim()
    noise = torch.empty(size, dtype=input.dtype, device=input.device).bernoulli_(keep)
    if keep > 0.0:
        noise.div_(keep)
    return input * noise


class StochasticDepth(nn.Module):
    """stochastic_depth as a layer, active in training mode only (torchvision.ops.StochasticDepth)."""

    def __init__(self, p: float, mode: str = "row"):
        super().__init__()
        self.p, self.mode = p, mode

    def forward(self, x):
        return stochastic_depth(x, self.p, self.mode, self.training)


def select(condition, then, orelse):
    """`then if condition else orelse` at run time: a spec's `a if training else b`."""
    return then if condition else orelse


EJECTED_SOURCES = (center_crop, causal_mask, attention, batch_norm, ScaledDotProductAttention, RunningStat,
                   Permute, LayerNorm2d, stochastic_depth, StochasticDepth, select)
