"""Deployment copies: BatchNorm folded into the neighbouring conv / linear layer, and optional
GPU-friendlier forms of the stem's first convolution (same outputs).

An eval-mode BatchNorm is a per-channel affine map, so it can be absorbed into the weights
of the layer before it (stem convs) or after it (the patch BatchNorm into the patch
embedding); the stem's depthwise biases then move into the 1x1 convolutions after them. Outputs
stay the same to float rounding; the model gets ~55 fewer passes over its largest feature maps.
Training needs the real BatchNorm statistics, so this is for deployment copies only.
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from .gtpt import GTPT


def _fold_sequential(seq: nn.Sequential) -> None:
    children = list(seq.children())
    for i, (a, b) in enumerate(zip(children, children[1:])):
        if isinstance(a, nn.Conv2d) and isinstance(b, nn.BatchNorm2d):
            seq[i] = fuse_conv_bn_eval(a, b)
            seq[i + 1] = nn.Identity()
    convs = [m for m in seq.children() if not isinstance(m, nn.Identity)]
    for a, b in zip(convs, convs[1:]):
        if _is_depthwise(a) and _is_pointwise(b):
            _move_bias(a, b)


def _is_depthwise(m: nn.Module) -> bool:
    return isinstance(m, nn.Conv2d) and m.groups == m.in_channels == m.out_channels > 1


def _is_pointwise(m: nn.Module) -> bool:
    return isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1) and m.groups == 1 and m.padding == (0, 0)


@torch.no_grad()
def _move_bias(depthwise: nn.Conv2d, pointwise: nn.Conv2d) -> None:
    """pw(dw(x) + b) = pw(dw(x)) + W_pw b: a constant, since a 1x1 convolution pads nothing. The
    ShuffleNet units' depthwise convolutions have no ReLU after them, so their bias moves into the
    next 1x1 convolution's, and the depthwise output needs no bias pass (compiled on a GPU: one
    full pass over the feature map each, where cuDNN's depthwise kernel takes no bias)."""
    if depthwise.bias is None:
        return
    shift = pointwise.weight[:, :, 0, 0] @ depthwise.bias
    if pointwise.bias is None:
        pointwise.bias = nn.Parameter(shift, requires_grad=False)
    else:
        pointwise.bias += shift
    depthwise.bias = None


@torch.no_grad()
def _fold_patch_norm(model: GTPT) -> None:
    """BN(x) then Linear over patch vectors ordered (dy, dx, c): scale the weight columns."""
    bn, fc = model.patch_norm, model.patch_embed
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    shift = bn.bias - bn.running_mean * scale
    reps = fc.in_features // scale.numel()                       # patch cells per channel
    fc.bias += fc.weight @ shift.repeat(reps)
    fc.weight *= scale.repeat(reps)
    model.patch_norm = nn.Identity()


def fuse_for_inference(model: GTPT) -> GTPT:
    """Fold all BatchNorms of an eval-mode model in place; returns the model."""
    if model.training:
        raise RuntimeError("fuse_for_inference needs an eval-mode model (BatchNorm running statistics)")
    for m in list(model.stem.modules()):
        if isinstance(m, nn.Sequential):
            _fold_sequential(m)
    if isinstance(model.patch_norm, nn.BatchNorm2d):
        _fold_patch_norm(model)
    return model


class PadChannels(nn.Module):
    """Append `extra` zero channels: [B,C,H,W] -> [B,C+extra,H,W]."""

    def __init__(self, extra: int):
        super().__init__()
        self.extra = extra

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, (0, 0, 0, 0, 0, self.extra))


