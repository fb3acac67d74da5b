"""SA-SimCC codec: keypoints <-> per-axis classification targets / logits.

Bins: `split_ratio` bins per input pixel, so Wx = W * split (384) and Wy = H * split (512)
for a 256x192 (H, W) input. Encoding follows the reference SA-SimDR generator; decoding is
argmax / split with no sub-bin refinement, and the flip test averages *logits*.
"""
from __future__ import annotations

import math

import numpy as np
import torch


class SimCCCodec:
    """Encode joints to SA-SimCC targets and decode classifier logits to coordinates.

    input_size: (H, W) of the network input in pixels.
    """

    def __init__(self, input_size=(256, 192), split_ratio: float = 2.0, sigma: float = 4.0):
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.split_ratio = float(split_ratio)
        self.sigma = float(sigma)

    @property
    def bins(self) -> tuple[int, int]:
        """(Wx, Wy): number of x and y bins."""
        h, w = self.input_size
        return int(w * self.split_ratio), int(h * self.split_ratio)

    # ------------------------------------------------------------------ encode
    def encode(self, joints, joints_vis):
        """Targets for one sample.

        joints: [K, 2|3] input-pixel coordinates; joints_vis: [K] or [K, 3] (column 0 used).
        Returns target_x [K, Wx], target_y [K, Wy], target_weight [K], all float32.
        """
        joints = np.asarray(joints, dtype=np.float64)
        vis = np.asarray(joints_vis, dtype=np.float64)
        if vis.ndim == 2:
            vis = vis[:, 0]
        if joints.ndim != 2 or joints.shape[1] < 2 or vis.shape != (joints.shape[0],):
            raise ValueError(f"encode: joints must be [K,2|3] and joints_vis [K] or [K,3]; "
                             f"got {joints.shape} and {np.shape(joints_vis)}")
        h, w = self.input_size
        wx, wy = self.bins
        weight = (vis > 0).astype(np.float64)

        # The reference validates a +-3 sigma window in pixel units; int() truncates toward
        # zero (not floor), which matters for slightly negative coordinates.
        radius = self.sigma * 3
        ul = np.trunc(joints[:, :2] - radius)
        br = np.trunc(joints[:, :2] + radius + 1)
        outside = (ul[:, 0] >= w) | (ul[:, 1] >= h) | (br[:, 0] < 0) | (br[:, 1] < 0)
        weight[outside] = 0.0

        # Unnormalised Gaussian (peak 1/(sigma*sqrt(2pi))) centred at split*coord, no rounding.
        norm = 1.0 / (self.sigma * math.sqrt(2 * math.pi))
        mu = joints[:, :2] * self.split_ratio                                   # [K, 2]
        ux = np.arange(wx, dtype=np.float64)[None, :]
        uy = np.arange(wy, dtype=np.float64)[None, :]
        target_x = np.exp(-((ux - mu[:, :1]) ** 2) / (2 * self.sigma ** 2)) * norm
        target_y = np.exp(-((uy - mu[:, 1:2]) ** 2) / (2 * self.sigma ** 2)) * norm
        keep = (weight > 0.5)[:, None]
        target_x = np.where(keep, target_x, 0.0).astype(np.float32)
        target_y = np.where(keep, target_y, 0.0).astype(np.float32)
        return target_x, target_y, weight.astype(np.float32)

    # ------------------------------------------------------------------ decode
    def decode(self, logits_x: torch.Tensor, logits_y: torch.Tensor):
        """Logits [B, K, Wx], [B, K, Wy] -> coords [B, K, 2] (input pixels), scores [B, K].

        score = min(max softmax_x, max softmax_y).
        """
        prob_x = torch.softmax(logits_x.float(), dim=-1)
        prob_y = torch.softmax(logits_y.float(), dim=-1)
        # torch.max returns the first index among ties, as the reference relies on.
        max_x, idx_x = prob_x.max(dim=-1)
        max_y, idx_y = prob_y.max(dim=-1)
        coords = torch.stack([idx_x, idx_y], dim=-1).float() / self.split_ratio
        scores = torch.minimum(max_x, max_y)
        return coords, scores

    def flip_back(self, flip_logits_x: torch.Tensor, flip_logits_y: torch.Tensor, flip_index,
                  shift: bool = True):
        """Undo a horizontal input flip on logits [B, K, Wx], [B, K, Wy].

        Reverses the x bins, swaps left/right rows (flip_index [K]: out[k] = in[flip_index[k]])
        and, with `shift`, moves x one bin left (the last bin keeps its value) because the
        flipped feature grid is misaligned by one bin.
        """
        index = torch.as_tensor(np.asarray(flip_index), dtype=torch.long, device=flip_logits_x.device)
        fx = flip_logits_x.flip(-1).index_select(1, index)
        fy = flip_logits_y.index_select(1, index)
        if shift:
            fx = torch.cat([fx[..., 1:], fx[..., -1:]], dim=-1)
        return fx, fy

    def merge_flip(self, logits_x, logits_y, flip_logits_x, flip_logits_y, flip_index,
                   shift: bool = True):
        """Average the plain logits with the flipped-back flip-test logits (logits, not probs)."""
        fx, fy = self.flip_back(flip_logits_x, flip_logits_y, flip_index, shift=shift)
        return (logits_x + fx) * 0.5, (logits_y + fy) * 0.5

    # ------------------------------------------------------------ projection
    def to_image(self, coords, center, scale):
        """Input-pixel coords [..., K, 2] -> original image coords, given center/scale [..., 2].

        x = cx + (u - W/2) * s, y = cy + (v - H/2) * s with s = 200 * scale[0] / W on both
        axes: the reference inverse crop is built from the width only (the box has the input
        aspect ratio, so scale[1]/H == scale[0]/W up to rounding).
        """
        h, w = self.input_size
        if isinstance(coords, torch.Tensor):
            center = torch.as_tensor(center, dtype=torch.float64, device=coords.device)
            scale = torch.as_tensor(scale, dtype=torch.float64, device=coords.device)
            c64 = coords.double()
            s = (scale[..., 0] * 200.0 / w)[..., None, None]
            half = torch.tensor([w / 2.0, h / 2.0], dtype=torch.float64, device=coords.device)
            return (center[..., None, :] + (c64 - half) * s).to(coords.dtype)
        coords = np.asarray(coords)
        center = np.asarray(center, dtype=np.float64)
        scale = np.asarray(scale, dtype=np.float64)
        s = (scale[..., 0] * 200.0 / w)[..., None, None]
        out = center[..., None, :] + (coords.astype(np.float64) - np.array([w / 2.0, h / 2.0])) * s
        return out.astype(coords.dtype if coords.dtype.kind == "f" else np.float64)


__all__ = ["SimCCCodec"]
