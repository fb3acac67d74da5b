"""Top-down geometry: boxes -> (center, scale), the affine crop, and training augmentation.

Conventions (the reference top-down setup):
- center (cx, cy) and scale (sw, sh) in units of `PIXEL_STD` = 200 pixels; the box is widened
  to the input aspect ratio (W/H = 192/256) and padded x1.25.
- output_size for the affine helpers is (W, H), as cv2 expects.
Points and boxes are float32 where the reference keeps them float32, so crops match it bit for bit.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

PIXEL_STD = 200.0
PADDING = 1.25
ASPECT_RATIO = 192.0 / 256.0


# ------------------------------------------------------------------ boxes
def clean_bbox(bbox_xywh, img_w: float, img_h: float, area: float | None = None):
    """Clip a COCO box to the image; None when it degenerates.

    x2 = min(W-1, x1 + max(0, w-1)) (COCO boxes are pixel-inclusive); kept when the
    annotation `area` (box w*h when not given) is > 0 and x2 >= x1 and y2 >= y1, exactly as
    the reference loader does. Returns [x1, y1, x2-x1, y2-y1] (float64 [4]) or None.
    """
    x, y, w, h = (float(v) for v in bbox_xywh)
    x1, y1 = max(0.0, x), max(0.0, y)
    x2 = min(img_w - 1, x1 + max(0.0, w - 1))
    y2 = min(img_h - 1, y1 + max(0.0, h - 1))
    if area is None:
        area = w * h
    if area > 0 and x2 >= x1 and y2 >= y1:
        return np.array([x1, y1, x2 - x1, y2 - y1], dtype=np.float64)
    return None


def box_to_center_scale(bbox_xywh, aspect_ratio: float = ASPECT_RATIO, padding: float = PADDING):
    """[x, y, w, h] -> center [2], scale [2] (float32), widened to `aspect_ratio` = W/H and padded."""
    x, y, w, h = (float(v) for v in bbox_xywh)
    center = np.array([x + w * 0.5, y + h * 0.5], dtype=np.float32)
    return center, _scale_at_aspect(w, h, aspect_ratio, padding)


def joints_to_center_scale(joints_xy, aspect_ratio: float = ASPECT_RATIO, enlarge: float = 1.5):
    """Half-body box: center = mean of the joints [N, 2], extent widened to the aspect, x`enlarge`."""
    pts = np.asarray(joints_xy, dtype=np.float32)[:, :2]
    center = pts.mean(axis=0)
    w, h = pts.max(axis=0) - pts.min(axis=0)
    return center, _scale_at_aspect(w, h, aspect_ratio, enlarge)


def _scale_at_aspect(w, h, aspect_ratio: float, factor: float) -> np.ndarray:
    """Grow w or h to the aspect ratio W/H, then scale [2] = (w, h) / 200 x factor (float32)."""
    if w > aspect_ratio * h:
        h = w / aspect_ratio
    elif w < aspect_ratio * h:
        w = h * aspect_ratio
    return np.array([w / PIXEL_STD, h / PIXEL_STD], dtype=np.float32) * np.float32(factor)


# ------------------------------------------------------------------ affine
def _rotate(vec, rot_rad: float):
    sn, cs = np.sin(rot_rad), np.cos(rot_rad)
    return np.array([vec[0] * cs - vec[1] * sn, vec[0] * sn + vec[1] * cs])


def _third_point(a, b):
    """Point completing a right angle at b (a - b rotated by 90 degrees)."""
    d = a - b
    return b + np.array([-d[1], d[0]], dtype=np.float32)


def get_affine_transform(center, scale, rot_deg: float, output_size, inv: bool = False):
    """2x3 matrix mapping the (rotated) box to an output of size (W, H); `inv` maps back.

    Built from three point pairs: the box center, a point half a box-width above it (rotated
    by rot_deg), and a third point at a right angle. Only scale[0] (the width) sets the
    zoom: the box already has the output aspect ratio.
    """
    center = np.asarray(center, dtype=np.float32)
    scale = np.asarray(scale, dtype=np.float32)
    out_w, out_h = float(output_size[0]), float(output_size[1])
    src_w = scale[0] * np.float32(PIXEL_STD)
    src_dir = _rotate([0.0, src_w * -0.5], np.pi * rot_deg / 180.0)

    src = np.zeros((3, 2), dtype=np.float32)
    dst = np.zeros((3, 2), dtype=np.float32)
    src[0] = center
    src[1] = center + src_dir
    dst[0] = [out_w * 0.5, out_h * 0.5]
    dst[1] = np.array([out_w * 0.5, out_h * 0.5]) + np.array([0.0, out_w * -0.5], np.float32)
    src[2] = _third_point(src[0], src[1])
    dst[2] = _third_point(dst[0], dst[1])
    if inv:
        return cv2.getAffineTransform(dst, src)
    return cv2.getAffineTransform(src, dst)


def warp_image(image, trans, output_size):
    """Bilinear crop of image [h, w, C] uint8 to output_size (W, H); outside pixels are 0.

    OpenCV >= 5 interpolates in float32 like the reference environment did; OpenCV 4.x snaps
    sub-pixel positions to 1/32 px (pixels off by up to ~7 levels), hence the >= 5 requirement.
    """
    return cv2.warpAffine(image, trans, (int(output_size[0]), int(output_size[1])),
                          flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def affine_points(points, trans):
    """Apply a 2x3 matrix to points [N, 2] (float64 out)."""
    pts = np.asarray(points, dtype=np.float64)[:, :2]
    return pts @ np.asarray(trans, dtype=np.float64)[:, :2].T + np.asarray(trans, np.float64)[:, 2]


def transform_joints(joints, joints_vis, trans):
    """Map joints [K, 2|3] to the crop; only visible ones (vis [K] > 0) move, others stay as given."""
    out = np.array(joints, dtype=np.float64, copy=True)
    vis = np.asarray(joints_vis).reshape(len(out), -1)[:, 0] > 0
    if vis.any():
        out[vis, :2] = affine_points(out[vis, :2], trans)
    return out


def flip_joints(joints, joints_vis, img_width: int, flip_index):
    """Mirror joints [K, 2|3] in an image of width `img_width`; swap left/right with flip_index [K].

    x -> W - 1 - x (pixel-centre mirror, matching a flipped array) and, as the reference does,
    coordinates of invisible joints are zeroed. Returns (joints, vis [K]).
    """
    joints = np.array(joints, dtype=np.float64, copy=True)
    vis = np.asarray(joints_vis, dtype=np.float64).reshape(len(joints), -1)[:, 0].copy()
    joints[:, 0] = img_width - joints[:, 0] - 1
    idx = np.asarray(flip_index)
    joints, vis = joints[idx], vis[idx]
    joints[:, :2] *= (vis > 0)[:, None]
    return joints, vis


# ------------------------------------------------------------------ augmentation
@dataclass
class AugmentConfig:
    """Training augmentation (recipe defaults). Probabilities in [0, 1]."""

    half_body_prob: float = 0.3
    half_body_min_joints: int = 8     # half-body needs *more than* this many visible joints
    half_body_enlarge: float = 1.5
    scale_factor: float = 0.35        # s *= clip(1 + sf*N(0,1), 1-sf, 1+sf)
    rotation_factor: float = 45.0     # r = clip(rf*N(0,1), -2rf, 2rf) ...
    rotation_prob: float = 0.6        # ... with this probability, else 0
    flip_prob: float = 0.5
    color_jitter: bool = False        # not in the recipe; for tiny datasets
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2
    occlusion_prob: float = 0.0       # not in the recipe: random erasing of one box of the input
    occlusion_area: tuple = (0.02, 0.15)   # its area, as a fraction of the input

    def __post_init__(self):
        for name in ("half_body_prob", "rotation_prob", "flip_prob", "occlusion_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"aug.{name} must be in [0, 1], got {getattr(self, name)}")
        self.occlusion_area = tuple(float(a) for a in self.occlusion_area)
        lo, hi = self.occlusion_area if len(self.occlusion_area) == 2 else (-1, -1)
        if not 0.0 < lo <= hi <= 1.0:
            raise ValueError(f"aug.occlusion_area must be [min, max] with 0 < min <= max <= 1, "
                             f"got {list(self.occlusion_area)}")


@dataclass
class AugmentParams:
    """One sample's drawn augmentation."""

    center: np.ndarray
    scale: np.ndarray
    rotation: float
    flip: bool
    half_body: bool


