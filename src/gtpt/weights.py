"""Any weights file gtpt reads, told apart by its kind: the one loader behind every command
(`--weights`, `--checkpoint`, `train.init_weights`) and `Predictor`.

    .safetensors              this package's format (`save_model`): config and weights
    .ckpt                     a training checkpoint of `gtpt train`: its EMA weights, as evaluation uses
    .pth .pt .tar .bin        the authors' released checkpoints (their EMA weights); the preset is read
                              from the shapes unless named

Nothing is unpickled but tensors and plain containers (`models.checkpoint.load_weights_only`).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Sequence, Union

from .models.checkpoint import CheckpointError, load_model, load_official_checkpoint
from .models.gtpt import GTPT

OFFICIAL_SUFFIXES = (".pth", ".pt", ".tar", ".bin")
SUFFIXES = (".safetensors", ".ckpt") + OFFICIAL_SUFFIXES


def load_weights(path: Union[str, os.PathLike], expect: Optional[str] = None,
                 keep_rates: Optional[Sequence[float]] = None) -> GTPT:
    """An eval-mode GTPT from any weights file above.

    expect: the preset the file must hold (a clear error otherwise; for an official checkpoint, the
    preset to build). keep_rates: instead of the file's own (or the preset's) pruning rates.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such weights file")
    if suffix == ".safetensors":
        return load_model(path, keep_rates=keep_rates, expect=expect)
    if suffix in OFFICIAL_SUFFIXES:
        return load_official_checkpoint(path, expect, keep_rates=keep_rates)
    if suffix == ".ckpt":
        from .engine.state import model_from_checkpoint
        model = model_from_checkpoint(path, hint="; take its live weights with "
                                                 "`gtpt convert --from-training FILE --live-weights`")[0]
        if expect is not None and model.cfg.name != expect:
            raise CheckpointError(f"{path} holds weights for '{model.cfg.name}', not '{expect}'")
        if keep_rates is not None:
            model.set_keep_rates(keep_rates)
        return model
    if suffix == ".onnx":
        raise CheckpointError(f"{path}: this needs PyTorch weights, not an exported .onnx graph")
    raise CheckpointError(f"{path}: unknown weights file kind '{suffix}' (expected {', '.join(SUFFIXES)})")


__all__ = ["load_weights", "OFFICIAL_SUFFIXES", "SUFFIXES"]
