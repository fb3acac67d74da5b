"""gtpt convert --from-official PATH --model NAME --out FILE"""
from __future__ import annotations

from ..config import PRESETS


def add_arguments(p):
    p.add_argument("--from-official", required=True, metavar="PATH",
                   help="the authors' checkpoint (.pth; plain or wrapped state dict, ema_* keys)")
    p.add_argument("--model", required=True, choices=list(PRESETS), help="the preset it was trained as")
    p.add_argument("--out", required=True, metavar="FILE", help="output .safetensors file")
    p.add_argument("--live-weights", action="store_true",
                   help="take the live (non-EMA) weights instead of the EMA copy used for evaluation")
    p.add_argument("--half", action="store_true", help="store float16 weights (half the size)")


def run(args) -> int:
    import torch

    from ..models.checkpoint import CheckpointError, load_official_checkpoint, save_model
    try:
        model = load_official_checkpoint(args.from_official, args.model, use_ema=not args.live_weights)
    except (CheckpointError, FileNotFoundError) as e:
        print(f"gtpt convert: error: {e}")
        return 1
    out = save_model(model, args.out, metadata={"source": f"official checkpoint {args.from_official}",
                                                "weights": "live" if args.live_weights else "ema"},
                     dtype=torch.float16 if args.half else None)
    print(f"wrote {out} ({args.model}, {'live' if args.live_weights else 'EMA'} weights)")
    return 0
