"""Shared test helpers: reference-fixture locating and a procedural COCO-format dataset.

`make_coco_dataset` draws stick figures with cv2 on noisy backgrounds: each joint has its own
colour (left and right differ), so poses are learnable by a small model in a few steps.
"""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"
FIXTURES = SHARED / "fixtures" / "official"
MINI_SAMPLE = REPO_ROOT / "tests" / "data" / "mini_sample"   # 6 real frames of gtpt-mini, labelled (14 people)
TINY_YOLO = REPO_ROOT / "tests" / "data" / "detector" / "yolo11_raw.onnx"   # an ultralytics export, random weights


def shared_dir() -> Path:
    """../shared beside the repository; skips the test when it is absent."""
    if not SHARED.is_dir():
        pytest.skip(f"reference data folder {SHARED} not found (CI puts shared/ beside the clone)")
    return SHARED


def load_fixture(name: str) -> dict:
    """Official fixture by short name: 'human' (17) or 'wholebody' (133)."""
    import torch
    path = shared_dir() / "fixtures" / "official" / f"pose_gtpt_t_{name}.pt"
    if not path.is_file():
        pytest.skip(f"reference fixture {path} not found")
    return torch.load(path, weights_only=True)


# ------------------------------------------------------------------ procedural dataset
# A front-facing template in box-normalised (x, y); the person's left is on the image right.
_BODY_TEMPLATE = np.array([
    (0.50, 0.08), (0.54, 0.06), (0.46, 0.06), (0.58, 0.08), (0.42, 0.08),
    (0.66, 0.22), (0.34, 0.22), (0.74, 0.38), (0.26, 0.38), (0.78, 0.52), (0.22, 0.52),
    (0.60, 0.52), (0.40, 0.52), (0.62, 0.72), (0.38, 0.72), (0.63, 0.92), (0.37, 0.92),
])
_BODY_LINKS = ((15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6),
               (5, 7), (6, 8), (7, 9), (8, 10), (0, 1), (0, 2), (1, 3), (2, 4))


