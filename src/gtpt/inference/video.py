"""Video frames in and out (OpenCV), with clear errors for files that cannot be used."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator, Optional

import cv2
import numpy as np

from .io import InputError, is_stream


class VideoReader:
    """Iterate over the BGR frames [h, w, 3] of a video file or a stream (a camera index or a URL
    such as rtsp://..., `gtpt.inference.io.is_stream`).

        with VideoReader("clip.mp4") as video:
            for frame in video: ...

    A stream runs until it ends; `frame_count` is 0 (unknown) for it.
    """

    def __init__(self, source):
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

    def __iter__(self) -> Iterator[np.ndarray]:
        read = 0
        while True:
            ok, frame = self._cap.read()
            if not ok:
                break
            read += 1
            yield frame
        if read == 0:
            raise InputError(f"{self.path}: opened, but no frame could be decoded")

    def close(self) -> None:
        self._cap.release()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class VideoWriter:
    """Write BGR frames to an .mp4 (mp4v codec); the size is taken from the first frame."""

    def __init__(self, path, fps: float, fourcc: str = "mp4v"):
        self.path = Path(path)
        self.fps, self.fourcc = float(fps), fourcc
        self._writer: Optional[cv2.VideoWriter] = None
        self.frames = 0

    def write(self, frame: np.ndarray) -> None:
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            h, w = frame.shape[:2]
            self._writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*self.fourcc), self.fps, (w, h))
            if not self._writer.isOpened():
                raise OSError(f"{self.path}: OpenCV cannot write {self.fourcc} video here")
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
