"""ONNX export with pruning inside the graph.

Keep rates fix every token count, so the traced graph holds the real TopK / GatherElements
ops with constant k and only the batch axis is dynamic. Every export is checked: onnx.checker,
then onnxruntime against PyTorch on a batch of a *different* size than the one traced with.

Two exporters (`exporter=`): PyTorch's classic TorchScript tracer, which needs no extra packages,
and the torch.export-based one (`dynamo`, torch >= 2.6, needs onnxscript), which PyTorch made its
default in 2.9 and will keep when the deprecated tracer is removed. Both give graphs that match
PyTorch to ~1e-6. "auto" uses the tracer and falls back to torch.export where the tracer fails or
is gone.

`int8=True` then quantizes the graph's matrix products to int8 with onnxruntime's dynamic
quantization (weights int8 ahead of time, activations on the fly); convolutions stay float32, as
onnxruntime's int8 convolution ran 2.7x slower on a CPU. It cannot match PyTorch to 1e-4, so it is
checked against the float32 graph instead: how far the decoded joints move on a real photo.
"""
from __future__ import annotations

import copy
import inspect
import json
import logging
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
from torch import nn
from torch.torch_version import TorchVersion

from .models.attention import set_attention_kernel

INPUT_NAME = "image"
OUTPUT_NAMES = ("logits_x", "logits_y")
EXPORTERS = ("auto", "torchscript", "dynamo")


class ExportError(RuntimeError):
    """The exported graph is invalid or does not reproduce the PyTorch outputs."""


@dataclass
class OnnxExport:
    """What `export_onnx` wrote and how well it matches PyTorch."""

    path: Path
    keep_rates: tuple[float, ...]
    verify_batch: int
    exporter: str = "torchscript"   # the one that wrote the file
    opset: int = 17
    max_abs_diff: dict = field(default_factory=dict)  # output name -> max |onnx - torch| (float32 graph)
    int8_shift_px: Optional[tuple[float, float]] = None  # int8: (median, max) joint shift from float32, input px


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
    if device.startswith("cuda"):
        if "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        else:
            warnings.warn(f"device {device!r}: this onnxruntime has no CUDA provider (pip install onnxruntime-gpu); "
                          "running on the CPU", UserWarning, stacklevel=3)
    opts = ort.SessionOptions()
    opts.log_severity_level = 3  # keep onnxruntime's own warnings out of the CLI output
    if threads:
        opts.intra_op_num_threads = threads
    return ort.InferenceSession(model_bytes_or_path, sess_options=opts, providers=providers)


def _export_kwargs(**kwargs) -> dict:
    """The keywords this torch's `torch.onnx.export` knows (`dynamo=` arrived in 2.4, `external_data=` and
    `dynamic_shapes=` later)."""
    known = inspect.signature(torch.onnx.export).parameters
    return {k: v for k, v in kwargs.items() if k in known}


def _trace_torchscript(wrapper, dummy, path: Path, opset: int, dynamic_batch: bool) -> None:
    if TorchVersion(torch.__version__) < "2.5":
        # torch 2.3-2.4's tracer fails on scaled_dot_product_attention with a float scale; the
        # spelled-out attention is the same maths (the wrapper holds a private copy of the model)
        set_attention_kernel(wrapper.model, "plain")
    axes = {n: {0: "batch"} for n in (INPUT_NAME, *OUTPUT_NAMES)} if dynamic_batch else None
    with warnings.catch_warnings():
        # token counts are Python ints fixed by the keep rates: the tracer's "treated as a
        # constant" warnings are exactly what we want, and the deprecation notice is noise
        warnings.simplefilter("ignore")
        torch.onnx.export(wrapper, (dummy,), str(path), opset_version=opset, input_names=[INPUT_NAME],
                          output_names=list(OUTPUT_NAMES), dynamic_axes=axes, do_constant_folding=True,
                          **_export_kwargs(dynamo=False))


def _trace_dynamo(wrapper, dummy, path: Path, opset: int, dynamic_batch: bool) -> None:
    """opset: at least 18, the oldest this exporter writes."""
    if not _export_kwargs(dynamic_shapes=None):
        raise ExportError(f"the torch.export-based ONNX exporter needs torch >= 2.6 (this is {torch.__version__})")
    try:
        import onnxscript  # noqa: F401  (the exporter imports it lazily and fails less clearly)
    except ImportError as e:
        raise ImportError("the torch.export-based ONNX exporter needs onnxscript: "
                          "pip install 'gtpt[onnx]' (or pip install onnxscript)") from e
    shapes = ({0: torch.export.Dim("batch", min=1)},) if dynamic_batch else None
    quiet = logging.getLogger("torch.onnx")
    level = quiet.level
    quiet.setLevel(logging.ERROR)   # it lists every torchvision op it skips when torchvision is absent
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(wrapper, (dummy,), str(path), dynamo=True, opset_version=opset,
                              input_names=[INPUT_NAME], output_names=list(OUTPUT_NAMES),
                              dynamic_shapes=shapes, verbose=False,
                              **_export_kwargs(external_data=False))  # one file, as the tracer writes
    finally:
        quiet.setLevel(level)