def _joint_colours(k: int) -> np.ndarray:
    """Distinct BGR colour per joint (hue wheel)."""
    hsv = np.stack([np.arange(k) * 180 // max(k, 1), np.full(k, 255), np.full(k, 230)], 1)
    return cv2.cvtColor(hsv.astype(np.uint8)[None], cv2.COLOR_HSV2BGR)[0].astype(int)


def _wholebody_extra(body: np.ndarray, size: float, rng) -> np.ndarray:
    """[116, 2] foot, face and hand points placed around the drawn body joints."""
    foot = []
    for ankle in (15, 16):
        a = body[ankle]
        foot += [a + (0.05 * size, 0.03 * size), a + (0.02 * size, 0.035 * size), a + (-0.02 * size, 0.02 * size)]
    ang = np.linspace(0, 2 * np.pi, 68, endpoint=False)
    face = body[0] + np.stack([np.cos(ang) * 0.05 * size, np.sin(ang) * 0.06 * size], 1)
    hands = []
    for wrist, sgn in ((9, 1), (10, -1)):
        w = body[wrist]
        pts = [w]
        for f in range(5):
            d = np.array([np.cos(0.5 + 0.35 * f), np.sin(0.5 + 0.35 * f)]) * (sgn, 1)
            pts += [w + d * 0.02 * size * (i + 1) for i in range(4)]
        hands += pts
    extra = np.concatenate([np.array(foot), face, np.array(hands)])
    return extra + rng.normal(0, 0.003 * size, extra.shape)


def make_coco_dataset(root, num_images: int = 4, people_per_image: int = 2, num_joints: int = 17,
                      seed: int = 0, image_size=(160, 200)) -> Path:
    """Write `images/*.jpg` and `annotations.json` (COCO body or WholeBody v1.0) under root.

    image_size: (height, width). ~10% of joints are unlabelled (v=0, coords 0), the rest v=2;
    for whole-body, each person's face is sometimes marked invalid. Returns the json path.
    """
    if num_joints not in (17, 133):
        raise ValueError("num_joints must be 17 or 133")
    rng = np.random.default_rng(seed)
    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    h, w = image_size
    colours = _joint_colours(num_joints)
    images, anns = [], []
    for i in range(num_images):
        img = rng.integers(0, 90, (h, w, 3), dtype=np.uint8)
        img = cv2.GaussianBlur(img, (5, 5), 0)
        for _ in range(people_per_image):
            bh = rng.uniform(0.45, 0.9) * h
            bw = bh * rng.uniform(0.45, 0.6)
            x0, y0 = rng.uniform(0, w - bw), rng.uniform(0, h - bh)
            pts = _BODY_TEMPLATE + rng.normal(0, 0.025, _BODY_TEMPLATE.shape)
            if rng.random() < 0.5:   # some people face away: mirror without swapping labels
                pts[:, 0] = 1 - pts[:, 0]
            pts = pts * (bw, bh) + (x0, y0)
            if num_joints == 133:
                pts = np.concatenate([pts, _wholebody_extra(pts, bh, rng)])
            thick = max(1, int(bh / 40))
            for a, b in _BODY_LINKS:
                cv2.line(img, tuple(int(v) for v in pts[a]), tuple(int(v) for v in pts[b]),
                         (200, 200, 200), thick, cv2.LINE_AA)
            for k, (x, y) in enumerate(pts):
                r = thick + 1 if k < 17 else 1
                cv2.circle(img, (int(round(x)), int(round(y))), r, tuple(int(c) for c in colours[k]), -1)
            vis = np.where(rng.random(num_joints) < 0.1, 0, 2)
            inside = (pts[:, 0] >= 0) & (pts[:, 0] < w) & (pts[:, 1] >= 0) & (pts[:, 1] < h)
            vis = np.where(inside, vis, 0)
            kp = np.concatenate([pts * (vis[:, None] > 0), vis[:, None]], 1)
            lab = kp[vis > 0, :2]
            bx0, by0 = lab.min(0) - 4 if len(lab) else (x0, y0)
            bx1, by1 = lab.max(0) + 4 if len(lab) else (x0 + bw, y0 + bh)
            bx0, by0 = max(bx0, 0), max(by0, 0)
            box = [float(bx0), float(by0), float(min(bx1, w - 1) - bx0), float(min(by1, h - 1) - by0)]
            ann = {"id": len(anns) + 1, "image_id": i + 1, "category_id": 1, "iscrowd": 0,
                   "bbox": box, "area": float(box[2] * box[3] * 0.8),
                   "num_keypoints": int((vis[:17] > 0).sum()),
                   "keypoints": np.round(kp[:17], 2).reshape(-1).tolist()}
            if num_joints == 133:
                for name, (lo, hi) in (("foot", (17, 23)), ("face", (23, 91)),
                                       ("lefthand", (91, 112)), ("righthand", (112, 133))):
                    part = np.round(kp[lo:hi], 2)
                    valid = bool(part[:, 2].any()) and not (name == "face" and rng.random() < 0.2)
                    if not valid:
                        part = np.zeros_like(part)
                    ann[f"{name}_kpts"] = part.reshape(-1).tolist()
                    ann[f"{name}_valid"] = valid
                    ann[f"{name}_box"] = [0.0, 0.0, 0.0, 0.0]
            anns.append(ann)
        name = f"{i + 1:06d}.jpg"
        cv2.imwrite(str(root / "images" / name), img, [cv2.IMWRITE_JPEG_QUALITY, 92])
        images.append({"id": i + 1, "file_name": name, "width": w, "height": h})
    cat = {"id": 1, "name": "person", "supercategory": "person",
           "keypoints": [f"kp{k}" for k in range(17)], "skeleton": []}
    path = root / "annotations.json"
    path.write_text(json.dumps({"images": images, "annotations": anns, "categories": [cat]}))
    return path


def has_flex_attention() -> bool:
    import importlib.util
    return importlib.util.find_spec("torch.nn.attention.flex_attention") is not None


# FlexAttention arrived in torch 2.5; the package runs on 2.3 without it
needs_flex = pytest.mark.skipif(not has_flex_attention(), reason="FlexAttention needs torch >= 2.5")
