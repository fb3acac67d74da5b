"""SA-SimCC head: two 1-D classifiers over sub-pixel bins, one for x and one for y."""
from __future__ import annotations

import torch
from torch import nn


class SimCCHead(nn.Module):
    """Keypoint tokens [B, K, C] -> (logits_x [B, K, Wx], logits_y [B, K, Wy]).

    Wx = input width x split ratio (384 for 192 px at ratio 2), Wy likewise (512).
    Decoding the logits into coordinates is the codec's job (`gtpt.codec`).
    """

    def __init__(self, dim: int, bins_x: int, bins_y: int):
        super().__init__()
        self.norm_x = nn.LayerNorm(dim)
        self.fc_x = nn.Linear(dim, bins_x)
        self.norm_y = nn.LayerNorm(dim)
        self.fc_y = nn.Linear(dim, bins_y)

    def forward(self, tokens: torch.Tensor):
        return self.fc_x(self.norm_x(tokens)), self.fc_y(self.norm_y(tokens))
