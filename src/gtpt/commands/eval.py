"""gtpt eval CONFIG --checkpoint FILE [--boxes dets.json | --gt-boxes] [--opt k=v ...] [--no-flip]"""
from __future__ import annotations

import warnings
from pathlib import Path

from ._weights import add_precision_argument

EPILOG = """examples:
  gtpt eval configs/gtpt_t_coco.yaml --checkpoint runs/t_coco/best.safetensors
  gtpt eval configs/gtpt_t_coco.yaml --checkpoint pose_gtpt_t_human.pth --gt-boxes
  torchrun --nproc-per-node=4 -m gtpt eval configs/gtpt_b_wholebody.yaml --checkpoint last.ckpt
  gtpt eval configs/gtpt_t_coco.yaml --checkpoint gtpt_t_int8.onnx   # the graph you deploy
  gtpt eval configs/gtpt_t_coco.yaml --checkpoint W.safetensors --boxes test-dev-dets.json \\
      --opt data.val_ann=image_info_test-dev2017.json data.val_images=test2017   # unscored, for submission

FILE may be a .safetensors written by this package, a training .ckpt (its EMA weights are used),
an official .pth checkpoint (EMA weights, mapped by the preset named in the config) or an .onnx
graph from `gtpt export` (float32 or --int8; run by onnxruntime with the keep rates it was exported
with). A data.val_ann without annotations (an image-info file) gives the results, post-processed as
for scoring, without scores."""


def add_arguments(p):
    p.epilog = EPILOG
    p.add_argument("config", help="experiment YAML (its data.val_* and eval sections are used)")
    p.add_argument("--checkpoint", required=True, metavar="FILE",
                   help=".safetensors (this package), .ckpt (training state: EMA weights), official .pth, "
                        "or an .onnx from `gtpt export`")
    boxes = p.add_mutually_exclusive_group()
    boxes.add_argument("--boxes", metavar="DETS_JSON", default=None,
                       help="COCO detection-results json of person boxes (default: data.val_boxes)")
    boxes.add_argument("--gt-boxes", action="store_true", help="use the ground-truth person boxes")
    p.add_argument("--opt", nargs="+", default=[], metavar="KEY=VALUE",
                   help="override config values, e.g. eval.batch_size=32 model.keep_rates=[1,0.7,0.5,0.3]")
    p.add_argument("--no-flip", action="store_true", help="disable the flip test")
    p.add_argument("--out", default=None, metavar="JSON",
                   help="where to write the COCO results json (default: next to the checkpoint)")
    p.add_argument("--device", choices=["cpu", "cuda"], default=None)
    add_precision_argument(p, runs="PyTorch weights; default: the config's eval.amp", default=None)
    p.add_argument("--compile", action="store_true",
                   help="torch.compile a deployment copy (CUDA graphs on a GPU); each batch size compiles "
                        "first, so it pays off on full validation sets")


def load_onnx_for_eval(path, exp, device):
    """An `OnnxRunner` over a `gtpt export` graph of the config's preset; its keep rates are baked in
    and it runs in float32. Under torchrun, rank 0 reads the file for every rank (it need not be on
    each machine)."""
    from ..engine import distributed as du
    from ..export import exported_config
    from ..inference.backends import OnnxRunner
    if exp.eval.amp != "none":
        raise ValueError(f"{path}: an .onnx graph runs in float32; --precision / eval.amp apply to PyTorch weights")
    cfg, graph = du.on_main(lambda: (exported_config(path, expect=exp.model.name), Path(path).read_bytes()))
    if tuple(cfg.keep_rates) != tuple(exp.model.keep_rates) and du.is_main():
        warnings.warn(f"{path}: the graph was exported with keep rates {list(cfg.keep_rates)}; those run, "
                      f"not model.keep_rates {list(exp.model.keep_rates)}", UserWarning, stacklevel=2)
    return OnnxRunner(path, device.type, graph=graph)


def run(args) -> int:
    from ..engine import distributed as du
    from ..engine.evaluator import build_val_dataset, evaluate
    from ..engine.experiment import ConfigError, load_experiment
    from ..models.checkpoint import CheckpointError
    from ..weights import load_weights
    try:
        exp = load_experiment(args.config, args.opt)
        if args.precision is not None:
            exp.eval.amp = {"fp32": "none", "bf16": "bf16"}[args.precision]
        device = du.init_distributed(args.device)
        if Path(args.checkpoint).suffix.lower() == ".onnx":
            model = load_onnx_for_eval(args.checkpoint, exp, device)
        else:   # rank 0 reads the file for every rank, as for a graph
            model = du.on_main(lambda: load_weights(args.checkpoint, expect=exp.model.name,
                                                    keep_rates=exp.model.keep_rates)).to(device)
        dataset = build_val_dataset(exp, boxes=args.boxes, gt_boxes=True if args.gt_boxes else None)
        out = args.out or str(Path(args.checkpoint).with_suffix("")) + "_results.json"
        stats = evaluate(model, dataset, exp, device=device, flip=not args.no_flip, out_json=out,
                         compile=args.compile)
    except (ConfigError, CheckpointError, FileNotFoundError, ValueError) as e:
        print(f"gtpt eval: error: {e}", flush=True)
        return 1
    finally:
        du.cleanup()
    if stats is not None:
        print(f"results: {stats['results_file']} ({stats['num_results']} people)")
    return 0
