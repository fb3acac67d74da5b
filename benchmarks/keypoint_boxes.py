"""Following people by their joints instead of a detector (`predict_video(det_interval=N)`): what it costs.

    python benchmarks/keypoint_boxes.py --ann data/gtpt-mini/annotations/person_keypoints_val.json \
        --images data/gtpt-mini/images

Keypoint AP on a COCO-format set (flip test, gtpt's evaluator), first with the labelled boxes, then
with each person re-cropped from the box around their joints found one step before
(`gtpt.inference.tracking.follow_boxes`), for 1 to --steps steps and several box margins. Each
step runs on the same still picture: it is what happens between two detections, without the
motion that a video adds between frames. Without --weights: the shipped demo weights.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from gtpt.commands._weights import DEMO_WEIGHTS  # noqa: E402
from gtpt.data.coco import read_json  # noqa: E402
from gtpt.engine.metrics import coco_keypoint_eval  # noqa: E402
from gtpt.inference.predictor import Predictor  # noqa: E402
from gtpt.inference.tracking import KEYPOINT_BOX_MARGIN, KEYPOINT_BOX_THR, follow_boxes  # noqa: E402
from gtpt.keypoints import get_keypoint_spec  # noqa: E402


def run_all(predictor, images: dict, boxes: dict) -> dict:
    """image id -> people, each image with its boxes [N, 5]."""
    return {i: predictor.predict(images[i], boxes[i]) if len(boxes[i]) else [] for i in images}


def keypoint_ap(people: dict, ann: str, spec) -> float:
    results = [p.to_coco(image_id=i) for i, found in people.items() for p in found]
    return 100 * coco_keypoint_eval(ann, results, spec)["AP"]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", default=str(DEMO_WEIGHTS), help="a .safetensors file (default: the demo weights)")
    p.add_argument("--ann", required=True, help="COCO keypoint annotations json")
    p.add_argument("--images", required=True, help="their image folder")
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--margins", type=float, nargs="+", default=[1.0, 1.15, 1.25, KEYPOINT_BOX_MARGIN, 1.4, 1.5])
    p.add_argument("--thresholds", type=float, nargs="+", default=[KEYPOINT_BOX_THR],
                   help="joints scoring above this span the box")
    args = p.parse_args(argv)

    gt = read_json(args.ann)
    files = {im["id"]: im["file_name"] for im in gt["images"]}
    labelled: dict[int, list] = {}
    for a in gt["annotations"]:
        if a.get("num_keypoints", 0) > 0 and not a.get("iscrowd", 0):
            labelled.setdefault(a["image_id"], []).append(list(a["bbox"]) + [1.0])
    images = {i: cv2.imread(str(Path(args.images) / files[i])) for i in sorted(labelled)}
    predictor = Predictor(args.weights)
    spec = get_keypoint_spec(predictor.num_joints)

    start = run_all(predictor, images, {i: np.array(b) for i, b in labelled.items()})
    print(f"{Path(args.weights).name} on {args.ann}: keypoint AP, flip test, {sum(map(len, labelled.values()))} people")
    print(f"labelled boxes: {keypoint_ap(start, args.ann, spec):.1f}")
    print(f"{'joints >':<10}{'margin':<8}" + "".join(f"{f'step {s}':>9}" for s in range(1, args.steps + 1)))
    for thr in args.thresholds:
        for margin in args.margins:
            people, row = start, []
            for _ in range(args.steps):
                boxes = {i: follow_boxes(found, thr, margin) for i, found in people.items()}
                people = run_all(predictor, images, boxes)
                row.append(keypoint_ap(people, args.ann, spec))
            print(f"{thr:<10.3f}{margin:<8.2f}" + "".join(f"{ap:>9.1f}" for ap in row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
