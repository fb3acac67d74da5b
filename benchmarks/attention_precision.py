"""How far each attention kernel's bf16 output lies from a float64 reference, at GTPT's shapes.

Prints a table: kernel, query/key length, logit sharpness, max and mean |error|, both relative to
the output's standard deviation. It separates a kernel's own rounding from what a whole model adds
(model_speed.py --check compares whole-model logits, where one flipped pruning choice can dominate).

    PYTHONPATH=src python benchmarks/attention_precision.py --device cuda

Kernels: the SDPA backends this machine has (cuDNN, FlashAttention-2, mem-efficient, math), the
explicit softmax(q k^T) v in bf16 ("plain"), and FlexAttention under torch.compile ("flex").
Shapes: GTPT-T body (8 heads of width 16, scale 128**-0.5), 257 tokens (coarse blocks: 256 patches
and the human token), 94 (a fine block after pruning) and 185 queries on 196 keys (a group attention). "sharpness" scales q and k so that the
logits' standard deviation is about 1 (near uniform attention) or 4 (a few keys dominate).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

HEADS, HEAD_DIM, SCALE = 8, 16, 128 ** -0.5
BACKENDS = {"cudnn": SDPBackend.CUDNN_ATTENTION, "flash": SDPBackend.FLASH_ATTENTION,
            "mem_efficient": SDPBackend.EFFICIENT_ATTENTION, "math": SDPBackend.MATH}


def kernels(device: torch.device) -> dict:
    """name -> f(q, k, v) for bf16 [B, H, N, d] inputs."""
    def sdpa(backend):
        def run(q, k, v):
            with sdpa_kernel([backend]):
                return F.scaled_dot_product_attention(q, k, v, scale=SCALE)
        return run

    found = {name: sdpa(b) for name, b in BACKENDS.items() if device.type == "cuda" or name == "math"}
    found["plain"] = lambda q, k, v: ((q @ k.transpose(-2, -1)) * SCALE).softmax(-1) @ v
    try:
        from torch.nn.attention.flex_attention import flex_attention
        flex = torch.compile(flex_attention, dynamic=False)
        found["flex"] = lambda q, k, v: flex(q, k, v, scale=SCALE)
    except ImportError:
        pass
    return found


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--lengths", nargs="+", default=["257", "94", "185:196"],
                   help="query lengths, or QUERIES:KEYS (185:196 is Multi-Head Group Attention after the "
                        "first pruning step: 6 + 179 tokens per group, 17 + 179 keys)")
    p.add_argument("--sharpness", type=float, nargs="+", default=[1.0, 4.0])
    p.add_argument("--out", help="also write the table to this file")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    torch.manual_seed(0)
    lines = [f"machine: {torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'}, "
             f"torch {torch.__version__}, batch {args.batch}, {HEADS} heads x {HEAD_DIM}",
             f"{'kernel':<15}{'tokens':>7}{'sharpness':>10}{'max|err|/std':>14}{'mean|err|/std':>15}"]
    print("\n".join(lines), flush=True)
    runs = kernels(device)
    for length in args.lengths:
        lq, _, lk = length.partition(":")
        lq, lk = int(lq), int(lk or lq)
        for sharp in args.sharpness:
            # q.k has std sqrt(d) * s^2 for q, k ~ N(0, s^2); times SCALE it is `sharp`
            s = (sharp / (SCALE * HEAD_DIM ** 0.5)) ** 0.5
            q, k, v = (torch.randn(args.batch, HEADS, n, HEAD_DIM, device=device, dtype=torch.float64)
                       for n in (lq, lk, lk))
            q, k = q * s, k * s
            q, k, v = (t.bfloat16() for t in (q, k, v))   # every kernel sees the same rounded inputs
            ref = ((q.double() @ k.double().transpose(-2, -1)) * SCALE).softmax(-1) @ v.double()
            std = ref.std().item()
            for name, run in runs.items():
                try:
                    out = run(q, k, v).double()
                except RuntimeError as e:   # a backend this GPU or shape does not support
                    lines.append(f"{name:<15}{length:>7}{sharp:>10.0f}  unavailable: {str(e).splitlines()[0][:60]}")
                    print(lines[-1], flush=True)
                    continue
                err = (out - ref).abs()
                lines.append(f"{name:<15}{length:>7}{sharp:>10.0f}{err.max().item() / std:>14.4f}"
                             f"{err.mean().item() / std:>15.5f}")
                print(lines[-1], flush=True)
    if args.out:
        Path(args.out).write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