def _photo_crops(cfg) -> np.ndarray:
    """The shipped demo photo as one whole-image crop, and its mirror image: [2, 3, H, W] float32."""
    import cv2

    from .assets import DEMO_IMAGE
    from .inference.crops import box_to_crop, make_input
    img = cv2.imread(str(DEMO_IMAGE))
    h, w = img.shape[:2]
    crops = [make_input(im, *box_to_crop([0, 0, w, h], w, h, cfg.image_size), cfg.image_size)
             for im in (img, img[:, ::-1].copy())]
    return np.stack(crops)


def _quantize_int8(path: Path, cfg) -> tuple[float, float]:
    """Replace the float32 graph at `path` by its int8 form (int8 matrix products, dynamic activations).

    Returns the (median, max) distance, in input pixels, between the joints the two graphs decode
    (argmax) on the demo photo and its mirror image. On failure `path` keeps the float32 graph.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    tmp = path.with_name(f".{path.stem}.int8.{os.getpid()}.onnx")
    try:
        logging.disable(logging.WARNING)   # its "consider pre-processing" advice (no faster here) goes to the root logger
        try:
            quantize_dynamic(path, tmp, weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"])
        finally:
            logging.disable(logging.NOTSET)
        proto = onnx.load(str(tmp))   # the metadata (config, keep rates) comes across; say what was done
        proto.metadata_props.add(key="quantization", value="int8 dynamic (MatMul)")
        onnx.save(proto, str(tmp))
        crops = _photo_crops(cfg)[:, None]   # one at a time: the graph may take batch 1 only
        ref, got = ([np.concatenate(o) for o in zip(*(sess.run(list(OUTPUT_NAMES), {INPUT_NAME: x}) for x in crops))]
                    for sess in (_session(str(path)), _session(str(tmp))))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    moved = np.hypot(*[(a.argmax(-1) - b.argmax(-1)) / cfg.split_ratio for a, b in zip(got, ref)])   # [2, K]
    return float(np.median(moved)), float(moved.max())


def export_onnx(model, path, keep_rates: Optional[Sequence[float]] = None, dynamic_batch: bool = True,
                opset: int = 17, verify: bool = True, atol: float = 1e-4, verbose: bool = True,
                exporter: str = "auto", int8: bool = False) -> OnnxExport:
    """Export a GTPT model (eval path, pruning on) to `path`.

    keep_rates: defaults to the model's own. dynamic_batch: the batch axis is symbolic (traced
    at batch 2, verified at batch 3); otherwise the graph takes exactly batch 1.
    exporter: "torchscript", "dynamo" (opset 18 at least) or "auto" (the first, else the second).
    int8: quantize the verified float32 graph's matrix products (see the module docstring).
    Raises ExportError if the checker fails or any logit differs from PyTorch by more than atol.
    """
    from .models.fusion import fuse_for_inference
    from .models.gtpt import check_keep_rates

    if exporter not in EXPORTERS:
        raise ValueError(f"exporter must be one of {EXPORTERS}, not {exporter!r}")
    # a copy (never touch the caller's model) with BatchNorm folded: onnxruntime folds a BatchNorm
    # into the convolution before it, but not the patch BatchNorm into the patch embedding after it
    src = fuse_for_inference(copy.deepcopy(model).float().cpu().eval())
    rates = check_keep_rates(src.cfg, keep_rates if keep_rates is not None else src.keep_rates)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # built and checked beside `path`, which it replaces only once every check passed: a failed or
    # interrupted export leaves no unverified graph there (and an earlier file untouched)
    work = path.with_name(f".{path.stem}.{os.getpid()}.tmp.onnx")
    cfg, (h, w) = src.cfg, src.cfg.image_size
    trace_batch, verify_batch = (2, 3) if dynamic_batch else (1, 1)
    gen = torch.Generator().manual_seed(0)
    wrapper = _Pruned(src, rates).eval()
    try:
        used, opset = _trace(wrapper, torch.randn(trace_batch, 3, h, w, generator=gen), work, path, opset,
                             dynamic_batch, exporter, verbose)
        _stamp_and_check(work, path, {"gtpt_config": json.dumps(cfg.with_keep_rates(rates).to_dict()),
                                      "keep_rates": json.dumps(list(rates)),
                                      "dynamic_batch": json.dumps(dynamic_batch), "exporter": used})
        result = OnnxExport(path=path, keep_rates=rates, verify_batch=verify_batch, exporter=used, opset=opset)
        if verify:
            x = torch.randn(verify_batch, 3, h, w, generator=gen)
            result.max_abs_diff = _verify(wrapper, work, path, x, atol, verbose)
        if int8:
            result.int8_shift_px = _quantize_int8(work, cfg)
            if verbose:
                med, top = result.int8_shift_px
                print(f"int8: decoded joints moved {med:.2f} px (median), {top:.2f} px (max) from the float32 "
                      f"graph's on the demo photo (input pixels)")
        os.replace(work, path)
    finally:
        work.unlink(missing_ok=True)
        work.with_name(work.name + ".data").unlink(missing_ok=True)
    return result


def _trace(wrapper: nn.Module, dummy: torch.Tensor, work: Path, path: Path, opset: int, dynamic_batch: bool,
           exporter: str, verbose: bool) -> tuple[str, int]:
    """Write the graph of `wrapper` to `work`; "auto" falls back from the tracer to torch.export.
    Returns (the exporter that wrote it, its opset); messages name `path`, the user's file."""
    used, tracer_error = ("dynamo" if exporter == "dynamo" else "torchscript"), None
    with torch.no_grad():
        if used == "torchscript":
            try:
                _trace_torchscript(wrapper, dummy, work, opset, dynamic_batch)
                return used, opset
            except Exception as e:
                tracer_error = f"{type(e).__name__}: {e}"
                if exporter == "torchscript":
                    raise ExportError(f"{path}: the TorchScript ONNX exporter failed ({tracer_error}); "
                                      "exporter 'dynamo' may work") from e
                if verbose:
                    print(f"the TorchScript ONNX exporter failed ({tracer_error}); trying the torch.export-based one")
        try:
            opset = max(opset, 18)
            _trace_dynamo(wrapper, dummy, work, opset, dynamic_batch)
            return "dynamo", opset
        except Exception as e:
            if tracer_error is None:
                raise
            raise ExportError(f"{path}: the TorchScript ONNX exporter failed ({tracer_error}), and so did "
                              f"the torch.export-based one ({type(e).__name__}: {e})") from e


