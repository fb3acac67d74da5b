"""ShuffleNetV2-style convolutional stems (stride 4 output).

Sub-module names follow the authors' code (`conv1`, `layer`, `down_layer*`, `upsample*`,
`up_layer*`, `branch1`/`branch2` with sequential indices) so that checkpoint mapping is a
prefix rename.
"""
from __future__ import annotations

import torch
from torch import nn


def concat_shuffle(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """ShuffleNet's 2-group channel shuffle of cat([a, b]), written in one copy:
    out[:, 2i] = a[:, i], out[:, 2i+1] = b[:, i].

    Keeps channels-last inputs channels-last (the fast layout for CPU and GPU convolutions).
    """
    if a.dim() == 4 and a.is_contiguous(memory_format=torch.channels_last) and a.shape[1] > 1:
        out = torch.stack((a.permute(0, 2, 3, 1), b.permute(0, 2, 3, 1)), dim=-1)   # [B,H,W,C/2,2]
        return out.flatten(3).permute(0, 3, 1, 2)
    return torch.stack((a, b), dim=2).flatten(1, 2)


def _conv_bn(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1, relu: bool = True) -> list:
    layers = [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups), nn.BatchNorm2d(cout)]
    return layers + [nn.ReLU(inplace=True)] if relu else layers


class ShuffleUnit(nn.Module):
    """ShuffleNetV2 inverted residual unit.

    stride 2: both branches see the whole input and their outputs are concatenated;
    stride 1: half the channels pass through, the other half goes through `branch2`.
    Every conv has a bias (as in the reference).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.stride = stride
        mid = out_channels // 2
        if stride == 1 and in_channels != out_channels:
            raise ValueError(f"stride-1 unit needs in == out channels, got {in_channels} -> {out_channels}")
        if stride > 1:
            self.branch1 = nn.Sequential(
                *_conv_bn(in_channels, in_channels, 3, stride, groups=in_channels, relu=False),
                *_conv_bn(in_channels, mid, 1))
        self.branch2 = nn.Sequential(
            *_conv_bn(in_channels if stride > 1 else mid, mid, 1),
            *_conv_bn(mid, mid, 3, stride, groups=mid, relu=False),
            *_conv_bn(mid, mid, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            return concat_shuffle(self.branch1(x), self.branch2(x))
        keep, x2 = x.chunk(2, dim=1)
        return concat_shuffle(keep, self.branch2(x2))


def _units(cin: int, cout: int, n: int, first_stride: int) -> nn.Sequential:
    return nn.Sequential(*[ShuffleUnit(cin if i == 0 else cout, cout, first_stride if i == 0 else 1)
                           for i in range(n)])


class ShuffleStem(nn.Module):
    """GTPT-T/S stem: conv3x3/2 (3->64) + 4 units to `channels` at stride 4.  [B,3,H,W] -> [B,C,H/4,W/4]"""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Sequential(*_conv_bn(3, 64, 3, 2))
        self.layer = _units(64, channels, 4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(self.conv1(x))


class ShuffleUNetStem(nn.Module):
    """GTPT-B stem: three down stages (256@/4, 384@/8, 512@/16) and two up stages back to /4.

    Up stage: 1x1 conv to 4c + PixelShuffle(2) + BN + ReLU, concatenated after the skip,
    then 1x1 conv 2c->c + BN + ReLU and two stride-1 units.  [B,3,H,W] -> [B,256,H/4,W/4]
    """

    def __init__(self, widths: tuple[int, int, int] = (256, 384, 512)):
        super().__init__()
        c1, c2, c3 = widths
        self.conv1 = nn.Sequential(*_conv_bn(3, 64, 3, 2))
        self.down_layer1 = _units(64, c1, 4, 2)
        self.down_layer2 = _units(c1, c2, 4, 2)
        self.down_layer3 = _units(c2, c3, 4, 2)
        self.upsample1 = self._upsample(c3, c2)
        self.upsample2 = self._upsample(c2, c1)
        self.up_layer1 = self._up_layer(c2)
        self.up_layer2 = self._up_layer(c1)

    @staticmethod
    def _upsample(cin: int, cout: int) -> nn.Sequential:
        return nn.Sequential(nn.Conv2d(cin, cout * 4, 1), nn.PixelShuffle(2),
                             nn.BatchNorm2d(cout), nn.ReLU(inplace=True))

    @staticmethod
    def _up_layer(c: int) -> nn.Sequential:
        return nn.Sequential(nn.Sequential(*_conv_bn(2 * c, c, 1)),
                             ShuffleUnit(c, c, 1), ShuffleUnit(c, c, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.down_layer1(self.conv1(x))
        x2 = self.down_layer2(x1)
        x3 = self.down_layer3(x2)
        x2 = self.up_layer1(torch.cat([x2, self.upsample1(x3)], 1))
        return self.up_layer2(torch.cat([x1, self.upsample2(x2)], 1))


def build_stem(stem: str, channels: int) -> nn.Module:
    if stem in ("t", "s"):
        return ShuffleStem(channels)
    if stem == "b":
        if channels != 256:
            raise ValueError(f"the B stem outputs 256 channels, config says {channels}")
        return ShuffleUNetStem()
    raise ValueError(f"unknown stem {stem!r}")
