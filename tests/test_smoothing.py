"""Keypoint smoothing across video frames: the One-Euro filter and the per-track smoother."""
from __future__ import annotations

import copy
import math

import numpy as np
import pytest

from gtpt.inference.person import Person
from gtpt.inference.smoothing import KeypointSmoother, OneEuroFilter, person_size


def lowpass_factor(cutoff_hz, dt):
    """The exponential smoothing factor written the other way round: 1 / (1 + tau / dt), tau = 1 / (2 pi fc)."""
    tau = 1.0 / (2 * math.pi * cutoff_hz)
    return 1.0 / (1.0 + tau / dt)


def test_one_euro_follows_its_definition():
    f = OneEuroFilter(min_cutoff=1.5, beta=0.8, d_cutoff=2.0)
    xs, ts = [2.0, 3.0, 2.5, 4.0], [0.0, 0.1, 0.25, 0.3]
    got = [float(f(np.array([x]), t)[0]) for x, t in zip(xs, ts)]
    # by hand: the first sample passes; then the speed is low-passed at d_cutoff and sets the cut-off
    want, value, speed = [xs[0]], xs[0], 0.0
    for x, dt in zip(xs[1:], np.diff(ts)):
        speed += lowpass_factor(2.0, dt) * ((x - value) / dt - speed)
        value += lowpass_factor(1.5 + 0.8 * abs(speed), dt) * (x - value)
        want.append(value)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert got[1] != xs[1] and got[1] != xs[0]


def test_still_joints_lose_jitter_and_moving_ones_keep_up():
    fps, rng = 30.0, np.random.default_rng(0)
    t = np.arange(300) / fps
    noisy = 0.5 + rng.normal(scale=0.01, size=(300, 20))
    f = OneEuroFilter()
    smooth = np.stack([f(x, ti) for x, ti in zip(noisy, t)])
    assert np.sqrt(np.mean((smooth[30:] - 0.5) ** 2)) < 0.7 * 0.01     # jitter of a still joint down by > 30 %

    # a joint moving steadily at 2 person sizes per second: the adaptive cut-off keeps the lag small,
    # where a fixed one (beta 0) trails by v / (2 pi fc)
    path = 2.0 * t
    lag = {}
    for beta in (0.0, 16.0):
        f = OneEuroFilter(min_cutoff=1.0, beta=beta)
        lag[beta] = path[-1] - [f(np.array([x]), ti) for x, ti in zip(path, t)][-1][0]
    assert lag[0.0] == pytest.approx(2.0 / (2 * math.pi), rel=1e-3)   # steady state: v dt / (2 pi fc dt)
    assert 0 < lag[16.0] < 0.1 * lag[0.0]


def test_filter_rejects_bad_settings_and_time():
    with pytest.raises(ValueError, match="min_cutoff"):
        OneEuroFilter(min_cutoff=0)
    with pytest.raises(ValueError, match="beta"):
        KeypointSmoother(beta=-1)
    f = OneEuroFilter()
    f(np.zeros(3), 1.0)
    with pytest.raises(ValueError, match="time must increase"):
        f(np.zeros(3), 1.0)
    with pytest.raises(ValueError, match="expected shape"):
        f(np.zeros(4), 2.0)


def walking_person(frame: int, scale: float, track_id: int, rng) -> Person:
    """17 joints of a person `scale` px tall, drifting right, with per-frame noise."""
    base = np.stack([np.linspace(0.3, 0.7, 17), np.linspace(0.0, 1.0, 17)], 1) * scale
    xy = base + [frame * 0.02 * scale, 0] + rng.normal(scale=0.01 * scale, size=(17, 2))
    kpts = np.concatenate([xy, rng.uniform(0.05, 0.2, (17, 1))], 1).astype(np.float32)
    box = np.array([xy[:, 0].min(), xy[:, 1].min(), np.ptp(xy[:, 0]), np.ptp(xy[:, 1])])
    return Person(box=box, box_score=0.9, keypoints=kpts, score=0.5, track_id=track_id)


def test_smoothing_does_not_depend_on_the_person_size():
    """The same motion seen at three times the size gives three times the smoothed coordinates."""
    small, large = KeypointSmoother(), KeypointSmoother()
    for i in range(12):
        a = walking_person(i, 100.0, 0, np.random.default_rng(i))
        b = walking_person(i, 300.0, 0, np.random.default_rng(i))
        sa, sb = small.update([a], i / 25)[0], large.update([b], i / 25)[0]
        np.testing.assert_allclose(sb.keypoints[:, :2], 3 * sa.keypoints[:, :2], rtol=1e-5)
    assert np.abs(sa.keypoints[:, :2] - walking_person(11, 100.0, 0, np.random.default_rng(11)).keypoints[:, :2]).max() > 0.1


def test_smoother_keeps_tracks_apart_and_restarts_after_a_gap():
    rng = np.random.default_rng(0)
    frames = [[walking_person(i, 120.0, 0, rng), walking_person(i, 200.0, 1, rng)] for i in range(8)]
    together = KeypointSmoother()
    apart = {0: KeypointSmoother(), 1: KeypointSmoother()}
    for i, people in enumerate(frames):
        raw = copy.deepcopy(people)
        order = people[::-1] if i % 2 else people                 # the order within a frame does not matter
        out = together.update(copy.deepcopy(order), i / 30)
        for p in out:
            alone = apart[p.track_id].update([copy.deepcopy(next(q for q in people if q.track_id == p.track_id))], i / 30)
            np.testing.assert_array_equal(p.keypoints, alone[0].keypoints)
            original = next(q for q in raw if q.track_id == p.track_id)
            np.testing.assert_array_equal(p.keypoints[:, 2], original.keypoints[:, 2])   # scores untouched
            np.testing.assert_array_equal(p.box, original.box)
            assert p.keypoints.dtype == original.keypoints.dtype
    assert set(together.filters) == {0, 1}

    # track 0 comes back after more than max_gap seconds: it starts afresh (its raw joints, no glide)
    back = walking_person(40, 120.0, 0, rng)
    raw = back.keypoints.copy()
    out = together.update([back], 40 / 30)
    np.testing.assert_array_equal(out[0].keypoints, raw)
    assert set(together.filters) == {0}                            # track 1 was forgotten

    with pytest.raises(ValueError, match="PoseTracker"):
        together.update([walking_person(41, 120.0, None, rng)], 41 / 30)


def test_person_size_uses_confident_joints():
    kpts = np.array([[10, 20, 0.5], [40, 120, 0.5], [500, 500, 0.001]], np.float32)
    assert person_size(kpts, [0, 0, 640, 480]) == 100.0            # the unsure joint is left out
    kpts[1, 2] = 0.0
    assert person_size(kpts, [0, 0, 640, 480]) == 640.0            # too few confident joints: the box
