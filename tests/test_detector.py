"""PersonDetector against ultralytics' own predictions from the same ONNX files.

tests/data/detector/ holds two tiny random-weight YOLO detectors exported by ultralytics 8.4
(a raw-head YOLO11 and an end-to-end YOLO26) and the person boxes `YOLO(file).predict(...)` found
with each (tools/detector_fixture/make.py). Random weights: the boxes mean nothing, but they pin
letterbox, class choice, NMS and the mapping back to image pixels.
"""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from gtpt.inference.detector import PersonDetector
from gtpt.inference.io import InputError
from gtpt.inference.predictor import Predictor
from gtpt.assets import DEMO_IMAGE, DEMO_TWO_PEOPLE
from tests._inference_utils import visible_model

DATA = Path(__file__).resolve().parent / "data" / "detector"
EXPECTED = json.loads((DATA / "expected.json").read_text())
PICTURES = {"demo.jpg": DEMO_IMAGE, "demo_two_people.jpg": DEMO_TWO_PEOPLE, "odd_crop.png": DATA / "odd_crop.png"}
RAW, END2END = DATA / "yolo11_raw.onnx", DATA / "yolo26_end2end.onnx"


def _xyxy(boxes: np.ndarray) -> np.ndarray:
    return np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:4], boxes[:, 4:]], axis=1)


@pytest.mark.parametrize("model", sorted(EXPECTED["models"]))
def test_same_boxes_as_ultralytics(model):
    det = PersonDetector(DATA / model, score_thr=EXPECTED["conf"], nms_thr=EXPECTED["iou"])
    assert det.end_to_end == (model == END2END.name)
    for picture, rows in EXPECTED["models"][model].items():
        want = np.array(rows).reshape(-1, 5)
        got = _xyxy(det(PICTURES[picture]))
        assert len(want) > 0 and got.shape == want.shape, (model, picture)
        # the fixture is rounded to 1e-4; the same file run by the same onnxruntime otherwise
        np.testing.assert_allclose(got, want, atol=2e-4, rtol=0, err_msg=f"{model} {picture}")
        assert (np.diff(got[:, 4]) <= 0).all(), "best first"


def test_fixture_exercises_class_choice_and_nms():
    """Guard for the test above: on these pictures the raw head has anchors where the person
    score passes but another class wins, and NMS removes boxes, so skipping either would show."""
    det = PersonDetector(RAW, score_thr=EXPECTED["conf"], nms_thr=EXPECTED["iou"])
    x, _ = det.letterbox(cv2.imread(str(PICTURES["demo_two_people.jpg"])))
    scores = det.session.run(None, {det.input_name: x})[0][0, 4:]            # [classes, anchors]
    person_passes = scores[0] > det.score_thr
    assert (person_passes & (scores.argmax(0) != 0)).any()
    kept = len(EXPECTED["models"][RAW.name]["demo_two_people.jpg"])
    assert (person_passes & (scores.argmax(0) == 0)).sum() > kept
    # a stricter NMS keeps fewer boxes (their overlaps are not checked here: boxes are clipped to
    # the image after NMS, as ultralytics does, which changes them)
    strict = PersonDetector(RAW, score_thr=EXPECTED["conf"], nms_thr=0.3)(PICTURES["demo_two_people.jpg"])
    assert 0 < len(strict) < kept


def test_letterbox_geometry():
    """An odd-sized picture: centred, grey padding split as ultralytics does, and image points map
    to where the resized picture put them."""
    det = PersonDetector(RAW)
    img = np.full((333, 515, 3), 200, np.uint8)
    x, (sx, sy, pad_x, pad_y) = det.letterbox(img)
    assert x.shape == (1, 3, 320, 320) and x.dtype == np.float32
    new_h = 207                                           # 333 * 320 / 515 = 206.9; padding 113 = 56 + 57
    assert (sx, pad_x) == (320 / 515, 0) and (sy, pad_y) == (new_h / 333, 56)
    col = x[0, 0, :, 160] * 255
    assert np.allclose(col[:pad_y], 114) and np.allclose(col[pad_y:pad_y + new_h], 200)
    assert np.allclose(col[pad_y + new_h:], 114)


def test_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.onnx"):
        PersonDetector(tmp_path / "nothing.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model at all")
    with pytest.raises(InputError, match="junk.onnx.*cannot load"):
        PersonDetector(junk)
    # a GTPT export is a valid ONNX file but not a detector (two outputs)
    from gtpt.export import export_onnx
    pose = tmp_path / "pose.onnx"
    export_onnx(visible_model(), pose, verify=False, verbose=False)
    with pytest.raises(InputError, match="pose.onnx.*one output"):
        PersonDetector(pose)
    with pytest.raises(ValueError, match="score_thr"):
        PersonDetector(RAW, score_thr=1.5)


def test_predictor_finds_people_with_the_detector():
    det = PersonDetector(RAW, score_thr=0.7)
    boxes = det(PICTURES["demo_two_people.jpg"])
    assert 1 < len(boxes) < 20
    pred = Predictor(visible_model(), detector=det, flip_test=False)
    people = pred.predict(PICTURES["demo_two_people.jpg"])
    assert len(people) == len(boxes)
    np.testing.assert_allclose(np.stack([p.box for p in people]), boxes[:, :4])
    assert [p.box_score for p in people] == pytest.approx(boxes[:, 4].tolist())
    # the same people as with the boxes given by hand; given boxes win over the detector
    by_hand = Predictor(visible_model(), flip_test=False).predict(PICTURES["demo_two_people.jpg"], boxes)
    for a, b in zip(people, by_hand):
        np.testing.assert_allclose(a.keypoints, b.keypoints)
    assert len(pred.predict(PICTURES["demo_two_people.jpg"], boxes[:1])) == 1
    assert pred.predict(PICTURES["demo_two_people.jpg"], []) == []
    # a path works too, and the class is public API
    assert "yolo11_raw.onnx" in repr(Predictor(visible_model(), detector=RAW))
    import gtpt
    assert gtpt.PersonDetector is PersonDetector


def test_metadata_names_the_person_class_and_the_size(tmp_path):
    """ultralytics' metadata: the class named "person" is used, and an export with symbolic H, W
    runs at the size in 'imgsz' (here the same boxes as the fixed-size file)."""
    import onnx
    proto = onnx.load(str(RAW))
    meta = {p.key: p for p in proto.metadata_props}
    meta["names"].value = "{0: 'car', 1: 'person', 2: 'dog'}"
    for d in proto.graph.input[0].type.tensor_type.shape.dim[2:]:
        d.dim_param = "size"
    dynamic = tmp_path / "dynamic.onnx"
    onnx.save(proto, str(dynamic))
    det = PersonDetector(dynamic)
    assert det.person_class == 1 and det.input_size == (320, 320)
    picture = PICTURES["demo_two_people.jpg"]
    assert np.array_equal(det(picture), PersonDetector(RAW, person_class=1)(picture))
    assert not np.array_equal(det(picture)[:, :4], PersonDetector(RAW)(picture)[:, :4])
    meta["task"].value = "pose"
    onnx.save(proto, str(tmp_path / "pose.onnx"))
    with pytest.raises(InputError, match="pose.onnx.*'pose' model"):
        PersonDetector(tmp_path / "pose.onnx")
