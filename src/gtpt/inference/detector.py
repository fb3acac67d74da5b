"""Person boxes from a YOLO detector exported to ONNX by ultralytics (`yolo export format=onnx`).

GTPT is top-down: it needs a box per person. Nothing can be downloaded at run time and OpenCV 5
ships no people detector, so the user brings one: any ultralytics detection export, in either
output layout it writes:

* raw head, [1, 4 + classes, anchors] (YOLOv8, YOLO11, ...): box centre/size and class scores per
  anchor; boxes are kept where the best class is a person above `score_thr`, then NMS;
* end-to-end, [1, detections, 6] (YOLOv10, YOLO26, `nms=True` exports): x1, y1, x2, y2, score,
  class, already suppressed.

Pre- and post-processing follow ultralytics' own predictor so that the same file gives the same
boxes here as `YOLO("model.onnx").predict(classes=[0])` (checked in tests/test_detector.py against
boxes ultralytics wrote): a centred letterbox with grey 114 padding, RGB in 0..1, and boxes mapped
back through the same rounded padding.

    >>> det = PersonDetector("yolo11n.onnx")
    >>> det("photo.jpg")              # [N, 5]: x, y, w, h, score (image pixels, best first)
"""
from __future__ import annotations

import ast
from pathlib import Path
from typing import Optional

import cv2
import numpy as np

from .io import InputError, to_bgr

PAD_VALUE = 114        # ultralytics' letterbox grey
MAX_DETECTIONS = 300   # ultralytics' max_det


def _literal(text, kind):
    """A metadata value written by ultralytics ("{0: 'person', ...}", "[640, 640]") parsed as a
    Python literal of type `kind` (never run as code); None if absent or of another form."""
    try:
        value = ast.literal_eval(text) if text else None
    except (ValueError, SyntaxError):
        return None
    return value if isinstance(value, kind) else None


