"""Evaluation scoring, independent of the model: rescoring, OKS-NMS, COCO keypoint AP/AR.

COCO body uses pycocotools' COCOeval ('keypoints'). COCO-WholeBody is scored on six subsets
(body, foot, face, left hand, right hand, whole-body) with the semantics of xtcocotools'
COCOeval(iouType='keypoints_<part>', use_area=True), rebuilt on pycocotools so it does not
need xtcocotools:
- per part, a ground truth counts (is not ignored) when that part has a labelled point;
- a detection is dropped for a part when none of its part scores is > 0;
- OKS uses the part's sigmas and the annotation `area`; the detection area (used to ignore
  unmatched detections by size) is the extent of its 17 body points, as xtcocotools' loadRes
  computes it from `keypoints`;
- a per-part score `<part>_score` is used when present, else `score`.
"""
from __future__ import annotations

import contextlib
import copy
import io
import os
from collections import defaultdict
from typing import Optional

import numpy as np

from gtpt.keypoints import KeypointSpec

STAT_NAMES = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")
WHOLEBODY_SUBSETS = ("body", "foot", "face", "lefthand", "righthand", "wholebody")
# result / annotation field holding each part's points (body lives in `keypoints`)
_PART_FIELDS = (("body", "keypoints", "body"), ("foot", "foot_kpts", "foot"),
                ("face", "face_kpts", "face"), ("lefthand", "lefthand_kpts", "left_hand"),
                ("righthand", "righthand_kpts", "right_hand"))


# ------------------------------------------------------------------ rescoring and NMS
def rescore(people: list[dict], kpt_thr: float = 0.01) -> list[dict]:
    """Instance score = box score x mean of the joint scores above `kpt_thr` (0 if none).

    people: dicts with `keypoints` [K, 3] (x, y, joint score) and `score` (the box score).
    Returns new dicts; the box score is kept as `box_score`.
    """
    out = []
    for p in people:
        s = np.asarray(p["keypoints"], np.float64)[:, 2]
        valid = s > kpt_thr
        kpt_score = float(s[valid].mean()) if valid.any() else 0.0
        q = dict(p)
        q["box_score"] = float(p["score"])
        q["score"] = kpt_score * float(p["score"])
        out.append(q)
    return out


def oks_iou(kpts: np.ndarray, area: float, others: np.ndarray, other_areas: np.ndarray,
            sigmas: np.ndarray, vis_thr: float | None = None) -> np.ndarray:
    """OKS of one pose [K, 3] against poses [N, K, 3], using the mean of the two areas.

    With vis_thr, only joints whose scores exceed it in both poses count.
    """
    var = (np.asarray(sigmas, np.float64) * 2) ** 2
    d2 = ((others[:, :, :2] - kpts[None, :, :2]) ** 2).sum(-1)                   # [N, K]
    e = d2 / var[None] / ((area + np.asarray(other_areas))[:, None] / 2 + np.spacing(1)) / 2
    if vis_thr is None:
        return np.exp(-e).mean(axis=1)
    m = (kpts[None, :, 2] > vis_thr) & (others[:, :, 2] > vis_thr)
    n = m.sum(1)
    return np.where(n > 0, (np.exp(-e) * m).sum(1) / np.maximum(n, 1), 0.0)


def oks_nms(people: list[dict], thr: float = 0.9, sigmas=None, vis_thr: float | None = None) -> list[int]:
    """Greedy OKS-NMS over the poses of ONE image; returns kept indices, best score first.

    people: dicts with keypoints [K, 3], area, score. A pose is suppressed when its OKS with
    an already kept one is > thr.
    """
    if not people:
        return []
    kpts = np.stack([np.asarray(p["keypoints"], np.float64).reshape(-1, 3) for p in people])
    if sigmas is None:
        raise ValueError("oks_nms needs the dataset's per-joint sigmas")
    areas = np.array([float(p["area"]) for p in people])
    order = np.argsort(-np.array([float(p["score"]) for p in people]), kind="stable")
    keep = []
    while order.size:
        i = order[0]
        keep.append(int(i))
        rest = order[1:]
        ovr = oks_iou(kpts[i], areas[i], kpts[rest], areas[rest], sigmas, vis_thr)
        order = rest[ovr <= thr]
    return keep


def nms_per_image(people: list[dict], thr: float = 0.9, sigmas=None) -> list[dict]:
    """Group by `image_id` and apply `oks_nms` within each image."""
    groups = defaultdict(list)
    for p in people:
        groups[p["image_id"]].append(p)
    kept = []
    for img_id in sorted(groups, key=str):
        g = groups[img_id]
        kept += [g[i] for i in oks_nms(g, thr, sigmas)]
    return kept


