"""CPU inference paths side by side: memory layout, micro-batch size and onnxruntime, timed in one process.

    python benchmarks/cpu_paths.py --batch 64 --threads 2                 # GTPT-T body, fp32
    python benchmarks/cpu_paths.py --batch 64 --precision bf16 --micro-batches 4 8 16
    python benchmarks/cpu_paths.py --model gtpt-b-body --batch 16 --no-onnxruntime
    python benchmarks/cpu_paths.py --batch 1 --exporters torchscript dynamo   # the two ONNX exporters' graphs
    python benchmarks/cpu_paths.py --batch 32 --int8                   # + the int8-quantized graph

Rows (all run the BatchNorm-folded deployment copy, pruning on, the same random input):
  nchw             contiguous layout, the whole batch in one forward (the Predictor's CPU path before
                   channels-last and micro-batches)
  cl               channels-last, the whole batch at once
  cl/mbN           channels-last, N images per forward (`TorchRunner`'s CPU default is
                   gtpt.inference.backends.CPU_MICRO_BATCH)
  onnxruntime      the exported graph (float32 only), the whole batch at once; with --exporters both,
                   one row per ONNX exporter (onnxruntime/torchscript, onnxruntime/dynamo); with --int8
                   also the int8-quantized graph (onnxruntime/int8; its max|Δ| is not a bug)
Shared machines drift by 10-30 % within minutes, so the rows are timed in turn, sample by sample, and
compared by their medians; each sample repeats its call for at least --min-seconds, since switching
between torch's and onnxruntime's thread pools costs the first calls after a switch (at batch 1, timed
call by call, onnxruntime's median doubled). `max|Δ|` is each row's largest logit difference from the
nchw row.
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
from gtpt.export import EXPORTERS  # noqa: E402
from gtpt.inference.backends import CPU_MICRO_BATCH, PRECISIONS, OnnxRunner, cached_onnx, in_micro_batches  # noqa: E402
from gtpt.models.fusion import deployment_copy  # noqa: E402


def torch_path(model, channels_last: bool, micro_batch, bf16: bool):
    net = deployment_copy(model, "cpu", channels_last=channels_last)

    def run(x: torch.Tensor):
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            return [t.float() for t in in_micro_batches(net, x, micro_batch)]
    return run


def onnx_path(model, cache_dir, threads, exporter, int8=False):
    runner = OnnxRunner(cached_onnx(model, model.keep_rates, cache_dir=cache_dir, exporter=exporter, int8=int8),
                        threads=threads)
    return lambda x: list(runner(x.numpy()))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="gtpt-t-body")
    p.add_argument("--batch", type=int, default=64, help="images per call (the Predictor's 32 people, flip test)")
    p.add_argument("--micro-batches", nargs="+", type=int, default=[2, CPU_MICRO_BATCH, 8])
    p.add_argument("--precision", choices=PRECISIONS, default="fp32")
    p.add_argument("--threads", type=int, help="CPU threads (default: torch's)")
    p.add_argument("--samples", type=int, default=5, help="timed samples per row")
    p.add_argument("--min-seconds", type=float, default=0.3, help="each sample repeats the call for this long")
    p.add_argument("--no-onnxruntime", action="store_true")
    p.add_argument("--onnx-cache", help="folder for the exported graph (default: gtpt's cache)")
    p.add_argument("--exporters", nargs="+", choices=EXPORTERS, default=["auto"],
                   help="ONNX exporters for the onnxruntime rows (gtpt.export.EXPORTERS)")
    p.add_argument("--int8", action="store_true", help="also the int8-quantized onnxruntime graph")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = build_model(args.model).eval()
    bf16 = args.precision == "bf16"
    rows = {"nchw": torch_path(model, False, None, bf16), "cl": torch_path(model, True, None, bf16)}
    rows.update({f"cl/mb{n}": torch_path(model, True, n, bf16) for n in args.micro_batches})
    if not args.no_onnxruntime and not bf16:
        try:
            for e in args.exporters:
                name = "onnxruntime" if len(args.exporters) == 1 else f"onnxruntime/{e}"
                rows[name] = onnx_path(model, args.onnx_cache, args.threads, e)
            if args.int8:
                rows["onnxruntime/int8"] = onnx_path(model, args.onnx_cache, args.threads, args.exporters[0], int8=True)
        except ImportError as e:
            print(f"onnxruntime row skipped: {e}", file=sys.stderr)
    x = torch.randn(args.batch, 3, *model.cfg.image_size)
    ref = rows["nchw"](x)
    diff = {k: max(float((a - b).abs().max()) for a, b in zip(run(x), ref)) for k, run in rows.items()}   # + warm-up
    calls = {}
    for k, run in rows.items():   # calls per sample: at least --min-seconds, so that switching thread
        t = time.perf_counter()   # pools (torch's OpenMP, onnxruntime's spinning one) is amortised
        run(x)
        calls[k] = max(1, round(args.min_seconds / (time.perf_counter() - t)))
    times = {k: [] for k in rows}
    for _ in range(args.samples):
        for k, run in rows.items():   # in turn: a slow minute of the machine hits every row alike
            t = time.perf_counter()
            for _ in range(calls[k]):
                run(x)
            times[k].append((time.perf_counter() - t) / calls[k])

    print(f"{args.model}, batch {args.batch}, {args.precision}, {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} threads, torch {torch.__version__}; median (min) of {args.samples} "
          f"samples of >= {args.min_seconds:g} s, in turn")
    width = max(14, *(len(k) + 2 for k in rows))
    print(f"{'path':<{width}}{'ms/batch':>10}{'(min)':>9}{'images/s':>10}{'vs nchw':>9}{'max|Δ|':>10}")
    base = statistics.median(times["nchw"])
    for k, ts in times.items():
        med = statistics.median(ts)
        print(f"{k:<{width}}{med * 1e3:>10.1f}{min(ts) * 1e3:>9.1f}{args.batch / med:>10.1f}{base / med:>8.2f}x"
              f"{diff[k]:>10.1e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
