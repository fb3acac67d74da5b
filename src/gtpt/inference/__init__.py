"""Inference: images and boxes in, people (keypoints in image pixels) out; drawing and video I/O.

`Predictor`, `Person`, `PersonDetector`, `PoseTracker` and `KeypointSmoother` are imported lazily
so that `import gtpt.inference.io` stays light.
"""
from __future__ import annotations


def __getattr__(name):
    if name in ("Predictor", "Person"):
        from . import predictor
        return getattr(predictor, name)
    if name == "PersonDetector":
        from .detector import PersonDetector
        return PersonDetector
    if name == "PoseTracker":
        from .tracking import PoseTracker
        return PoseTracker
    if name == "KeypointSmoother":
        from .smoothing import KeypointSmoother
        return KeypointSmoother
    raise AttributeError(f"module 'gtpt.inference' has no attribute {name!r}")


__all__ = ["Predictor", "Person", "PersonDetector", "PoseTracker", "KeypointSmoother"]
