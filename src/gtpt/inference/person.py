"""One detected person: what `Predictor.predict` returns."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np


@dataclass
class Person:
    """box [4] xywh (as given, image pixels); keypoints [K, 3] = (x, y, joint score) in image
    pixels; score = box_score x mean of the joint scores above the predictor's threshold;
    track_id: the same person's id across video frames (`PoseTracker`), else None."""

    box: np.ndarray
    box_score: float
    keypoints: np.ndarray
    score: float
    track_id: Optional[int] = None

    @property
    def num_joints(self) -> int:
        return int(self.keypoints.shape[0])

    def to_coco(self, image_id=None, file_name: str | None = None) -> dict:
        """COCO keypoint-results entry (category 1, flat keypoints x1, y1, s1, x2, ...)."""
        out = {}
        if image_id is not None:
            out["image_id"] = image_id
        if file_name is not None:
            out["file_name"] = file_name
        out.update({"category_id": 1,
                    "keypoints": [round(float(v), 3) for v in self.keypoints.reshape(-1)],
                    "score": round(float(self.score), 6),
                    "bbox": [round(float(v), 2) for v in self.box],
                    "box_score": round(float(self.box_score), 6)})
        if self.track_id is not None:
            out["track_id"] = int(self.track_id)
        return out


def instance_score(joint_scores: np.ndarray, box_score: float, thr: float = 0.01) -> float:
    """box score x mean of the joint scores [K] above `thr` (0 when none is), as the reference
    rescoring does (`gtpt.engine.metrics.rescore`)."""
    valid = joint_scores > thr
    return float(box_score) * (float(joint_scores[valid].mean()) if valid.any() else 0.0)


__all__ = ["Person", "instance_score"]
