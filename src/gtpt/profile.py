"""Cost accounting: parameters and multiply-accumulates (MACs) for one image.

The paper's "GFLOPs" are MACs counted the way the `thop` profiler counts a 1x3x256x192 image in
eval mode:
  * Conv2d: output elements x (in_channels / groups x kernel area) (bias not counted);
  * Linear: output elements x in_features (bias not counted);
  * BatchNorm / LayerNorm: 4 per element;
  * nothing for the attention products (q.k, attn.v), activations, softmax or token gathers.
The full count follows fvcore instead: the same convs and linears, BatchNorm (eval) 2 and
LayerNorm 5 per element, plus the two attention products with the reference's key counts
(its group attention also carries the masked placeholder key).

The count is analytic, from the configuration and the token counts that the keep rates imply;
`tests/test_profile.py` checks it against a forward-hook count of a real forward pass.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

from torch import nn

from .config import ModelConfig



@dataclass(frozen=True)
class Cost:
    matmul_macs: int           # convolutions and linear layers
    bn_elements: int           # elements through BatchNorm
    ln_elements: int           # elements through LayerNorm
    attention_macs: int        # q.k and attn.v products
    params: int                # inference parameters, without learned tokens and the sine table

    @property
    def macs(self) -> int:
        """Paper / thop convention."""
        return self.matmul_macs + 4 * (self.bn_elements + self.ln_elements)

    @property
    def gmacs(self) -> float:
        return self.macs / 1e9

    @property
    def gmacs_with_attention(self) -> float:
        """fvcore convention."""
        return (self.matmul_macs + 2 * self.bn_elements + 5 * self.ln_elements + self.attention_macs) / 1e9

    def as_dict(self) -> dict:
        return {"gmacs": round(self.gmacs, 4), "gmacs_with_attention": round(self.gmacs_with_attention, 4),
                "params_m": round(self.params / 1e6, 4)}


def _conv_macs(m: nn.Conv2d, out_hw: tuple[int, int]) -> int:
    return m.out_channels * out_hw[0] * out_hw[1] * (m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1])


def stem_macs(stem: nn.Module, in_hw: tuple[int, int]) -> tuple[int, int, tuple[int, int]]:
    """Walk the stem's convs and BNs in execution order, tracking spatial size.
    -> (conv MACs, BatchNorm elements, output hw)."""
    total = bn = 0

    # Shapes follow from strides alone (padding keeps k//2): a conv with stride s halves H, W.
    def walk(m: nn.Module, hw):
        nonlocal total, bn
        if isinstance(m, nn.Conv2d):
            hw = ((hw[0] - 1) // m.stride[0] + 1, (hw[1] - 1) // m.stride[1] + 1)
            total += _conv_macs(m, hw)
        elif isinstance(m, nn.BatchNorm2d):
            bn += m.num_features * hw[0] * hw[1]
        elif isinstance(m, nn.PixelShuffle):
            hw = (hw[0] * m.upscale_factor, hw[1] * m.upscale_factor)
        else:
            for child in m.children():
                hw = walk(child, hw)
        return hw

    def unit(u, hw):  # ShuffleUnit: the two branches see the same input
        if hasattr(u, "branch1"):
            walk(u.branch1, hw)
        return walk(u.branch2, hw)

    def seq(s, hw):
        for m in s:
            hw = unit(m, hw) if hasattr(m, "branch2") else walk(m, hw)
        return hw

    hw = walk(stem.conv1, in_hw)
    if hasattr(stem, "layer"):
        out_hw = seq(stem.layer, hw)
    else:
        h1 = seq(stem.down_layer1, hw)
        h2 = seq(stem.down_layer2, h1)
        h3 = seq(stem.down_layer3, h2)
        walk(stem.upsample1, h3)
        h2 = seq(stem.up_layer1, h2)
        walk(stem.upsample2, h2)
        out_hw = seq(stem.up_layer2, h1)
    return total, bn, out_hw


def token_counts(cfg: ModelConfig, keep_rates: Optional[Sequence[float]] = None) -> dict:
    """Tokens seen by each block's attention and FFN (per group in the fine encoder)."""
    rates = cfg.keep_rates if keep_rates is None else tuple(keep_rates)
    n = cfg.num_patches
    tgt = [int(n * rates[i // 3]) for i in range(cfg.depth)]
    k_sparse = 22 if cfg.wholebody else 17
    attn, ffn, img, k = [], [], n, 1
    for i in range(cfg.depth // 2):
        attn.append(k + img)
        img = tgt[i]
        if i == 3:
            k = k_sparse
        ffn.append(k + img)
    gate_tokens = img
    entry = tgt[cfg.depth // 2]
    g_attn, g_ffn, t = [], [], 6 + entry  # whole-body dense tokens sit inside the budget
    for j in range(cfg.depth // 2):
        g_attn.append(t)
        t = 6 + tgt[cfg.depth // 2 + j]
        g_ffn.append(t)
    return {"attn": attn, "ffn": ffn, "gate": gate_tokens, "group_attn": g_attn, "group_ffn": g_ffn,
            "keys_extra": 3 * 6 - 6}


def count_cost(cfg_or_model, keep_rates: Optional[Sequence[float]] = None) -> Cost:
    """Parameters and MACs of one 1x3xHxW image (H, W from the config)."""
    from .models import GTPT
    model = cfg_or_model if isinstance(cfg_or_model, GTPT) else GTPT(cfg_or_model)
    cfg = model.cfg
    rates = model.keep_rates if keep_rates is None else tuple(keep_rates)
    d, hidden = cfg.dim, cfg.dim * cfg.mlp_ratio
    macs, bn, (h, w) = stem_macs(model.stem, cfg.image_size)
    bn += cfg.stem_channels * h * w                                          # patch BatchNorm
    macs += cfg.num_patches * model.patch_embed.in_features * d             # patch embedding
    ln = attention = 0

    def block(n_attn: int, n_ffn: int, groups: int = 1) -> None:
        nonlocal macs, ln
        macs += groups * (n_attn * d * 4 * d + n_ffn * d * hidden * 2)     # qkv+proj, MLP
        ln += groups * (n_attn + n_ffn) * d

    tc = token_counts(cfg, rates)
    for na, nf in zip(tc["attn"], tc["ffn"]):
        block(na, nf)
        attention += 2 * na * na * d
    macs += tc["gate"] * (d * (d // 2) + (d // 2) * 3 * d)                  # group gates
    for na, nf in zip(tc["group_attn"], tc["group_ffn"]):
        block(na, nf, groups=3)
        attention += 3 * 2 * na * (na + tc["keys_extra"]) * d
    bins_x, bins_y = cfg.simcc_bins
    macs += cfg.num_joints * d * (bins_x + bins_y)                          # heads
    ln += 2 * cfg.num_joints * d
    tokens = sum(p.numel() for p in model.token_parameters())
    params = sum(p.numel() for p in model.parameters()) - tokens
    return Cost(matmul_macs=macs, bn_elements=bn, ln_elements=ln, attention_macs=attention, params=params)