def half_body_center_scale(joints, vis, upper_ids, rng: np.random.Generator, enlarge: float = 1.5):
    """Box around the upper or lower visible joints, or None when too few joints.

    Upper when a standard-normal draw is < 0.5 (about 69%) and it has > 2 joints; otherwise
    lower if it has > 2, else upper. Needs at least 2 selected joints.
    """
    vis = np.asarray(vis).reshape(len(joints), -1)[:, 0] > 0
    upper_mask = np.zeros(len(joints), bool)
    upper_mask[list(upper_ids)] = True
    upper = np.asarray(joints)[vis & upper_mask, :2]
    lower = np.asarray(joints)[vis & ~upper_mask, :2]
    if rng.standard_normal() < 0.5 and len(upper) > 2:
        sel = upper
    else:
        sel = lower if len(lower) > 2 else upper
    if len(sel) < 2:
        return None
    return joints_to_center_scale(sel, enlarge=enlarge)


def draw_augmentation(center, scale, joints, vis, upper_ids, cfg: AugmentConfig,
                      rng: np.random.Generator) -> AugmentParams:
    """Draw half-body, scale, rotation and flip, in the recipe's order, from `rng`.

    The flip's effect on the center depends on the image width, so it is applied by
    `apply_augmentation`, not here.
    """
    center = np.array(center, dtype=np.float32, copy=True)
    scale = np.array(scale, dtype=np.float32, copy=True)
    n_vis = int((np.asarray(vis).reshape(len(joints), -1)[:, 0] > 0).sum())
    half = False
    if n_vis > cfg.half_body_min_joints and rng.random() < cfg.half_body_prob:
        hb = half_body_center_scale(joints, vis, upper_ids, rng, cfg.half_body_enlarge)
        if hb is not None:
            center, scale = hb
            half = True
    sf = cfg.scale_factor
    scale = scale * np.float32(np.clip(rng.standard_normal() * sf + 1, 1 - sf, 1 + sf))
    rf = cfg.rotation_factor
    rot = float(np.clip(rng.standard_normal() * rf, -2 * rf, 2 * rf)) if rng.random() < cfg.rotation_prob else 0.0
    flip = bool(rng.random() < cfg.flip_prob)
    return AugmentParams(center=center, scale=scale, rotation=rot, flip=flip, half_body=half)


