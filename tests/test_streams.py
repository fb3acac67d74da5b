"""Streams as inputs: camera indices and URLs (a real MJPEG stream over HTTP on localhost, read by
OpenCV's FFmpeg), arrival times, skipping frames to stay live, --max-frames, and Ctrl-C keeping
what was done."""
from __future__ import annotations

import json
import signal
import time

import cv2
import pytest

from gtpt.cli import main
from gtpt.inference import Predictor
from gtpt.inference.io import InputError, JsonListWriter, expand_inputs, is_stream, stream_name
from gtpt.inference.video import VideoReader, VideoWriter
from tests._inference_utils import count_frames, interrupt_gtpt, mjpeg_stream, person_image, read_stamp, \
    read_stamps, realtime_slots, stamp_index, visible_model


@pytest.fixture(scope="module")
def frame():
    img = person_image()
    return cv2.resize(img, (192, int(img.shape[0] * 192 / img.shape[1])))


def test_stream_sources_are_recognised_and_named(tmp_path):
    assert is_stream(0) and is_stream("1") and is_stream("rtsp://cam.local:554/live")
    assert not is_stream("clip.mp4") and not is_stream(tmp_path / "a.jpg")
    assert stream_name("0") == "camera0"
    assert stream_name("rtsp://10.0.0.2:554/h264/main.sdp") == "main"
    assert stream_name("http://cam.local:8080/") == "cam.local"
    (tmp_path / "0").write_bytes(b"")   # a file of that name wins over camera 0
    items, problems = expand_inputs(["2", "http://x/y.mjpg", "2", str(tmp_path / "0")])
    assert [(str(i.path), i.kind) for i in items][:2] == [("2", "stream"), ("http://x/y.mjpg", "stream")]
    assert len(items) == 2 and "extension" in problems[0]


def test_unopenable_streams_name_themselves():
    with pytest.raises(InputError, match="camera 9: cannot open the stream .no such camera"):
        VideoReader(9)
    with pytest.raises(InputError, match="http://127.0.0.1:9/none.mjpg: cannot open the stream"):
        VideoReader("http://127.0.0.1:9/none.mjpg")


def test_predict_video_reads_a_live_stream(frame):
    predictor = Predictor(visible_model(), flip_test=False)
    with mjpeg_stream(frame) as url, VideoReader(url) as reader:
        assert reader.is_stream and reader.frame_count == 0 and reader.size == frame.shape[1::-1]
        frames = []
        for f in predictor.predict_video(reader, frames_per_step=2):
            frames.append(f)
            if len(frames) == 5:
                break
    assert [f.index for f in frames] == list(range(5)) and all(f.image.shape == frame.shape for f in frames)
    assert all(len(f.people) == 1 and f.people[0].track_id == frames[0].people[0].track_id for f in frames)


def test_a_slow_consumer_gets_the_newest_frame_and_its_arrival_time(frame):
    """Inference slower than the stream: frames that arrived meanwhile are skipped, not queued, and
    each frame's time is when it arrived (the stream carries no clock: FFmpeg guesses 25 fps)."""
    with mjpeg_stream(frame, fps=50) as url, VideoReader(url) as reader:
        got = []
        for t, img in reader.timed_frames():
            got.append((t, read_stamp(img)))
            if len(got) == 6:
                break
            time.sleep(0.25)   # "inference"; the stream sends about 12 frames meanwhile
    times, served = zip(*got)
    assert times[0] == 0.0 and all(0.15 < b - a < 0.5 for a, b in zip(times, times[1:])), times
    assert all(b - a >= 5 for a, b in zip(served, served[1:])), served   # newest, not next
    assert reader.skipped >= max(20, served[-1] - served[0] - 5)   # every frame not taken was skipped


def test_every_frame_keeps_them_all_with_arrival_times(frame):
    with mjpeg_stream(frame, fps=50) as url, VideoReader(url, latest_only=False) as reader:
        got, start = [], time.monotonic()
        for t, img in reader.timed_frames():
            got.append((t, read_stamp(img)))
            if len(got) == 10:
                break
            time.sleep(0.1)
        took = time.monotonic() - start
    times, served = zip(*got)
    assert list(served) == list(range(served[0], served[0] + 10)) and reader.skipped == 0
    # they arrived 20 ms apart while being taken 100 ms apart: the times say when they arrived
    assert took > 0.8 and times[-1] < 0.5, (took, times)


def test_a_dropped_iteration_stops_reading_the_stream(frame):
    """Leaving the loop without close() or `with` still gives the stream back: it is read only once."""
    with mjpeg_stream(frame, fps=50) as url:
        reader = VideoReader(url)
        for i, _ in enumerate(reader):
            if i == 2:
                break
        reader._thread.join(timeout=5.0)
        assert not reader._thread.is_alive() and not reader._cap.isOpened()
        with pytest.raises(RuntimeError, match="only once"):
            next(iter(reader))


