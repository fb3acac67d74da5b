"""gtpt bench --model NAME [--batch 1 32] [--paths eager,onnxruntime,compile] [--plot FILE]

Latency (ms per batch, median of --repeats after --warmup runs) and images/s of the network
alone (random input, pruning on) for PyTorch eager, torch.compile and onnxruntime. With
--plot, also GMACs (from `gtpt.profile`) of all six presets and the measured throughput of
--model against the keep rate. Defaults are small enough for a laptop CPU; torch.compile is
opt-in because compiling takes minutes on a few cores.
"""
from __future__ import annotations

import statistics
import sys
import time
import warnings

from ._weights import (add_keep_rates_argument, add_precision_argument, add_weights_arguments, announce,
                       choose_weights, load_torch_model)

PATHS = ("eager", "compile", "onnxruntime")
# keep-rate schedules for the plot, from no pruning to the recipe's (x axis: the last value)
SWEEP = {"body": [(1.0, 1.0, 1.0, 1.0), (1.0, 0.9, 0.7, 0.5), (1.0, 0.8, 0.5, 0.3), (1.0, 0.7, 0.3, 0.1)],
         "wholebody": [(1.0, 1.0, 1.0, 1.0), (1.0, 0.9, 0.7, 0.5), (1.0, 0.8, 0.6, 0.4), (1.0, 0.7, 0.5, 0.3)]}


def add_arguments(p):
    add_weights_arguments(p, model_help="preset to time (random weights unless --weights; speed does not "
                                        "depend on the weights)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--batch", type=int, nargs="+", default=[1, 8], metavar="B", help="batch sizes")
    add_keep_rates_argument(p)
    p.add_argument("--paths", default="eager,onnxruntime",
                   help=f"comma-separated, from {','.join(PATHS)} (compile takes minutes on a small CPU)")
    p.add_argument("--threads", type=int, help="CPU threads for PyTorch and onnxruntime (default: theirs)")
    p.add_argument("--warmup", type=int, default=1, help="untimed runs first")
    p.add_argument("--repeats", type=int, default=3, help="timed runs (the median is reported)")
    add_precision_argument(p, runs="PyTorch paths")
    p.add_argument("--bf16", action="store_const", dest="precision", const="bf16",
                   help="the same as --precision bf16 (the older spelling)")
    p.add_argument("--plot", metavar="FILE", help="write GMACs and measured throughput vs keep rate (png)")
    p.add_argument("--plot-all", action="store_true",
                   help="time all six presets for the plot, not just --model (slow on a CPU)")


def _timer(fn, x, warmup: int, repeats: int, cuda: bool) -> float:
    """Median seconds per call."""
    import torch
    for _ in range(warmup):
        fn(x)
    times = []
    for _ in range(max(1, repeats)):
        if cuda:
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn(x)
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _torch_fn(model, keep_rates, device: str, bf16: bool, compiled: bool):
    """The Predictor's path (`deployment_forward`: BatchNorm folded, channels-last; compiled: the
    forms measured fastest, CUDA graphs on CUDA) with its micro-batches on a CPU."""
    import torch

    from ..inference.backends import default_micro_batch, deployment_forward, in_micro_batches
    _, call = deployment_forward(model, device, keep_rates, compiled, "bf16" if bf16 else "fp32")
    micro_batch = default_micro_batch(device)

    def run(x):
        with torch.inference_mode(), torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16,
                                                    enabled=bf16):
            return in_micro_batches(call, x, micro_batch)
    return run


def _ort_fn(model, keep_rates, device: str, threads):
    from ..inference.backends import OnnxRunner, cached_onnx
    runner = OnnxRunner(cached_onnx(model, keep_rates), device, threads)
    return lambda x: runner(x.cpu().numpy())


def measure(model, keep_rates, path: str, batches, args) -> dict[int, float]:
    """{batch: seconds per batch} for one path."""
    import torch
    cuda = args.device.startswith("cuda")
    if path == "onnxruntime":
        fn = _ort_fn(model, keep_rates, args.device, args.threads)
    else:
        fn = _torch_fn(model, keep_rates, args.device, args.precision == "bf16", compiled=path == "compile")
    h, w = model.cfg.image_size
    out = {}
    for b in batches:
        x = torch.randn(b, 3, h, w, device=args.device if path != "onnxruntime" else "cpu")
        out[b] = _timer(fn, x, args.warmup, args.repeats, cuda and path != "onnxruntime")
    return out


