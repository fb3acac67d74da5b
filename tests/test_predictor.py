"""Predictor: input kinds, boxes, batching, the validation pipeline, whole-body."""
from __future__ import annotations

import warnings

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from tests._inference_utils import person_image, visible_model, write_clip, write_jpg
from tests.helpers import TINY_YOLO
from gtpt.codec import SimCCCodec
from gtpt.inference.crops import box_to_crop, make_input
from gtpt.inference.io import InputError
from gtpt.inference.predictor import Predictor
from gtpt.keypoints import get_keypoint_spec


@pytest.fixture(scope="module")
def predictor():
    return Predictor(visible_model("gtpt-t-body"))


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    """(path of a real jpg, the BGR pixels OpenCV reads back from it)."""
    path = write_jpg(tmp_path_factory.mktemp("img") / "person.jpg", person_image())
    return path, cv2.imread(str(path))


def _box(img):
    h, w = img.shape[:2]
    return [0.3 * w, 0.08 * h, 0.4 * w, 0.85 * h, 0.9]


def test_input_kinds_give_the_same_people(predictor, photo):
    path, bgr = photo
    box = _box(bgr)
    ref = predictor.predict(path, [box])
    assert len(ref) == 1 and ref[0].keypoints.shape == (17, 3)
    for other in (predictor.predict(bgr, [box]),
                  predictor.predict(np.ascontiguousarray(bgr[..., ::-1]), [box], rgb=True),
                  predictor.predict(Image.open(path), [box])):
        np.testing.assert_array_equal(other[0].keypoints, ref[0].keypoints)
    # RGB pixels passed as BGR are a different picture: the logits must change
    swapped = predictor.predict(np.ascontiguousarray(bgr[..., ::-1]), [box])
    assert not np.array_equal(swapped[0].keypoints[:, 2], ref[0].keypoints[:, 2])


def test_pipeline_matches_manual_flip_test(predictor, photo):
    """crop -> net(x), net(flip x) -> flip-back with shift -> decode -> back-projection."""
    _, img = photo
    box = _box(img)
    center, scale = box_to_crop(box[:4], img.shape[1], img.shape[0])
    x = torch.from_numpy(make_input(img, center, scale)[None])
    with torch.no_grad():
        lx, ly = predictor.model(x)
        fx, fy = predictor.model(x.flip(3))
    codec = SimCCCodec()
    mx, my = codec.merge_flip(lx, ly, fx, fy, get_keypoint_spec(17).flip_index(), shift=True)
    coords, scores = codec.decode(mx, my)
    xy = codec.to_image(coords[0].double().numpy(), center.astype(np.float64), scale.astype(np.float64))
    got = predictor.predict(img, [box])[0]
    np.testing.assert_allclose(got.keypoints[:, :2], xy, atol=1e-6)
    np.testing.assert_allclose(got.keypoints[:, 2], scores[0].numpy(), atol=1e-6)
    # instance score: box score x mean of the joint scores above 0.01
    s = got.keypoints[:, 2]
    assert got.score == pytest.approx(0.9 * s[s > 0.01].mean() if (s > 0.01).any() else 0.0)
    # keypoints lie inside the padded crop around the box
    half = np.array([96, 128]) * scale[0] * 200 / 192
    assert np.all(np.abs(got.keypoints[:, :2] - center) <= half + 1e-6)


def test_no_boxes_means_whole_image(predictor, photo):
    _, img = photo
    h, w = img.shape[:2]
    whole = predictor.predict(img)
    assert len(whole) == 1 and whole[0].box_score == 1.0
    np.testing.assert_array_equal(whole[0].box, [0, 0, w, h])
    explicit = predictor.predict(img, [[0, 0, w, h]])
    np.testing.assert_array_equal(whole[0].keypoints, explicit[0].keypoints)
    boxed = predictor.predict(img, [_box(img)])
    assert not np.allclose(boxed[0].keypoints, whole[0].keypoints)
    assert predictor.predict(img, np.zeros((0, 4))) == []


