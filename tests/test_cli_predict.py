"""`gtpt predict`, `gtpt demo`, `gtpt bench` and every verb's --help, on real files."""
from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from gtpt.assets import DEMO_IMAGE, DEMO_TWO_PEOPLE
from gtpt.cli import VERBS, main
from gtpt.commands._weights import DEMO_WEIGHTS
from gtpt.models import build_model
from gtpt.models.checkpoint import save_model
from tests._inference_utils import count_frames, interrupt_gtpt, person_image, write_clip, write_jpg
from tests.helpers import TINY_YOLO

MY_VERBS = ("predict", "export", "bench", "demo")
YOLO = TINY_YOLO


@pytest.fixture
def gtpt(monkeypatch, capsys):
    """Run `gtpt ARGS...` in-process -> (exit code, stdout, stderr)."""
    def run(*argv):
        monkeypatch.setattr(sys, "argv", ["gtpt"])
        rc = main([str(a) for a in argv])
        out = capsys.readouterr()
        return rc, out.out, out.err
    return run


def _small(img, width=160):
    return cv2.resize(img, (width, int(img.shape[0] * width / img.shape[1])))


def test_folder_with_bad_files(tmp_path):
    """The real console entry point: good images processed, bad ones named, exit 0."""
    src = tmp_path / "in"
    src.mkdir()
    img = _small(person_image())
    write_jpg(src / "a.jpg", img)
    assert cv2.imwrite(str(src / "b.png"), cv2.flip(img, 1))
    (src / "notes.txt").write_text("not a picture")
    (src / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF" + bytes(200))
    (src / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(100))   # no moov atom
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "gtpt", "predict", str(src), "--out", str(out), "--no-flip"],
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr
    assert "notes.txt" in proc.stderr and "not an image or video" in proc.stderr
    assert "corrupt.jpg" in proc.stderr and "cannot decode" in proc.stderr
    assert "broken.mp4: cannot open as a video" in proc.stderr
    assert "moov atom" not in proc.stderr   # FFmpeg's own log lines stay out of the user's way
    assert "weights:" in proc.stdout
    if not DEMO_WEIGHTS.is_file():
        assert "UNTRAINED" in proc.stdout
    preds = json.loads((out / "predictions.json").read_text())
    assert sorted(p["file_name"] for p in preds) == ["a.jpg", "b.png"]
    for p in preds:
        assert p["category_id"] == 1 and len(p["keypoints"]) == 51 and len(p["bbox"]) == 4
        assert isinstance(p["image_id"], int) and 0 <= p["score"] <= 1
    for name in ("a", "b"):
        drawn = cv2.imread(str(out / f"{name}.jpg"))
        assert drawn is not None and drawn.shape == img.shape
    assert not (out / "corrupt.jpg").exists()


def test_ctrl_c_keeps_the_images_done(tmp_path):
    """Ctrl-C in the middle of a folder: predictions.json is still written, for the images done."""
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    img = _small(person_image(), 96)
    for i in range(400):
        write_jpg(src / f"img_{i:03d}.jpg", np.roll(img, i, axis=1))
    code, stdout, stderr = interrupt_gtpt(["predict", str(src), "--out", str(out), "--no-flip"],
                                          started=lambda: out.is_dir() and any(out.glob("img_*.jpg")))
    assert code == 130, stderr[-2000:]
    assert "stopped by Ctrl-C" in stderr
    preds = json.loads((out / "predictions.json").read_text())
    in_json = {p["file_name"] for p in preds}
    drawn = {p.name for p in out.glob("img_*.jpg")}
    assert len(preds) == len(in_json) and 0 < len(in_json) < 400   # one person (the whole image) each
    # a picture is written just before its json entry: Ctrl-C between the two leaves one picture over
    assert in_json <= drawn and len(drawn - in_json) <= 1
    assert f"{len(in_json)} image(s), {len(in_json)} person(s)" in stdout
    assert not (out / "predictions.partial.jsonl").exists()   # folded into predictions.json


