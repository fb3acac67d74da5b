"""Drawing: skeleton pixels where the joints are, and the three-panel pruning picture."""
from __future__ import annotations

import numpy as np

from gtpt.inference.draw import _level_colours, draw_poses, draw_pruning, pruning_panels
from gtpt.inference.person import Person
from gtpt.inference.predictor import Predictor
from gtpt.keypoints import PART_COLOURS
from tests._inference_utils import person_image, visible_model

# a standing person in a 200x300 picture (x, y) for the 17 COCO joints
BODY = np.array([[100, 40], [106, 34], [94, 34], [112, 38], [88, 38], [124, 70], [76, 70], [134, 110],
                 [66, 110], [140, 150], [60, 150], [115, 160], [85, 160], [118, 215], [82, 215],
                 [120, 270], [80, 270]], np.float64)


def _person(scores) -> Person:
    kp = np.concatenate([BODY, np.asarray(scores, np.float64)[:, None]], axis=1)
    return Person(box=np.array([50.0, 20, 100, 260]), box_score=1.0, keypoints=kp, score=0.9)


def test_joints_are_drawn_in_their_part_colour():
    canvas = np.full((300, 200, 3), 128, np.uint8)
    scores = np.full(17, 0.9)
    scores[16] = 0.1                                       # right ankle: below the threshold
    out = draw_poses(canvas, [_person(scores)], kpt_thr=0.3)
    assert np.array_equal(canvas, np.full((300, 200, 3), 128, np.uint8))   # input untouched
    rgb = PART_COLOURS["left_arm"]
    assert tuple(out[150, 140]) == (rgb[2], rgb[1], rgb[0])                  # left wrist dot, BGR
    rgb = PART_COLOURS["head"]
    assert tuple(out[40, 100]) == (rgb[2], rgb[1], rgb[0])                   # nose
    assert tuple(out[270, 80]) == (128, 128, 128)                            # low-score joint: not drawn
    assert tuple(out[5, 5]) == (128, 128, 128)                               # far from everything
    mid = ((BODY[13] + BODY[11]) / 2).astype(int)                            # on the left thigh link
    assert tuple(out[mid[1], mid[0]]) != (128, 128, 128)
    assert np.any(out[20, 50:150] != 128)                                    # box top edge


def test_wholebody_pose_draws_hands_and_face():
    canvas = np.zeros((300, 200, 3), np.uint8)
    kp = np.zeros((133, 3))
    kp[:, :2] = [100, 150]
    kp[91:112, :2] = np.stack([np.linspace(30, 60, 21), np.full(21, 100)], 1)   # left hand: a row
    kp[91:112, 2] = 0.9
    out = draw_poses(canvas, [Person(np.array([0.0, 0, 200, 300]), 1.0, kp, 0.5)], draw_boxes=False)
    assert out[100, 30:61].any(axis=1).all() and not out[150, 100].any()


def test_pruning_panels_follow_the_trace():
    """Group 0 keeps the top rows to the end, group 2 the bottom rows: the last-stage colour
    shows up where each group's kept patches are, mapped through the inverse crop."""
    image = np.full((256, 192, 3), 200, np.uint8)
    trace = {"after_block3": np.arange(256),
             "group_entry": [np.arange(0, 128), np.arange(64, 192), np.arange(128, 256)],
             "after_group_block3": [np.arange(0, 32), np.arange(96, 128), np.arange(224, 256)]}
    panels = pruning_panels(image, [0, 0, 192, 256], trace, panel_height=256)
    assert len(panels) == 3
    top = np.array(_level_colours(3)[-1], np.float64)      # "kept to the end"

    def closeness(panel, rows):
        body = panel[28:].astype(np.float64)               # below the title bar
        band = body[rows]
        return -np.abs(band - (0.45 * 200 + 0.55 * top)).sum(-1).mean()

    n = panels[0].shape[0] - 28
    upper, lower = slice(int(0.15 * n), int(0.2 * n)), slice(int(0.8 * n), int(0.85 * n))
    assert closeness(panels[0], upper) > closeness(panels[0], lower) + 50
    assert closeness(panels[2], lower) > closeness(panels[2], upper) + 50
    assert not np.array_equal(panels[0], panels[1])

    picture = draw_pruning(image, [0, 0, 192, 256], trace, panel_height=256)
    assert picture.shape[0] == panels[0].shape[0] + 34      # panels + legend strip
    assert picture.shape[1] >= sum(p.shape[1] for p in panels) + 2 * 6


def test_pruning_picture_from_a_real_trace(tmp_path):
    import cv2
    img = person_image()
    h, w = img.shape[:2]
    box = [0.3 * w, 0.08 * h, 0.4 * w, 0.85 * h]
    pred = Predictor(visible_model("gtpt-t-body"))
    trace = pred.kept_patches(img, box)
    person = pred.predict(img, [box])[0]
    panels = pruning_panels(img, box, trace, keypoints=person.keypoints)
    assert len(panels) == 3 and len({p.tobytes() for p in panels}) == 3
    picture = draw_pruning(img, box, trace, keypoints=person.keypoints)
    assert cv2.imwrite(str(tmp_path / "pruning.png"), picture)
    # three panels side by side (6 px gaps), a 34 px legend below
    assert picture.shape[0] == panels[0].shape[0] + 34
    assert picture.shape[1] >= sum(p.shape[1] for p in panels) + 2 * 6
