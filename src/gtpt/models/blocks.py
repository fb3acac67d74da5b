"""Pre-LN transformer block, split in two so tokens can be pruned between attention and FFN."""
from __future__ import annotations

import torch
from torch import nn

from .attention import Attention, GroupAttention


class Mlp(nn.Module):
    """Linear -> exact GELU -> Linear (dropout is 0 in every GTPT setup, so it is left out)."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """x -> x + Attn(LN(x)) -> [caller prunes / adds tokens] -> x + MLP(LN(x)).

    `group=True` uses Multi-Head Group Attention on [B, G, T, C] inputs.
    """

    def __init__(self, dim: int, heads: int, mlp_ratio: int, group: bool = False, fused: bool = True):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = (GroupAttention if group else Attention)(dim, heads, fused=fused)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, dim * mlp_ratio)

    def attend(self, x: torch.Tensor, score_rows: int = 0):
        """Attention sub-layer with residual; also returns the pruning logits of `score_rows` rows."""
        out, logits = self.attn(self.norm1(x), score_rows)
        return x + out, logits

    def feed_forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.mlp(self.norm2(x))
