"""Following people by their joints instead of a detector (`predict_video(det_interval=N)`): what it costs.

    python benchmarks/keypoint_boxes.py --ann data/gtpt-mini/annotations/person_keypoints_val.json \
        --images data/gtpt-mini/images

Keypoint AP on a COCO-format set (flip test, gtpt's evaluator), two ways:
1. stills: each person re-cropped from the box around their joints found one step before
   (`gtpt.inference.tracking.follow_boxes`), 1 to --steps times on the same picture, for several
   joint thresholds and box margins (what happens between two detections, without motion);
2. videos: the frames of each video (file names <video>_<frame number>, in order), where every
   N-th frame gets the labelled boxes (a perfect detector) and the frames between follow the
   people of the frame before, as `predict_video(det_interval=N)` does.
Without --weights: the shipped demo weights.
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


def videos(files: dict) -> list:
    """Image ids grouped by video (the file name without its _<frame number>), in frame order."""
    groups: dict[str, list] = {}
    for i, name in sorted(files.items(), key=lambda item: item[1]):
        groups.setdefault(Path(name).stem.rsplit("_", 1)[0], []).append(i)
    return list(groups.values())


def follow_videos(predictor, images: dict, labelled: dict, interval: int) -> dict:
    """Labelled boxes on every interval-th frame of each video, followed joints in between (and
    the labelled boxes again when everyone is lost)."""
    out = {}
    for frames in videos({i: images[i][0] for i in images}):
        last = []
        for k, i in enumerate(frames):
            boxes = follow_boxes(last) if k % interval else labelled[i]
            last = out[i] = predictor.predict(images[i][1], boxes if len(boxes) else labelled[i])
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", default=str(DEMO_WEIGHTS), help="a .safetensors file (default: the demo weights)")
    p.add_argument("--ann", required=True, help="COCO keypoint annotations json")
    p.add_argument("--images", required=True, help="their image folder")
    p.add_argument("--steps", type=int, default=4, help="stills: times followed")
    p.add_argument("--margins", type=float, nargs="+", default=[1.0, 1.15, 1.25, KEYPOINT_BOX_MARGIN, 1.4, 1.5],
                   help="stills: the box is this many times the joints' extent")
    p.add_argument("--thresholds", type=float, nargs="+", default=[KEYPOINT_BOX_THR],
                   help="joints scoring above this span the box")
    p.add_argument("--intervals", type=int, nargs="+", default=[1, 2, 3, 5, 10, 25],
                   help="videos: a detection every N frames")
    args = p.parse_args(argv)

    gt = read_json(args.ann)
    files = {im["id"]: im["file_name"] for im in gt["images"]}
    labelled: dict[int, list] = {}
    for a in gt["annotations"]:
        if a.get("num_keypoints", 0) > 0 and not a.get("iscrowd", 0):
            labelled.setdefault(a["image_id"], []).append(list(a["bbox"]) + [1.0])
    labelled = {i: np.array(b) for i, b in labelled.items()}
    images = {i: cv2.imread(str(Path(args.images) / files[i])) for i in sorted(labelled)}
    predictor = Predictor(args.weights)
    spec = get_keypoint_spec(predictor.num_joints)

    start = run_all(predictor, images, labelled)
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
    named = {i: (files[i], images[i]) for i in images}
    print(f"videos ({len(videos({i: files[i] for i in images}))}, labelled frames only), joints > "
          f"{KEYPOINT_BOX_THR}, margin {KEYPOINT_BOX_MARGIN}:")
    print(f"{'detect every':<14}" + "".join(f"{n:>7}" for n in args.intervals))
    print(f"{'AP':<14}" + "".join(f"{keypoint_ap(follow_videos(predictor, named, labelled, n), args.ann, spec):>7.1f}"
                                  for n in args.intervals))
    return 0


if __name__ == "__main__":
    sys.exit(main())
