"""COCO-format keypoint files -> validated per-person records.

Supports COCO body (17 joints in `keypoints`), COCO-WholeBody v1.0 (133 = keypoints + foot_kpts
+ face_kpts + lefthand_kpts + righthand_kpts) and any dataset whose annotations carry K*3
`keypoints` values. Malformed input stops with an error naming the file; degenerate persons
(zero-area box, no labelled joint) are skipped and counted in one warning.
"""
from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass, field

import numpy as np

from gtpt.data.transforms import box_to_center_scale, clean_bbox

WHOLEBODY_PARTS = ("foot", "face", "lefthand", "righthand")   # after the 17 body joints


@dataclass
class PersonRecord:
    """One top-down sample: a person box in an image and (for GT) its joints.

    bbox: [4] xywh (cleaned for GT); center, scale: [2] float32 (scale in 200-px units);
    joints: [K, 3] float32 (x, y, v) with COCO visibility 0/1/2 (zeros for detections).
    """

    image_file: str
    image_id: int
    ann_id: int
    bbox: np.ndarray
    center: np.ndarray
    scale: np.ndarray
    joints: np.ndarray
    area: float
    score: float = 1.0
    image_size: tuple = field(default=(0, 0))   # (width, height) from the json, 0 if unknown


# ------------------------------------------------------------------ json reading
def read_json(path, expect=dict):
    """Load a json file with errors that name it (missing, truncated/malformed, wrong type)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"annotation file not found: {path}")
    try:
        with open(path, "r", encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: malformed or truncated JSON ({e.msg} at line {e.lineno}, "
                         f"column {e.colno})") from None
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not a UTF-8 text JSON file ({e})") from None
    if not isinstance(data, expect):
        raise ValueError(f"{path}: expected a JSON {expect.__name__} at top level, "
                         f"got {type(data).__name__}")
    return data


def index_images(data: dict, path) -> dict:
    """image id -> image dict, checking the fields the loader needs."""
    images = data.get("images")
    if not isinstance(images, list) or not images:
        raise ValueError(f"{path}: no images (the 'images' list is missing or empty)")
    out = {}
    for img in images:
        if not isinstance(img, dict) or not all(k in img for k in ("id", "file_name", "width", "height")):
            raise ValueError(f"{path}: image entry {str(img)[:80]} lacks id/file_name/width/height")
        out[img["id"]] = img
    return out


def annotation_keypoints(ann: dict, num_joints: int, path) -> np.ndarray:
    """[K, 3] float32 (x, y, v) of one annotation; whole-body parts marked invalid get v = 0."""
    try:
        return _annotation_keypoints(ann, num_joints, path)
    except (TypeError, ValueError) as e:
        if str(path) in str(e):
            raise
        raise ValueError(f"annotation {ann.get('id', '?')} in {path} has malformed keypoints ({e})") from None


def _annotation_keypoints(ann: dict, num_joints: int, path) -> np.ndarray:
    aid = ann.get("id", "?")
    if num_joints == 133 and "foot_kpts" in ann:
        chunks = [np.asarray(ann.get("keypoints", []), np.float64).reshape(-1)]
        for part in WHOLEBODY_PARTS:
            kp = np.asarray(ann.get(f"{part}_kpts", []), np.float64).reshape(-1)
            if not ann.get(f"{part}_valid", True):
                kp = kp.copy()
                kp[2::3] = 0   # an invalid part is unlabelled whatever its values say
            chunks.append(kp)
        flat = np.concatenate(chunks)
        what = "keypoints+foot_kpts+face_kpts+lefthand_kpts+righthand_kpts"
    else:
        if "keypoints" not in ann:
            raise ValueError(f"annotation {aid} in {path} has no 'keypoints'")
        flat = np.asarray(ann["keypoints"], np.float64).reshape(-1)
        what = "keypoints"
    if flat.size != num_joints * 3:
        raise ValueError(f"annotation {aid} in {path} has {flat.size} {what} values, "
                         f"expected {num_joints}*3 = {num_joints * 3}")
    if not np.all(np.isfinite(flat)):
        raise ValueError(f"annotation {aid} in {path} has non-finite keypoint values")
    return flat.reshape(num_joints, 3).astype(np.float32)


def _person_category(data: dict) -> int:
    cats = data.get("categories") or []
    for c in cats:
        if c.get("name") == "person":
            return c["id"]
    return cats[0]["id"] if cats else 1


# ------------------------------------------------------------------ loaders
def load_coco_records(ann_json, image_root, num_joints: int) -> list[PersonRecord]:
    """Ground-truth person records (one per annotated person) from a COCO keypoint json.

    Keeps iscrowd=0 persons of the person category with a non-degenerate cleaned box and at
    least one labelled joint (v > 0).
    """
    path = os.fspath(ann_json)
    data = read_json(path)
    images = index_images(data, path)
    anns = data.get("annotations")
    if not isinstance(anns, list):
        raise ValueError(f"{path}: no 'annotations' list")
    cat = _person_category(data)
    root = os.path.abspath(os.fspath(image_root))
    records, n_box, n_joint = [], 0, 0
    for ann in anns:
        if ann.get("iscrowd", 0) or ann.get("category_id", cat) != cat:
            continue
        aid = ann.get("id", "?")
        img = images.get(ann.get("image_id"))
        if img is None:
            raise ValueError(f"annotation {aid} in {path} refers to unknown image id {ann.get('image_id')}")
        if "bbox" not in ann or len(ann["bbox"]) != 4:
            raise ValueError(f"annotation {aid} in {path} has no valid 'bbox' [x, y, w, h]")
        joints = annotation_keypoints(ann, num_joints, path)
        box = clean_bbox(ann["bbox"], img["width"], img["height"],
                         area=ann.get("area", ann["bbox"][2] * ann["bbox"][3]))
        # beyond the reference: a box that cleans to 0x0 would give scale 0 (a singular crop)
        if box is None or (box[2] <= 0 and box[3] <= 0):
            n_box += 1
            continue
        if not np.any(joints[:, 2] > 0):
            n_joint += 1
            continue
        center, scale = box_to_center_scale(box)
        records.append(PersonRecord(
            image_file=os.path.join(root, img["file_name"]), image_id=img["id"], ann_id=aid,
            bbox=box, center=center, scale=scale, joints=joints,
            area=float(ann.get("area", box[2] * box[3])), score=1.0,
            image_size=(img["width"], img["height"])))
    if n_box or n_joint:
        warnings.warn(f"{path}: skipped {n_box} person(s) with a zero-area box and "
                      f"{n_joint} with no labelled joints", stacklevel=2)
    if not records:
        raise ValueError(f"{path}: no usable person annotations with {num_joints} joints "
                         f"(after skipping crowd, zero-area and unlabelled persons)")
    return records


def load_detection_records(det_json, coco_gt, image_root, num_joints: int,
                           score_thr: float = 0.0) -> list[PersonRecord]:
    """Person boxes from a COCO detection-results json (category 1) -> records without joints.

    coco_gt: the ground-truth json path (or its loaded dict / a COCO object) giving file names.
    Boxes are used as given (no clipping), like the reference; detections scoring below
    `score_thr` are dropped.
    """
    det_path = os.fspath(det_json)
    dets = read_json(det_path, expect=list)
    if isinstance(coco_gt, dict):
        gt, gt_path = coco_gt, "<ground-truth dict>"
    elif hasattr(coco_gt, "dataset"):
        gt, gt_path = coco_gt.dataset, "<COCO object>"
    else:
        gt_path = os.fspath(coco_gt)
        gt = read_json(gt_path)
    images = index_images(gt, gt_path)
    root = os.path.abspath(os.fspath(image_root))
    records = []
    for i, det in enumerate(dets):
        if not isinstance(det, dict) or not all(k in det for k in ("image_id", "bbox", "score")):
            raise ValueError(f"{det_path}: entry {i} is not a detection with image_id, bbox, score")
        if det.get("category_id", 1) != 1:
            continue
        img = images.get(det["image_id"])
        if img is None:
            raise ValueError(f"{det_path}: detection {i} refers to image id {det['image_id']}, "
                             f"which is not in the ground truth {gt_path}")
        if len(det["bbox"]) != 4:
            raise ValueError(f"{det_path}: detection {i} bbox must be [x, y, w, h], got {det['bbox']}")
        if det["score"] < score_thr:
            continue
        box = np.asarray(det["bbox"], np.float64)
        center, scale = box_to_center_scale(box)
        records.append(PersonRecord(
            image_file=os.path.join(root, img["file_name"]), image_id=img["id"], ann_id=i,
            bbox=box, center=center, scale=scale,
            joints=np.zeros((num_joints, 3), np.float32), area=float(box[2] * box[3]),
            score=float(det["score"]), image_size=(img["width"], img["height"])))
    if not records:
        raise ValueError(f"{det_path}: no person detections (category 1) with score >= {score_thr}")
    return records


__all__ = ["PersonRecord", "read_json", "index_images", "annotation_keypoints",
           "load_coco_records", "load_detection_records"]
