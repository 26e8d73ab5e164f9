"""U-Net reference model (Ronneberger, Fischer & Brox 2015), as a plain `nn.Module`.

Default: the paper's network. 1x1x572x572 in, 1x2x388x388 out, unpadded
("valid") 3x3 convolutions, 23 conv layers (10 contracting, 4 2x2 up-convs,
8 expanding, 1 final 1x1), skips center-cropped to the upsampled size and
concatenated before it ([skip, upsampled], skip first, as in the paper's figure).

Names, for depth 4 (i counts levels from the top, 1 = full resolution):

    down1 .. down4     DoubleConv of the contracting path; its output is the skip of level i
        .conv1 .relu1 .conv2 .relu2      3x3 convs, channels base * 2**(i-1)
    pool1 .. pool4     MaxPool2d(2) after down{i}
    bottom             DoubleConv at the lowest level (base * 2**depth channels)
    up4 .. up1         one level of the expanding path; up{i} joins the skip of down{i}
        .upconv        ConvTranspose2d(2c, c, 2, stride 2); with bilinear=True a
                       Conv2d(2c, c, 1) after .upsample (Upsample x2, bilinear,
                       no parameters), a 1x1 conv so both variants give the same shapes
        .conv1 .relu1 .conv2 .relu2      3x3 convs on the concatenation (2c -> c -> c)
    out                Conv2d(base, num_classes, 1)

state_dict keys: down{i}.conv{1,2}.{weight,bias}, bottom.conv{1,2}.*,
up{i}.upconv.*, up{i}.conv{1,2}.*, out.*. Forward runs down1, pool1, down2,
..., bottom, up4, ..., up1, out.

padding='same' pads the 3x3 convs by 1 so the output has the input's size
(for sizes divisible by 2**depth; otherwise the skips are still cropped).
Weights are drawn as the paper says: Gaussian with std sqrt(2 / fan_in);
biases 0. 31,030,658 parameters at the defaults (1 in channel, 2 classes);
bilinear=True: 28,941,698.
"""
from __future__ import annotations

import torch
from torch import nn


class DoubleConv(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, padding: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=padding)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=padding)
        self.relu2 = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu2(self.conv2(self.relu1(self.conv1(x))))


def center_crop(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    top = (x.shape[-2] - height) // 2
    left = (x.shape[-1] - width) // 2
    return x[..., top : top + height, left : left + width]


class Up(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, padding: int, bilinear: bool):
        super().__init__()
        if bilinear:
            self.upsample = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
            self.upconv = nn.Conv2d(in_channels, out_channels, kernel_size=1)
        else:
            self.upsample = None
            self.upconv = nn.ConvTranspose2d(in_channels, out_channels, kernel_size=2, stride=2)
        self.conv1 = nn.Conv2d(2 * out_channels, out_channels, kernel_size=3, padding=padding)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=padding)
        self.relu2 = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        if self.upsample is not None:
            x = self.upsample(x)
        x = self.upconv(x)
        x = torch.cat([center_crop(skip, x.shape[-2], x.shape[-1]), x], dim=1)
        return self.relu2(self.conv2(self.relu1(self.conv1(x))))


class UNet(nn.Module):
    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 2,
        base_channels: int = 64,
        depth: int = 4,
        padding: str = "valid",
        bilinear: bool = False,
    ):
        super().__init__()
        if padding not in ("valid", "same"):
            raise ValueError(f"padding must be 'valid' or 'same', got {padding!r}")
        pad = 0 if padding == "valid" else 1
        self.depth = depth
        channels = [base_channels * 2**i for i in range(depth + 1)]
        prev = in_channels
        for i in range(1, depth + 1):
            self.add_module(f"down{i}", DoubleConv(prev, channels[i - 1], pad))
            self.add_module(f"pool{i}", nn.MaxPool2d(2))
            prev = channels[i - 1]
        self.bottom = DoubleConv(prev, channels[depth], pad)
        # Registered deepest first so the module order follows the data flow.
        for i in range(depth, 0, -1):
            self.add_module(f"up{i}", Up(channels[i], channels[i - 1], pad, bilinear))
        self.out = nn.Conv2d(base_channels, num_classes, kernel_size=1)

        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                # ConvTranspose2d stores [in, out, k, k]; torch's "fan_in" reads
                # dim 1, which is what feeds each output pixel, as the paper means.
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for i in range(1, self.depth + 1):
            x = getattr(self, f"down{i}")(x)
            skips.append(x)
            x = getattr(self, f"pool{i}")(x)
        x = self.bottom(x)
        for i in range(self.depth, 0, -1):
            x = getattr(self, f"up{i}")(x, skips[i - 1])
        return self.out(x)