def _stamp_and_check(work: Path, path: Path, meta: dict) -> None:
    """Store `meta` in the graph at `work` (weights inline) and pass it through onnx.checker."""
    import onnx
    proto = onnx.load(str(work))
    del proto.metadata_props[:]
    for k, v in meta.items():
        proto.metadata_props.add(key=k, value=v)
    try:
        onnx.checker.check_model(proto)
    except onnx.checker.ValidationError as e:
        raise ExportError(f"{path}: the exported graph fails onnx.checker: {e}") from e
    onnx.save(proto, str(work))
    work.with_name(work.name + ".data").unlink(missing_ok=True)   # torch.export may have put weights beside it


def _verify(wrapper: nn.Module, work: Path, path: Path, x: torch.Tensor, atol: float, verbose: bool) -> dict:
    """{output name: max |onnxruntime - PyTorch|} on input `x`; ExportError beyond atol."""
    with torch.no_grad():
        ref = [t.numpy() for t in wrapper(x)]
    got = _session(str(work)).run(list(OUTPUT_NAMES), {INPUT_NAME: x.numpy()})
    diff = {n: float(np.abs(a - b).max()) for n, a, b in zip(OUTPUT_NAMES, ref, got)}
    if verbose:
        print(f"onnx check ok; onnxruntime vs PyTorch at batch {len(x)}: max |diff| "
              + ", ".join(f"{n} {d:.2e}" for n, d in diff.items()))
    worst = max(diff.values())
    if not worst <= atol:
        raise ExportError(f"{path}: onnxruntime differs from PyTorch by {worst:.3e} (> {atol:g}) at batch {len(x)}")
    return diff


def read_onnx_config(path):
    """The ModelConfig stored in an exported file's metadata, or None for foreign files."""
    import onnx

    from .config import ModelConfig
    proto = onnx.load(str(path), load_external_data=False)
    meta = {p.key: p.value for p in proto.metadata_props}
    if "gtpt_config" not in meta:
        return None
    return ModelConfig.from_dict(json.loads(meta["gtpt_config"]))


def exported_config(path, expect: Optional[str] = None):
    """The ModelConfig of a file written by `gtpt export` (its keep rates are the graph's), with
    errors that name the file: missing, unreadable, foreign, or another preset than `expect`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such onnx file")
    try:
        cfg = read_onnx_config(path)
    except Exception as e:
        raise ValueError(f"{path}: cannot read as an onnx model ({e})") from e
    if cfg is None:
        raise ValueError(f"{path}: not exported by `gtpt export` (no gtpt config in its metadata)")
    if expect is not None and cfg.name != expect:
        raise ValueError(f"{path} holds an exported '{cfg.name}', not '{expect}'")
    return cfg


__all__ = ["ExportError", "OnnxExport", "export_onnx", "read_onnx_config", "exported_config", "EXPORTERS",
           "INPUT_NAME", "OUTPUT_NAMES"]