def test_batching_equals_one_by_one(photo):
    _, img = photo
    small = Predictor(visible_model("gtpt-t-body"), batch_size=2)  # chunks cross image borders
    other = cv2.flip(img, 1)
    boxes = [[_box(img), [10, 10, 120, 200, 0.5]], [[40, 20, 150, 260]]]
    batched = small.predict_batch([img, other], boxes)
    assert [len(b) for b in batched] == [2, 1]
    t = small.times   # where the time went: counted per image and person, every stage timed
    assert (t.images, t.people, t.detect) == (2, 3, 0.0) and min(t.preprocess, t.inference, t.postprocess) > 0
    assert t.inference > t.postprocess and "(3 people, 2 images)" in t.summary() and "detector" not in t.summary()
    t.reset()
    assert (t.images, t.people, t.inference) == (0, 0, 0.0)
    for image, bx, people in zip([img, other], boxes, batched):
        for box, person in zip(bx, people):
            single = small.predict(image, [box])[0]
            np.testing.assert_allclose(person.keypoints[:, :2], single.keypoints[:, :2], atol=1e-4)
            np.testing.assert_allclose(person.keypoints[:, 2], single.keypoints[:, 2], atol=1e-5)
            np.testing.assert_array_equal(person.box, box[:4])


def test_wholebody_gives_133_joints(photo):
    _, img = photo
    people = Predictor(visible_model("gtpt-t-wholebody")).predict(img, [_box(img)])
    kp = people[0].keypoints
    assert kp.shape == (133, 3)
    assert np.all((kp[:, 2] >= 0) & (kp[:, 2] <= 1)) and np.isfinite(kp).all()


def test_kept_patches_are_nested(predictor, photo):
    _, img = photo
    t = predictor.kept_patches(img, _box(img))
    assert t["after_block3"].shape == (179,)
    assert [len(g) for g in t["group_entry"]] == [76, 76, 76]
    assert [len(g) for g in t["after_group_block3"]] == [25, 25, 25]
    for g in range(3):
        assert set(t["group_entry"][g]) <= set(t["after_block3"])
        assert set(t["after_group_block3"][g]) <= set(t["group_entry"][g])


def test_bad_inputs_say_what_is_wrong(predictor, tmp_path):
    with pytest.raises(InputError, match="missing.jpg: no such file"):
        predictor.predict(tmp_path / "missing.jpg")
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(InputError, match="broken.jpg: cannot decode"):
        predictor.predict(bad)
    with pytest.raises(InputError, match="uint8"):
        predictor.predict(np.zeros((50, 50, 3), np.float32))
    with pytest.raises(ValueError, match=r"\[N, 4\]"):
        predictor.predict(np.zeros((50, 50, 3), np.uint8), np.zeros((2, 3)))
    with pytest.warns(UserWarning, match=r"^image 0: box \[100.0, 100.0, 10.0, 10.0\] lies outside the 50x50"):
        assert predictor.predict(np.zeros((50, 50, 3), np.uint8), [[100, 100, 10, 10]]) == []
    small = write_jpg(tmp_path / "small.jpg", np.zeros((50, 50, 3), np.uint8))
    with pytest.warns(UserWarning, match=r"small\.jpg: box .* lies outside"):   # a path names the file
        assert predictor.predict(small, [[100, 100, 10, 10]]) == []


def test_untrained_preset_warns_loudly():
    with pytest.warns(UserWarning, match="UNTRAINED"):
        Predictor("gtpt-t-body")
    with pytest.raises(FileNotFoundError, match="not a preset name"):
        Predictor("no-such-model")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match="keep rates"):
            Predictor("gtpt-t-body", keep_rates=(1.0, 0.7, 0.0, 0.1))


@pytest.mark.skipif(torch.cuda.is_available(), reason="the messages for machines without CUDA")
def test_unusable_devices_are_named(tmp_path, photo):
    model = visible_model()
    with pytest.raises(ValueError, match=r"device 'cuda': this PyTorch \(.*\) sees no CUDA device"):
        Predictor(model, device="cuda")
    with pytest.raises(ValueError, match="device 'gpu': Expected one of cpu, cuda"):
        Predictor(model, device="gpu")
    import onnxruntime
    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        onnx_file = Predictor(model, backend="onnxruntime", cache_dir=tmp_path).onnx_path
        with pytest.warns(UserWarning, match="no CUDA provider .pip install onnxruntime-gpu.; running on the CPU"):
            pred = Predictor(onnx_file, device="cuda")
        assert len(pred.predict(photo[0])) == 1    # and it does run


