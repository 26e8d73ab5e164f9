"""Hand-written twins of torchvision's building blocks, under torchvision's module names.

torchvision cannot be imported in the main venv, so these follow torchvision 0.2x's own
classes attribute for attribute (their state_dict keys and order are torchvision's), in
plain torch.nn:

    Conv2dNormActivation, SqueezeExcitation, Permute, StochasticDepth  torchvision.ops.misc / ops
    InvertedResidualV2   torchvision.models.mobilenetv2.InvertedResidual
    InvertedResidualV3   torchvision.models.mobilenetv3.InvertedResidual
    LayerNorm2d, CNBlock torchvision.models.convnext

and three small networks assembled from them the way torchvision assembles its models
(`features` / `avgpool` / `classifier`): MobileNetV2Tiny, MobileNetV3Tiny, ConvNeXtTiny.
The specs they are compared with are in docs/LANGUAGE.md and tests/compiler/test_sequential.py.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Conv2dNormActivation(nn.Sequential):
    """conv -> norm -> activation; padding keeps the size at stride 1 (keys 0, 1, 2)."""

    def __init__(self, cin, cout, kernel_size=3, stride=1, groups=1, norm_layer=nn.BatchNorm2d,
                 activation_layer=nn.ReLU, padding=None, bias=None):
        padding = (kernel_size - 1) // 2 if padding is None else padding
        bias = norm_layer is None if bias is None else bias
        layers = [nn.Conv2d(cin, cout, kernel_size, stride, padding, groups=groups, bias=bias)]
        if norm_layer is not None:
            layers.append(norm_layer(cout))
        if activation_layer is not None:
            layers.append(activation_layer(inplace=True))
        super().__init__(*layers)


class SqueezeExcitation(nn.Module):
    """Channel attention (Hu et al. 2018): the input scaled by a gate computed from its mean."""

    def __init__(self, channels, squeeze, activation=nn.ReLU, scale_activation=nn.Sigmoid):
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, channels, 1)
        self.activation = activation()
        self.scale_activation = scale_activation()

    def forward(self, x):
        scale = self.scale_activation(self.fc2(self.activation(self.fc1(self.avgpool(x)))))
        return scale * x


class Permute(nn.Module):
    def __init__(self, dims):
        super().__init__()
        self.dims = dims

    def forward(self, x):
        return torch.permute(x, self.dims)


class StochasticDepth(nn.Module):
    """torchvision.ops.StochasticDepth: drop the input per sample ("row") or per batch with
    probability p in training, scaling what survives by 1 / (1 - p)."""

    def __init__(self, p, mode):
        super().__init__()
        self.p, self.mode = p, mode

    def forward(self, x):
        if not self.training or self.p == 0.0:
            return x
        survival = 1.0 - self.p
        shape = [x.shape[0]] + [1] * (x.ndim - 1) if self.mode == "row" else [1] * x.ndim
        noise = torch.empty(shape, dtype=x.dtype, device=x.device).bernoulli_(survival)
        if survival > 0.0:
            noise.div_(survival)
        return x * noise


class InvertedResidualV2(nn.Module):
    """MobileNetV2's block: 1x1 expand (unless expand_ratio is 1), 3x3 depthwise, 1x1 project."""

    def __init__(self, inp, oup, stride, expand_ratio):
        super().__init__()
        hidden = int(round(inp * expand_ratio))
        self.use_res_connect = stride == 1 and inp == oup
        layers = []
        if expand_ratio != 1:
            layers.append(Conv2dNormActivation(inp, hidden, kernel_size=1, activation_layer=nn.ReLU6))
        layers += [Conv2dNormActivation(hidden, hidden, stride=stride, groups=hidden, activation_layer=nn.ReLU6),
                   nn.Conv2d(hidden, oup, 1, 1, 0, bias=False), nn.BatchNorm2d(oup)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2Tiny(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.features = nn.Sequential(
            Conv2dNormActivation(3, 16, stride=2, activation_layer=nn.ReLU6),
            InvertedResidualV2(16, 8, 1, 1),
            InvertedResidualV2(8, 12, 2, 6),
            InvertedResidualV2(12, 12, 1, 6),
            Conv2dNormActivation(12, 32, kernel_size=1, activation_layer=nn.ReLU6))
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(32, classes))

    def forward(self, x):
        x = self.features(x)
        x = F.adaptive_avg_pool2d(x, (1, 1))
        return self.classifier(torch.flatten(x, 1))


class InvertedResidualV3(nn.Module):
    """MobileNetV3's block: expand, depthwise, squeeze-excitation (hard sigmoid gate), project."""

    def __init__(self, cin, kernel, expanded, cout, use_se, use_hs, stride):
        super().__init__()
        self.use_res_connect = stride == 1 and cin == cout
        act = nn.Hardswish if use_hs else nn.ReLU
        layers = []
        if expanded != cin:
            layers.append(Conv2dNormActivation(cin, expanded, kernel_size=1, activation_layer=act,
                                               norm_layer=lambda c: nn.BatchNorm2d(c, eps=0.001, momentum=0.01)))
        layers.append(Conv2dNormActivation(expanded, expanded, kernel_size=kernel, stride=stride, groups=expanded,
                                           activation_layer=act,
                                           norm_layer=lambda c: nn.BatchNorm2d(c, eps=0.001, momentum=0.01)))
        if use_se:
            squeeze = _make_divisible(expanded // 4, 8)
            layers.append(SqueezeExcitation(expanded, squeeze, scale_activation=nn.Hardsigmoid))
        layers.append(Conv2dNormActivation(expanded, cout, kernel_size=1, activation_layer=None,
                                           norm_layer=lambda c: nn.BatchNorm2d(c, eps=0.001, momentum=0.01)))
        self.block = nn.Sequential(*layers)

    def forward(self, x):
        result = self.block(x)
        return result + x if self.use_res_connect else result


def _make_divisible(v, divisor, min_value=None):
    min_value = min_value or divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


class MobileNetV3Tiny(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        bn = lambda c: nn.BatchNorm2d(c, eps=0.001, momentum=0.01)  # noqa: E731
        self.features = nn.Sequential(
            Conv2dNormActivation(3, 16, stride=2, norm_layer=bn, activation_layer=nn.Hardswish),
            InvertedResidualV3(16, 3, 16, 16, True, False, 2),
            InvertedResidualV3(16, 3, 72, 24, False, False, 2),
            InvertedResidualV3(24, 5, 96, 24, True, True, 1))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Linear(24, 64), nn.Hardswish(inplace=True), nn.Dropout(0.2),
                                        nn.Linear(64, classes))

    def forward(self, x):
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


class LayerNorm2d(nn.LayerNorm):
    def forward(self, x):
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class CNBlock(nn.Module):
    """ConvNeXt's block: 7x7 depthwise conv, LayerNorm over channels (as NHWC), an MLP,
    a learned per-channel scale, stochastic depth, and the residual."""

    def __init__(self, dim, layer_scale, stochastic_depth_prob):
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim, bias=True),
            Permute([0, 2, 3, 1]),
            nn.LayerNorm(dim, eps=1e-6),
            nn.Linear(dim, 4 * dim, bias=True),
            nn.GELU(),
            nn.Linear(4 * dim, dim, bias=True),
            Permute([0, 3, 1, 2]))
        self.layer_scale = nn.Parameter(torch.ones(dim, 1, 1) * layer_scale)
        self.stochastic_depth = StochasticDepth(stochastic_depth_prob, "row")

    def forward(self, x):
        result = self.layer_scale * self.block(x)
        result = self.stochastic_depth(result)
        result += x
        return result


class ConvNeXtTiny(nn.Module):
    """Two stages of one CNBlock each (ConvNeXt-T has 3, 3, 9, 3), with its stem, its
    downsampling between stages and its classifier; stochastic depth grows with depth."""

    def __init__(self, dims=(8, 16), classes=10, stochastic_depth_prob=0.5, layer_scale=1e-6):
        super().__init__()
        norm = lambda c: LayerNorm2d(c, eps=1e-6)  # noqa: E731
        layers = [Conv2dNormActivation(3, dims[0], kernel_size=4, stride=4, padding=0, norm_layer=norm,
                                       activation_layer=None, bias=True)]
        total, done = len(dims), 0
        for i, d in enumerate(dims):
            sd = stochastic_depth_prob * done / (total - 1.0)
            layers.append(nn.Sequential(CNBlock(d, layer_scale, sd)))
            done += 1
            if i + 1 < len(dims):
                layers.append(nn.Sequential(norm(d), nn.Conv2d(d, dims[i + 1], kernel_size=2, stride=2)))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(norm(dims[-1]), nn.Flatten(1), nn.Linear(dims[-1], classes))

    def forward(self, x):
        return self.classifier(self.avgpool(self.features(x)))