# ------------------------------------------------------------------ result formatting
def to_coco_results(people: list[dict], spec: KeypointSpec | None = None) -> list[dict]:
    """people (image_id, keypoints [K, 3], score) -> COCO results dicts (category 1).

    For whole-body (K = 133) `keypoints` holds the 17 body points and the other parts go to
    foot_kpts, face_kpts, lefthand_kpts, righthand_kpts, as xtcocotools expects.
    """
    out = []
    for p in people:
        kp = np.asarray(p["keypoints"], np.float64).reshape(-1, 3)
        r = {"image_id": p["image_id"], "category_id": 1, "score": float(p["score"])}
        if kp.shape[0] == 133:
            r.update(_split_wholebody(kp.reshape(-1).tolist(), spec))
        else:
            r["keypoints"] = kp.reshape(-1).tolist()
        out.append(r)
    return out


def _part_ranges(spec: KeypointSpec | None) -> dict:
    parts = spec.parts if spec is not None and spec.parts else {
        "body": (0, 17), "foot": (17, 23), "face": (23, 91), "left_hand": (91, 112),
        "right_hand": (112, 133)}
    return {name: tuple(parts[key]) for name, _, key in _PART_FIELDS}


def _split_wholebody(flat: list, spec: KeypointSpec | None) -> dict:
    ranges = _part_ranges(spec)
    return {fld: flat[3 * ranges[name][0]:3 * ranges[name][1]] for name, fld, _ in _PART_FIELDS}


# ------------------------------------------------------------------ COCO evaluation
def _quiet():
    return contextlib.redirect_stdout(io.StringIO())


def _coco_from_dataset(dataset: dict):
    from pycocotools.coco import COCO
    c = COCO()
    c.dataset = dataset
    with _quiet():
        c.createIndex()
    return c


def _run_cocoeval(coco_gt, coco_dt, sigmas) -> dict:
    from pycocotools.cocoeval import COCOeval
    ev = COCOeval(coco_gt, coco_dt, "keypoints")
    ev.params.kpt_oks_sigmas = np.asarray(sigmas, np.float64)
    with _quiet():
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return {k: float(v) for k, v in zip(STAT_NAMES, ev.stats)}


def _load_gt(gt_json_path) -> dict:
    """The ground-truth json; an image-info file (no 'annotations') gets an empty list."""
    from gtpt.data.coco import read_json   # shared json reading with clear errors
    data = read_json(gt_json_path)
    for key in ("images", "categories"):
        if key not in data:
            raise ValueError(f"{gt_json_path}: ground truth lacks '{key}'")
    data.setdefault("annotations", [])
    return data


def has_keypoint_ground_truth(gt_json_path) -> bool:
    """Whether a COCO json holds annotations to score against (an image-info file, such as COCO
    test-dev's image_info_test-dev2017.json, lists only the images)."""
    from gtpt.data.coco import read_json
    return bool(read_json(gt_json_path).get("annotations"))


def _check_results(results: list[dict], gt: dict, gt_path) -> None:
    ids = {img["id"] for img in gt["images"]}
    for i, r in enumerate(results):
        if r.get("image_id") not in ids:
            raise ValueError(f"result {i} has image_id {r.get('image_id')!r}, which is not in {gt_path}")


def format_table(stats: dict, title: str = "") -> str:
    """Printable AP/AR table: one row per subset (dict of dicts) or a single row."""
    rows = stats if all(isinstance(v, dict) for v in stats.values()) else {title or "all": stats}
    head = f"{'':<12}" + "".join(f"{n:>8}" for n in STAT_NAMES)
    lines = [head] + [f"{name:<12}" + "".join(f"{100 * s[n]:8.2f}" for n in STAT_NAMES)
                      for name, s in rows.items()]
    return "\n".join(lines)


def coco_keypoint_eval(gt_json_path, results: list[dict], spec: KeypointSpec) -> dict:
    """Keypoint AP/AR of COCO results against a ground-truth json.

    Body / generic K: pycocotools COCOeval('keypoints') with spec.sigmas. Whole-body (133):
    the six subsets (see `wholebody_keypoint_eval`) with the whole-body numbers as the
    top-level AP/AR. Returns {AP, AP50, AP75, APm, APl, AR, AR50, AR75, ARm, ARl, table}, or None
    when the json lists images but no annotations (an image-info file such as COCO test-dev's):
    there is nothing to score against.
    """
    gt = _load_gt(gt_json_path)
    if not gt["annotations"]:
        return None
    if spec.num_joints == 133:
        return wholebody_keypoint_eval(gt_json_path, results, spec, gt=gt)
    _check_results(results, gt, gt_json_path)
    res = []
    for i, r in enumerate(results):
        if len(r["keypoints"]) != 3 * spec.num_joints:
            raise ValueError(f"result {i} has {len(r['keypoints'])} keypoint values, "
                             f"expected {spec.num_joints}*3")
        res.append(copy.deepcopy(r))
    if not res:
        stats = {k: 0.0 for k in STAT_NAMES}
    else:
        coco_gt = _coco_from_dataset(copy.deepcopy(gt))
        with _quiet():
            coco_dt = coco_gt.loadRes(res)
        stats = _run_cocoeval(coco_gt, coco_dt, spec.sigmas)
    stats["table"] = format_table({k: v for k, v in stats.items()}, os.path.basename(str(gt_json_path)))
    return stats