def test_det_interval_follows_people_by_their_joints(tmp_path):
    """det_interval=3: the detector runs on frames 0, 3, 6; in between, each person's box is the one
    around their joints in the frame before."""

    from gtpt.assets import DEMO_TWO_PEOPLE, DEMO_WEIGHTS
    from gtpt.inference.detector import PersonDetector
    from gtpt.inference.tracking import keypoint_box

    class CountedDetector(PersonDetector):   # the real detector, its runs counted
        runs = 0

        def __call__(self, image):
            self.runs += 1
            return super().__call__(image)

    yolo = TINY_YOLO
    img = cv2.imread(str(DEMO_TWO_PEOPLE))
    clip = write_clip(tmp_path / "clip.mp4", cv2.resize(img, (320, img.shape[0] * 320 // img.shape[1])),
                      frames=7, shift=6, fps=10.0)
    detector = CountedDetector(yolo, score_thr=0.95)   # two (random) people
    pred = Predictor(str(DEMO_WEIGHTS), detector=detector, flip_test=False)
    frames = list(pred.predict_video(clip, det_interval=3))
    assert detector.runs == 3 and all(f.people for f in frames)
    for before, f in zip(frames, frames[1:]):
        if f.index % 3 == 0:    # detected: the detector's own boxes
            np.testing.assert_allclose([p.box for p in f.people], detector(f.image)[:, :4])
        else:                   # followed: the boxes around the joints of the frame before, in order
            want = [keypoint_box(p.keypoints) for p in before.people]
            np.testing.assert_allclose([p.box for p in f.people], [b for b in want if b is not None])
            assert [p.box_score for p in f.people] == [p.box_score for p, b in zip(before.people, want)
                                                        if b is not None]   # the detection's score carries over
    detector.runs = 0
    assert len(list(pred.predict_video(clip))) == 7 and detector.runs == 7   # the default: every frame
    for bad in (0, 2.5):
        with pytest.raises(ValueError, match="det_interval must be a whole number >= 1"):
            next(pred.predict_video(clip, det_interval=bad))


def test_bf16_precision_keeps_confident_joints(photo):
    from gtpt.commands._weights import DEMO_WEIGHTS
    from gtpt.inference.draw import DRAW_KPT_THR
    path, bgr = photo
    box = _box(bgr)
    fp32 = Predictor(str(DEMO_WEIGHTS)).predict(path, [box])[0].keypoints
    bf16_predictor = Predictor(str(DEMO_WEIGHTS), precision="bf16")
    assert "precision=bf16" in repr(bf16_predictor)
    bf16 = bf16_predictor.predict(path, [box])[0].keypoints
    assert not np.array_equal(fp32[:, 2], bf16[:, 2])          # bf16 did run: the scores moved
    confident = fp32[:, 2] > DRAW_KPT_THR
    assert confident.sum() >= 8
    # a few SimCC bins at most (one bin is 1.2 px of this photo; measured up to 3.5 px): a wrong bf16
    # path would move joints by tens of pixels
    assert np.abs(fp32[confident, :2] - bf16[confident, :2]).max() <= 6.0
    with pytest.raises(ValueError, match="precision must be one of"):
        Predictor(str(DEMO_WEIGHTS), precision="fp16")
    with pytest.raises(ValueError, match="needs backend='torch'"):
        Predictor(str(DEMO_WEIGHTS), backend="onnxruntime", precision="bf16")


def test_predict_video_tracks_and_smooths(predictor, tmp_path):
    """predict_video = VideoReader + predict + PoseTracker (+ KeypointSmoother), frame by frame."""
    from gtpt.inference.smoothing import KeypointSmoother
    from gtpt.inference.tracking import PoseTracker
    from gtpt.inference.video import VideoReader
    clip = write_clip(tmp_path / "clip.mp4", cv2.resize(person_image(), (160, 213)), frames=5, shift=3, fps=8.0)
    with VideoReader(clip) as reader:
        decoded = list(reader)
    tracker, smoother = PoseTracker(), KeypointSmoother()
    want = [smoother.update(tracker.update(predictor.predict(f)), i / 8.0) for i, f in enumerate(decoded)]

    got = list(predictor.predict_video(clip, smooth=True, frames_per_step=2))   # steps cross the end
    assert [f.index for f in got] == [0, 1, 2, 3, 4] and [f.time for f in got] == [i / 8.0 for i in range(5)]
    for f, people, frame in zip(got, want, decoded):
        np.testing.assert_array_equal(f.image, frame)
        assert [p.track_id for p in f.people] == [p.track_id for p in people] == [0]
        np.testing.assert_allclose(f.people[0].keypoints, people[0].keypoints, atol=1e-4)
    raw = list(predictor.predict_video(clip))                                   # no smoothing
    np.testing.assert_allclose(raw[0].people[0].keypoints, got[0].people[0].keypoints, atol=1e-4)
    assert np.abs(raw[-1].people[0].keypoints[:, :2] - got[-1].people[0].keypoints[:, :2]).max() > 0.01

    with VideoReader(clip) as reader:    # an open reader is read, not closed
        assert len(list(predictor.predict_video(reader, frames_per_step=3))) == 5
        assert reader._cap.isOpened()
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\0" * 1000)
    with pytest.raises(InputError, match="bad.mp4"):
        next(predictor.predict_video(bad))
