"""gtpt convert (--from-official PATH [--model NAME] | --from-training RUN/last.ckpt) --out FILE

Both sources end as this package's .safetensors (weights + config, nothing pickled): the authors'
checkpoints, or the weights of one of our training runs without its optimiser and RNG state
(the release step; `--half` halves the size).
"""
from __future__ import annotations

from ..config import PRESETS


def add_arguments(p):
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--from-official", metavar="PATH",
                     help="the authors' checkpoint (.pth; plain or wrapped state dict, ema_* keys)")
    src.add_argument("--from-training", metavar="CKPT",
                     help="a `gtpt train` checkpoint (RUN/last.ckpt); its config names the preset")
    p.add_argument("--model", choices=list(PRESETS),
                   help="the preset the official checkpoint was trained as (default: read from its shapes)")
    p.add_argument("--out", required=True, metavar="FILE", help="output .safetensors file")
    p.add_argument("--live-weights", action="store_true",
                   help="take the live (non-EMA) weights instead of the EMA copy used for evaluation")
    p.add_argument("--half", action="store_true", help="store float16 weights (half the size)")
    p.add_argument("--note", default=None, help="free text stored in the file's metadata (e.g. a model card link)")


def _from_training(path: str, live: bool):
    """(model, metadata) from a training checkpoint's EMA (or live) weights."""
    from ..engine.state import model_from_checkpoint
    model, ckpt = model_from_checkpoint(path, live=live, hint="; pass --live-weights")
    meta = {"source": f"gtpt training checkpoint {path}", "weights": "live" if live else "ema",
            "epoch": int(ckpt["epoch"]), "global_step": int(ckpt["global_step"])}
    return model, meta


def run(args) -> int:
    import torch

    from ..models.checkpoint import CheckpointError, load_official_checkpoint, save_model
    try:
        if args.from_official:
            model = load_official_checkpoint(args.from_official, args.model, use_ema=not args.live_weights)
            meta = {"source": f"official checkpoint {args.from_official}",
                    "weights": "live" if args.live_weights else "ema"}
        else:
            model, meta = _from_training(args.from_training, args.live_weights)
    except (CheckpointError, FileNotFoundError, ValueError) as e:
        print(f"gtpt convert: error: {e}")
        return 1
    if args.note:
        meta["note"] = args.note
    out = save_model(model, args.out, metadata=meta, dtype=torch.float16 if args.half else None)
    print(f"wrote {out} ({model.cfg.name}, {meta['weights']} weights{', float16' if args.half else ''})")
    return 0
