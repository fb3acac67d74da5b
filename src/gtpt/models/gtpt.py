"""The GTPT network: stem -> patch tokens -> coarse encoder -> keypoint groups -> SA-SimCC head.

Shapes for the 256x192 input (N = 256 patches, C = dim, K = 17 or 133):
  image [B,3,256,192] -> stem [B,Cs,64,48] -> tokens [B,1+N,C] (human token first)
  blocks 0-5 (coarse): prune at block 3 on the human token's attention, then the human token
      becomes 17 keypoint tokens (22 with the 5 whole-body part tokens)
  group entry: 3 groups, each with its own channel-gated, pruned image tokens [B,3,T,C]
  blocks 6-11 (fine, group attention): prune again at block 9 on the keypoint rows
  head: keypoint tokens [B,K,C] -> logits_x [B,K,384], logits_y [B,K,512]

Train mode returns the pruned student and the unpruned teacher (keep rates 1) from one stem
pass, for the Global Perceived Loss; eval mode returns the pruned logits.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Optional, Sequence

import torch
from torch import nn

from ..config import ModelConfig, get_model_config
from .blocks import Block
from .group_gate import GroupGate
from .head import SimCCHead
from .layout import NUM_GROUPS, NUM_SPARSE, build_layout
from .patch_embed import PatchEmbed
from .position import sine_position_table
from .pruning import IGNORED_ROW, gather_tokens, softmax_pool, top_tokens
from .stem import build_stem


def check_keep_rates(cfg: ModelConfig, keep_rates: Sequence[float]) -> tuple[float, ...]:
    """Validate inference-time keep rates against what the architecture can run."""
    rates = tuple(float(r) for r in keep_rates)
    if len(rates) != 4 or not all(0.0 < r <= 1.0 for r in rates):
        raise ValueError(f"keep rates must be 4 values in (0, 1], got {list(keep_rates)}")
    if any(b > a for a, b in zip(rates, rates[1:])):
        raise ValueError(f"keep rates must not increase from stage to stage, got {list(rates)}")
    n = cfg.num_patches
    if min(int(n * r) for r in rates) < 1:
        raise ValueError(f"keep rates {list(rates)} leave no image token out of {n}")
    if cfg.wholebody and int(n * rates[2]) < 68:
        raise ValueError(f"whole-body groups hold up to 68 dense tokens inside their token budget: "
                         f"keep rates 3 and 4 must be >= {68 / n:.3f}, got {list(rates)}")
    return rates


class GTPT(nn.Module):
    """Group-based Token Pruning Transformer (one class for T/S/B, body/whole-body)."""

    def __init__(self, cfg: ModelConfig, fused_attention: bool = True):
        super().__init__()
        self.cfg = cfg
        dim = cfg.dim
        self.keep_rates = check_keep_rates(cfg, cfg.keep_rates)
        self.layout = build_layout(cfg.num_joints)
        self.stem = build_stem(cfg.stem, cfg.stem_channels)
        self.patch_norm = nn.BatchNorm2d(cfg.stem_channels)
        self.patch_embed = PatchEmbed(cfg.stem_channels, cfg.patch_size, dim)
        self.human_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.keypoint_tokens = nn.Parameter(torch.zeros(1, 17, dim))
        if cfg.wholebody:
            self.part_tokens = nn.Parameter(torch.zeros(1, self.layout.num_parts, dim))
            self.dense_tokens = nn.Parameter(torch.zeros(1, sum(self.layout.dense), dim))
        self.register_buffer("pos_embed", sine_position_table(*cfg.grid, dim), persistent=False)
        for name in ("entry_rows", "score_row_ignored", "dense_slots", "out_index", "part_of_dense"):
            self.register_buffer(f"_{name}", getattr(self.layout, name), persistent=False)
        self.register_buffer("_dense_count", torch.tensor(self.layout.dense).view(NUM_GROUPS, 1),
                             persistent=False)
        half = cfg.depth // 2
        self.blocks = nn.ModuleList(
            Block(dim, cfg.heads, cfg.mlp_ratio, fused=fused_attention) for _ in range(half))
        self.group_gate = GroupGate(dim, NUM_GROUPS)
        self.group_blocks = nn.ModuleList(
            Block(dim, cfg.heads, cfg.mlp_ratio, group=True, fused=fused_attention) for _ in range(half))
        self.head = SimCCHead(dim, *cfg.simcc_bins)
        self.init_weights()

    # ------------------------------------------------------------------ set-up
    def init_weights(self) -> None:
        """Recipe init: conv N(0, 0.001), BN 1/0, Linear/LayerNorm PyTorch defaults, tokens trunc-normal 0.02."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, std=0.001)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        for p in self.token_parameters():
            nn.init.trunc_normal_(p, std=0.02)

    def token_parameters(self) -> list[nn.Parameter]:
        names = ("human_token", "keypoint_tokens", "part_tokens", "dense_tokens")
        return [getattr(self, n) for n in names if hasattr(self, n)]

    def set_keep_rates(self, keep_rates: Sequence[float]) -> None:
        """Change the pruning budget of a trained model (speed/accuracy trade-off, no retraining)."""
        self.keep_rates = check_keep_rates(self.cfg, keep_rates)

    @property
    def num_patches(self) -> int:
        return self.cfg.num_patches

    # ------------------------------------------------------------------ forward
    def forward_features(self, img: torch.Tensor) -> torch.Tensor:
        """img [B,3,H,W] -> tokens [B,1+N,C]: human token, then patch tokens with sine positions."""
        x = self.patch_embed(self.patch_norm(self.stem(img))) + self.pos_embed
        return torch.cat([self.human_token.expand(x.shape[0], -1, -1), x], dim=1)

    def _targets(self, keep_rates: Sequence[float]) -> list[int]:
        return [int(self.num_patches * keep_rates[i // 3]) for i in range(self.cfg.depth)]

    def forward_tokens(self, x: torch.Tensor, keep_rates: Optional[Sequence[float]] = None,
                       trace: Optional[dict] = None) -> torch.Tensor:
        """tokens [B,1+N,C] -> keypoint tokens [B,K,C].

        trace: if a dict is given, it receives the original patch ids (0..N-1, row-major) kept
        after every pruning step ('after_block{i}', 'group_entry', 'after_group_block{j}').
        """
        keep_rates = self.keep_rates if keep_rates is None else keep_rates
        tgt = self._targets(keep_rates)
        b = x.shape[0]
        pos = self.pos_embed.expand(b, -1, -1)
        ids = torch.arange(self.num_patches, device=x.device).expand(b, -1) if trace is not None else None

        # coarse encoder: one human token, replaced by keypoint tokens after block 3's attention
        k = 1
        for i, blk in enumerate(self.blocks):
            if i > 0:  # positions are re-added before every block but the first
                x = torch.cat([x[:, :k], x[:, k:] + pos], dim=1)
            prune = x.shape[1] - k != tgt[i]
            x, logits = blk.attend(x, k if prune or i == len(self.blocks) - 1 else 0)
            if prune:
                idx = top_tokens(softmax_pool(logits.flatten(1, 2), 1), tgt[i])
                x = torch.cat([x[:, :k], gather_tokens(x[:, k:], idx)], dim=1)
                pos = gather_tokens(pos, idx)
                if trace is not None:
                    ids = ids.gather(1, idx)
                    trace[f"after_block{i}"] = ids.sort(1).values
            if i == 3:
                x = torch.cat([x[:, :1] + self._sparse_tokens(), x[:, 1:]], dim=1)
                k = self.layout.num_sparse_in
            x = blk.feed_forward(x)

        x, pos, ids = self._enter_groups(x, pos, logits, tgt[len(self.blocks)], ids, trace)

        # fine encoder: 3 groups of [6 sparse | dense | image] under group attention
        s = NUM_SPARSE
        for j, blk in enumerate(self.group_blocks):
            x = torch.cat([x[:, :, :s], x[:, :, s:] + pos], dim=2)
            i = len(self.blocks) + j
            prune = x.shape[2] - s != tgt[i]
            x, logits = blk.attend(x, s + self.layout.max_dense if prune else 0)
            if prune:
                idx = self._group_prune_indices(logits, tgt[i])
                x = torch.cat([x[:, :, :s], gather_tokens(x[:, :, s:], idx)], dim=2)
                pos = gather_tokens(pos, idx)
                if trace is not None:
                    ids = ids.gather(2, idx)
                    trace[f"after_group_block{j}"] = self._image_ids(ids)
            x = blk.feed_forward(x)

        width = s + self.layout.max_dense
        return x[:, :, :width].reshape(b, NUM_GROUPS * width, -1)[:, self._out_index]

    def _sparse_tokens(self) -> torch.Tensor:
        """[1, 17 or 22, C]: (part tokens +) keypoint tokens added to the human token."""
        if self.cfg.wholebody:
            return torch.cat([self.part_tokens, self.keypoint_tokens], dim=1)
        return self.keypoint_tokens

    def _enter_groups(self, x, pos, logits, tgt: int, ids, trace):
        """[B,K+n,C] after block 5 -> groups [B,3,6+tgt,C], their positions [B,3,tgt,C].

        Each group gates the image tokens (and their positions) with its own channel gate and
        keeps its best tokens by the block-5 attention of its own keypoint rows. Whole-body
        groups fill the first n_g slots of their budget with dense tokens (position 0).
        """
        b, _, c = x.shape
        k = self.layout.num_sparse_in
        kp, img = x[:, :k], x[:, k:]
        n = img.shape[1]
        gate = self.group_gate(img)                                        # [B,3,n,C]
        img, pos = img.unsqueeze(1) * gate, pos.unsqueeze(1) * gate

        # pooled score per group over (head x its rows); the placeholder row scores nothing
        pad = logits.new_full((b, logits.shape[1], 1, n), IGNORED_ROW)
        rows = torch.cat([logits, pad], dim=2)[:, :, self._entry_rows]   # [B,H,3,R,n]
        scores = softmax_pool(rows.transpose(1, 2).flatten(2, 3), 2)      # [B,3,n]

        body_kp = kp[:, self.layout.num_parts:]
        sparse = torch.cat([body_kp[:, :1], body_kp], dim=1).view(b, NUM_GROUPS, NUM_SPARSE, c)
        grid_ids = ids.unsqueeze(1).expand(-1, NUM_GROUPS, -1) if ids is not None else None
        if not self.cfg.wholebody:
            if n != tgt:
                idx = top_tokens(scores, tgt)
                img, pos = gather_tokens(img, idx), gather_tokens(pos, idx)
                grid_ids = grid_ids.gather(2, idx) if ids is not None else None
        else:
            # dense slots first, then the best (tgt - n_g) image tokens of each group
            d = self.layout.max_dense
            idx = top_tokens(scores, tgt - min(self.layout.dense))
            dense = kp[:, self._part_of_dense] + self.dense_tokens
            dense = torch.cat([dense, dense.new_zeros(b, 1, c)], dim=1)[:, self._dense_slots]
            slot = torch.arange(tgt, device=x.device)
            slot = torch.where(slot < self._dense_count, slot, slot + d - self._dense_count)  # [3,tgt]
            slot = slot.unsqueeze(0).expand(b, -1, -1)
            img = gather_tokens(torch.cat([dense, gather_tokens(img, idx)], dim=2), slot)
            pos = gather_tokens(torch.cat([torch.zeros_like(dense), gather_tokens(pos, idx)], dim=2), slot)
            if ids is not None:
                grid_ids = torch.cat([ids.new_full((b, NUM_GROUPS, d), -1), grid_ids.gather(2, idx)], 2)
                grid_ids = grid_ids.gather(2, slot)
        if trace is not None:
            trace["group_entry"] = self._image_ids(grid_ids)
        return torch.cat([sparse, img], dim=2), pos, grid_ids

    def _group_prune_indices(self, logits: torch.Tensor, tgt: int) -> torch.Tensor:
        """logits [B,3,H,R,n] of each group's sparse+dense rows -> kept token indices [B,3,tgt].

        Dense tokens are never pruned: they score +inf, and indices stay in token order so
        they keep their slots.
        """
        ignored = self._score_row_ignored.view(1, NUM_GROUPS, 1, -1, 1)
        logits = logits.masked_fill(ignored, IGNORED_ROW)
        scores = softmax_pool(logits.flatten(2, 3), 2)                     # [B,3,n]
        col = torch.arange(scores.shape[-1], device=scores.device)
        scores = scores.masked_fill(col < self._dense_count, float("inf"))
        return top_tokens(scores, tgt, in_order=True)

    @staticmethod
    def _image_ids(ids: torch.Tensor) -> list[torch.Tensor]:
        """[B,3,T] ids with -1 for dense slots -> per-group sorted image patch ids."""
        out = []
        for g in range(ids.shape[1]):
            row = ids[:, g]
            out.append(row[row >= 0].view(row.shape[0], -1).sort(1).values)
        return out

    def forward_head(self, tokens: torch.Tensor):
        """keypoint tokens [B,K,C] -> (logits_x [B,K,Wx], logits_y [B,K,Wy])."""
        return self.head(tokens)

    def forward(self, img: torch.Tensor, keep_rates: Optional[Sequence[float]] = None,
                trace: Optional[dict] = None):
        """Eval: (logits_x, logits_y) with pruning. Train: dict of the pruned student
        (`pred_x`, `pred_y`) and the unpruned teacher (`entire_pred_x`, `entire_pred_y`)."""
        tokens = self.forward_features(img)
        x, y = self.forward_head(self.forward_tokens(tokens, keep_rates, trace))
        if not self.training:
            return x, y
        tx, ty = self.forward_head(self.forward_tokens(tokens, (1.0,) * 4))
        return {"pred_x": x, "pred_y": y, "entire_pred_x": tx, "entire_pred_y": ty}


def build_model(cfg_or_name, **overrides) -> GTPT:
    """`build_model("gtpt-t-body")` or `build_model(ModelConfig(...))`; overrides go to the config."""
    if isinstance(cfg_or_name, str):
        cfg = get_model_config(cfg_or_name, **overrides)
    else:
        cfg = replace(cfg_or_name, **overrides) if overrides else cfg_or_name
    return GTPT(cfg)
