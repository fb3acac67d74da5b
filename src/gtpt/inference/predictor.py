"""Predictor: images (+ person boxes) in, people with keypoints in image pixels out.

Pipeline per person, exactly as in validation: clean the box -> center/scale (aspect 192/256,
x1.25) -> affine crop 256x192 -> RGB, ImageNet normalisation -> network (with the flipped crop
in the same batch when flip_test) -> flip-back with the one-bin shift, average logits ->
argmax decode -> back-projection. Crops from many images share one forward of up to
`batch_size` people.

    >>> from gtpt import Predictor
    >>> pred = Predictor("gtpt_t_body.safetensors")
    >>> people = pred.predict("image.jpg", boxes=[[10, 20, 100, 240, 0.9]])
    >>> people[0].keypoints          # [17, 3]: x, y, score
"""
from __future__ import annotations

import itertools
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, NamedTuple, Optional, Sequence

import numpy as np

from ..codec import SimCCCodec
from ..config import PRESETS
from ..device import check_device
from ..keypoints import get_keypoint_spec
from .backends import OnnxRunner, TorchRunner, cached_onnx, check_precision
from .crops import box_to_crop, make_input
from .detector import PersonDetector
from .io import to_bgr
from .person import Person, instance_score

UNTRAINED_NOTICE = ("UNTRAINED weights: '{name}' is randomly initialised, so its keypoints are "
                    "meaningless. Pass a trained .safetensors file for real predictions.")


class VideoFrame(NamedTuple):
    """One frame of `Predictor.predict_video`: its index, time in seconds (index / fps; for a stream,
    when it arrived), BGR image [h, w, 3] and people (with track ids)."""

    index: int
    time: float
    image: np.ndarray
    people: list


def _as_boxes(boxes, img_w: int, img_h: int) -> np.ndarray:
    """None (whole image) | [4] | [5] | [N, 4] | [N, 5] -> float64 [N, 5] (score 1 when absent)."""
    if boxes is None:
        return np.array([[0.0, 0.0, img_w, img_h, 1.0]])
    if isinstance(boxes, (list, tuple)) and boxes and all(np.ndim(b) == 1 for b in boxes):
        # a list of rows may mix [x,y,w,h] and [x,y,w,h,score]
        bad = [list(b) for b in boxes if len(b) not in (4, 5)]
        if bad:
            raise ValueError(f"a box is [x, y, w, h] or [x, y, w, h, score], got {bad[0]}")
        boxes = [list(b) + [1.0] * (5 - len(b)) for b in boxes]
    arr = np.asarray(boxes, dtype=np.float64)
    if arr.size == 0:
        return np.zeros((0, 5))
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] not in (4, 5):
        raise ValueError(f"boxes must be [N, 4] (x, y, w, h) or [N, 5] (with score), got shape {list(arr.shape)}")
    if arr.shape[1] == 4:
        arr = np.concatenate([arr, np.ones((len(arr), 1))], axis=1)
    return arr


@dataclass
class StageTimes:
    """Where a predictor's time went since it was made (or `reset()`): seconds per stage, as
    ultralytics' speed line. inference includes the flip test's second crop and device copies."""

    images: int = 0
    people: int = 0
    detect: float = 0.0       # the person detector, per image that ran it
    preprocess: float = 0.0   # box -> affine crop -> normalised input, per person
    inference: float = 0.0    # the network, per person
    postprocess: float = 0.0  # decoding, back to image pixels, scores, per person

    def reset(self) -> None:
        self.__init__()

    def summary(self) -> str:
        """"speed per person: 0.4 ms preprocess, 21.3 ms inference, 0.1 ms postprocess (...)"."""
        def ms(seconds, n):
            return f"{1e3 * seconds / max(n, 1):.1f} ms"
        people = f"{self.people} {'person' if self.people == 1 else 'people'}"
        images = f"{self.images} image{'s' * (self.images != 1)}"
        text = (f"speed per person: {ms(self.preprocess, self.people)} preprocess, {ms(self.inference, self.people)} "
                f"inference, {ms(self.postprocess, self.people)} postprocess ({people}, {images})")
        if self.detect:
            text += f"; detector {ms(self.detect, self.images)} per image"
        return text