def test_video_of_a_stream_plays_in_real_time(tmp_path, frame):
    """Frames that were skipped to keep up are filled with the frame before, not fast-forwarded."""
    frames = [stamp_index(frame, i) for i in range(4)]
    for times, stamps in (([0.0, 0.1, 0.5, 0.52], [0, 1, 1, 1, 1, 2, 3]),   # 10 fps: 0.5 s -> slot 5
                          ([0.0, 0.1, 0.2, 0.3], [0, 1, 2, 3]),                # a file's times: one slot each
                          (None, [0, 1, 2, 3])):
        with VideoWriter(tmp_path / "v.mp4", fps=10) as writer:
            for i, img in enumerate(frames):
                writer.write(img, None if times is None else times[i])
        assert read_stamps(tmp_path / "v.mp4") == stamps and writer.frames == len(stamps)
        if times is not None:
            assert realtime_slots(times, 10) == len(stamps)


def test_cli_stream_with_max_frames(tmp_path, frame, capsys):
    with mjpeg_stream(frame) as url:
        assert main(["predict", url, "--max-frames", "6", "--no-flip", "--out", str(tmp_path)]) == 0
    out = json.loads((tmp_path / "cam.json").read_text())
    assert out["video"] == url and [f["frame"] for f in out["frames"]] == list(range(6))
    times = [f["time"] for f in out["frames"]]
    assert times[0] == 0.0 and times == sorted(set(times))
    assert count_frames(tmp_path / "cam.mp4") == realtime_slots(times, out["fps"]) >= 6
    assert main(["predict", url, "--max-frames", "0", "--out", str(tmp_path)]) == 2
    assert main(["predict", "9", "--out", str(tmp_path / "cam9")]) == 1   # no such camera: named, skipped
    assert "camera 9: cannot open the stream" in capsys.readouterr().err


def test_ctrl_c_keeps_the_frames_done(tmp_path, frame):
    """A camera runs until Ctrl-C; then the video and the per-frame json hold every frame done."""
    with mjpeg_stream(frame) as url:
        code, stdout, stderr = interrupt_gtpt(["predict", url, "--no-flip", "--out", str(tmp_path)],
                                              # the video file appears with the first finished frame
                                              started=(tmp_path / "cam.mp4").is_file, then_wait=1.0)
    assert code == 130, stderr[-2000:]
    assert "stopped by Ctrl-C" in stderr
    out = json.loads((tmp_path / "cam.json").read_text())
    frames = out["frames"]
    assert len(frames) >= 1 and [f["frame"] for f in frames] == list(range(len(frames)))
    # a finished, readable video, in real time
    assert count_frames(tmp_path / "cam.mp4") == realtime_slots([f["time"] for f in frames], out["fps"])
    assert f"{len(frames)} frame(s)" in stdout
    assert not (tmp_path / "cam.partial.jsonl").exists()   # folded into cam.json


def test_results_reach_the_disk_as_they_are_done(tmp_path):
    """Per-frame json is not held in memory: JsonListWriter streams it through a .jsonl file."""
    doc = JsonListWriter(tmp_path / "v.json", {"video": "v.mp4", "fps": 25.0})
    assert doc.lines == tmp_path / "v.partial.jsonl"
    frames = [{"frame": i, "people": [{"score": i / 10, "keypoints": [1.5] * 6}] * i} for i in range(3)]
    for f in frames:
        doc.append(f)
        assert [json.loads(line) for line in doc.lines.read_text().splitlines()] == frames[:f["frame"] + 1]
    assert doc.close() == tmp_path / "v.json" and not doc.lines.exists()
    assert json.loads((tmp_path / "v.json").read_text()) == {"video": "v.mp4", "fps": 25.0, "frames": frames}
    for items in ([], frames[1:]):   # a plain list (COCO results); empty too
        plain = JsonListWriter(tmp_path / "p.json")
        for item in items:
            plain.append(item)
        assert json.loads(plain.close().read_text()) == items and plain.count == len(items)


def test_a_killed_run_keeps_the_frames_done(tmp_path, frame):
    """kill -9 leaves no time to write anything: the frames done are in cam.partial.jsonl."""
    with mjpeg_stream(frame) as url:
        code, _, _ = interrupt_gtpt(["predict", url, "--no-flip", "--out", str(tmp_path)],
                                    started=lambda: (tmp_path / "cam.partial.jsonl").is_file()
                                    and (tmp_path / "cam.partial.jsonl").stat().st_size > 0,
                                    then_wait=1.0, sig=signal.SIGKILL)
    assert code == -signal.SIGKILL and not (tmp_path / "cam.json").exists()
    frames = [json.loads(line) for line in (tmp_path / "cam.partial.jsonl").read_text().splitlines()]
    assert len(frames) >= 2 and [f["frame"] for f in frames] == list(range(len(frames)))
    assert all(len(f["people"]) == 1 and len(f["people"][0]["keypoints"]) == 51 for f in frames)
