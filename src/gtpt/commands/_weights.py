"""Which weights a command runs with (shared by predict, demo, export and bench).

--weights FILE wins; else the package's shipped demo weights; else a randomly initialised
preset, announced loudly, because its keypoints mean nothing.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..assets import DEMO_WEIGHTS
from ..config import PRESETS

DEMO_PRESET = "gtpt-t-body"
UNTRAINED_BANNER = ("!" * 78 + "\n!! UNTRAINED weights: keypoints are meaningless.\n"
                    "!! ({why}; using a randomly initialised {name}.)\n"
                    "!! Pass --weights FILE (a .safetensors from `gtpt train` / `gtpt convert`).\n" + "!" * 78)


@dataclass
class WeightsChoice:
    source: str              # what to hand to Predictor / load_model: a file or a preset name
    expect: Optional[str]    # preset the file must hold (None: any)
    untrained: bool
    description: str


def add_weights_arguments(p, model_help: str = "preset the weights must hold; without --weights, "
                                               "run this preset (demo weights if shipped, else untrained)") -> None:
    p.add_argument("--weights", metavar="FILE",
                   help="model weights: .safetensors, a training .ckpt, the authors' .pth (or an exported .onnx)")
    p.add_argument("--model", choices=list(PRESETS), metavar="NAME",
                   help=f"{model_help}; one of {', '.join(PRESETS)}")


def add_keep_rates_argument(p) -> None:
    p.add_argument("--keep-rates", type=float, nargs=4, metavar="R",
                   help="pruning keep rate per 3 blocks (default: the model's, e.g. 1.0 0.7 0.3 0.1)")


def add_precision_argument(p, runs: str = "torch backend", default: Optional[str] = "fp32") -> None:
    from ..inference.backends import PRECISIONS
    p.add_argument("--precision", choices=PRECISIONS, default=default,
                   help=f"bf16: bfloat16 autocast, {runs} (faster on CPUs with AVX512-BF16 or AMX and on "
                        "recent GPUs; compiled on a GPU: bfloat16 weights)")


def choose_weights(weights: Optional[str], model: Optional[str],
                   why_untrained: str = "no --weights given") -> WeightsChoice:
    """Resolve --weights / --model. Raises FileNotFoundError for a missing --weights file."""
    if weights:
        if not Path(weights).is_file():
            raise FileNotFoundError(f"weights file not found: {weights}")
        return WeightsChoice(weights, model, False, f"{weights}" + (f" (expected {model})" if model else ""))
    if DEMO_WEIGHTS.is_file() and model in (None, DEMO_PRESET):
        card = DEMO_WEIGHTS.with_suffix(".md").name
        return WeightsChoice(str(DEMO_WEIGHTS), DEMO_PRESET, False,
                             f"shipped demo weights {DEMO_WEIGHTS} (gtpt-mini: a few people in a few scenes, "
                             f"not a COCO model; model card: {card})")
    name = model or DEMO_PRESET
    why = why_untrained if model or DEMO_WEIGHTS.is_file() else f"{why_untrained} and no shipped demo weights"
    return WeightsChoice(name, None, True, f"UNTRAINED random {name}: {why}")


def announce(choice: WeightsChoice, file=None) -> None:
    """Always say which weights run; shout when they are untrained."""
    file = file or sys.stdout
    if choice.untrained:
        print(UNTRAINED_BANNER.format(why=choice.description.split(": ", 1)[1], name=choice.source), file=file)
    print(f"weights: {choice.description}", file=file, flush=True)


def load_torch_model(choice: WeightsChoice, keep_rates=None):
    """A GTPT model for the choice (random for an untrained preset; warnings already announced)."""
    from ..models import build_model
    from ..weights import load_weights
    if choice.untrained:
        model = build_model(choice.source)
        if keep_rates is not None:
            model.set_keep_rates(keep_rates)
        return model.eval()
    return load_weights(choice.source, expect=choice.expect, keep_rates=keep_rates)


__all__ = ["DEMO_WEIGHTS", "WeightsChoice", "add_weights_arguments", "add_keep_rates_argument",
           "add_precision_argument", "choose_weights", "announce", "load_torch_model"]
