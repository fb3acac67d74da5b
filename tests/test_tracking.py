"""PoseTracker: the same person keeps one id across frames (greedy box-IoU matching)."""
from __future__ import annotations

import numpy as np
import pytest

from gtpt.inference.person import Person
from gtpt.inference.tracking import KEYPOINT_BOX_MARGIN, PoseTracker, box_iou, follow_boxes, keypoint_box


def _person(x, y, w=40, h=100, score=0.5):
    return Person(box=np.array([x, y, w, h], float), box_score=1.0, keypoints=np.zeros((17, 3)), score=score)


def test_box_iou():
    a = np.array([[0, 0, 10, 10], [100, 100, 5, 5]])
    b = np.array([[0, 0, 10, 10], [5, 0, 10, 10], [50, 50, 10, 10], [0, 0, 0, 0]])
    np.testing.assert_allclose(box_iou(a, b), [[1, 50 / 150, 0, 0], [0, 0, 0, 0]])


def test_ids_follow_people_whatever_their_order_in_the_frame():
    tracker = PoseTracker()
    seen = {}
    rng = np.random.default_rng(0)
    for t in range(8):   # three people walking: right, left, standing
        people = [_person(10 + 6 * t, 0, score=0.9), _person(300 - 6 * t, 0, score=0.5), _person(150, 50, score=0.7)]
        order = rng.permutation(3)
        tracked = tracker.update([people[i] for i in order])
        assert sorted(p.track_id for p in tracked) == [0, 1, 2]
        for who, p in enumerate(people):
            assert seen.setdefault(who, p.track_id) == p.track_id, f"frame {t}: person {who} changed id"
    assert seen == {0: 0, 1: 2, 2: 1}   # first frame: new ids by descending score


def test_a_person_who_leaves_keeps_the_id_for_max_age_frames():
    tracker = PoseTracker(max_age=2)
    assert tracker.update([_person(0, 0)])[0].track_id == 0
    tracker.update([])
    tracker.update([])
    assert tracker.update([_person(3, 0)])[0].track_id == 0           # away 2 frames: same person
    for _ in range(3):
        tracker.update([])
    assert tracker.update([_person(3, 0)])[0].track_id == 1           # away 3 frames: new track


def test_one_track_per_person_and_no_match_below_the_threshold():
    tracker = PoseTracker(iou_thr=0.5)
    tracker.update([_person(0, 0)])
    # two candidates for track 0: the better overlap takes it, the other starts a new track
    a, b = tracker.update([_person(30, 0), _person(5, 0)])
    assert (a.track_id, b.track_id) == (1, 0)
    far = tracker.update([_person(5 + 25, 0)])[0]                      # IoU with track 0 = 15/65 < 0.5
    assert far.track_id == 1                                           # but it matches track 1 exactly
    assert tracker.update([_person(500, 0)])[0].track_id == 2
    with pytest.raises(ValueError):
        PoseTracker(iou_thr=0)


def test_track_id_in_coco_output():
    p = _person(0, 0)
    assert "track_id" not in p.to_coco()
    p.track_id = 3
    assert p.to_coco()["track_id"] == 3


def test_keypoint_box_spans_the_sure_joints():
    kpts = np.array([[10, 20, 0.5], [30, 80, 0.5], [20, 50, 0.2], [500, 500, 0.005]], np.float64)   # last: unsure
    np.testing.assert_allclose(keypoint_box(kpts, 0.01, margin=1.0), [10, 20, 20, 60])
    grown = keypoint_box(kpts)   # about the same centre, 1.3x the size; joints above 0.02 (as drawn)
    np.testing.assert_allclose(grown, [20 - 13, 50 - 39, 26, 78])
    assert KEYPOINT_BOX_MARGIN == 1.3
    assert keypoint_box(kpts, 0.3) is None   # two sure joints are not enough to follow a person


def test_follow_boxes_keep_the_detection_score_and_drop_lost_people():
    sure = np.array([[10, 20, 0.5], [30, 80, 0.5], [20, 50, 0.2]], np.float64)
    lost = sure * [1, 1, 0.01]
    people = [Person(box=np.zeros(4), box_score=s, keypoints=k, score=0.5) for s, k in ((0.9, sure), (0.8, lost),
                                                                                        (0.7, sure + [100, 0, 0]))]
    np.testing.assert_allclose(follow_boxes(people, margin=1.0), [[10, 20, 20, 60, 0.9], [110, 20, 20, 60, 0.7]])
    assert follow_boxes([]).shape == (0, 5) and follow_boxes(people[1:2]).shape == (0, 5)