def test_warnings_read_as_messages(tmp_path):
    """The console shows warnings as `gtpt <verb>: warning: ...`, not as Python source locations."""
    write_jpg(tmp_path / "000000000042.jpg", _small(person_image(), 200))
    dets = [{"image_id": 42, "category_id": 1, "bbox": [900, 900, 50, 50], "score": 0.8}]
    (tmp_path / "dets.json").write_text(json.dumps(dets))
    proc = subprocess.run([sys.executable, "-m", "gtpt", "predict", str(tmp_path / "000000000042.jpg"), "--boxes",
                           str(tmp_path / "dets.json"), "--out", str(tmp_path / "out"), "--no-flip"],
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr
    assert f"gtpt predict: warning: {tmp_path / '000000000042.jpg'}: box [900.0, 900.0, 50.0, 50.0] lies outside" \
        in proc.stderr
    assert "UserWarning" not in proc.stderr and "warnings.warn" not in proc.stderr


def test_boxes_json_matching_and_not(tmp_path, gtpt):
    img = _small(person_image(), 200)
    write_jpg(tmp_path / "000000000042.jpg", img)
    write_jpg(tmp_path / "000000000043.jpg", img)
    dets = [{"image_id": 42, "category_id": 1, "bbox": [20, 10, 100, 120], "score": 0.8},
            {"image_id": 42, "category_id": 1, "bbox": [60, 20, 80, 100], "score": 0.6},
            {"image_id": 42, "category_id": 3, "bbox": [0, 0, 50, 50], "score": 0.9}]   # a car: ignored
    (tmp_path / "dets.json").write_text(json.dumps(dets))
    out = tmp_path / "out"
    rc, _, err = gtpt("predict", tmp_path / "000000000042.jpg", tmp_path / "000000000043.jpg",
                      "--boxes", tmp_path / "dets.json", "--out", out, "--no-flip", "--show-pruning")
    assert rc == 0
    assert "000000000043.jpg" in err and "no boxes" in err
    preds = json.loads((out / "predictions.json").read_text())
    assert [(p["image_id"], p["bbox"]) for p in preds] == [(42, [20, 10, 100, 120]), (42, [60, 20, 80, 100])]
    assert preds[0]["box_score"] == pytest.approx(0.8)
    pruning = cv2.imread(str(out / "000000000042_pruning.png"))
    assert pruning is not None and pruning.shape[1] > pruning.shape[0]

    (tmp_path / "other.json").write_text(json.dumps([{"image_id": 7, "bbox": [0, 0, 5, 5], "score": 1}]))
    rc, _, err = gtpt("predict", tmp_path / "000000000042.jpg", "--boxes", tmp_path / "other.json",
                      "--out", out)
    assert rc == 2 and "other.json" in err and "names none of the 1 input image" in err


def test_video_in_video_out(tmp_path, gtpt):
    clip = write_clip(tmp_path / "clip.mp4", _small(person_image()), frames=5, shift=4, fps=10.0)
    out = tmp_path / "out"
    rc, stdout, _ = gtpt("predict", clip, "--out", out, "--no-flip", "--batch-size", "2")
    assert rc == 0 and "5 frame(s)" in stdout
    assert count_frames(out / "clip.mp4") == 5
    per_frame = json.loads((out / "clip.json").read_text())
    assert [f["frame"] for f in per_frame["frames"]] == [0, 1, 2, 3, 4]
    assert all(len(f["people"]) == 1 and len(f["people"][0]["keypoints"]) == 51 for f in per_frame["frames"])
    assert all(f["people"][0]["track_id"] == 0 for f in per_frame["frames"])   # the one person keeps its id
    # a video called predictions.mp4 beside images: its json does not overwrite the images' predictions.json
    write_jpg(tmp_path / "a.jpg", _small(person_image()))
    clip.rename(tmp_path / "predictions.mp4")
    rc, stdout, _ = gtpt("predict", tmp_path / "a.jpg", tmp_path / "predictions.mp4", "--out", out, "--no-flip")
    assert rc == 0 and [p["file_name"] for p in json.loads((out / "predictions.json").read_text())] == ["a.jpg"]
    assert len(json.loads((out / "predictions_2.json").read_text())["frames"]) == 5


def test_json_only_writes_no_pictures(tmp_path, gtpt):
    write_jpg(tmp_path / "a.jpg", _small(person_image()))
    clip = write_clip(tmp_path / "clip.mp4", _small(person_image()), frames=3, shift=4, fps=10.0)
    out = tmp_path / "out"
    rc, stdout, err = gtpt("predict", tmp_path / "a.jpg", clip, "--json-only", "--out", out, "--no-flip")
    assert rc == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["clip.json", "predictions.json"]
    assert len(json.loads((out / "predictions.json").read_text())) == 1
    assert len(json.loads((out / "clip.json").read_text())["frames"]) == 3
    assert "1 image(s), 1 person(s): predictions.json in" in stdout and f"-> {out / 'clip.json'}" in stdout
    with pytest.raises(SystemExit):   # nothing to draw the pruning into
        gtpt("predict", tmp_path / "a.jpg", "--json-only", "--show-pruning")


def test_video_smoothing(tmp_path, gtpt):
    """--smooth runs each track's joints through the One-Euro filter at the video's frame times."""
    from gtpt.inference.person import Person
    from gtpt.inference.smoothing import KeypointSmoother
    img = _small(person_image())
    clip = write_clip(tmp_path / "clip.mp4", img, frames=6, shift=3, fps=12.0)
    runs = {}
    for label, extra in (("raw", ()), ("smooth", ("--smooth", "--smooth-beta", 2))):
        rc, _, err = gtpt("predict", clip, "--out", tmp_path / label, "--no-flip", "--batch-size", 4, *extra)
        assert rc == 0, err
        runs[label] = json.loads((tmp_path / label / "clip.json").read_text())
    assert runs["raw"]["smoothing"] is None
    assert runs["smooth"]["smoothing"] == {"filter": "one-euro", "min_cutoff": 1.0, "beta": 2.0}
    smoother, fps = KeypointSmoother(beta=2.0), runs["raw"]["fps"]
    for raw, smooth in zip(runs["raw"]["frames"], runs["smooth"]["frames"]):
        q = raw["people"][0]
        person = Person(np.array(q["bbox"]), q["box_score"], np.array(q["keypoints"]).reshape(-1, 3),
                        q["score"], q["track_id"])
        want = smoother.update([person], raw["frame"] / fps)[0].keypoints
        np.testing.assert_allclose(np.reshape(smooth["people"][0]["keypoints"], (-1, 3)), want, atol=1e-2)
    first, last = (np.reshape(f["people"][0]["keypoints"], (-1, 3)) for f in (runs["smooth"]["frames"][0],
                                                                            runs["smooth"]["frames"][-1]))
    assert first.tolist() == np.reshape(runs["raw"]["frames"][0]["people"][0]["keypoints"], (-1, 3)).tolist()
    assert np.abs(last - np.reshape(runs["raw"]["frames"][-1]["people"][0]["keypoints"], (-1, 3))).max() > 0.1

    write_jpg(tmp_path / "a.jpg", img)
    rc, _, err = gtpt("predict", tmp_path / "a.jpg", "--smooth", "--out", tmp_path / "img", "--no-flip")
    assert rc == 0 and "--smooth applies to videos only" in err
    rc, _, err = gtpt("predict", clip, "--smooth", "--smooth-cutoff", 0, "--out", tmp_path / "bad")
    assert rc == 2 and "min_cutoff" in err


def test_unopenable_video_and_empty_folder(tmp_path, gtpt):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    rc, _, err = gtpt("predict", bad, "--out", tmp_path / "out")
    assert rc == 1 and "bad.mp4" in err and "cannot open" in err and "nothing could be processed" in err

    empty = tmp_path / "empty"
    empty.mkdir()
    rc, _, err = gtpt("predict", empty, "--out", tmp_path / "out")
    assert rc == 1 and "empty" in err and "nothing to do" in err


def test_weights_of_another_preset(tmp_path, gtpt):
    wb = save_model(build_model("gtpt-t-wholebody"), tmp_path / "wb.safetensors")
    write_jpg(tmp_path / "x.jpg", _small(person_image()))
    rc, _, err = gtpt("predict", tmp_path / "x.jpg", "--weights", wb, "--model", "gtpt-t-body",
                      "--out", tmp_path / "out")
    assert rc == 2 and "holds weights for 'gtpt-t-wholebody', not 'gtpt-t-body'" in err
    rc, _, err = gtpt("predict", tmp_path / "x.jpg", "--weights", tmp_path / "nope.safetensors",
                      "--out", tmp_path / "out")
    assert rc == 2 and "nope.safetensors" in err


def test_predict_in_bf16(tmp_path, gtpt):
    write_jpg(tmp_path / "x.jpg", person_image())
    runs = {}
    for precision in ("fp32", "bf16"):
        rc, _, err = gtpt("predict", tmp_path / "x.jpg", "--precision", precision, "--out", tmp_path / precision)
        assert rc == 0, err
        runs[precision] = np.array(json.loads((tmp_path / precision / "predictions.json").read_text())[0]["keypoints"])
    assert not np.array_equal(runs["fp32"], runs["bf16"])      # it did run in bf16 ...
    assert np.median(np.abs(runs["fp32"] - runs["bf16"])[0::3]) <= 2.0   # ... and found the same joints
    rc, _, err = gtpt("predict", tmp_path / "x.jpg", "--precision", "bf16", "--backend", "onnxruntime",
                      "--out", tmp_path / "ort")
    assert rc == 2 and "needs backend='torch'" in err


def test_demo_writes_pictures(tmp_path, gtpt):
    args = ["demo", "--out", tmp_path / "demo"]
    if not DEMO_IMAGE.is_file():  # until the shipped photo lands
        args += ["--image", write_jpg(tmp_path / "photo.jpg", person_image())]
    rc, out, _ = gtpt(*args)
    assert rc == 0 and "weights:" in out
    pose = cv2.imread(str(tmp_path / "demo" / "demo_pose.jpg"))
    assert pose is not None
    prune = cv2.imread(str(tmp_path / "demo" / "demo_pruning.png"))
    assert prune is not None and prune.shape[1] > prune.shape[0]   # three panels side by side
    preds = json.loads((tmp_path / "demo" / "demo_predictions.json").read_text())
    assert len(preds) == 1 and len(preds[0]["keypoints"]) == 51


def test_demo_says_when_image_missing(tmp_path, gtpt):
    rc, _, err = gtpt("demo", "--out", tmp_path, "--image", tmp_path / "gone.jpg")
    assert rc == 1 and "gone.jpg" in err and "no such file" in err


def test_bench_prints_and_plots(tmp_path, gtpt):
    plot = tmp_path / "bench.png"
    rc, out, _ = gtpt("bench", "--model", "gtpt-t-body", "--batch", "1", "--paths", "eager",
                      "--warmup", "0", "--repeats", "1", "--plot", plot)
    assert rc == 0 and "images/s" in out and "gtpt-b-wholebody" in out
    assert cv2.imread(str(plot)) is not None


@pytest.mark.parametrize("flags, amp", [((), False), (("--precision", "bf16"), True), (("--bf16",), True)])
def test_bench_precision_spellings(gtpt, flags, amp):
    rc, out, _ = gtpt("bench", "--batch", "1", "--paths", "eager", "--warmup", "0", "--repeats", "1", *flags)
    assert rc == 0 and "images/s" in out
    assert ("bf16 autocast" in out) == amp


@pytest.mark.parametrize("verb", sorted(VERBS))
def test_every_verb_has_help(verb, monkeypatch, capsys):
    if verb not in MY_VERBS and importlib.util.find_spec(f"gtpt.commands.{verb}") is None:
        pytest.skip(f"gtpt.commands.{verb} is not written yet")
    monkeypatch.setattr(sys, "argv", ["gtpt"])
    with pytest.raises(SystemExit) as exc:
        main([verb, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert f"gtpt {verb}" in out
    # a default is shown once, and only where it says something
    flat = " ".join(out.split())
    assert "(default: None)" not in flat and "(default: False)" not in flat and "(default: [])" not in flat
    assert not re.search(r"default[^()]*\) \(default:", flat), flat
    assert not re.search(r"\(default: \[", flat), flat   # lists as typed on the command line


def test_assets_paths_point_into_the_package():
    package = Path(importlib.util.find_spec("gtpt").origin).parent
    for shipped in (DEMO_IMAGE, DEMO_TWO_PEOPLE, DEMO_WEIGHTS, DEMO_WEIGHTS.with_suffix(".md")):
        assert shipped.parent == package / "assets" and shipped.is_file(), shipped


def test_boxes_file_layouts(tmp_path):
    from gtpt.inference.io import InputError, load_boxes
    a, b = Path("imgs/frame_a.jpg"), Path("frame_b.jpg")
    layouts = {
        "dataset": {"images": [{"id": 5, "file_name": "val/frame_a.jpg"}, {"id": 6, "file_name": "frame_b.jpg"}],
                    "annotations": [{"image_id": 5, "bbox": [1, 2, 3, 4], "category_id": 1},
                                    {"image_id": 5, "bbox": [9, 9, 9, 9], "category_id": 1, "iscrowd": 1}]},
        "mapping": {"frame_a.jpg": [[1, 2, 3, 4]], "frame_b.jpg": []},
        "results": [{"file_name": "frame_a.jpg", "image_id": 5, "bbox": [1, 2, 3, 4], "score": 1.0}],
    }
    for kind, data in layouts.items():
        (tmp_path / f"{kind}.json").write_text(json.dumps(data))
        got = load_boxes(tmp_path / f"{kind}.json", [a, b])
        np.testing.assert_array_equal(got[a][1], [[1, 2, 3, 4, 1]])
        assert got[a][0] == (None if kind == "mapping" else 5)
    (tmp_path / "one.json").write_text(json.dumps([[1, 2, 3, 4], [5, 6, 7, 8, 0.5]]))
    assert load_boxes(tmp_path / "one.json", [a])[a][1].shape == (2, 5)
    with pytest.raises(InputError, match="exactly one input image"):
        load_boxes(tmp_path / "one.json", [a, b])
    (tmp_path / "bad.json").write_text("[[1, 2, 3]]")
    with pytest.raises(InputError, match=r"bad.json: entry 0: a box is \[x, y, w, h\]"):
        load_boxes(tmp_path / "bad.json", [a])
    # the entry is named by its place in the file, also when entries of other classes come first
    (tmp_path / "bad.json").write_text(json.dumps([{"bbox": [1, 2, 3, 4], "category_id": 3}, {"bbox": [1, 2]}]))
    with pytest.raises(InputError, match=r"bad.json: entry 1: "):
        load_boxes(tmp_path / "bad.json", [a])


def test_detector_finds_the_people_in_images_and_video(tmp_path, gtpt):
    """--detector: an ultralytics YOLO .onnx (tiny, random weights: tests/data/detector) gives the
    person boxes, in pictures and in every video frame."""
    from gtpt.inference.detector import PersonDetector
    img = cv2.imread(str(DEMO_TWO_PEOPLE))
    write_jpg(tmp_path / "two.jpg", img)
    want = PersonDetector(YOLO, score_thr=0.7)(cv2.imread(str(tmp_path / "two.jpg")))
    assert len(want) > 1
    out = tmp_path / "out"
    rc, stdout, err = gtpt("predict", tmp_path / "two.jpg", "--detector", YOLO, "--det-thr", 0.7,
                           "--out", out, "--no-flip")
    assert rc == 0, err
    assert "yolo11_raw.onnx" in stdout and f"{len(want)} person(s)" in stdout
    speed = re.search(r"speed per person: ([\d.]+) ms preprocess, ([\d.]+) ms inference, ([\d.]+) ms "
                      rf"postprocess \({len(want)} people, 1 image\); detector ([\d.]+) ms per image", stdout)
    assert speed and float(speed[2]) > 0 and float(speed[4]) > 0, stdout
    preds = json.loads((out / "predictions.json").read_text())
    np.testing.assert_allclose([p["bbox"] for p in preds], want[:, :4], atol=1e-2)

    clip = write_clip(tmp_path / "clip.mp4", _small(img, 320), frames=3, shift=8, fps=10.0)
    rc, _, err = gtpt("predict", clip, "--detector", YOLO, "--det-thr", 0.7, "--out", out, "--no-flip")
    assert rc == 0, err
    frames = json.loads((out / "clip.json").read_text())["frames"]
    cap = cv2.VideoCapture(str(clip))
    det = PersonDetector(YOLO, score_thr=0.7)
    counts = [len(det(cap.read()[1])) for _ in range(3)]
    cap.release()
    assert [len(f["people"]) for f in frames] == counts and sum(counts) > 0
    for f in frames:   # every person tracked, one id per person in a frame
        ids = [q["track_id"] for q in f["people"]]
        assert len(set(ids)) == len(ids)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rc, stdout, err = gtpt("predict", clip, "--detector", YOLO, "--det-thr", 0.7, "--det-interval", 3,
                               "--out", out / "followed", "--no-flip")
    # some random detections give degenerate followed boxes: dropped as lost, not warned about
    assert not [w for w in caught if "lies outside" in str(w.message)]
    followed = json.loads((out / "followed" / "clip.json").read_text())["frames"]
    assert rc == 0 and len(followed) == 3, err   # frames 1 and 2 follow the joints (tests/test_predictor.py)
    assert len(followed[0]["people"]) == counts[0] and followed[0]["people"] == frames[0]["people"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="the message for machines without CUDA")
def test_every_verb_names_a_missing_cuda_device(tmp_path, gtpt):
    config = Path(__file__).resolve().parents[1] / "configs" / "tiny_cpu.yaml"
    for argv in (["predict", DEMO_IMAGE, "--out", tmp_path], ["bench", "--batch", 1],
                 ["train", config, "--output-dir", tmp_path / "run"],
                 ["eval", config, "--checkpoint", tmp_path / "x.safetensors"]):
        rc, out, err = gtpt(*argv, "--device", "cuda")
        assert rc in (1, 2) and "device 'cuda': this PyTorch (" in out + err and "Traceback" not in out + err, argv


def test_detector_option_errors(tmp_path, gtpt):
    write_jpg(tmp_path / "a.jpg", _small(person_image()))
    rc, _, err = gtpt("predict", tmp_path / "a.jpg", "--detector", tmp_path / "missing.onnx", "--out", tmp_path)
    assert rc == 2 and "missing.onnx" in err
    rc, _, err = gtpt("predict", tmp_path / "a.jpg", "--detector", YOLO, "--det-nms", 0, "--out", tmp_path)
    assert rc == 2 and "nms_thr" in err
    rc, _, err = gtpt("predict", tmp_path / "a.jpg", "--detector", YOLO, "--det-interval", 0, "--out", tmp_path)
    assert rc == 2 and "--det-interval must be >= 1, got 0" in err
    rc, _, err = gtpt("predict", tmp_path / "a.jpg", "--det-interval", 5, "--out", tmp_path)
    assert rc == 0 and "--det-interval applies with --detector only" in err
    (tmp_path / "boxes.json").write_text("[]")
    with pytest.raises(SystemExit) as e:
        gtpt("predict", tmp_path / "a.jpg", "--detector", tmp_path / "missing.onnx", "--boxes",
             tmp_path / "boxes.json")
    assert e.value.code == 2


def test_photos_are_read_upright_training_images_as_stored(tmp_path):
    """A phone photo's EXIF orientation: `predict` reads it upright, as viewers show it (joints come
    back in that frame); the training reader keeps the stored pixels, which COCO boxes refer to."""
    from PIL import Image

    from gtpt.data.dataset import read_image_bgr
    from gtpt.inference.io import read_image
    stored = person_image()
    exif = Image.Exif()
    exif[0x0112] = 6   # "rotate 90 degrees clockwise to display"
    path = tmp_path / "phone.jpg"
    Image.fromarray(np.ascontiguousarray(stored[..., ::-1])).save(path, exif=exif.tobytes(), quality=95)
    raw, shown = read_image_bgr(str(path)), read_image(path)
    assert raw.shape == stored.shape and np.abs(raw.astype(int) - stored).mean() < 3   # JPEG
    assert np.array_equal(shown, cv2.rotate(raw, cv2.ROTATE_90_CLOCKWISE))
