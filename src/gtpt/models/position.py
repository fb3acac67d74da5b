"""Fixed 2-D sine position table (DETR-style, y channels first, then x)."""
from __future__ import annotations

import math

import torch


def sine_position_table(rows: int, cols: int, dim: int, temperature: float = 10000.0) -> torch.Tensor:
    """-> [1, rows*cols, dim], row-major over the token grid.

    Row r and column q (1-based) map to r/(rows+1e-6)*2pi and q/(cols+1e-6)*2pi. Within each
    half, channel 2k is sin(pos / f_k) and 2k+1 is cos(pos / f_k) with f_k = T^(2k/(dim/2)).
    """
    half = dim // 2
    y = torch.arange(1, rows + 1, dtype=torch.float32) / (rows + 1e-6) * (2 * math.pi)
    x = torch.arange(1, cols + 1, dtype=torch.float32) / (cols + 1e-6) * (2 * math.pi)
    freq = temperature ** (2 * (torch.arange(half, dtype=torch.float32) // 2) / half)

    def encode(p):  # [L] -> [L, half]: interleaved sin/cos pairs sharing one frequency
        a = p[:, None] / freq
        return torch.stack((a[:, 0::2].sin(), a[:, 1::2].cos()), dim=2).flatten(1)

    py = encode(y)[:, None, :].expand(rows, cols, half)
    px = encode(x)[None, :, :].expand(rows, cols, half)
    return torch.cat((py, px), dim=2).reshape(1, rows * cols, dim)
