"""Which device to run on: one check for every entry point (Predictor, gtpt predict/bench/train/eval)."""
from __future__ import annotations

import torch


def check_device(device) -> torch.device:
    """`device` as a torch.device; ValueError naming the problem for an unknown name or a CUDA
    device this PyTorch cannot see (a CPU build, or no GPU)."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"device {device!r}: {e}") from e
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r}: this PyTorch ({torch.__version__}) sees no CUDA device")
    return dev
