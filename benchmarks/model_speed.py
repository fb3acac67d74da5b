"""Network speed (eval path, pruning on, random input) against the reference implementation's figures.

    python benchmarks/model_speed.py                                # CPU, GTPT-T body, batch 1 and 32
    python benchmarks/model_speed.py --device cuda --batch 1 1024 --modes eager-fp32 eager-bf16 compile-bf16 graph-fp32

Modes are <kind>-<precision>. Kinds: eager; compile (torch.compile, inductor); graph (CUDA graphs,
"reduce-overhead"); freeze (graph + inductor freezing: weights become constants); autotune
("max-autotune", CUDA graphs included); autotune-nocg ("max-autotune-no-cudagraphs"). Precisions:
fp32; bf16 (fp32 weights under autocast); bf16w (pure bf16: bfloat16 weights and input, no autocast).
Every mode runs a BatchNorm-folded deployment copy, channels-last unless --memory-format contiguous;
--sdpa-backend allows only one attention kernel family (CUDA); --input-channels 8 widens the first
convolution (zero weights) so that cuDNN can use its tensor-core kernels; --space-to-depth runs it as a
2x2 convolution over 2x2 pixel blocks (16 channels) instead; --attention flex swaps
scaled_dot_product_attention for FlexAttention (compiled modes: a generated Triton kernel), and
--attention sdpa-split splits 257 query rows into 1 + 256 (see gtpt.models.attention);
--attention-layers self|group uses that kernel in those layers only (the others run sdpa);
--patch-embed linear computes the patch embedding as the official code does (a copy into patch order, then
a matrix product) instead of as a strided convolution; --micro-batch N runs each batch N images at a
time (the Predictor's CPU path; at batch 32 the stem's feature maps no longer fit in a CPU's cache);
--inductor KEY=VALUE sets a torch._inductor.config option. Each variant is named in the row's mode.
The reference figures come from `shared/docs/recipe.md` (the authors' code, eager, same machine
kinds); bf16w rows are compared with the bf16 ones. Prints a table; with --out, also appends each
row to a file as it is measured.

--check adds the largest and the mean absolute output difference against fp32 eager (TF32 off) on the
same input (the same seeded weights and input in every run, so rows compare).
--profile DIR writes a torch.profiler table per row to DIR/<model>_<mode>_<batch>.txt.
--gpu-lock FILE lets several processes compile at once but time on the GPU one at a time: each makes
its first (compiling) call unlocked, then holds an exclusive lock on FILE to the end of its row
(max-autotune kinds, which time kernels on the GPU while compiling, take it before compiling, unless
--gpu-lock-wait is given). --gpu-lock-wait N also holds every timing back until N processes have
compiled (at most --gpu-lock-wait-s seconds), so that none overlaps another process's compiling call;
several max-autotune runs then compile side by side.
"""
from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, NamedTuple, Optional

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from gtpt import build_model  # noqa: E402
from gtpt.inference.backends import CPU_MICRO_BATCH, in_micro_batches  # noqa: E402
from gtpt.models.attention import KERNELS as ATTENTION_KERNELS, LAYER_SETS as ATTENTION_LAYER_SETS  # noqa: E402
from gtpt.models.attention import set_attention_kernel  # noqa: E402
from gtpt.models.fusion import deployment_copy  # noqa: E402
from gtpt.models.patch_embed import FORMS as PATCH_EMBED_FORMS  # noqa: E402

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

# kind -> (torch.compile mode, extra inductor options); eager is not compiled
COMPILE = {
    "compile": (None, {}),
    "graph": ("reduce-overhead", {}),
    "freeze": ("reduce-overhead", {"freezing": True}),
    "autotune": ("max-autotune", {}),
    "autotune-nocg": ("max-autotune-no-cudagraphs", {}),
}
KINDS = ("eager", *COMPILE)
SDPA_BACKENDS = ("flash", "mem_efficient", "cudnn", "math")   # torch.backends.cuda.enable_<name>_sdp
PRECISIONS = ("fp32", "bf16", "bf16w")


def parse_mode(mode: str) -> tuple[str, str]:
    kind, _, precision = mode.rpartition("-")
    if kind not in KINDS or precision not in PRECISIONS:
        raise ValueError(f"unknown mode {mode!r}: want <kind>-<precision>, kind in {KINDS}, precision in {PRECISIONS}")
    return kind, precision


def cpu_name() -> str:
    """The CPU model (Linux /proc/cpuinfo), else what `platform` knows; for the benchmarks' headers."""
    try:
        return next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "CPU"


