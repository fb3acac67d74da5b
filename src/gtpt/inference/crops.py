"""Person crops exactly as the validation pipeline makes them.

box [x, y, w, h] -> clean (clip to the image) -> center/scale (aspect W/H, x1.25 padding)
-> affine warp to the input size -> BGR->RGB -> /255 -> ImageNet mean/std.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..data.transforms import box_to_center_scale, clean_bbox, get_affine_transform, warp_image

MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)


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
    rgb = crop[..., ::-1].astype(np.float32) / np.float32(255.0)  # ToTensor, then Normalize
    return np.ascontiguousarray(((rgb - MEAN) / STD).transpose(2, 0, 1))


__all__ = ["MEAN", "STD", "box_to_crop", "crop_transform", "make_input"]
