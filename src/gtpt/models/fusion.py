"""Inference-time folding of BatchNorm into the neighbouring conv / linear layer.

An eval-mode BatchNorm is a per-channel affine map, so it can be absorbed into the weights
of the layer before it (stem convs) or after it (the patch BatchNorm into the patch
embedding). Outputs stay the same to float rounding; the model gets ~50 fewer passes over
its largest feature maps. Training needs the real BatchNorm statistics, so this is for
deployment copies only.
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


def deployment_copy(model: GTPT, device="cpu", channels_last: bool = False, input_channels: int = 3) -> GTPT:
    """A folded eval-mode copy on `device` (channels-last memory if asked, the first convolution
    widened to `input_channels` if more than 3); `model` is untouched."""
    out = pad_input_channels(fuse_for_inference(copy.deepcopy(model).eval()), input_channels).to(device)
    return out.to(memory_format=torch.channels_last) if channels_last else out
