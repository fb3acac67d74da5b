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


def deployment_copy(model: GTPT, device="cpu", channels_last: bool = False) -> GTPT:
    """A folded eval-mode copy on `device` (channels-last memory if asked); `model` is untouched."""
    out = fuse_for_inference(copy.deepcopy(model).eval()).to(device)
    return out.to(memory_format=torch.channels_last) if channels_last else out