@torch.no_grad()
def pad_input_channels(model: GTPT, channels: int) -> GTPT:
    """Give the stem's first convolution `channels` inputs (zero weights on the extra ones) and pad
    the image to match; outputs are unchanged. cuDNN handles 3-channel NHWC bf16 convolutions in a
    slow generic kernel (12% of an H200 batch); 8 channels meet its tensor-core kernels."""
    conv = model.stem.conv1[0]
    if channels <= conv.in_channels:
        return model
    wide = nn.Conv2d(channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                     bias=conv.bias is not None).to(conv.weight)
    wide.weight.zero_()
    wide.weight[:, :conv.in_channels] = conv.weight
    if conv.bias is not None:
        wide.bias.copy_(conv.bias)
    model.stem.conv1[0] = nn.Sequential(PadChannels(channels - conv.in_channels), wide)
    return model


class SpaceToDepthConv(nn.Module):
    """A 3x3, stride-2, padding-1 convolution computed as a 2x2 stride-1 convolution over 2x2 pixel
    blocks (space-to-depth): [B,C,H,W] -> [B,O,ceil(H/2),ceil(W/2)], the same outputs.

    Each output reads 2x2 blocks of the padded input; kernel taps outside the 3x3 window get zero
    weights. The image is padded to `pixel_channels` channels first, so the block convolution has
    4 * pixel_channels inputs (16 for RGB: a tensor-core friendly width, unlike 3).
    """

    def __init__(self, conv: nn.Conv2d, pixel_channels: int = 4):
        super().__init__()
        if conv.kernel_size != (3, 3) or conv.stride != (2, 2) or conv.padding != (1, 1) \
                or conv.groups != 1 or conv.dilation != (1, 1):
            raise ValueError(f"space-to-depth needs a plain 3x3 stride-2 padding-1 convolution, got {conv}")
        out_c, in_c = conv.weight.shape[:2]
        if pixel_channels < in_c:
            raise ValueError(f"pixel_channels {pixel_channels} < the convolution's {in_c} inputs")
        self.extra = pixel_channels - in_c
        self.conv = nn.Conv2d(4 * pixel_channels, out_c, 2, bias=conv.bias is not None).to(conv.weight)
        with torch.no_grad():
            w = conv.weight.new_zeros(out_c, pixel_channels, 4, 4)   # taps (2*block + offset), 3 used
            w[:, :in_c, :3, :3] = conv.weight
            # [O, C', by, dy, bx, dx] -> [O, C', dy, dx, by, bx]: pixel_unshuffle orders channels (c, dy, dx)
            w = w.view(out_c, pixel_channels, 2, 2, 2, 2).permute(0, 1, 3, 5, 2, 4)
            self.conv.weight.copy_(w.reshape(out_c, 4 * pixel_channels, 2, 2))
            if conv.bias is not None:
                self.conv.bias.copy_(conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]   # one zero row/column in front; behind, enough for whole blocks
        return self.conv(F.pixel_unshuffle(F.pad(x, (1, 1 + w % 2, 1, 1 + h % 2, 0, self.extra)), 2))


def space_to_depth_first_conv(model: GTPT) -> GTPT:
    """Replace the stem's first convolution by its space-to-depth form (`SpaceToDepthConv`); outputs
    are unchanged. A 3-channel convolution is a poor fit for GPU tensor cores (cuDNN ran it at a
    fraction of its memory speed on an H200); a 16-channel 2x2 one is a common shape."""
    model.stem.conv1[0] = SpaceToDepthConv(model.stem.conv1[0])
    return model


def deployment_copy(model: GTPT, device="cpu", channels_last: bool = False, input_channels: int = 3,
                    space_to_depth: bool = False) -> GTPT:
    """A folded eval-mode copy on `device` (channels-last memory if asked; the first convolution
    widened to `input_channels` if more than 3, or in space-to-depth form); `model` is untouched."""
    if space_to_depth and input_channels != 3:
        raise ValueError("choose one form for the first convolution: input_channels or space_to_depth")
    out = fuse_for_inference(copy.deepcopy(model).eval())
    out = space_to_depth_first_conv(out) if space_to_depth else pad_input_channels(out, input_channels)
    out = out.to(device)
    return out.to(memory_format=torch.channels_last) if channels_last else out