def _part_points(obj: dict, name: str, fld: str, ranges: dict, where: str) -> list:
    """A part's flat point list from an annotation/result (split or 133-long `keypoints`)."""
    kp = obj.get("keypoints", [])
    if len(kp) == 133 * 3:
        lo, hi = ranges[name]
        return list(kp[3 * lo:3 * hi])
    if fld not in obj:
        raise ValueError(f"{where} lacks '{fld}' (whole-body needs keypoints + foot_kpts, "
                         f"face_kpts, lefthand_kpts, righthand_kpts)")
    return list(obj[fld])


def wholebody_keypoint_eval(gt_json_path, results: list[dict], spec: KeypointSpec,
                            gt: Optional[dict] = None) -> dict:
    """COCO-WholeBody AP/AR on body, foot, face, lefthand, righthand and wholebody subsets.

    Matches xtcocotools COCOeval(gt, dt, 'keypoints_<part>', part sigmas, use_area=True).
    gt: the json's content when already read. Returns {subsets: {name: stats}, <AP..ARl of
    wholebody>, <name>_AP / <name>_AR, table}.
    """
    gt = gt if gt is not None else _load_gt(gt_json_path)
    _check_results(results, gt, gt_json_path)
    ranges = _part_ranges(spec)
    ranges["wholebody"] = (0, 133)
    sigmas = np.asarray(spec.sigmas, np.float64)

    # per-part points of every gt annotation and every result, in their file order
    gt_parts, dt_parts = [], []
    for a in gt["annotations"]:
        where = f"annotation {a.get('id', '?')} in {gt_json_path}"
        for key in ("bbox", "area", "image_id"):
            if key not in a:
                raise ValueError(f"{where} lacks '{key}'")
        gt_parts.append({name: _part_points(a, name, fld, ranges, where) for name, fld, _ in _PART_FIELDS})
    for i, r in enumerate(results):
        dt_parts.append({name: _part_points(r, name, fld, ranges, f"result {i}")
                         for name, fld, _ in _PART_FIELDS})
    for parts in gt_parts + dt_parts:
        parts["wholebody"] = sum((parts[n] for n, _, _ in _PART_FIELDS), [])

    subsets = {}
    for name in WHOLEBODY_SUBSETS:
        lo, hi = ranges[name]
        anns = []
        for j, (a, parts) in enumerate(zip(gt["annotations"], gt_parts)):
            kp = parts[name]
            anns.append({"id": j + 1,   # ids > 0: pycocotools treats id 0 as "unmatched"
                         "image_id": a["image_id"], "category_id": a.get("category_id", 1),
                         "iscrowd": a.get("iscrowd", 0), "bbox": a["bbox"], "area": a["area"],
                         "keypoints": kp, "num_keypoints": int(np.count_nonzero(np.asarray(kp)[2::3] > 0))})
        coco_gt = _coco_from_dataset({"images": gt["images"], "categories": gt["categories"],
                                      "annotations": anns})
        dets = []
        for i, (r, parts) in enumerate(zip(results, dt_parts)):
            kp = np.asarray(parts[name], np.float64)
            if not np.any(kp[2::3] > 0):
                continue   # xtcocotools skips detections with no positive score in the part
            body = np.asarray(parts["body"], np.float64)
            x0, x1, y0, y1 = body[0::3].min(), body[0::3].max(), body[1::3].min(), body[1::3].max()
            score_key = f"{name}_score"
            dets.append({"id": i + 1, "image_id": r["image_id"], "category_id": r.get("category_id", 1),
                         "keypoints": parts[name], "score": float(r.get(score_key, r["score"])),
                         "area": (x1 - x0) * (y1 - y0), "bbox": [x0, y0, x1 - x0, y1 - y0]})
        if not dets:
            subsets[name] = {k: 0.0 for k in STAT_NAMES}
            continue
        coco_dt = _coco_from_dataset({"images": gt["images"], "categories": gt["categories"],
                                      "annotations": dets})
        subsets[name] = _run_cocoeval(coco_gt, coco_dt, sigmas[lo:hi])

    out = dict(subsets["wholebody"])
    for name, s in subsets.items():
        out[f"{name}_AP"], out[f"{name}_AR"] = s["AP"], s["AR"]
    out["subsets"] = subsets
    out["table"] = format_table(subsets)
    return out


__all__ = ["rescore", "oks_iou", "oks_nms", "nms_per_image", "to_coco_results",
           "coco_keypoint_eval", "has_keypoint_ground_truth", "wholebody_keypoint_eval", "format_table", "STAT_NAMES",
           "WHOLEBODY_SUBSETS"]
