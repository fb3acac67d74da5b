"""Attention-guided visual-token selection.

A token's score is the softmax-weighted mean of the pre-softmax logits it receives from the
keypoint-token queries, pooled over (head x query row): s = sum_r a_r * softmax_r(a_r).
The highest-scoring tokens are kept; their position rows follow them.
"""
from __future__ import annotations

import torch

# Score given to placeholder rows; exp(-1e5) underflows to exactly 0 in float32, so such a
# row contributes nothing to the pooled score (scores are always computed in float32).
IGNORED_ROW = -1e5


def softmax_pool(logits: torch.Tensor, dim: int) -> torch.Tensor:
    """sum over `dim` of a * softmax(a)."""
    return (logits * logits.softmax(dim)).sum(dim)


def gather_tokens(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """x [..., N, C], idx [..., k] -> [..., k, C]."""
    return x.gather(-2, idx.unsqueeze(-1).expand(*idx.shape, x.shape[-1]))


def top_tokens(scores: torch.Tensor, k: int, in_order: bool = False) -> torch.Tensor:
    """scores [..., N] -> indices [..., k] of the k best (by score, or in token order)."""
    idx = scores.topk(k, dim=-1, sorted=not in_order).indices
    return idx.sort(dim=-1).values if in_order else idx
