"""Person crops exactly as the validation pipeline makes them.

box [x, y, w, h] -> clean (clip to the image) -> center/scale (aspect W/H, x1.25 padding)
-> affine warp to the input size -> BGR->RGB -> /255 -> ImageNet mean/std.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..data.dataset import normalize_image
from ..data.transforms import box_to_center_scale, clean_bbox, get_affine_transform, warp_image


def box_to_crop(box_xywh, img_w: int, img_h: int,
                input_size=(256, 192)) -> Optional[tuple[np.ndarray, np.ndarray]]:
    """(center [2], scale [2]) of the crop for one box, or None when the box misses the image."""
    clean = clean_bbox(box_xywh, img_w, img_h)
    if clean is None:
        return None
    h, w = input_size
    return box_to_center_scale(clean, aspect_ratio=w / h)


def crop_transform(center, scale, input_size=(256, 192), inv: bool = False) -> np.ndarray:
    """2x3 matrix image -> crop (or crop -> image with `inv`)."""
    h, w = input_size
    return get_affine_transform(center, scale, 0.0, (w, h), inv=inv)


def make_input(image_bgr: np.ndarray, center, scale, input_size=(256, 192)) -> np.ndarray:
    """uint8 BGR image [h, w, 3] -> normalised RGB network input float32 [3, H, W]."""
    h, w = input_size
    crop = warp_image(image_bgr, crop_transform(center, scale, input_size), (w, h))
    return normalize_image(crop[..., ::-1]).numpy()


__all__ = ["box_to_crop", "crop_transform", "make_input"]
