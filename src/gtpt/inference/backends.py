"""Runners: a normalised batch [B,3,H,W] float32 in, (logits_x [B,K,Wx], logits_y [B,K,Wy]) out.

Both return float32 CPU tensors so that decoding is the same code whatever ran the network.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch


PRECISIONS = ("fp32", "bf16")
# images per forward on a CPU: at batch 32 the stem's largest maps (3 MB an image for GTPT-T) no longer
# fit in cache; eager GTPT-T ran about 1.2x slower per image in one forward than in slices of 4 or 8
# (benchmarks/cpu_paths.py; GTPT-B, with larger maps, did best with 4)
CPU_MICRO_BATCH = 4


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    return precision


def default_micro_batch(device) -> Optional[int]:
    """Images per forward by default: `CPU_MICRO_BATCH` on a CPU, the whole batch (None) elsewhere."""
    return CPU_MICRO_BATCH if torch.device(device).type == "cpu" else None


def in_micro_batches(fn, x: torch.Tensor, size: Optional[int]):
    """fn over slices of at most `size` images of x (all of x at once if size is None); the tensors of
    its output tuple are concatenated along the batch."""
    if not size or len(x) <= size:
        return fn(x)
    return tuple(torch.cat(parts) for parts in zip(*(fn(part) for part in x.split(size))))


def padded_to_power_of_two(fn):
    """fn over x padded with zero images to the next power-of-two batch, outputs cut back to len(x)
    (and copied: CUDA graphs reuse their output memory on the next call). A compiled forward then
    meets a few batch sizes, each compiled once, instead of one per number of people. The images do
    not interact (per-image pruning, folded BatchNorm), so the padding changes no real output."""
    def run(x: torch.Tensor):
        n = x.shape[0]
        size = 1 << (n - 1).bit_length()
        if size != n:   # size - n < n rows of zeros in x's own layout (channels-last stays so)
            x = torch.cat([x, torch.zeros_like(x[:size - n])])
        return tuple(t[:n].clone() for t in fn(x))
    return run


def deployment_forward(model, device="cpu", keep_rates: Optional[Sequence[float]] = None, compiled: bool = False,
                       precision: str = "fp32"):
    """(copy, forward): a BatchNorm-folded, channels-last copy of `model` on `device`, and its forward
    x [B,3,H,W] float32 -> (logits_x, logits_y) with the keep rates bound (default: the model's).

    compiled: torch.compile'd over power-of-two batches (`padded_to_power_of_two`); on CUDA in the
    form measured fastest on an H200 (README, `benchmarks/results/h200_*.md`): CUDA graphs, the
    space-to-depth first convolution, the 257 attention query rows as 1 + 256 (`sdpa-split`), 1x1
    convolutions as matrix products, and with precision "bf16" bfloat16 weights instead of autocast
    (5 % faster at batch 1024, logits as close to fp32). The caller's autocast then does not reach
    the copy. The first call at each batch size compiles (about 40 s for GTPT-T on a 2-core CPU).
    Otherwise precision is the caller's autocast: the copy stays float32.
    """
    from ..models.attention import set_attention_kernel
    from ..models.fusion import deployment_copy
    check_precision(precision)
    device = torch.device(device)
    cuda_compiled = device.type == "cuda" and compiled
    rates = tuple(keep_rates) if keep_rates is not None else tuple(model.keep_rates)
    copy = deployment_copy(model, device, channels_last=True, space_to_depth=cuda_compiled)
    dtype = torch.bfloat16 if cuda_compiled and precision == "bf16" else torch.float32
    if cuda_compiled:
        set_attention_kernel(copy, "sdpa-split")
        copy = copy.to(dtype)

    def forward(x):
        return copy(x.to(dtype), keep_rates=rates)
    if compiled:
        options = None
        if cuda_compiled:
            from torch._inductor import list_mode_options
            options = {**list_mode_options("reduce-overhead"), "conv_1x1_as_mm": True}
        forward = padded_to_power_of_two(torch.compile(forward, dynamic=False, options=options))
    if dtype == torch.float32:
        return copy, forward

    def bf16_forward(x):
        with torch.autocast(device.type, enabled=False):   # the weights are bf16 already
            return forward(x)
    return copy, bf16_forward


def _cat_batches(values: list):
    """Concatenate per-slice trace entries: tensors [b, ...], or lists of them (one per group)."""
    if isinstance(values[0], (list, tuple)):
        return [_cat_batches(list(v)) for v in zip(*values)]
    return torch.cat(values)


class TorchRunner:
    """PyTorch eval forward (pruning on, with the given keep rates) of a BatchNorm-folded, channels-last
    copy (the convolutions' fast layout on CPUs and GPUs: on a 2-core CPU, eager GTPT-T ran 1.3x faster
    at batch 32 than in NCHW and 1.6-2.4x at batch 1, with the same logits).

    micro_batch: images per forward; default `default_micro_batch(device)` (4 on a CPU, the whole
    batch on a GPU).
    precision "bf16" runs it under bfloat16 autocast (token selection stays in float32):
    faster on CPUs with AVX512-BF16 or AMX (1.6x at batch 32 on a 2-core AMD EPYC) and on recent GPUs
    (1.8x on an H200), logits within bf16 rounding.
    compile: torch.compile the forward (`deployment_forward`); `trace` stays eager.
    """

    def __init__(self, model, device: str = "cpu", keep_rates: Optional[Sequence[float]] = None,
                 precision: str = "fp32", micro_batch: Optional[int] = None, compile: bool = False):
        self.device = torch.device(device)
        self.precision = check_precision(precision)
        if micro_batch is not None and (not isinstance(micro_batch, int) or micro_batch < 1):
            raise ValueError(f"micro_batch must be a positive int or None, got {micro_batch!r}")
        self.micro_batch = micro_batch or default_micro_batch(self.device)
        self.keep_rates = tuple(keep_rates) if keep_rates is not None else tuple(model.keep_rates)
        # a private copy: folding BatchNorm must not change the caller's (maybe trainable) model
        self.model, self._run = deployment_forward(model, self.device, self.keep_rates, compile, self.precision)

    @torch.inference_mode()
    def _forward(self, batch: np.ndarray, trace: Optional[dict] = None):
        x = torch.from_numpy(batch).to(self.device)
        traces = []

        def forward(part):
            if trace is None:
                return self._run(part)
            traces.append({})
            part = part.to(next(self.model.parameters()).dtype)   # bf16 weights when compiled on CUDA
            return self.model(part, keep_rates=self.keep_rates, trace=traces[-1])

        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"):
            out = in_micro_batches(forward, x, self.micro_batch)
        if trace is not None:
            trace.update({k: _cat_batches([t[k] for t in traces]) for k in traces[0]})
        return out

    def __call__(self, batch: np.ndarray):
        lx, ly = self._forward(batch)
        return lx.float().cpu(), ly.float().cpu()

    def trace(self, batch: np.ndarray) -> dict:
        """Original patch ids kept after every pruning step (see GTPT.forward_tokens)."""
        trace: dict = {}
        self._forward(batch, trace)
        return trace


class OnnxRunner:
    """onnxruntime session over a graph written by `gtpt.export.export_onnx`."""

    def __init__(self, path, device: str = "cpu", threads: Optional[int] = None, graph: Optional[bytes] = None):
        """graph: the file's bytes, when they were read elsewhere (e.g. by rank 0 for every rank)."""
        from ..export import INPUT_NAME, OUTPUT_NAMES, _session
        self.path = Path(path)
        self.session = _session(graph if graph is not None else str(self.path), device, threads)
        self.input_name = INPUT_NAME
        self.output_names = list(OUTPUT_NAMES)
        shape = self.session.get_inputs()[0].shape
        self.fixed_batch = shape[0] if isinstance(shape[0], int) else None

    def __call__(self, batch: np.ndarray):
        if self.fixed_batch is not None and batch.shape[0] != self.fixed_batch:
            # a graph exported without --dynamic-batch: feed it one slice at a time
            parts = [self.session.run(self.output_names, {self.input_name: batch[i:i + self.fixed_batch]})
                     for i in range(0, batch.shape[0], self.fixed_batch)]
            lx, ly = (np.concatenate(p) for p in zip(*parts))
        else:
            lx, ly = self.session.run(self.output_names, {self.input_name: np.ascontiguousarray(batch)})
        return torch.from_numpy(lx), torch.from_numpy(ly)


def default_cache_dir() -> Path:
    """$GTPT_CACHE_DIR, else ~/.cache/gtpt."""
    return Path(os.environ.get("GTPT_CACHE_DIR") or Path.home() / ".cache" / "gtpt")


def cached_onnx(model, keep_rates: Sequence[float], cache_dir=None, opset: int = 17, exporter: str = "auto",
                int8: bool = False) -> Path:
    """Export `model` once per (weights, keep rates, opset, exporter, int8, torch version, model code) and reuse the file."""
    from ..export import export_onnx
    h = hashlib.sha256()
    # the graph is traced from the code: a changed forward (or module form) must not reuse an old file
    package = Path(__file__).resolve().parents[1]
    for f in sorted([*(package / "models").glob("*.py"), package / "export.py"]):
        h.update(f.read_bytes())
    h.update(repr(model).encode())
    for k, v in model.state_dict().items():
        h.update(k.encode())
        h.update(v.detach().float().cpu().contiguous().numpy().tobytes())
    h.update(repr((tuple(keep_rates), opset, exporter, int8, torch.__version__, model.cfg.name)).encode())
    path = Path(cache_dir or default_cache_dir()) / "onnx" / f"{model.cfg.name}-{h.hexdigest()[:16]}.onnx"
    if not path.is_file():
        tmp = path.with_name(path.stem + f".{os.getpid()}.tmp.onnx")
        export_onnx(model, tmp, keep_rates=keep_rates, opset=opset, exporter=exporter, int8=int8, verbose=False)
        os.replace(tmp, path)  # atomic: a concurrent reader never sees half a file
    return path


__all__ = ["TorchRunner", "OnnxRunner", "PRECISIONS", "CPU_MICRO_BATCH", "check_precision", "default_micro_batch",
           "in_micro_batches", "deployment_forward", "padded_to_power_of_two", "cached_onnx", "default_cache_dir"]
