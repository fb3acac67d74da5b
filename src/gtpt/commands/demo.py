"""gtpt demo [--out DIR]: the whole pipeline on the shipped photo, no download needed.

Writes DIR/demo_pose.jpg (skeleton), DIR/demo_predictions.json and DIR/demo_pruning.png
(which patches each keypoint group kept), and says which weights made them.
"""
from __future__ import annotations

import sys
from pathlib import Path

from ..assets import DEMO_IMAGE
from ..inference.draw import DRAW_KPT_THR
from ._weights import add_precision_argument, add_weights_arguments, announce, choose_weights



def add_arguments(p):
    p.add_argument("--out", default="gtpt_demo_output", metavar="DIR", help="output folder")
    add_weights_arguments(p)
    p.add_argument("--image", default=str(DEMO_IMAGE), metavar="FILE", help="picture to run on")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    add_precision_argument(p)
    p.add_argument("--kpt-thr", type=float, default=None,
                   help="joints scoring at or below this are not drawn (default 0.02, SA-SimCC scores peak near 0.1; 0 for untrained weights, "
                        "so the pipeline's output is visible)")


def run(args) -> int:
    import cv2

    from ..inference.draw import draw_poses, draw_pruning
    from ..inference.io import InputError, read_image, write_json
    from ..models.checkpoint import CheckpointError
    from .predict import build_predictor

    try:
        image = read_image(args.image)
    except InputError as e:
        where = " (the demo image ships with the package; reinstall gtpt)" if Path(args.image) == DEMO_IMAGE else ""
        print(f"gtpt demo: error: {e}{where}", file=sys.stderr)
        return 1
    try:
        choice = choose_weights(args.weights, args.model)
        announce(choice)
        args.backend, args.no_flip, args.keep_rates, args.batch_size = None, False, None, 32
        predictor = build_predictor(args, choice)
    except (CheckpointError, FileNotFoundError, ValueError) as e:
        print(f"gtpt demo: error: {e}", file=sys.stderr)
        return 2
    if predictor.model is None:
        print("gtpt demo: error: the demo draws the pruning picture, which needs .safetensors weights",
              file=sys.stderr)
        return 2

    # one person filling the photo: the whole image is the person box
    h, w = image.shape[:2]
    box = [0.0, 0.0, float(w), float(h)]
    person = predictor.predict(image, [box])[0]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    pose_path, json_path, prune_path = out / "demo_pose.jpg", out / "demo_predictions.json", out / "demo_pruning.png"
    kpt_thr = args.kpt_thr if args.kpt_thr is not None else (0.0 if choice.untrained else DRAW_KPT_THR)
    cv2.imwrite(str(pose_path), draw_poses(image, [person], kpt_thr=kpt_thr))
    write_json(json_path, [person.to_coco(1, Path(args.image).name)])
    trace = predictor.kept_patches(image, box)
    cv2.imwrite(str(prune_path), draw_pruning(image, box, trace, predictor.cfg.image_size, predictor.cfg.grid,
                                              keypoints=person.keypoints))
    names = predictor.spec.names
    best = sorted(range(len(names)), key=lambda k: -person.keypoints[k, 2])[:3]
    print(f"image:    {args.image} ({w}x{h})")
    print(f"model:    {predictor.cfg.name}, keep rates {list(predictor.keep_rates)}, flip test on")
    print("top joints: " + ", ".join(f"{names[k]} ({person.keypoints[k, 2]:.2f})" for k in best))
    print(f"wrote:    {pose_path}\n          {json_path}\n          {prune_path}")
    if choice.untrained:
        print("note:     the weights are UNTRAINED, so the skeleton is meaningless; the pipeline is real.")
    return 0
