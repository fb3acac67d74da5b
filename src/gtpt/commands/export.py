"""gtpt export [--weights FILE] --format onnx [--keep-rates R R R R] [--out FILE] [--opset N] [--exporter E] [--int8]

Without --weights: the shipped demo weights (or an untrained preset named by --model), as predict.

The graph includes pruning (token counts fixed by the keep rates); the batch axis is dynamic
unless --no-dynamic-batch. Every export is verified against PyTorch and the difference printed.
--exporter picks PyTorch's TorchScript tracer or its torch.export-based exporter; --int8 quantizes
the matrix products (see gtpt.export).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..export import EXPORTERS
from ._weights import add_keep_rates_argument, add_weights_arguments, announce, choose_weights, load_torch_model


def add_arguments(p):
    add_weights_arguments(p)
    p.add_argument("--format", choices=("onnx",), default="onnx", help="export format")
    add_keep_rates_argument(p)
    p.add_argument("--dynamic-batch", action=argparse.BooleanOptionalAction, default=True,
                   help="symbolic batch axis (else the graph takes batch 1 only)")
    p.add_argument("--out", metavar="FILE", help="output file (default: <weights or model name>.onnx)")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset version (18 at least with --exporter dynamo)")
    p.add_argument("--exporter", choices=EXPORTERS, default="auto",
                   help="PyTorch's TorchScript tracer, its torch.export-based exporter (torch >= 2.6, "
                        "needs onnxscript), or auto: the tracer, else torch.export (default: %(default)s)")
    p.add_argument("--int8", action="store_true",
                   help="quantize the matrix products to int8 (onnxruntime dynamic quantization): "
                        "a smaller file, faster on CPUs, joints within about a pixel")


def run(args) -> int:
    from ..export import ExportError, export_onnx
    from ..models.checkpoint import CheckpointError

    try:
        choice = choose_weights(args.weights, args.model)
        announce(choice)
        model = load_torch_model(choice, args.keep_rates)
    except (CheckpointError, FileNotFoundError, ValueError) as e:
        print(f"gtpt export: error: {e}", file=sys.stderr)
        return 2
    out = Path(args.out or (Path(args.weights).with_suffix(".onnx").name if args.weights else f"{model.cfg.name}.onnx"))
    try:
        result = export_onnx(model, out, keep_rates=args.keep_rates, dynamic_batch=args.dynamic_batch,
                             opset=args.opset, exporter=args.exporter, int8=args.int8)
    except (ExportError, ImportError) as e:
        print(f"gtpt export: error: {e}", file=sys.stderr)
        return 1
    batch = "dynamic batch" if args.dynamic_batch else "batch 1"
    print(f"wrote {result.path} ({model.cfg.name}, keep rates {list(result.keep_rates)}, {batch}, opset {result.opset}, "
          f"{result.exporter} exporter{', int8' if args.int8 else ''})")
    return 0