def machine(device: torch.device) -> str:
    if device.type == "cuda":
        cudnn = "on" if torch.backends.cudnn.benchmark else "off"
        return f"{torch.cuda.get_device_name(device)}, torch {torch.__version__}, cudnn.benchmark {cudnn}"
    return f"{cpu_name()}, {torch.get_num_threads()} threads, torch {torch.__version__}"


class GpuLock:
    """An exclusive lock on a file (see --gpu-lock); does nothing without a path."""

    def __init__(self, path: Optional[str]):
        self.file = open(path, "a") if path else None
        self.held = False

    def acquire(self) -> None:
        if self.file and not self.held:
            import fcntl
            fcntl.flock(self.file, fcntl.LOCK_EX)
            self.held = True

    def release(self) -> None:
        if self.file and self.held:
            import fcntl
            fcntl.flock(self.file, fcntl.LOCK_UN)
            self.held = False

    def wait_for(self, processes: int, max_seconds: float) -> None:
        """Sign in as compiled, then wait until `processes` have (at most `max_seconds`): no timing
        shares the GPU with another process's first (compiling, autotuning) call."""
        if not self.file or processes <= 1:
            return
        ready = Path(self.file.name + ".ready")
        with open(ready, "a") as f:
            f.write("x\n")
        deadline = time.monotonic() + max_seconds
        while len(ready.read_text().splitlines()) < processes:
            if time.monotonic() > deadline:
                print(f"--gpu-lock-wait: not all {processes} processes compiled within {max_seconds:.0f} s; "
                      "timing anyway", file=sys.stderr, flush=True)
                return
            time.sleep(0.2)


def set_inductor_options(options: list[str]) -> None:
    """Apply KEY=VALUE strings to torch._inductor.config (True/False and integers are converted)."""
    import torch._inductor.config as inductor_config
    for option in options:
        key, sep, value = option.partition("=")
        if not sep or not hasattr(inductor_config, key):
            raise ValueError(f"--inductor {option!r}: want KEY=VALUE with KEY in torch._inductor.config")
        old = getattr(inductor_config, key)
        if isinstance(old, bool):
            if value not in ("True", "False"):
                raise ValueError(f"--inductor {option!r}: {key} is True or False")
            value = value == "True"
        elif isinstance(old, int):
            value = int(value)
        setattr(inductor_config, key, value)


def compile_model(model, kind: str):
    """torch.compile for `kind` (see COMPILE)."""
    mode, extra = COMPILE[kind]
    if extra:   # torch.compile takes mode or options, not both; options apply only while this model compiles
        from torch._inductor import list_mode_options
        return torch.compile(model, dynamic=False, options={**list_mode_options(mode), **extra})
    return torch.compile(model, dynamic=False, mode=mode)


class Runner(NamedTuple):
    run: Callable[[torch.Tensor], object]
    precision: str
    dtype: torch.dtype        # input dtype
    compile_unlocked: bool    # compile before taking the GPU lock (autotune kinds time kernels while compiling)


def make_runner(model, mode: str, device: torch.device, channels_last: bool = True,
                input_channels: int = 3, space_to_depth: bool = False, attention: str = "sdpa",
                attention_layers: str = "all", lock_compile: bool = True, micro_batch: int | None = None) -> Runner:
    kind, precision = parse_mode(mode)
    model = deployment_copy(model, device, channels_last=channels_last, input_channels=input_channels,
                            space_to_depth=space_to_depth)
    set_attention_kernel(model, attention, attention_layers)
    dtype = torch.float32
    if precision == "bf16w":
        model, dtype = model.to(torch.bfloat16), torch.bfloat16
    fn = model if kind == "eager" else compile_model(model, kind)
    autocast = precision == "bf16"

    def run(x):
        with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            return in_micro_batches(fn, x, micro_batch)
    return Runner(run, precision, dtype, kind != "eager" and not (lock_compile and kind.startswith("autotune")))


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_it(run, x, device, warmup: int, repeats: int, min_seconds: float) -> float:
    """Median seconds per call; each timed sample runs enough calls to last min_seconds."""
    for _ in range(warmup):
        run(x)
    sync(device)
    t = time.perf_counter()
    run(x)
    sync(device)
    calls = max(1, int(min_seconds / max(time.perf_counter() - t, 1e-6)))
    samples = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(calls):
            run(x)
        sync(device)
        samples.append((time.perf_counter() - t) / calls)
    return statistics.median(samples)