def run(args) -> int:
    import torch

    from ..device import check_device
    from ..models.checkpoint import CheckpointError
    paths = [p.strip() for p in args.paths.split(",") if p.strip()]
    bad = [p for p in paths if p not in PATHS]
    if bad or not paths:
        print(f"gtpt bench: error: unknown path(s) {bad}; choose from {', '.join(PATHS)}", file=sys.stderr)
        return 2
    try:
        check_device(args.device)
    except ValueError as e:
        print(f"gtpt bench: error: {e}", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        choice = choose_weights(args.weights, args.model or ("gtpt-t-body" if not args.weights else None),
                                why_untrained="random weights are fine for timing")
        if choice.untrained:
            print(f"weights: random {choice.source} (speed does not depend on the weights)")
        else:
            announce(choice)
        model = load_torch_model(choice).float()
        keep_rates = tuple(args.keep_rates) if args.keep_rates else model.keep_rates
        model.set_keep_rates(keep_rates)
    except (CheckpointError, FileNotFoundError, ValueError) as e:
        print(f"gtpt bench: error: {e}", file=sys.stderr)
        return 2

    dev = torch.cuda.get_device_name() if args.device.startswith("cuda") else f"CPU, {torch.get_num_threads()} threads"
    amp = ""
    if args.precision == "bf16":   # see deployment_forward
        amp = ", bf16 (autocast; compiled on CUDA: bf16 weights)" if args.device.startswith("cuda") else ", bf16 autocast"
    print(f"{model.cfg.name}, keep rates {list(keep_rates)}, {dev}{amp}; "
          f"median of {args.repeats} after {args.warmup} warm-up")
    print(f"{'path':<12}{'batch':>6}{'ms/batch':>11}{'images/s':>10}")
    results = {}
    for path in paths:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            results[path] = measure(model, keep_rates, path, args.batch, args)
        for b, sec in results[path].items():
            print(f"{path:<12}{b:>6}{sec * 1e3:>11.1f}{b / sec:>10.1f}", flush=True)
    if args.plot:
        _plot(args.plot, model, args)
    return 0


def _plot(file: str, model, args) -> None:
    """GMACs of the six presets and measured eager throughput of `model` vs the keep rate."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..config import PRESETS
    try:
        from ..profile import count_cost
    except ImportError:  # profile not available: throughput only
        count_cost = None

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    if count_cost is not None:
        print("GMACs (paper convention) per keep-rate schedule:")
        for name, cfg in PRESETS.items():
            sweep = SWEEP["wholebody" if cfg.wholebody else "body"]
            gm = [count_cost(cfg, r).gmacs for r in sweep]
            print(f"  {name:<18}" + "  ".join(f"{r[-1]:.1f}:{g:.3f}" for r, g in zip(sweep, gm)))
            axes[0].plot([r[-1] for r in sweep], gm, "o-" if cfg.wholebody else "s--", label=name)
        axes[0].set_ylabel("GMACs per image")
        axes[0].legend(fontsize=8, loc="upper right")
    else:
        axes[0].text(0.5, 0.5, "gtpt.profile not available", ha="center")
    axes[0].set_xlabel("keep rate of the last stage")
    axes[0].set_title("cost (schedules 1/.7/.3/.1 ... 1/1/1/1)")

    b = args.batch[-1]
    timed = [model] if not args.plot_all else [load_torch_model(choose_weights(None, n)) for n in PRESETS]
    for m in timed:
        sweep = SWEEP["wholebody" if m.cfg.wholebody else "body"]
        tput = []
        for rates in sweep:
            sec = measure(m, rates, "eager", [b], args)[b]
            tput.append(b / sec)
            print(f"  {m.cfg.name} eager batch {b}, keep rates {list(rates)}: {b / sec:.1f} images/s")
        axes[1].plot([r[-1] for r in sweep], tput, "o-" if m.cfg.wholebody else "s--", label=m.cfg.name)
    axes[1].legend(fontsize=8, loc="upper left")
    axes[1].set_xlabel("keep rate of the last stage")
    axes[1].set_ylabel("images / s")
    axes[1].set_title(f"measured: eager, batch {b}, {args.device}")
    for ax in axes:
        ax.invert_xaxis()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(file, dpi=110)
    plt.close(fig)
    print(f"wrote {file}")