def color_jitter(image_bgr, cfg: AugmentConfig, rng: np.random.Generator):
    """Random brightness, contrast and saturation on a uint8 BGR image (small datasets only)."""
    img = image_bgr.astype(np.float32)
    b = 1 + rng.uniform(-cfg.brightness, cfg.brightness)
    c = 1 + rng.uniform(-cfg.contrast, cfg.contrast)
    s = 1 + rng.uniform(-cfg.saturation, cfg.saturation)
    img = img * b
    img = (img - img.mean()) * c + img.mean()
    grey = img @ np.array([0.114, 0.587, 0.299], np.float32)   # BGR luma
    img = (img - grey[..., None]) * s + grey[..., None]
    return np.clip(img, 0, 255).astype(np.uint8)


def random_occlusion(image, cfg: AugmentConfig, rng: np.random.Generator):
    """With cfg.occlusion_prob, cover one random box (aspect 1:3..3:1) with uniform noise.

    Joints under it keep their labels, as COCO labels occluded joints: the model learns to infer
    them from the rest of the body.
    """
    if rng.random() >= cfg.occlusion_prob:
        return image
    h, w = image.shape[:2]
    area = rng.uniform(*cfg.occlusion_area) * h * w
    aspect = np.exp(rng.uniform(np.log(1 / 3), np.log(3)))
    bh, bw = min(h, int(np.sqrt(area * aspect))), min(w, int(np.sqrt(area / aspect)))
    y, x = int(rng.integers(0, h - bh + 1)), int(rng.integers(0, w - bw + 1))
    out = image.copy()
    out[y:y + bh, x:x + bw] = rng.integers(0, 256, (bh, bw, image.shape[2]), dtype=np.uint8)
    return out


__all__ = [
    "PIXEL_STD", "PADDING", "ASPECT_RATIO", "clean_bbox", "box_to_center_scale",
    "joints_to_center_scale", "get_affine_transform", "warp_image", "affine_points",
    "transform_joints", "flip_joints", "AugmentConfig", "AugmentParams",
    "half_body_center_scale", "draw_augmentation", "color_jitter", "random_occlusion",
]
