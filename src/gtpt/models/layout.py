"""Where every keypoint token lives in the three groups (body and whole-body).

Body: the 17 keypoint tokens plus a placeholder copy of token 0 make 3 groups of 6 sparse
tokens: face (kp0-4), arms (kp5-10), legs (kp11-16).
Whole-body adds 5 part tokens and 116 dense tokens. Each group holds [6 sparse | n_g dense |
image] with n = (68 face, 42 hands, 6 feet); dense token j starts as part token p(j) + its
own learned token.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

NUM_GROUPS = 3
NUM_SPARSE = 6
BODY_JOINTS = 17
WB_DENSE = (68, 42, 6)  # face / left+right hand / left+right foot
WB_PART_OF_DENSE = [0] * 68 + [1] * 21 + [2] * 21 + [3] * 3 + [4] * 3
# score rows at group entry, as indices into the block-5 query rows (-1 = placeholder)
_BODY_ENTRY_ROWS = [[-1, 0, 1, 2, 3, 4], list(range(5, 11)), list(range(11, 17))]
_WB_ENTRY_ROWS = [[0, 5, 6, 7, 8, 9, -1, -1], [1, 2] + list(range(10, 16)), [3, 4] + list(range(16, 22))]


@dataclass
class GroupLayout:
    """Static index tables, built once per model; tensors move with the model as buffers."""

    num_parts: int                 # 0 body, 5 whole-body
    dense: tuple[int, int, int]    # dense tokens per group
    entry_rows: torch.Tensor       # [3, R] long, rows of the block-5 logits (K = pad row)
    score_row_ignored: torch.Tensor  # [3, S+Dmax] bool, group-block rows that do not score
    dense_slots: torch.Tensor      # [3, Dmax] long into the 116 dense tokens (116 = zero pad)
    out_index: torch.Tensor        # [K_out] long into the flattened [3*(S+Dmax)] group tokens
    part_of_dense: torch.Tensor    # [sum(dense)] long, the part token each dense token starts from

    @property
    def max_dense(self) -> int:
        return max(self.dense)

    @property
    def num_sparse_in(self) -> int:
        """Tokens that replace the human token after block 3 (parts + 17 keypoints)."""
        return self.num_parts + BODY_JOINTS


def build_layout(num_joints: int) -> GroupLayout:
    wholebody = num_joints == 133
    dense = WB_DENSE if wholebody else (0, 0, 0)
    k_rows = 22 if wholebody else BODY_JOINTS
    rows = torch.tensor(_WB_ENTRY_ROWS if wholebody else _BODY_ENTRY_ROWS)
    rows[rows < 0] = k_rows
    width = NUM_SPARSE + max(dense)
    ignored = torch.zeros(NUM_GROUPS, width, dtype=torch.bool)
    ignored[0, 0] = True  # the placeholder copy
    dense_slots = torch.full((NUM_GROUPS, max(max(dense), 1)), sum(dense), dtype=torch.long)
    start = 0
    for g, n in enumerate(dense):
        ignored[g, NUM_SPARSE + n:] = True
        dense_slots[g, :n] = torch.arange(start, start + n)
        start += n
    sparse = [g * width + s for g in range(NUM_GROUPS) for s in range(NUM_SPARSE)][1:]
    # COCO-WholeBody order: body, feet (group 2), face (group 0), hands (group 1)
    dense_out = [g * width + NUM_SPARSE + j for g in (2, 0, 1) for j in range(dense[g])]
    return GroupLayout(num_parts=5 if wholebody else 0, dense=dense, entry_rows=rows,
                       score_row_ignored=ignored, dense_slots=dense_slots,
                       out_index=torch.tensor(sparse + dense_out),
                       part_of_dense=torch.tensor(WB_PART_OF_DENSE if wholebody else [], dtype=torch.long))
