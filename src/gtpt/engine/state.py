"""Resumable training state: RNG snapshots and atomic checkpoint files.

Checkpoints are read back with `torch.load(weights_only=True)`, so everything stored here is a
tensor or a primitive container (no pickled numpy or python objects): the numpy and python RNG
states are converted to int64 tensors and plain numbers.
"""
from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch


def get_rng_state() -> dict:
    """Python, numpy, torch CPU and (if present) CUDA generator states as tensors/primitives."""
    version, py_state, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": {"version": int(version), "state": torch.tensor(py_state, dtype=torch.int64),
                   "gauss": gauss},
        "numpy": {"name": str(name), "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    return state


def set_rng_state(state: dict) -> None:
    """Inverse of `get_rng_state`."""
    py = state["python"]
    random.setstate((py["version"], tuple(int(v) for v in py["state"].tolist()), py["gauss"]))
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def atomic_save(obj, path) -> Path:
    """torch.save to a temporary file in the same folder, fsync, then os.replace.

    A kill at any moment leaves either the old file or the new one, never a torn file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def load_checkpoint(path, map_location="cpu") -> dict:
    """A training checkpoint (weights_only: nothing is unpickled but tensors and containers)."""
    from ..models.checkpoint import load_weights_only
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    ckpt = load_weights_only(path, map_location)
    if not isinstance(ckpt, dict) or ckpt.get("format") != CKPT_FORMAT:
        raise ValueError(f"{path} is not a gtpt training checkpoint (format {CKPT_FORMAT!r})")
    return ckpt


def model_from_checkpoint(path, model_cfg=None, live: bool = False, hint: str = ""):
    """(eval-mode GTPT, checkpoint dict) from a training checkpoint's EMA weights (or live ones).

    model_cfg: the ModelConfig to build (e.g. with other keep rates); default the run's own.
    hint: appended to the error when the run kept no EMA copy.
    """
    from ..models import build_model
    from ..models.checkpoint import CheckpointError
    from .experiment import experiment_from_dict
    ckpt = load_checkpoint(path)
    key = "model" if live else "ema"
    if not ckpt.get(key):
        raise CheckpointError(f"{path} has no EMA weights (trained with train.ema=false){hint}")
    if model_cfg is None:
        model_cfg = experiment_from_dict(ckpt["config"], source=f"{path} (config)").model
    model = build_model(model_cfg)
    model.load_state_dict(ckpt[key], strict=True)
    return model.eval(), ckpt


CKPT_FORMAT = "gtpt-train-1"

__all__ = ["get_rng_state", "set_rng_state", "atomic_save", "load_checkpoint", "CKPT_FORMAT"]
