"""Score with xtcocotools in its own interpreter (its wheels need numpy < 2, the package uses 2).

usage: python xtcoco_reference.py GT_JSON RESULTS_JSON OUT_JSON
Writes {iou_type: stats} for the six whole-body subsets, as MMPose scores COCO-WholeBody.
"""
import contextlib
import io
import json
import sys

import numpy as np
from xtcocotools.coco import COCO
from xtcocotools.cocoeval import COCOeval

CUTS = {"body": (0, 17), "foot": (17, 23), "face": (23, 91), "lefthand": (91, 112),
        "righthand": (112, 133), "wholebody": (0, 133)}


def main(gt_path, results_path, out_path, sigmas_path):
    sigmas = np.asarray(json.load(open(sigmas_path)))
    results = json.load(open(results_path))
    out = {}
    for name, (lo, hi) in CUTS.items():
        with contextlib.redirect_stdout(io.StringIO()):
            gt = COCO(gt_path)
            dt = gt.loadRes(json.loads(json.dumps(results)))
            ev = COCOeval(gt, dt, f"keypoints_{name}", sigmas[lo:hi], use_area=True)
            ev.params.useSegm = None
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
        out[name] = [float(v) for v in ev.stats]
    json.dump(out, open(out_path, "w"))


if __name__ == "__main__":
    main(*sys.argv[1:5])
