"""`gtpt <verb>`: one sub-command per job. Each verb lives in `gtpt.commands.<verb>` with
`add_arguments(parser)` and `run(args) -> int`; this file only wires them together."""
from __future__ import annotations

import argparse
import importlib
import sys
import warnings

# verb -> one-line help (modules are imported only when their verb runs, to keep start-up fast)
VERBS = {
    "demo": "run the full pipeline on the shipped sample image (no download needed)",
    "predict": "pose on images, folders, globs or videos; writes COCO json and pictures",
    "train": "train a model from a YAML config (one device, or many via torchrun)",
    "eval": "evaluate a checkpoint on a COCO-format validation set (flip test, OKS-NMS, COCO AP)",
    "browse": "draw training (augmented) or validation crops with their target joints: check the data by eye",
    "export": "export a model to ONNX (pruning included)",
    "convert": "official checkpoints or a training run's last.ckpt -> this package's safetensors (optionally float16)",
    "profile": "count parameters and GMACs for one 256x192 image, the way the paper counts",
    "bench": "measure latency and images/s (eager, compiled, onnxruntime)",
}


class _HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Appends "(default: X)" only where it tells something: not for None / False / empty defaults,
    and not where the help text already says what the default is."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if ("default" in text or default is None or default is False or default is argparse.SUPPRESS
                or (isinstance(default, (list, tuple)) and not default)):
            return text
        if isinstance(default, (list, tuple)):   # as it is typed: "1 8", not "[1, 8]"
            return text + " (default: " + " ".join(map(str, default)).replace("%", "%%") + ")"
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gtpt", formatter_class=_HelpFormatter,
        description="GTPT: efficient top-down 2D human pose estimation (COCO body / COCO-WholeBody).",
        epilog="Run `gtpt <verb> --help` for the options of each verb.")
    sub = parser.add_subparsers(dest="verb", metavar="<verb>")
    verb = sys.argv[1] if len(sys.argv) > 1 else None
    for name, help_text in VERBS.items():
        p = sub.add_parser(name, help=help_text, description=help_text, formatter_class=_HelpFormatter)
        if name == verb:  # only the chosen verb's module is imported
            _module(name).add_arguments(p)
    return parser


def _module(name: str):
    return importlib.import_module(f"gtpt.commands.{name}")


def main(argv=None) -> int:
    if argv is not None:
        sys.argv = [sys.argv[0]] + list(argv)
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:])
    if args.verb is None:
        parser.print_help()
        return 2
    default_format = warnings.formatwarning

    def plain(message, category, *rest, **kwargs):   # our warnings speak to users, not about source lines
        if issubclass(category, UserWarning):
            return f"gtpt {args.verb}: warning: {message}\n"
        return default_format(message, category, *rest, **kwargs)

    warnings.formatwarning = plain
    try:
        return int(_module(args.verb).run(args) or 0)
    finally:
        warnings.formatwarning = default_format


if __name__ == "__main__":
    sys.exit(main())
