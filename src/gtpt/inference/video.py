"""Video frames in and out (OpenCV), with clear errors for files that cannot be used."""
from __future__ import annotations

import collections
import os
import threading
import time
from pathlib import Path
from typing import Iterator, Optional

import cv2
import numpy as np

from .io import InputError, is_stream

STREAM_BUFFER = 64   # frames a stream read with latest_only=False may run ahead of its consumer

# FFmpeg logs its own lines ("moov atom not found") to stderr beside our message naming the file;
# quiet unless the user asks for them (OpenCV reads this when its FFmpeg backend starts)
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")


class VideoReader:
    """Iterate over the BGR frames [h, w, 3] of a video file or a stream (a camera index or a URL
    such as rtsp://..., `gtpt.inference.io.is_stream`).

        with VideoReader("clip.mp4") as video:
            for frame in video: ...
            # or: for t, frame in video.timed_frames(): ...   (t: seconds since the first frame)

    A stream runs until it ends; `frame_count` is 0 (unknown) for it. A background thread reads
    it as fast as it arrives, so each frame's time is its arrival time. With `latest_only` (the
    default; streams only) just the newest frame waits for the consumer: when inference is slower
    than the stream, older frames are skipped (counted in `skipped`) rather than queued, so the
    output stays live instead of falling further and further behind. latest_only=False keeps
    every frame (up to STREAM_BUFFER ahead of the consumer; beyond that the stream waits).
    A stream is read once: leaving its loop stops the reading thread and releases the camera.
    """

    def __init__(self, source, latest_only: bool = True):
        self.is_stream = is_stream(source)
        if self.is_stream:
            camera = str(source).isdigit()
            self.path = f"camera {int(source)}" if camera else str(source)   # how messages name it
            self._cap = cv2.VideoCapture(int(source) if camera else str(source))
            if not self._cap.isOpened():
                raise InputError(f"{self.path}: cannot open the stream"
                                 + (" (no such camera, or it is in use)" if camera else " (unreachable, or not a video)"))
        else:
            self.path = Path(source)
            if not self.path.is_file():
                raise InputError(f"{self.path}: no such video file")
            self._cap = cv2.VideoCapture(str(self.path))
            if not self._cap.isOpened():
                raise InputError(f"{self.path}: cannot open as a video (unsupported format or corrupt file)")
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and np.isfinite(fps) and fps > 0 else 25.0  # some containers omit it
        count = 0 if self.is_stream else int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT))
        self.frame_count = max(0, count)  # an estimate
        self.size = (int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        self.latest_only = self.is_stream and bool(latest_only)   # a file's frames all wait their turn
        self.skipped = 0
        self._thread: Optional[threading.Thread] = None
        self._stop = False

    def __iter__(self) -> Iterator[np.ndarray]:
        return (frame for _, frame in self.timed_frames())

    def timed_frames(self) -> Iterator[tuple[float, np.ndarray]]:
        """(t, frame) pairs, t in seconds since the first frame: index / fps for a file, the arrival
        time for a stream (their own clocks are often missing or guessed: MJPEG over HTTP has none)."""
        frames = self._arrivals() if self.is_stream else self._decoded()
        read = 0
        for item in frames:
            read += 1
            yield item
        if read == 0:
            raise InputError(f"{self.path}: opened, but no frame could be decoded")

    def _decoded(self) -> Iterator[tuple[float, np.ndarray]]:
        index = 0
        while True:
            ok, frame = self._cap.read()
            if not ok:
                return
            yield index / self.fps, frame
            index += 1

    def _arrivals(self) -> Iterator[tuple[float, np.ndarray]]:
        if self._thread is not None:
            raise RuntimeError(f"{self.path}: a stream can be iterated only once")
        self._frames, self._ended = collections.deque(), False
        self._ready = threading.Condition()
        self._thread = threading.Thread(target=self._receive, name=f"gtpt stream {self.path}", daemon=True)
        self._thread.start()
        try:
            while True:
                with self._ready:
                    while not self._frames and not self._ended:
                        self._ready.wait(0.1)   # a timeout keeps Ctrl-C responsive
                    if not self._frames:
                        return
                    item = self._frames.popleft()
                    self._ready.notify_all()
                yield item
        finally:
            # the iteration was left or dropped: a stream is read only once, so stop reading it and
            # give the camera back now rather than when the process ends
            self._stop_reading()

    def _receive(self) -> None:
        """The reading thread: frames with their arrival times into self._frames until the stream
        ends or close() is called. It owns the capture from here on and releases it."""
        start = None
        try:
            while not self._stop:
                ok, frame = self._cap.read()
                now = time.monotonic()
                if not ok:
                    break
                start = now if start is None else start
                with self._ready:
                    if self.latest_only and self._frames:
                        self.skipped += len(self._frames)
                        self._frames.clear()
                    while len(self._frames) >= STREAM_BUFFER and not self._stop:
                        self._ready.wait(0.1)
                    self._frames.append((now - start, frame))
                    self._ready.notify_all()
        finally:
            with self._ready:
                self._ended = True
                self._ready.notify_all()
            self._cap.release()

    def close(self) -> None:
        if self._thread is None:
            self._cap.release()
            return
        self._stop_reading()
        # a read in progress finishes first; the thread then releases the capture itself
        self._thread.join(timeout=5.0)

    def _stop_reading(self) -> None:
        self._stop = True
        with self._ready:
            self._ready.notify_all()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class VideoWriter:
    """Write BGR frames to an .mp4 (mp4v codec) at `fps`; the size is taken from the first frame.

    write(frame, time): a frame that comes later than the next slot (a live stream whose frames
    the model had no time for, `VideoReader.skipped`) is preceded by copies of the frame before,
    so that the video plays in real time instead of fast-forward. Without times, every frame
    takes one slot.
    """

    def __init__(self, path, fps: float, fourcc: str = "mp4v"):
        self.path = Path(path)
        self.fps, self.fourcc = float(fps), fourcc
        self._writer: Optional[cv2.VideoWriter] = None
        self._last: Optional[np.ndarray] = None
        self.frames = 0

    def write(self, frame: np.ndarray, time: Optional[float] = None) -> None:
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            h, w = frame.shape[:2]
            self._writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*self.fourcc), self.fps, (w, h))
            if not self._writer.isOpened():
                raise OSError(f"{self.path}: OpenCV cannot write {self.fourcc} video here")
        if time is not None and self._last is not None:
            while self.frames < round(time * self.fps):   # the previous frame stays on screen until now
                self._put(self._last)
        self._put(frame)
        self._last = frame

    def _put(self, frame: np.ndarray) -> None:
        self._writer.write(frame)
        self.frames += 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


__all__ = ["VideoReader", "VideoWriter"]