class Predictor:
    """Top-down pose estimation for given person boxes.

    weights_or_preset: a weights file (`gtpt.load_weights`: .safetensors, a training .ckpt or the
        authors' .pth), an exported .onnx file, a preset name (random weights, with a loud warning)
        or a GTPT model.
    backend: "torch" or "onnxruntime" (default: onnxruntime for .onnx files, else torch);
        onnxruntime with PyTorch weights exports once to `cache_dir` ($GTPT_CACHE_DIR or
        ~/.cache/gtpt) and reuses the file.
    keep_rates: inference-time pruning budget (4 values), default the model's own.
    precision: "fp32" or "bf16" (torch backend: bfloat16 autocast, faster on CPUs with
        AVX512-BF16 or AMX and on recent GPUs; confident joints move by a few SimCC bins at most).
    score_threshold: joints scoring above it count towards the instance score.
    expect: a preset name the weights file must hold (clear error otherwise).
    detector: a `PersonDetector` or the path of an ultralytics YOLO .onnx export; images given
        without boxes are then searched for people instead of being taken as one person.
    compile: torch backend only: torch.compile the network (`deployment_forward`; with CUDA graphs on
        a GPU). Batches are padded to powers of two, and the first one of each size compiles
        (about 40 s on a small CPU); worth it for long videos and large evaluations.
    """

    def __init__(self, weights_or_preset="gtpt-t-body", device: str = "cpu", backend: Optional[str] = None,
                 flip_test: bool = True, keep_rates: Optional[Sequence[float]] = None, batch_size: int = 32,
                 score_threshold: float = 0.01, expect: Optional[str] = None, cache_dir=None,
                 precision: str = "fp32", detector=None, compile: bool = False):
        from ..models import GTPT, build_model
        from ..weights import load_weights
        from ..models.gtpt import check_keep_rates

        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.device, self.flip_test, self.batch_size = device, flip_test, int(batch_size)
        self.score_threshold = float(score_threshold)
        self.model = None
        self.untrained = False
        src = weights_or_preset
        is_onnx = isinstance(src, (str, os.PathLike)) and str(src).lower().endswith(".onnx")
        backend = backend or ("onnxruntime" if is_onnx else "torch")
        if backend not in ("torch", "onnxruntime"):
            raise ValueError(f"backend must be 'torch' or 'onnxruntime', got {backend!r}")
        if is_onnx and backend == "torch":
            raise ValueError(f"{src}: an .onnx file runs with backend='onnxruntime', not 'torch'")
        if check_precision(precision) != "fp32" and backend != "torch":
            raise ValueError(f"precision {precision!r} needs backend='torch' (the onnx graph is float32)")
        if compile and backend != "torch":
            raise ValueError("compile=True needs backend='torch' (onnxruntime optimises the graph itself)")
        if not is_onnx:   # a PyTorch model runs (or, for backend='onnxruntime', traces kept patches) there
            check_device(device)
        self.backend, self.precision = backend, precision

        if isinstance(src, GTPT):
            self.model, self.source = src, f"in-memory {src.cfg.name} model"
        elif is_onnx:
            from ..export import exported_config
            self.cfg = exported_config(src, expect)
            self.source = f"{src} ({self.cfg.name}, onnx)"
        elif isinstance(src, str) and src in PRESETS and not Path(src).exists():
            self.model, self.untrained = build_model(src), True
            self.source = f"UNTRAINED random {src}"
            warnings.warn(UNTRAINED_NOTICE.format(name=src), UserWarning, stacklevel=2)
        elif isinstance(src, (str, os.PathLike)):
            if not Path(src).is_file():
                raise FileNotFoundError(f"{src}: no such weights file, and not a preset name "
                                        f"(presets: {', '.join(PRESETS)})")
            self.model = load_weights(src, expect=expect)
            self.source = f"{src} ({self.model.cfg.name})"
        else:
            raise TypeError(f"weights_or_preset must be a path, a preset name or a GTPT model, "
                            f"got {type(src).__name__}")

        if self.model is not None:
            self.model = self.model.float().eval()
            self.cfg = self.model.cfg
            self.keep_rates = check_keep_rates(self.cfg, keep_rates if keep_rates is not None
                                               else self.model.keep_rates)
            self._torch = TorchRunner(self.model, device, self.keep_rates, precision, compile=compile)
            self._runner = self._torch
            if backend == "onnxruntime":
                self.onnx_path = cached_onnx(self.model, self.keep_rates, cache_dir)
                self._runner = OnnxRunner(self.onnx_path, device)
        else:
            self._torch = None
            self.keep_rates = tuple(self.cfg.keep_rates)
            if keep_rates is not None and tuple(float(r) for r in keep_rates) != self.keep_rates:
                raise ValueError(f"{src} was exported with keep rates {list(self.keep_rates)}; "
                                 f"re-export it to use {list(keep_rates)}")
            self.onnx_path = Path(src)
            self._runner = OnnxRunner(src, device)

        if detector is not None and not isinstance(detector, PersonDetector):
            detector = PersonDetector(detector, device)
        self.detector = detector
        self.times = StageTimes()
        self.spec = get_keypoint_spec(self.cfg.num_joints)
        self.codec = SimCCCodec(self.cfg.image_size, self.cfg.split_ratio, self.cfg.sigma)
        self._flip_index = self.spec.flip_index()

    @property
    def num_joints(self) -> int:
        return self.cfg.num_joints

    def __repr__(self) -> str:
        det = f", detector={self.detector!r}" if self.detector is not None else ""
        return (f"Predictor({self.source}, backend={self.backend}, device={self.device}, "
                f"precision={self.precision}, flip_test={self.flip_test}, keep_rates={list(self.keep_rates)}{det})")

    # ------------------------------------------------------------------ core
    def _logits(self, batch: np.ndarray):
        """[n,3,H,W] -> merged logits ([n,K,Wx], [n,K,Wy]); the flipped crops ride in the same batch."""
        if not self.flip_test:
            return self._runner(batch)
        n = batch.shape[0]
        lx, ly = self._runner(np.concatenate([batch, batch[..., ::-1]], axis=0))
        return self.codec.merge_flip(lx[:n], ly[:n], lx[n:], ly[n:], self._flip_index, shift=True)

    def predict_batch(self, images: Sequence, boxes_list: Optional[Sequence] = None,
                      rgb: bool = False, names: Optional[Sequence[str]] = None) -> list[list[Person]]:
        """Many images at once -> one list of Person per image (same order as the boxes).

        boxes_list: per image None (the detector's boxes if the predictor has one, else the whole
        image) or boxes [N, 4|5] xywh(+score). Boxes that do not overlap the image are dropped
        with a warning, which names the image by `names` (default: its path if it was given as one,
        else its index).
        """
        if names is None:
            names = [str(im) if isinstance(im, (str, os.PathLike)) else f"image {i}" for i, im in enumerate(images)]
        images = [to_bgr(im, rgb) for im in images]
        if boxes_list is None:
            boxes_list = [None] * len(images)
        if len(boxes_list) != len(images):
            raise ValueError(f"got {len(images)} images but {len(boxes_list)} box lists")
        clock, times = time.perf_counter, self.times
        times.images += len(images)
        jobs = []  # (image index, box row [5], center, scale)
        for i, (img, boxes) in enumerate(zip(images, boxes_list)):
            h, w = img.shape[:2]
            if boxes is None and self.detector is not None:
                start = clock()
                boxes = self.detector(img)
                times.detect += clock() - start
            start = clock()
            for row in _as_boxes(boxes, w, h):
                crop = box_to_crop(row[:4], w, h, self.cfg.image_size)
                if crop is None:
                    warnings.warn(f"{names[i]}: box {row[:4].tolist()} lies outside the {w}x{h} image; skipped",
                                  stacklevel=2)
                    continue
                jobs.append((i, row, *crop))
            times.preprocess += clock() - start

        results: list[list[Person]] = [[] for _ in images]
        times.people += len(jobs)
        for first in range(0, len(jobs), self.batch_size):
            chunk = jobs[first:first + self.batch_size]
            start = clock()
            batch = np.stack([make_input(images[i], c, s, self.cfg.image_size) for i, _, c, s in chunk])
            crops = clock()
            logits = self._logits(batch)
            ran = clock()
            times.preprocess += crops - start
            times.inference += ran - crops
            coords, scores = self.codec.decode(*logits)
            centers = np.stack([c for *_, c, _ in chunk]).astype(np.float64)
            scales = np.stack([s for *_, s in chunk]).astype(np.float64)
            xy = self.codec.to_image(coords.double().numpy(), centers, scales)      # [n,K,2]
            scores = scores.double().numpy()
            for (i, row, _, _), p_xy, p_s in zip(chunk, xy, scores):
                kpts = np.concatenate([p_xy, p_s[:, None]], axis=1)
                results[i].append(Person(box=row[:4].copy(), box_score=float(row[4]), keypoints=kpts,
                                         score=instance_score(p_s, row[4], self.score_threshold)))
            times.postprocess += clock() - ran
        return results

    def predict(self, image, boxes=None, rgb: bool = False) -> list[Person]:
        """One image (path, BGR array, RGB array with rgb=True, or PIL image) -> people.

        boxes: [N, 4] xywh or [N, 5] with scores; None: the detector's boxes if the predictor
        has one, else the whole image as one box.
        """
        return self.predict_batch([image], [boxes], rgb=rgb)[0]

    __call__ = predict

    def predict_video(self, video, smooth=False, frames_per_step: Optional[int] = None,
                      tracker=None, det_interval: int = 1) -> Iterator[VideoFrame]:
        """Every frame of a video -> VideoFrame(index, time, image, people), in order, lazily.

        video: a path, a stream (camera index or URL, read until it ends: stop iterating to stop)
        or an open `VideoReader`. `time` is in seconds: index / fps for a file, the arrival time
        for a stream (where frames that arrive while the model is busy are skipped; see
        `VideoReader(latest_only=)`). People carry a `track_id` (`PoseTracker`, or the `tracker`
        given); smooth: True (`KeypointSmoother` defaults) or a KeypointSmoother also smooths
        their joints over time. Frames go through `predict_batch` frames_per_step at a time
        (default: 8 for a file, 1 for a stream, which would otherwise wait for 8 live frames).

        det_interval: with a detector, run it on every det_interval-th frame only; in between,
        each person's box is the one around their joints in the frame before (`follow_boxes`),
        as pose trackers do. Someone who walks in between two detections appears at the next
        one; frames then go one at a time, since each needs the one before.

            for f in pred.predict_video("clip.mp4", smooth=True):
                print(f.index, f.time, [p.track_id for p in f.people])
        """
        from .smoothing import KeypointSmoother
        from .tracking import PoseTracker, follow_boxes
        from .video import VideoReader

        if int(det_interval) != det_interval or det_interval < 1:
            raise ValueError(f"det_interval must be a whole number >= 1, got {det_interval}")
        follow = self.detector is not None and det_interval > 1
        reader = video if isinstance(video, VideoReader) else VideoReader(video)
        tracker = tracker if tracker is not None else PoseTracker()
        smoother = KeypointSmoother() if smooth is True else (smooth or None)
        step = frames_per_step if frames_per_step is not None else (1 if reader.is_stream else 8)
        index, frames, last = 0, reader.timed_frames(), []
        try:
            while batch := list(itertools.islice(frames, 1 if follow else max(1, int(step)))):
                times, images = zip(*batch)
                boxes = None
                if follow and index % det_interval:
                    h, w = images[0].shape[:2]   # people who walked out of the picture are lost
                    followed = [b for b in follow_boxes(last)
                                if box_to_crop(b[:4], w, h, self.cfg.image_size) is not None]
                    boxes = [followed or None]   # all lost: detect again
                for t, img, people in zip(times, images, self.predict_batch(list(images), boxes)):
                    people = tracker.update(people)
                    if smoother is not None:
                        people = smoother.update(people, t)
                    yield VideoFrame(index, t, img, people)
                    last, index = people, index + 1
        finally:
            if reader is not video:   # opened here, closed here
                reader.close()

    # ------------------------------------------------------------------ pruning trace
    def kept_patches(self, image, box=None, rgb: bool = False) -> dict:
        """Which 16x12-pixel input patches survived each pruning step for one person.

        Returns the model's trace for this crop as numpy arrays of original patch ids
        (0..255, row-major on the 16x16 grid): 'after_block{i}' [n] and, per group (face,
        arms, legs), 'group_entry' and 'after_group_block{j}' lists of 3 arrays; plus 'box'.
        Feed it to `gtpt.inference.draw.draw_pruning(image, box, trace)`.
        """
        if self._torch is None:
            raise RuntimeError("kept_patches needs the PyTorch model; this predictor only has an .onnx file")
        img = to_bgr(image, rgb)
        h, w = img.shape[:2]
        row = _as_boxes(box, w, h)[0]
        crop = box_to_crop(row[:4], w, h, self.cfg.image_size)
        if crop is None:
            raise ValueError(f"box {row[:4].tolist()} lies outside the {w}x{h} image")
        trace = self._torch.trace(make_input(img, *crop, self.cfg.image_size)[None])
        out = {k: ([t[0].cpu().numpy() for t in v] if isinstance(v, list) else v[0].cpu().numpy())
               for k, v in trace.items()}
        out["box"] = row[:4].copy()
        return out


__all__ = ["Predictor", "Person", "StageTimes", "VideoFrame", "UNTRAINED_NOTICE"]