def tensors(out) -> list[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, dict):
        out = list(out.values())
    return [t for o in out for t in tensors(o)] if isinstance(out, (list, tuple)) else []


def fp32_reference(model, x, device) -> list[torch.Tensor]:
    """fp32 eager outputs of the deployment copy, with TF32 off."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:   # every attention backend: --sdpa-backend flash alone cannot run float32
        with torch.inference_mode(), sdpa_kernel([SDPBackend.MATH, SDPBackend.EFFICIENT_ATTENTION,
                                                  SDPBackend.FLASH_ATTENTION, SDPBackend.CUDNN_ATTENTION]):
            return [t.float() for t in tensors(deployment_copy(model, device)(x))]
    finally:
        if device.type == "cuda":   # hand the fp32 activations back: parallel runs share the GPU memory
            torch.cuda.empty_cache()
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def abs_diff(out, ref: list[torch.Tensor]) -> tuple[float, float]:
    """(max, mean) |out - ref| over all output tensors."""
    got = tensors(out)
    if len(got) != len(ref):
        raise RuntimeError(f"{len(got)} outputs, fp32 eager gives {len(ref)}")
    diffs = torch.cat([(g.float() - r).abs().flatten() for g, r in zip(got, ref)])
    return diffs.max().item(), diffs.mean().item()


def profile_table(run, x, device, calls: int = 5) -> str:
    """torch.profiler over `calls` calls: ops by self device time (CUDA) or self CPU time."""
    from torch.profiler import ProfilerActivity, profile
    cuda = device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    sync(device)
    with profile(activities=activities) as prof:
        for _ in range(calls):
            run(x)
        sync(device)
    events = prof.key_averages()
    text = f"{calls} calls\n\n" + events.table(sort_by="self_cuda_time_total" if cuda else "self_cpu_time_total", row_limit=30)
    if cuda:
        text += "\n\nby CPU time (launch overhead):\n" + events.table(sort_by="cpu_time_total", row_limit=15)
    return text


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
    p.add_argument("--no-cudnn-benchmark", action="store_true", help="leave torch.backends.cudnn.benchmark off (CUDA)")
    p.add_argument("--check", action="store_true", help="add max and mean |Δ| columns against fp32 eager outputs (one batch)")
    p.add_argument("--profile", metavar="DIR", help="write a torch.profiler table per row to DIR")
    p.add_argument("--gpu-lock", metavar="FILE", help="take turns on the device with other processes given FILE")
    p.add_argument("--gpu-lock-wait", metavar="N", type=int, default=0,
                   help="with --gpu-lock: time only once N processes (this one included) have compiled")
    p.add_argument("--gpu-lock-wait-s", type=float, default=120.0, metavar="S",
                   help="... but wait at most S seconds for them")
    p.add_argument("--memory-format", choices=("channels_last", "contiguous"), default="channels_last",
                   help="model and input layout (channels_last: faster convolutions on CPU and GPU)")
    p.add_argument("--input-channels", type=int, default=3,
                   help="widen the first convolution to this many inputs (zero weights, same outputs)")
    p.add_argument("--space-to-depth", action="store_true",
                   help="run the first convolution over 2x2 pixel blocks (same outputs)")
    p.add_argument("--patch-embed", choices=PATCH_EMBED_FORMS, default="conv",
                   help="patch embedding as a strided convolution (default) or, as the official code computes "
                        "it, a copy into patch order and a matrix product (gtpt.models.patch_embed)")
    p.add_argument("--micro-batch", type=int, metavar="N",
                   help="run each batch N images at a time, as the Predictor does on a CPU "
                        f"(gtpt.inference.backends.CPU_MICRO_BATCH = {CPU_MICRO_BATCH})")
    p.add_argument("--attention", choices=ATTENTION_KERNELS, default="sdpa",
                   help="attention kernel (gtpt.models.attention): scaled_dot_product_attention, sdpa-split "
                        "(a query length just past a multiple of 128 in two calls), FlexAttention (compile "
                        "it) or plain matrix products")
    p.add_argument("--attention-layers", choices=ATTENTION_LAYER_SETS, default="all",
                   help="use --attention in these layers only (self-attention or group attention)")
    p.add_argument("--inductor", action="append", default=[], metavar="KEY=VALUE",
                   help="set torch._inductor.config.KEY (repeatable), e.g. coordinate_descent_tuning=True, "
                        "conv_1x1_as_mm=True, max_autotune_conv_backends=ATEN")
    p.add_argument("--sdpa-backend", choices=("auto",) + SDPA_BACKENDS, default="auto",
                   help="allow only this scaled_dot_product_attention backend (CUDA; auto: torch's choice)")
    args = p.parse_args(argv)
    if args.space_to_depth and args.input_channels != 3:
        p.error("--space-to-depth and --input-channels are two forms of the first convolution: pick one")
    for mode in args.modes:
        try:
            parse_mode(mode)
        except ValueError as e:
            p.error(str(e))
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = not args.no_cudnn_benchmark
        if args.sdpa_backend != "auto":   # global flags: torch.compile reads them when it traces
            for backend in SDPA_BACKENDS:
                getattr(torch.backends.cuda, f"enable_{backend}_sdp")(backend == args.sdpa_backend)
    try:
        set_inductor_options(args.inductor)
    except ValueError as e:
        p.error(str(e))
    channels_last = args.memory_format == "channels_last"
    variant = (f"/{args.sdpa_backend}" if args.sdpa_backend != "auto" else "") \
        + ("" if channels_last else "/nchw") \
        + (f"/c{args.input_channels}" if args.input_channels != 3 else "") \
        + ("/s2d" if args.space_to_depth else "") \
        + (f"/mb{args.micro_batch}" if args.micro_batch else "") \
        + (f"/pe-{args.patch_embed}" if args.patch_embed != "conv" else "") \
        + (f"/{args.attention}" if args.attention != "sdpa" else "") \
        + (f"@{args.attention_layers}" if args.attention != "sdpa" and args.attention_layers != "all" else "") \
        + "".join(f"/{o}" for o in args.inductor)   # rows of parallel runs share one file
    if args.profile:
        Path(args.profile).mkdir(parents=True, exist_ok=True)
    lock = GpuLock(args.gpu_lock)
    header = f"{'model':<18}{'mode':<26}{'batch':>6}{'ms/batch':>11}{'images/s':>11}{'reference':>11}{'speed-up':>10}"
    if args.check:
        header += f"{'max|Δ| vs fp32':>16}{'mean|Δ|':>10}"
    lines = [f"machine: {machine(device)}, {args.memory_format}, sdpa {args.sdpa_backend}", header]
    print("\n".join(lines), flush=True)
    out = open(args.out, "a") if args.out else None
    if out:
        out.write("\n".join(lines) + "\n")
        out.flush()
    for name in args.models:
        torch.manual_seed(0)   # the same weights and inputs in every run: --check rows compare
        model = build_model(name).eval()
        model.patch_embed.form = args.patch_embed
        inputs, refs = {}, {}
        for mode in args.modes:
            runner = make_runner(model, mode, device, channels_last, args.input_channels, args.space_to_depth,
                                 args.attention, args.attention_layers, lock_compile=args.gpu_lock_wait <= 1,
                                 micro_batch=args.micro_batch)
            for b in args.batch:
                if b not in inputs:
                    inputs[b] = torch.randn(b, 3, *model.cfg.image_size).to(device).contiguous(
                        memory_format=torch.channels_last if channels_last else torch.contiguous_format)
                x = inputs[b].to(runner.dtype)
                if runner.compile_unlocked:
                    runner.run(x)   # compile while others may time; one call's device work is noise to them
                lock.wait_for(args.gpu_lock_wait, args.gpu_lock_wait_s)
                lock.acquire()
                sec = time_it(runner.run, x, device, args.warmup, args.repeats, args.min_seconds)
                ref = REFERENCE.get((device.type, name, b, "bf16" if runner.precision == "bf16w" else runner.precision))
                row = (f"{name:<18}{mode + variant:<26}{b:>6}{sec * 1e3:>11.2f}{b / sec:>11.1f}"
                       f"{(f'{ref:.1f}' if ref else '-'):>11}{(f'x{b / sec / ref:.2f}' if ref else '-'):>10}")
                if args.check:
                    if b not in refs:
                        refs[b] = fp32_reference(model, inputs[b], device)
                    row += "{:>16.3g}{:>10.2g}".format(*abs_diff(runner.run(x), refs[b]))
                print(row, flush=True)
                if out:
                    out.write(row + "\n")
                    out.flush()
                if args.profile:
                    path = Path(args.profile) / f"{name}_{mode}_{b}.txt"
                    try:
                        path.write_text(f"{name} {mode} batch {b}, {machine(device)}\n"
                                        + profile_table(runner.run, x, device))
                    except Exception as e:  # a profile is a bonus: keep measuring
                        print(f"profile {path.name} failed: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
                lock.release()
    return 0


if __name__ == "__main__":
    sys.exit(main())
