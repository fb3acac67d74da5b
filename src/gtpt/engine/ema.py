"""Exponential moving average of a model's full state, kept beside the model (outside DDP).

The recipe averages parameters AND BatchNorm buffers after every optimiser step:
    ema = m * ema + (1 - m) * live,   m = 1 - (1 - m0) * (cos(pi * step / total) + 1) / 2
so m rises from m0 (0.996) at step 0 to 1.0 at the last step. Floating tensors are updated
with one fused `_foreach_lerp_` (one kernel launch per tensor group on CUDA, not per tensor);
integer buffers (BatchNorm's num_batches_tracked) are copied.
"""
from __future__ import annotations

import copy
import math

import torch
from torch import nn


def ema_momentum(step: int, total_steps: int, base: float = 0.996, warmup: bool = False) -> float:
    """Cosine rise of the EMA momentum from `base` (step 0) to 1.0 (step == total_steps).

    warmup caps it at (1 + step) / (10 + step), so the average follows the live weights early
    on instead of staying near the random start. The recipe has no warm-up, which is harmless
    over its ~176k steps; over a few thousand steps the EMA would still be mostly the random
    initialisation (after 200 steps of a 200-step run, about two thirds of it).
    """
    if total_steps <= 0:
        return 1.0
    t = min(max(step / total_steps, 0.0), 1.0)
    m = 1.0 - (1.0 - base) * (math.cos(math.pi * t) + 1.0) / 2.0
    return min(m, (1.0 + step) / (10.0 + step)) if warmup else m


def unwrap_model(model: nn.Module) -> nn.Module:
    """The plain module behind DDP and/or torch.compile wrappers."""
    while True:
        if hasattr(model, "module") and isinstance(model.module, nn.Module):  # DDP / DataParallel
            model = model.module
        elif hasattr(model, "_orig_mod"):                                    # torch.compile
            model = model._orig_mod
        else:
            return model


class ModelEma:
    """EMA copy of `model` (a deep copy, eval mode, no gradients).

    Use `ema.module` for evaluation; `update(model, step, total_steps)` after each optimiser step.
    """

    def __init__(self, model: nn.Module, momentum: float = 0.996, warmup: bool = False):
        self.module = copy.deepcopy(unwrap_model(model)).eval()
        self.warmup = warmup
        self.module.requires_grad_(False)
        self.base_momentum = float(momentum)
        self._float_names, self._other_names = [], []
        for name, t in self.module.state_dict().items():
            (self._float_names if t.is_floating_point() else self._other_names).append(name)

    @staticmethod
    def _tensors(module: nn.Module, names: list[str]) -> list[torch.Tensor]:
        # state_dict(keep_vars) gives the live storage (not detached copies) to update in place
        sd = module.state_dict(keep_vars=True)
        return [sd[n].data if isinstance(sd[n], nn.Parameter) else sd[n] for n in names]

    @torch.no_grad()
    def update(self, model: nn.Module, step: int, total_steps: int) -> float:
        """Blend the live weights in with the scheduled momentum; returns the momentum used."""
        m = ema_momentum(step, total_steps, self.base_momentum, self.warmup)
        live = unwrap_model(model)
        ema_f = self._tensors(self.module, self._float_names)
        live_f = [t.detach() for t in self._tensors(live, self._float_names)]
        if m < 1.0:
            # lerp_(ema, live, w) = ema + w * (live - ema) = m * ema + (1 - m) * live with w = 1 - m
            torch._foreach_lerp_(ema_f, live_f, 1.0 - m)
        for e, l in zip(self._tensors(self.module, self._other_names),
                        self._tensors(live, self._other_names)):
            e.copy_(l)
        return m

    def state_dict(self) -> dict:
        return self.module.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state, strict=True)

    def to(self, *args, **kwargs) -> "ModelEma":
        self.module.to(*args, **kwargs)
        return self


def build_ema(model: nn.Module, momentum: float = 0.996) -> ModelEma:
    return ModelEma(model, momentum)


__all__ = ["ModelEma", "build_ema", "ema_momentum", "unwrap_model"]
