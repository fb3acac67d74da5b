"""COCO keypoint AP of one set of weights run three ways: PyTorch, the float32 ONNX graph, the int8 graph.

    python benchmarks/onnx_accuracy.py --weights W.safetensors \
        --ann data/coco/annotations/person_keypoints_val2017.json --images data/coco/val2017

Every way runs through `gtpt.Predictor` (flip test, ground-truth person boxes, the Predictor's
instance scores) on the same images, and gtpt's evaluator (pycocotools) scores the results, so
the rows differ only by the network's runtime and precision. Without --weights: the shipped demo
weights. --max-images caps the run for a quick look.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from gtpt.commands._weights import DEMO_WEIGHTS  # noqa: E402
from gtpt.data.coco import read_json  # noqa: E402
from gtpt.engine.metrics import coco_keypoint_eval  # noqa: E402
from gtpt.export import export_onnx  # noqa: E402
from gtpt.inference.predictor import Predictor  # noqa: E402
from gtpt.keypoints import get_keypoint_spec  # noqa: E402
from gtpt.models.checkpoint import load_model  # noqa: E402


def keypoint_ap(predictor, ann: str, images: str, tmp: Path, max_images: int = 0) -> tuple[float, int]:
    """(AP in %, people scored) of the predictor on the annotated people, with their own boxes, scored
    by gtpt's evaluator (`coco_keypoint_eval`: pycocotools, the keypoint set's sigmas, whole-body too)."""
    gt = read_json(ann)
    labelled: dict[int, list] = {}   # image id -> its annotated people
    for a in gt["annotations"]:
        if a.get("num_keypoints", 0) > 0 and not a.get("iscrowd", 0):
            labelled.setdefault(a["image_id"], []).append(a)
    ids = sorted(labelled)[:max_images or None]
    files = {im["id"]: im["file_name"] for im in gt["images"]}
    results = []
    for i in ids:
        found = predictor.predict(str(Path(images) / files[i]), [a["bbox"] + [1.0] for a in labelled[i]])
        results += [p.to_coco(image_id=i) for p in found]
    if max_images:   # score only the images that ran: the ground truth of just those
        keep = set(ids)
        subset = {**gt, "images": [im for im in gt["images"] if im["id"] in keep],
                  "annotations": [a for a in gt["annotations"] if a["image_id"] in keep]}
        ann = tmp / "subset.json"
        ann.write_text(json.dumps(subset))
    stats = coco_keypoint_eval(ann, results, get_keypoint_spec(predictor.num_joints))
    return 100 * stats["AP"], len(results)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", default=str(DEMO_WEIGHTS), help="a .safetensors file (default: the demo weights)")
    p.add_argument("--ann", required=True, help="COCO keypoint annotations json")
    p.add_argument("--images", required=True, help="their image folder")
    p.add_argument("--max-images", type=int, default=0)
    args = p.parse_args(argv)

    model = load_model(args.weights).eval()
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = export_onnx(model, Path(tmp) / "fp32.onnx", verbose=False).path
        int8 = export_onnx(model, Path(tmp) / "int8.onnx", int8=True, verbose=False)
        rows = [("pytorch fp32", Predictor(model)), ("onnxruntime fp32", Predictor(str(fp32))),
                ("onnxruntime int8", Predictor(str(int8.path)))]
        sizes = {"onnxruntime fp32": fp32.stat().st_size, "onnxruntime int8": int8.path.stat().st_size}
        print(f"{Path(args.weights).name} on {args.ann}: keypoint AP with ground-truth boxes, flip test")
        print(f"{'runtime':<18}{'AP':>7}{'people':>8}{'file MB':>9}")
        for name, predictor in rows:
            ap, n = keypoint_ap(predictor, args.ann, args.images, Path(tmp), args.max_images)
            size = f"{sizes[name] / 1e6:.1f}" if name in sizes else "-"
            print(f"{name:<18}{ap:>7.1f}{n:>8}{size:>9}")
        print(f"int8 joints vs float32 on the demo photo: median {int8.int8_shift_px[0]:.2f} px, "
              f"max {int8.int8_shift_px[1]:.2f} px (input pixels)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
