"""Max |ours - reference| on the authors' fixture logits, on any device, eager / bf16 / compiled.

    python benchmarks/fidelity.py --fixture ../shared/fixtures/official/pose_gtpt_t_human.pt --device cuda
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from gtpt import load_official_checkpoint  # noqa: E402
from gtpt.models.fusion import deployment_copy  # noqa: E402

NAMES = {17: "gtpt-t-body", 133: "gtpt-t-wholebody"}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--fixture", required=True)
    p.add_argument("--device", default="cpu")
    p.add_argument("--compile", action="store_true")
    args = p.parse_args(argv)
    torch.backends.cuda.matmul.allow_tf32 = False  # fidelity in true fp32
    torch.backends.cudnn.allow_tf32 = False
    fx = torch.load(args.fixture, weights_only=True)
    name = NAMES[fx["config"]["num_joints"]]
    model = load_official_checkpoint(fx["state_dict"], name).to(args.device)
    x, ref = fx["x"].to(args.device), fx["eval"]
    variants = {"eager fp32": (model, False), "folded fp32": (deployment_copy(model, args.device), False),
                "eager bf16": (model, True)}
    if args.compile:
        variants["compiled fp32"] = (torch.compile(model, dynamic=False), False)
    print(f"{name} on {args.device}: max |ours - reference| over eval logits (x, y)")
    for label, (fn, bf16) in variants.items():
        with torch.inference_mode(), torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
            px, py = fn(x)
            fpx, _ = fn(x.flip(3))
        dx = (px.float().cpu() - ref["pred_x"]).abs().max().item()
        dy = (py.float().cpu() - ref["pred_y"]).abs().max().item()
        df = (fpx.float().cpu() - ref["flip_pred_x"]).abs().max().item()
        scale = ref["pred_x"].abs().max().item()
        print(f"  {label:<14} x {dx:.2e}  y {dy:.2e}  flip-x {df:.2e}  (logit range {scale:.2f})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
