"""Inference: images and boxes in, people (keypoints in image pixels) out; drawing and video I/O.

`Predictor`, `Person`, `PersonDetector`, `PoseTracker` and `KeypointSmoother` are imported lazily
so that `import gtpt.inference.io` stays light.
"""
from __future__ import annotations


import importlib

_LAZY = {"Predictor": "predictor", "Person": "predictor", "PersonDetector": "detector",
         "PoseTracker": "tracking", "KeypointSmoother": "smoothing"}   # name -> module in this package


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'gtpt.inference' has no attribute {name!r}")


__all__ = list(_LAZY)
