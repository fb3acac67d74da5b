"""ONNX export with pruning inside the graph.

Keep rates fix every token count, so the traced graph holds the real TopK / GatherElements
ops with constant k and only the batch axis is dynamic. Every export is checked: onnx.checker,
then onnxruntime against PyTorch on a batch of a *different* size than the one traced with.

Uses the classic TorchScript exporter (`dynamo=False`): it handles the gathers with a dynamic
batch and needs no extra packages.
"""
from __future__ import annotations

import copy
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
from torch import nn

INPUT_NAME = "image"
OUTPUT_NAMES = ("logits_x", "logits_y")


class ExportError(RuntimeError):
    """The exported graph is invalid or does not reproduce the PyTorch outputs."""


@dataclass
class OnnxExport:
    """What `export_onnx` wrote and how well it matches PyTorch."""

    path: Path
    keep_rates: tuple[float, ...]
    verify_batch: int
    max_abs_diff: dict = field(default_factory=dict)  # output name -> max |onnx - torch|


class _Pruned(nn.Module):
    """Eval forward with the keep rates baked in: img [B,3,H,W] -> (logits_x, logits_y)."""

    def __init__(self, model: nn.Module, keep_rates: tuple[float, ...]):
        super().__init__()
        self.model = model
        self.keep_rates = keep_rates

    def forward(self, img: torch.Tensor):
        return self.model(img, keep_rates=self.keep_rates)


def _session(model_bytes_or_path, device: str = "cpu", threads: Optional[int] = None):
    """An onnxruntime session (CUDA provider first if asked and installed; `threads`: intra-op threads)."""
    try:
        import onnxruntime as ort
    except ImportError as e:   # an optional dependency: say how to get it
        raise ImportError("onnxruntime is not installed: pip install 'gtpt[onnx]' "
                          "(or onnxruntime-gpu for CUDA)") from e
    providers = ["CPUExecutionProvider"]
    if device.startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    opts = ort.SessionOptions()
    opts.log_severity_level = 3  # keep onnxruntime's own warnings out of the CLI output
    if threads:
        opts.intra_op_num_threads = threads
    return ort.InferenceSession(model_bytes_or_path, sess_options=opts, providers=providers)


def export_onnx(model, path, keep_rates: Optional[Sequence[float]] = None, dynamic_batch: bool = True,
                opset: int = 17, verify: bool = True, atol: float = 1e-4, verbose: bool = True) -> OnnxExport:
    """Export a GTPT model (eval path, pruning on) to `path`.

    keep_rates: defaults to the model's own. dynamic_batch: the batch axis is symbolic (traced
    at batch 2, verified at batch 3); otherwise the graph takes exactly batch 1.
    Raises ExportError if the checker fails or any logit differs from PyTorch by more than atol.
    """
    import onnx

    from .models.fusion import fuse_for_inference
    from .models.gtpt import check_keep_rates

    # a copy (never touch the caller's model) with BatchNorm folded: onnxruntime folds a BatchNorm
    # into the convolution before it, but not the patch BatchNorm into the patch embedding after it
    src = fuse_for_inference(copy.deepcopy(model).float().cpu().eval())
    cfg = src.cfg
    rates = check_keep_rates(cfg, keep_rates if keep_rates is not None else src.keep_rates)
    h, w = cfg.image_size
    trace_batch, verify_batch = (2, 3) if dynamic_batch else (1, 1)
    gen = torch.Generator().manual_seed(0)
    dummy = torch.randn(trace_batch, 3, h, w, generator=gen)
    axes = {n: {0: "batch"} for n in (INPUT_NAME, *OUTPUT_NAMES)} if dynamic_batch else None

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    wrapper = _Pruned(src, rates).eval()
    with warnings.catch_warnings(), torch.no_grad():
        # token counts are Python ints fixed by the keep rates: the tracer's "treated as a
        # constant" warnings are exactly what we want, and the legacy-exporter notice is noise
        warnings.simplefilter("ignore")
        torch.onnx.export(wrapper, (dummy,), str(path), dynamo=False, opset_version=opset,
                          input_names=[INPUT_NAME], output_names=list(OUTPUT_NAMES),
                          dynamic_axes=axes, do_constant_folding=True)

    proto = onnx.load(str(path))
    meta = {"gtpt_config": json.dumps(cfg.with_keep_rates(rates).to_dict()),
            "keep_rates": json.dumps(list(rates)), "dynamic_batch": json.dumps(dynamic_batch)}
    del proto.metadata_props[:]
    for k, v in meta.items():
        proto.metadata_props.add(key=k, value=v)
    try:
        onnx.checker.check_model(proto)
    except onnx.checker.ValidationError as e:
        raise ExportError(f"{path}: the exported graph fails onnx.checker: {e}") from e
    onnx.save(proto, str(path))

    result = OnnxExport(path=path, keep_rates=rates, verify_batch=verify_batch)
    if verify:
        x = torch.randn(verify_batch, 3, h, w, generator=gen)
        with torch.no_grad():
            ref = [t.numpy() for t in wrapper(x)]
        got = _session(str(path)).run(list(OUTPUT_NAMES), {INPUT_NAME: x.numpy()})
        result.max_abs_diff = {n: float(np.abs(a - b).max()) for n, a, b in zip(OUTPUT_NAMES, ref, got)}
        worst = max(result.max_abs_diff.values())
        if verbose:
            diffs = ", ".join(f"{n} {d:.2e}" for n, d in result.max_abs_diff.items())
            print(f"onnx check ok; onnxruntime vs PyTorch at batch {verify_batch}: max |diff| {diffs}")
        if not worst <= atol:
            raise ExportError(f"{path}: onnxruntime differs from PyTorch by {worst:.3e} (> {atol:g}) "
                              f"at batch {verify_batch}")
    return result


def read_onnx_config(path):
    """The ModelConfig stored in an exported file's metadata, or None for foreign files."""
    import onnx

    from .config import ModelConfig
    proto = onnx.load(str(path), load_external_data=False)
    meta = {p.key: p.value for p in proto.metadata_props}
    if "gtpt_config" not in meta:
        return None
    return ModelConfig.from_dict(json.loads(meta["gtpt_config"]))


__all__ = ["ExportError", "OnnxExport", "export_onnx", "read_onnx_config", "INPUT_NAME", "OUTPUT_NAMES"]
