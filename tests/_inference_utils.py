"""Shared helpers for the inference tests: a model whose outputs depend on the image, and a
real picture of a person (the shipped demo photo, or a drawn figure until it exists)."""
from __future__ import annotations

import contextlib
import http.server
import signal
import socketserver
import subprocess
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from gtpt.assets import DEMO_IMAGE
from gtpt.models import build_model
from tests.engine_helpers import REPO_ROOT, env, gtpt_cmd



def visible_model(name: str = "gtpt-t-body", seed: int = 0):
    """A random model whose logits and pruning choices depend on the picture.

    The recipe init (conv std 0.001) makes every image look alike to the network; here convs
    get He init and BatchNorms random statistics, like the official fixtures' weights.
    """
    torch.manual_seed(seed)
    model = build_model(name)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * (2.0 / fan_in) ** 0.5)
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5, generator=g)
                m.bias.normal_(0.0, 0.1, generator=g)
                m.running_mean.normal_(0.0, 0.1, generator=g)
                m.running_var.uniform_(0.5, 1.5, generator=g)
    return model.eval()


def person_image() -> np.ndarray:
    """uint8 BGR picture with a person in it."""
    if DEMO_IMAGE.is_file():
        img = cv2.imread(str(DEMO_IMAGE))
        if img is not None:
            return img
    rng = np.random.default_rng(0)
    img = cv2.GaussianBlur((rng.random((360, 480, 3)) * 120 + 60).astype(np.uint8), (0, 0), 3)
    skin, shirt, trousers = (140, 170, 220), (40, 60, 190), (110, 70, 40)
    cv2.circle(img, (240, 70), 28, skin, -1)
    cv2.rectangle(img, (205, 100), (275, 200), shirt, -1)
    for a, b in (((205, 110), (160, 190)), ((275, 110), (320, 190))):
        cv2.line(img, a, b, shirt, 18)
    for a, b in (((222, 200), (210, 330)), ((258, 200), (270, 330))):
        cv2.line(img, a, b, trousers, 22)
    return img


def write_jpg(path, img) -> Path:
    path = Path(path)
    assert cv2.imwrite(str(path), img), path
    return path


def video_frames(path):
    """The frames OpenCV decodes from the video file at `path`, one by one."""
    cap = cv2.VideoCapture(str(path))
    try:
        while True:
            ok, img = cap.read()
            if not ok:
                return
            yield img
    finally:
        cap.release()


def count_frames(path) -> int:
    """How many frames OpenCV decodes from the video file at `path`."""
    return sum(1 for _ in video_frames(path))


def interrupt_gtpt(args, started, then_wait: float = 0.0, timeout: float = 120.0, sig=signal.SIGINT):
    """Run `gtpt *args` as a real process and send it `sig` (default SIGINT, i.e. Ctrl-C) `then_wait`
    seconds after `started()` is true; returns (exit status, stdout, stderr)."""
    proc = subprocess.Popen(gtpt_cmd(*args), env=env(), cwd=REPO_ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + timeout
        while not started() and time.time() < deadline and proc.poll() is None:
            time.sleep(0.05)
        time.sleep(then_wait)
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    return proc.returncode, stdout, stderr


def read_stamps(path) -> list:
    """The stamped numbers (`stamp_index`) of every frame of the video file at `path`."""
    return [read_stamp(img) for img in video_frames(path)]


def realtime_slots(times, fps: float) -> int:
    """How many frames a real-time video of frames arriving at `times` (seconds) holds at `fps`:
    each frame takes the slot of its time, or the next free one."""
    slots = 0
    for t in times:
        slots = max(slots, round(t * fps)) + 1
    return slots


def write_clip(path, img: np.ndarray, frames: int, shift: int, fps: float) -> Path:
    """An mp4 of `img` sliding right by `shift` px per frame (a person walking past)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, img.shape[1::-1])
    for i in range(frames):
        writer.write(np.roll(img, shift * i, axis=1))
    writer.release()
    return Path(path)


STAMP_BITS, STAMP_CELL = 12, 8


def stamp_index(img: np.ndarray, i: int) -> np.ndarray:
    """`img` with the number i written along its top edge as black/white cells (survives JPEG)."""
    out = img.copy()
    for b in range(STAMP_BITS):
        out[:STAMP_CELL, b * STAMP_CELL:(b + 1) * STAMP_CELL] = 255 if (i >> b) & 1 else 0
    return out


def read_stamp(img: np.ndarray) -> int:
    return sum(1 << b for b in range(STAMP_BITS)
               if img[2:STAMP_CELL - 2, b * STAMP_CELL + 2:(b + 1) * STAMP_CELL - 2].mean() > 127)


@contextlib.contextmanager
def mjpeg_stream(img: np.ndarray, shift: int = 4, fps: float = 50.0):
    """An endless MJPEG stream over HTTP on localhost, as IP cameras serve it (multipart JPEG parts),
    of `img` sliding right by `shift` px per frame, each frame's number stamped on it (`read_stamp`);
    yields its URL. OpenCV reads it through FFmpeg."""
    ok, _ = cv2.imencode(".jpg", img)
    assert ok and img.shape[1] >= STAMP_BITS * STAMP_CELL

    class Camera(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
            self.end_headers()
            i = 0
            try:
                while not server.stopping:
                    data = cv2.imencode(".jpg", stamp_index(np.roll(img, shift * i, axis=1), i))[1].tobytes()
                    self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n%s\r\n"
                                     % (len(data), data))
                    i += 1
                    time.sleep(1.0 / fps)
            except (BrokenPipeError, ConnectionResetError):
                pass   # the reader went away

        def log_message(self, *args):
            pass

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Camera)
    server.daemon_threads, server.stopping = True, False
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/live/cam.mjpg"
    finally:
        server.stopping = True
        server.shutdown()
        server.server_close()
