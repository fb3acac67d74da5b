"""Training-step throughput: a naive fp32 eager loop vs the optimised loop, synthetic data.

    python benchmarks/train_throughput.py [--model gtpt-t-body] [--batch 64] [--steps 10] [--compile]

naive:     fp32, contiguous NCHW, Adam (for-loop implementation), EMA as a python loop over the
           state dict (what the reference does).
optimised: bf16 autocast (CUDA; on CPU only if --cpu-bf16), channels_last (CUDA), fused Adam
           (CUDA) or foreach Adam, foreach EMA (ModelEma), optionally torch.compile.
Both include the forward of student and teacher, the Global Perceived Loss, backward, Adam and
the EMA update. Prints images/s per variant and the machine.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))   # model_speed, beside this file

from gtpt.engine.ema import ModelEma, ema_momentum  # noqa: E402
from gtpt.engine.loss import GlobalPerceivedLoss  # noqa: E402
from gtpt.models import build_model  # noqa: E402
from model_speed import cpu_name  # noqa: E402


def machine(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{cpu_name()} ({torch.get_num_threads()} threads)"


def naive_ema(ema_sd: dict, live: torch.nn.Module, m: float) -> None:
    for k, v in live.state_dict().items():
        if v.is_floating_point():
            ema_sd[k].mul_(m).add_(v.detach(), alpha=1 - m)
        else:
            ema_sd[k].copy_(v)


def run(variant: str, args, device) -> float:
    torch.manual_seed(0)
    model = build_model(args.model).to(device).train()
    k = model.cfg.num_joints
    wx, wy = model.cfg.simcc_bins
    b = args.batch
    img = torch.randn(b, 3, 256, 192, device=device)
    tx, ty = torch.rand(b, k, wx, device=device), torch.rand(b, k, wy, device=device)
    tw = torch.ones(b, k, device=device)
    loss_fn = GlobalPerceivedLoss()
    cuda = device.type == "cuda"
    if variant == "naive":
        opt = torch.optim.Adam(model.parameters(), lr=1e-3, foreach=False)
        ema_sd = {kk: v.clone() for kk, v in model.state_dict().items()}
        amp, net = None, model
    else:
        if cuda:
            model = model.to(memory_format=torch.channels_last)
            img = img.contiguous(memory_format=torch.channels_last)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True if cuda else None,
                               foreach=None if cuda else True)
        ema = ModelEma(model)
        amp = torch.bfloat16 if (cuda or args.cpu_bf16) else None
        net = torch.compile(model) if variant == "optimised+compile" else model

    def step(i):
        with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
            out = net(img)
        loss, _ = loss_fn({kk: v.float() for kk, v in out.items()}, tx, ty, tw)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if variant == "naive":
            naive_ema(ema_sd, model, ema_momentum(i, 1000))
        else:
            ema.update(model, i, 1000)

    for i in range(args.warmup):
        step(i)
    if cuda:
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for i in range(args.steps):
        step(i)
    if cuda:
        torch.cuda.synchronize()
    return b * args.steps / (time.perf_counter() - t0)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="gtpt-t-body")
    p.add_argument("--batch", type=int, default=None, help="default 64 on CUDA, 4 on CPU")
    p.add_argument("--steps", type=int, default=None, help="timed steps (default 20 CUDA, 3 CPU)")
    p.add_argument("--warmup", type=int, default=None)
    p.add_argument("--compile", action="store_true", help="also time torch.compile")
    p.add_argument("--cpu-bf16", action="store_true", help="use bf16 autocast on CPU too")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args()
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    args.batch = args.batch or (64 if cuda else 4)
    args.steps = args.steps or (20 if cuda else 3)
    args.warmup = args.warmup if args.warmup is not None else (5 if cuda else 1)
    variants = ["naive", "optimised"] + (["optimised+compile"] if args.compile else [])
    print(f"{args.model}, batch {args.batch}, {args.steps} timed steps on {machine(device)}, torch {torch.__version__}")
    print(f"{'variant':<20} {'images/s':>10}")
    base = None
    for v in variants:
        ips = run(v, args, device)
        base = base or ips
        print(f"{v:<20} {ips:10.1f}   (x{ips / base:.2f})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
