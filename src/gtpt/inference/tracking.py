"""Track ids for people across video frames.

Greedy box-IoU matching, the simple tracker top-down video demos use (MMPose's pose-tracking demo
matched by IoU or OKS the same way): each new person takes the free track whose last box overlaps
it most, if that overlap reaches `iou_thr`; the rest start new tracks. A track not seen for more than
`max_age` frames is forgotten, so a person who leaves and comes back much later gets a new id.

`follow_boxes` is how people are followed without the detector between its runs: the next frame's
box of each person is the one around the joints found in this frame (`keypoint_box`).
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
from pycocotools import mask as mask_utils

from .draw import DRAW_KPT_THR


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of boxes a [N, 4] and b [M, 4], both x, y, w, h -> [N, M] (pycocotools' box IoU, no crowd boxes)."""
    b = np.asarray(b, np.float64).reshape(-1, 4)
    return np.asarray(mask_utils.iou(np.asarray(a, np.float64).reshape(-1, 4), b, [0] * len(b)),
                      np.float64).reshape(-1, len(b))


# The joints that span a followed box are the ones sure enough to be drawn, and the box is 1.3x
# their extent. Measured with the demo weights on gtpt-mini val (benchmarks/keypoint_boxes.py): a
# higher joint threshold loses people, a lower one lets stray joints stretch the box; margins from
# 1.0 to 1.3 kept the AP of the labelled boxes within noise over 4 steps (79.7-83.3 against 81.4 at
# 1.3), wider ones lost AP. 1.3 is also about how much taller gtpt-mini's boxes (the teacher's
# landmarks plus a margin) are than their COCO joints.
KEYPOINT_BOX_MARGIN = 1.3
KEYPOINT_BOX_THR = DRAW_KPT_THR


def keypoint_box(keypoints: np.ndarray, score_thr: float = KEYPOINT_BOX_THR,
                 margin: float = KEYPOINT_BOX_MARGIN) -> Optional[np.ndarray]:
    """x, y, w, h of the box around the joints [K, 3] scoring above score_thr, grown `margin` times
    about its centre; None when fewer than 3 joints are that sure (the person is lost)."""
    sure = keypoints[keypoints[:, 2] > score_thr, :2]
    if len(sure) < 3:
        return None
    lo, hi = sure.min(0), sure.max(0)
    size = (hi - lo) * margin
    return np.concatenate([(lo + hi) / 2 - size / 2, size])


def follow_boxes(people: Sequence, score_thr: float = KEYPOINT_BOX_THR,
                 margin: float = KEYPOINT_BOX_MARGIN) -> np.ndarray:
    """The next frame's boxes [N, 5] (x, y, w, h, the detection's score) for `people` of this one:
    around each person's joints (`keypoint_box`); people with too few sure joints are left out."""
    rows = [(keypoint_box(p.keypoints, score_thr, margin), p.box_score) for p in people]
    return np.array([np.append(box, score) for box, score in rows if box is not None], np.float64).reshape(-1, 5)


class PoseTracker:
    """Gives each Person of consecutive frames a `track_id` (0, 1, 2, ... in order of appearance).

        tracker = PoseTracker()
        for frame in video:
            people = tracker.update(predictor.predict(frame))   # p.track_id set
    """

    def __init__(self, iou_thr: float = 0.3, max_age: int = 10):
        if not 0 < iou_thr <= 1 or max_age < 0:
            raise ValueError(f"iou_thr must lie in (0, 1] and max_age be >= 0, got {iou_thr}, {max_age}")
        self.iou_thr, self.max_age = float(iou_thr), int(max_age)
        self.frame = -1
        self.next_id = 0
        self.tracks: dict[int, tuple[np.ndarray, int]] = {}   # id -> (last box [4], frame last seen)

    def update(self, people: Sequence) -> list:
        """One frame's people (in place: their track_id is set) -> the same list."""
        self.frame += 1
        people = list(people)
        ids = list(self.tracks)
        assigned: dict[int, int] = {}                          # person index -> track id
        if people and ids:
            iou = box_iou(np.stack([p.box for p in people]), np.stack([self.tracks[t][0] for t in ids]))
            for flat in np.argsort(-iou, axis=None, kind="stable"):   # best overlaps first
                i, j = divmod(int(flat), len(ids))
                if iou[i, j] < self.iou_thr:
                    break
                if i not in assigned and ids[j] not in assigned.values():
                    assigned[i] = ids[j]
        # new tracks: the most confident person first, so ids follow a stable order
        for i in sorted(range(len(people)), key=lambda k: -people[k].score):
            if i not in assigned:
                assigned[i] = self.next_id
                self.next_id += 1
        for i, p in enumerate(people):
            p.track_id = assigned[i]
            self.tracks[p.track_id] = (np.asarray(p.box, np.float64).copy(), self.frame)
        self.tracks = {t: v for t, v in self.tracks.items() if self.frame - v[1] <= self.max_age}
        return people


__all__ = ["KEYPOINT_BOX_MARGIN", "KEYPOINT_BOX_THR", "PoseTracker", "box_iou", "follow_boxes", "keypoint_box"]
