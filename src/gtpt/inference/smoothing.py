"""Keypoint smoothing across video frames: the One-Euro filter (Casiez, Roussel and Vogel, CHI 2012).

Each frame's pose is estimated on its own, so joints jitter by a pixel or two even when the person
stands still. The One-Euro filter is a first-order low-pass filter whose cut-off frequency grows
with the joint's (filtered) speed: still joints are smoothed hard, fast ones follow with little lag.
Speeds are measured in person sizes per second (`person_size`: the extent of the confident joints,
not the box, which may be the whole frame), so one setting suits people near the camera and far from
it. Smoothing changes the outputs, so it is opt-in (`gtpt predict --smooth`, or `KeypointSmoother`).
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np

from .draw import DRAW_KPT_THR

# chosen on generated trajectories with known truth (`benchmarks/smoothing.py`): with per-frame noise of
# 1 % of the person size at 30 fps, still joints' error drops by ~40 %, walking-speed joints' stays
# the same, and 2 Hz arm swings (3.8 sizes/s) lag into ~1.5x the raw error
DEFAULT_MIN_CUTOFF = 1.0   # Hz: the cut-off for a still joint
DEFAULT_BETA = 16.0        # Hz per (person size / s): how fast the cut-off rises with speed
DEFAULT_D_CUTOFF = 4.0     # Hz: the cut-off of the speed estimate itself (lower: slower to react)


def _alpha(cutoff, dt: float):
    """Smoothing factor of a first-order low-pass filter with this cut-off (Hz) at time step dt (s)."""
    r = 2 * math.pi * cutoff * dt
    return r / (r + 1)


class OneEuroFilter:
    """One-Euro filter over arrays of a fixed shape (every element filtered on its own).

        f = OneEuroFilter()
        y0 = f(x0, t=0.0)              # the first sample passes through
        y1 = f(x1, t=1 / 30, scale=h)  # speed in units of `scale` per second (e.g. the box height)
    """

    def __init__(self, min_cutoff: float = DEFAULT_MIN_CUTOFF, beta: float = DEFAULT_BETA,
                 d_cutoff: float = DEFAULT_D_CUTOFF):
        if min_cutoff <= 0 or beta < 0 or d_cutoff <= 0:
            raise ValueError(f"min_cutoff and d_cutoff must be > 0 and beta >= 0, "
                             f"got {min_cutoff}, {beta}, {d_cutoff}")
        self.min_cutoff, self.beta, self.d_cutoff = float(min_cutoff), float(beta), float(d_cutoff)
        self.t: Optional[float] = None
        self.value: Optional[np.ndarray] = None   # the last filtered value
        self.speed: Optional[np.ndarray] = None   # its filtered rate of change, units per second

    def __call__(self, x, t: float, scale: float = 1.0) -> np.ndarray:
        x = np.asarray(x, np.float64)
        if self.value is None:
            self.t, self.value, self.speed = float(t), x.copy(), np.zeros_like(x)
            return x.copy()
        if x.shape != self.value.shape:
            raise ValueError(f"expected shape {self.value.shape}, got {x.shape}")
        dt = float(t) - self.t
        if not dt > 0:
            raise ValueError(f"time must increase: {t} after {self.t}")
        self.speed = self.speed + _alpha(self.d_cutoff, dt) * ((x - self.value) / dt - self.speed)
        cutoff = self.min_cutoff + self.beta * np.abs(self.speed) / max(float(scale), 1e-9)
        self.value = self.value + _alpha(cutoff, dt) * (x - self.value)
        self.t = float(t)
        return self.value.copy()


def person_size(keypoints: np.ndarray, box, score_thr: float = DRAW_KPT_THR) -> float:
    """The larger side of the box around the joints scoring above score_thr (pixels); the box's larger
    side when fewer than two joints do. keypoints [K, 3], box [4] xywh."""
    confident = keypoints[keypoints[:, 2] > score_thr, :2]
    if len(confident) >= 2:
        extent = float((confident.max(0) - confident.min(0)).max())
        if extent > 0:
            return extent
    return float(max(box[2], box[3]))


class KeypointSmoother:
    """Smooths the keypoints of tracked people over time, one filter per track id.

        tracker, smoother = PoseTracker(), KeypointSmoother()
        for i, frame in enumerate(video):
            people = smoother.update(tracker.update(predictor.predict(frame)), t=i / fps)

    Only x and y change (in place); joint scores, boxes and person scores stay as predicted. A track
    unseen for more than `max_gap` seconds starts afresh, so a returning person does not glide in
    from where they were last seen.
    """

    def __init__(self, min_cutoff: float = DEFAULT_MIN_CUTOFF, beta: float = DEFAULT_BETA,
                 d_cutoff: float = DEFAULT_D_CUTOFF, max_gap: float = 0.5):
        OneEuroFilter(min_cutoff, beta, d_cutoff)   # checks the parameters now, not on the first person
        self.params = (min_cutoff, beta, d_cutoff)
        self.max_gap = float(max_gap)
        self.filters: dict[int, OneEuroFilter] = {}

    def update(self, people: Sequence, t: float) -> list:
        """One frame's people at time t (seconds), each with a track_id -> the same list, smoothed."""
        people = list(people)
        for p in people:
            if p.track_id is None:
                raise ValueError("KeypointSmoother needs track ids: pass the people through PoseTracker.update first")
            f = self.filters.get(p.track_id)
            if f is None or t - f.t > self.max_gap:
                f = self.filters[p.track_id] = OneEuroFilter(*self.params)
            kpts = np.array(p.keypoints, np.float64)
            kpts[:, :2] = f(kpts[:, :2], t, scale=person_size(kpts, p.box))
            p.keypoints = kpts.astype(np.asarray(p.keypoints).dtype)
        self.filters = {k: f for k, f in self.filters.items() if t - f.t <= self.max_gap}
        return people


__all__ = ["OneEuroFilter", "KeypointSmoother", "person_size", "DEFAULT_MIN_CUTOFF", "DEFAULT_BETA", "DEFAULT_D_CUTOFF"]
