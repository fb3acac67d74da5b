"""Channel gates that give each keypoint group its own view of the visual tokens."""
from __future__ import annotations

import torch
from torch import nn


class GroupGate(nn.Module):
    """[B, N, C] -> sigmoid gates [B, G, N, C]: Linear(C, C/2) -> ReLU -> Linear(C/2, G*C) -> sigmoid.

    The G*C outputs are split with the group as the outer factor.
    """

    def __init__(self, dim: int, groups: int = 3):
        super().__init__()
        self.groups = groups
        self.fc1 = nn.Linear(dim, dim // 2)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(dim // 2, dim * groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        gates = self.fc2(self.act(self.fc1(x))).sigmoid()
        return gates.view(b, n, self.groups, c).transpose(1, 2)