class PersonDetector:
    """ONNX person detector: image in, boxes [N, 5] (x, y, w, h, score; image pixels) out.

    score_thr: the detector's confidence threshold (ultralytics' `conf`, default 0.25).
    nms_thr: IoU above which a lower-scoring box is suppressed (raw-head exports; `iou`, 0.7).
    person_class: the class index of "person"; default: the class named "person" in the file's
        metadata (ultralytics writes the class names there), else 0 (COCO-trained models).
    """

    def __init__(self, path, device: str = "cpu", score_thr: float = 0.25, nms_thr: float = 0.7,
                 person_class: Optional[int] = None, threads: Optional[int] = None):
        from ..export import _session
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: no such detector file")
        if not 0 <= score_thr < 1 or not 0 < nms_thr <= 1:
            raise ValueError(f"score_thr must lie in [0, 1) and nms_thr in (0, 1], got {score_thr}, {nms_thr}")
        self.score_thr, self.nms_thr = float(score_thr), float(nms_thr)
        try:
            self.session = _session(str(self.path), device, threads)
        except ImportError:
            raise
        except Exception as e:
            raise InputError(f"{self.path}: onnxruntime cannot load it as a model ({e})") from e
        meta = self.session.get_modelmeta().custom_metadata_map
        if meta.get("task", "detect") != "detect":
            raise InputError(f"{self.path}: an ultralytics '{meta['task']}' model; a detection model is needed")
        names = _literal(meta.get("names"), dict) or {}
        if person_class is None:
            person_class = next((i for i, n in names.items() if n == "person"), 0)
        self.person_class = int(person_class)
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        shape = inputs[0].shape
        if len(inputs) != 1 or len(shape) != 4 or shape[1] != 3:
            raise InputError(f"{self.path}: expected one image input [1, 3, H, W], got "
                             f"{[i.shape for i in inputs]}")
        if len(outputs) != 1:
            raise InputError(f"{self.path}: expected one output (boxes and class scores), got "
                             f"{len(outputs)}: {[o.name for o in outputs]}")
        # exports with dynamic axes leave H, W symbolic: then the size they were exported at
        # (ultralytics' metadata 'imgsz'), else ultralytics' default 640
        size = _literal(meta.get("imgsz"), list)
        size = size if size and len(size) == 2 else [640, 640]
        self.input_size = tuple(s if isinstance(s, int) else int(d) for s, d in zip(shape[2:], size))  # (H, W)
        self.input_name, self.output_name = inputs[0].name, outputs[0].name
        self.end_to_end = self._layout(outputs[0].shape)

    def _layout(self, shape) -> bool:
        """True for the end-to-end layout [1, N, 6], False for the raw head [1, 4 + C, N]."""
        if len(shape) == 3 and shape[-1] == 6 and (not isinstance(shape[1], int) or shape[1] > 6):
            return True
        if len(shape) == 3 and isinstance(shape[1], int) and shape[1] > 4:
            if self.person_class >= shape[1] - 4:
                raise InputError(f"{self.path}: person class {self.person_class} but the model has "
                                 f"{shape[1] - 4} classes")
            return False
        raise InputError(f"{self.path}: output shape {shape} is neither an ultralytics detection head "
                         f"[1, 4 + classes, anchors] nor an end-to-end [1, detections, 6]")

    def __repr__(self) -> str:
        if not hasattr(self, "end_to_end"):   # __init__ raised (tracebacks print the half-made object)
            return f"PersonDetector({getattr(self, 'path', '?')}, not loaded)"
        kind = "end-to-end" if self.end_to_end else "raw head + NMS"
        return (f"PersonDetector({self.path.name}, {kind}, input {self.input_size[1]}x{self.input_size[0]}, "
                f"score_thr={self.score_thr}, nms_thr={self.nms_thr})")

    # ------------------------------------------------------------------ pre/post-processing
    def letterbox(self, img: np.ndarray):
        """BGR [h, w, 3] -> (input [1, 3, H, W] float32 RGB in 0..1, (sx, sy, pad_x, pad_y)):
        an image point (u, v) lands on (u * sx + pad_x, v * sy + pad_y) in the input."""
        h, w = img.shape[:2]
        in_h, in_w = self.input_size
        gain = min(in_h / h, in_w / w)
        new_w, new_h = max(int(round(w * gain)), 1), max(int(round(h * gain)), 1)
        if (new_w, new_h) != (w, h):
            img = cv2.resize(img, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
        dw, dh = (in_w - new_w) / 2, (in_h - new_h) / 2
        # ultralytics splits an odd padding with these -0.1/+0.1 roundings; boxes are mapped back the same way
        top, bottom = int(round(dh - 0.1)), int(round(dh + 0.1))
        left, right = int(round(dw - 0.1)), int(round(dw + 0.1))
        img = cv2.copyMakeBorder(img, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(PAD_VALUE,) * 3)
        x = img[..., ::-1].transpose(2, 0, 1)[None].astype(np.float32) / 255.0
        # the resized image is exactly new_w x new_h: map boxes back with those per-axis scales
        return np.ascontiguousarray(x), (new_w / w, new_h / h, left, top)

    def _candidates(self, out: np.ndarray):
        """Network output for one image -> (boxes [n, 4] x1 y1 x2 y2 in input pixels, scores [n])."""
        if self.end_to_end:
            keep = (out[:, 4] > self.score_thr) & (out[:, 5].round() == self.person_class)
            return out[keep, :4], out[keep, 4]
        pred = out.T                                    # [anchors, 4 + C]
        cls = pred[:, 4:]
        best = cls.argmax(1)
        score = cls[np.arange(len(cls)), best]
        keep = (best == self.person_class) & (score > self.score_thr)
        cxcywh, score = pred[keep, :4], score[keep]
        boxes = np.concatenate([cxcywh[:, :2] - cxcywh[:, 2:] / 2, cxcywh[:, :2] + cxcywh[:, 2:] / 2], axis=1)
        if len(boxes):
            xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)
            idx = np.asarray(cv2.dnn.NMSBoxes(xywh.astype(np.float64).tolist(), score.astype(float).tolist(),
                                              self.score_thr, self.nms_thr), dtype=np.int64).reshape(-1)
            boxes, score = boxes[idx], score[idx]
        return boxes, score

    def __call__(self, image, rgb: bool = False) -> np.ndarray:
        """One image (path, BGR array, RGB array with rgb=True, PIL image) -> [N, 5] float64
        x, y, w, h, score in image pixels, highest score first (at most 300)."""
        img = to_bgr(image, rgb)
        h, w = img.shape[:2]
        x, (sx, sy, pad_x, pad_y) = self.letterbox(img)
        out = self.session.run([self.output_name], {self.input_name: x})[0]
        boxes, scores = self._candidates(out[0])
        order = np.argsort(-scores, kind="stable")[:MAX_DETECTIONS]
        boxes, scores = boxes[order].astype(np.float64), scores[order].astype(np.float64)
        boxes = (boxes - [pad_x, pad_y, pad_x, pad_y]) / [sx, sy, sx, sy]
        boxes = boxes.clip(0, [w, h, w, h])
        return np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2], scores[:, None]], axis=1)


__all__ = ["PersonDetector"]
