"""gtpt: GTPT (Group-based Token Pruning Transformer, ECCV 2024) for 2D human pose estimation.

Public API:
    build_model(name)                         a fresh preset (gtpt-{t,s,b}-{body,wholebody})
    load_weights(path)                        any weights file: .safetensors, training .ckpt, the authors' .pth
    load_model(path)                          weights saved by this package (safetensors)
    load_official_checkpoint(path[, name])    the authors' released checkpoints (preset read from the shapes)
    Predictor(weights_or_preset, ...)         images/boxes in, people out
    PersonDetector(yolo_onnx)                 person boxes from an ultralytics YOLO ONNX export
"""
from .config import PRESETS, ModelConfig, get_model_config
from .models import GTPT, build_model
from .models.checkpoint import CheckpointError, load_model, load_official_checkpoint, save_model
from .weights import load_weights

__version__ = "0.1.0"


def __getattr__(name):
    # the inference stack pulls in OpenCV and friends; import it only when asked for
    if name == "Predictor":
        from .inference.predictor import Predictor
        return Predictor
    if name == "PersonDetector":
        from .inference.detector import PersonDetector
        return PersonDetector
    raise AttributeError(f"module 'gtpt' has no attribute {name!r}")


__all__ = ["GTPT", "ModelConfig", "PRESETS", "Predictor", "PersonDetector", "CheckpointError", "build_model",
           "get_model_config", "load_model", "load_official_checkpoint", "load_weights", "save_model"]
