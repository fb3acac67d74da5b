"""Network speed (eval path, pruning on, random input) against the reference implementation's figures.

    python benchmarks/model_speed.py                                # CPU, GTPT-T body, batch 1 and 32
    python benchmarks/model_speed.py --device cuda --batch 1 1024 --modes eager-fp32 eager-bf16 compile-bf16 graph-fp32

Modes: eager-fp32, eager-bf16 (autocast), compile-fp32 / compile-bf16 (torch.compile, inductor),
graph-fp32 / graph-bf16 (torch.compile with CUDA graphs, "reduce-overhead"). Every mode runs a
BatchNorm-folded, channels-last deployment copy. The reference figures come from
`shared/docs/recipe.md` (the authors' code, eager, same machine kinds). Prints a table; with
--out, also appends each row to a file as it is measured.
"""
from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from gtpt import build_model  # noqa: E402
from gtpt.models.fusion import deployment_copy  # noqa: E402

# (device kind, model, batch, precision) -> reference images/s (recipe.md, the authors' code, eager)
REFERENCE = {
    ("cpu", "gtpt-t-body", 1, "fp32"): 1 / 0.038, ("cpu", "gtpt-t-body", 32, "fp32"): 26.0,
    ("cpu", "gtpt-s-body", 1, "fp32"): 1 / 0.057, ("cpu", "gtpt-b-body", 1, "fp32"): 1 / 0.076,
    ("cuda", "gtpt-t-body", 1, "fp32"): 1 / 0.0081,
    ("cuda", "gtpt-t-body", 1024, "fp32"): 7120.0, ("cuda", "gtpt-t-body", 1024, "bf16"): 8326.0,
    ("cuda", "gtpt-s-body", 1024, "fp32"): 4464.0, ("cuda", "gtpt-s-body", 1024, "bf16"): 5921.0,
    ("cuda", "gtpt-b-body", 1024, "fp32"): 2783.0, ("cuda", "gtpt-b-body", 1024, "bf16"): 3600.0,
    ("cuda", "gtpt-t-wholebody", 1024, "fp32"): 5558.0, ("cuda", "gtpt-t-wholebody", 1024, "bf16"): 6512.0,
}


def machine(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)}, torch {torch.__version__}"
    name = platform.processor() or "CPU"
    try:
        name = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{name}, {torch.get_num_threads()} threads, torch {torch.__version__}"


def make_runner(model, mode: str, device: torch.device):
    kind, precision = mode.split("-")
    model = deployment_copy(model, device, channels_last=True)  # faster convolutions on CPU and GPU
    fn = model
    if kind == "compile":
        fn = torch.compile(model, dynamic=False)
    elif kind == "graph":
        fn = torch.compile(model, dynamic=False, mode="reduce-overhead")

    def run(x):
        with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            return fn(x)
    return run, precision


def time_it(run, x, device, warmup: int, repeats: int, min_seconds: float) -> float:
    """Median seconds per call; each timed sample runs enough calls to last min_seconds."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(warmup):
        run(x)
    sync()
    t = time.perf_counter()
    run(x)
    sync()
    calls = max(1, int(min_seconds / max(time.perf_counter() - t, 1e-6)))
    samples = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(calls):
            run(x)
        sync()
        samples.append((time.perf_counter() - t) / calls)
    return statistics.median(samples)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--models", nargs="+", default=["gtpt-t-body"])
    p.add_argument("--batch", nargs="+", type=int, default=[1, 32])
    p.add_argument("--modes", nargs="+", default=["eager-fp32"])
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--min-seconds", type=float, default=0.5, help="per timed sample")
    p.add_argument("--out", help="append rows to this file as they are measured")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    header = f"{'model':<18}{'mode':<14}{'batch':>6}{'ms/batch':>11}{'images/s':>11}{'reference':>11}{'speed-up':>10}"
    lines = [f"machine: {machine(device)}", header]
    print("\n".join(lines), flush=True)
    out = open(args.out, "a") if args.out else None
    if out:
        out.write("\n".join(lines) + "\n")
        out.flush()
    for name in args.models:
        model = build_model(name).eval()
        for mode in args.modes:
            run, precision = make_runner(model, mode, device)
            for b in args.batch:
                x = torch.randn(b, 3, *model.cfg.image_size, device=device)
                x = x.contiguous(memory_format=torch.channels_last)
                sec = time_it(run, x, device, args.warmup, args.repeats, args.min_seconds)
                ref = REFERENCE.get((device.type, name, b, precision))
                row = (f"{name:<18}{mode:<14}{b:>6}{sec * 1e3:>11.2f}{b / sec:>11.1f}"
                       f"{(f'{ref:.1f}' if ref else '-'):>11}{(f'x{b / sec / ref:.2f}' if ref else '-'):>10}")
                print(row, flush=True)
                if out:
                    out.write(row + "\n")
                    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
