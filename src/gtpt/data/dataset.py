"""Top-down training / validation dataset: image file + person record -> network input and targets.

Randomness comes from a numpy Generator seeded by (seed, epoch, index), so a sample's
augmentation does not depend on worker count, worker order or where a run resumed.
"""
from __future__ import annotations

import functools
import os

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from gtpt.codec import SimCCCodec
from gtpt.data.coco import PersonRecord
from gtpt.data.transforms import (AugmentConfig, color_jitter, draw_augmentation, flip_joints,
                                  get_affine_transform, random_occlusion, transform_joints, warp_image)
from gtpt.keypoints import KeypointSpec

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ImageReadError(RuntimeError):
    """An image file is missing or cannot be decoded; `path` names it.

    Also constructible from one message string, as DataLoader workers re-raise exceptions.
    """

    def __init__(self, path: str, reason: str | None = None):
        super().__init__(path if reason is None else f"cannot read image {path}: {reason}")
        self.path = path if reason is not None else None


def read_image_bgr(path: str) -> np.ndarray:
    """uint8 [h, w, 3] BGR, EXIF orientation ignored (as COCO boxes assume)."""
    if not os.path.isfile(path):
        raise ImageReadError(path, "file not found")
    img = cv2.imread(path, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if img is None:
        raise ImageReadError(path, "not a decodable image (corrupt or unsupported format)")
    return img


def to_input_tensor(rgb_uint8: np.ndarray) -> torch.Tensor:
    """uint8 [H, W, 3] RGB -> uint8 [3, H, W]; `normalize_batch` makes it a network input."""
    return torch.from_numpy(np.ascontiguousarray(rgb_uint8)).permute(2, 0, 1)


def normalize_batch(images: torch.Tensor) -> torch.Tensor:
    """uint8 [..., 3, H, W] RGB -> float32, /255 then ImageNet mean/std, on the images' device.

    Datasets hand out uint8 and the trainer / evaluator normalise after the copy to the device,
    like MMPose's data preprocessor: a quarter of the bytes to pin and copy, and less work in the
    data workers, which bound the training speed of small models.
    """
    mean, std = _mean_std(images.device)
    return images.float().div(255).sub(mean).div(std)


@functools.lru_cache(maxsize=None)
def _mean_std(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """ImageNet mean and std as [3, 1, 1] tensors on `device`, made once (not a copy to the GPU
    per training step). Normal tensors even when first asked for under inference mode."""
    with torch.inference_mode(False):
        mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32, device=device)[:, None, None]
        std = torch.tensor(IMAGENET_STD, dtype=torch.float32, device=device)[:, None, None]
    return mean, std


def normalize_image(rgb_uint8: np.ndarray) -> torch.Tensor:
    """uint8 [H, W, 3] RGB -> float32 [3, H, W] network input (one image, on the CPU)."""
    return normalize_batch(to_input_tensor(rgb_uint8))


class TopDownDataset(Dataset):
    """records -> dict(image [3,H,W], target_x [K,Wx], target_y [K,Wy], target_weight [K], meta).

    image is uint8 RGB; `normalize_batch` turns a batch of them into the network input.

    meta: center [2], scale [2] (the crop actually used, after augmentation), rotation, flipped,
    image_id, ann_id, area, score, bbox [4], joints [K,3] (input space, x, y, vis 0/1),
    image_file.
    """

    def __init__(self, records: list[PersonRecord], *, codec: SimCCCodec, spec: KeypointSpec,
                 train: bool, aug: AugmentConfig | dict | None = None, seed: int = 0):
        if not records:
            raise ValueError("TopDownDataset needs at least one record")
        k = records[0].joints.shape[0]
        if k != spec.num_joints:
            raise ValueError(f"records have {k} joints but the keypoint spec has {spec.num_joints}")
        self.records = records
        self.codec = codec
        self.spec = spec
        self.train = train
        self.aug = AugmentConfig(**aug) if isinstance(aug, dict) else (aug or AugmentConfig())
        self.seed = int(seed)
        self.epoch = 0
        self._flip_index = spec.flip_index()

    def set_epoch(self, epoch: int) -> None:
        """Change the augmentation stream (call before each epoch, in every worker's copy)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.records)

    def rng_for(self, index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch, int(index)])

    def __getitem__(self, index: int) -> dict:
        rec = self.records[index]
        image = read_image_bgr(rec.image_file)
        joints = rec.joints[:, :2].astype(np.float64)
        vis = (rec.joints[:, 2] > 0).astype(np.float64)     # labelled (v = 1 or 2) -> target
        center = np.array(rec.center, np.float32)
        scale = np.array(rec.scale, np.float32)
        rot, flipped = 0.0, False

        if self.train:
            rng = self.rng_for(index)
            p = draw_augmentation(center, scale, joints, vis, self.spec.upper_body_ids, self.aug, rng)
            center, scale, rot, flipped = p.center, p.scale, p.rotation, p.flip
            if flipped:
                image = image[:, ::-1]
                joints, vis = flip_joints(joints, vis, image.shape[1], self._flip_index)
                center[0] = image.shape[1] - center[0] - 1

        h, w = self.codec.input_size
        trans = get_affine_transform(center, scale, rot, (w, h))
        crop = warp_image(np.ascontiguousarray(image), trans, (w, h))
        if self.train:   # pixel-level augmentation on the small input, not on the whole image
            if self.aug.color_jitter:
                crop = color_jitter(crop, self.aug, rng)
            crop = random_occlusion(crop, self.aug, rng)
        joints_in = transform_joints(joints, vis, trans)
        target_x, target_y, target_weight = self.codec.encode(joints_in, vis)

        joints_out = np.concatenate([joints_in, vis[:, None]], axis=1).astype(np.float32)
        meta = {
            "center": center.astype(np.float32), "scale": scale.astype(np.float32),
            "rotation": float(rot), "flipped": bool(flipped),
            "image_id": int(rec.image_id), "ann_id": int(rec.ann_id),
            "area": float(rec.area), "score": float(rec.score),
            "bbox": np.asarray(rec.bbox, np.float32), "joints": joints_out,
            "image_file": rec.image_file,
        }
        return {
            "image": to_input_tensor(cv2.cvtColor(crop, cv2.COLOR_BGR2RGB)),   # uint8: normalize_batch
            "target_x": torch.from_numpy(target_x),
            "target_y": torch.from_numpy(target_y),
            "target_weight": torch.from_numpy(target_weight),
            "meta": meta,
        }


__all__ = ["TopDownDataset", "ImageReadError", "read_image_bgr", "to_input_tensor", "normalize_batch",
           "normalize_image",
           "IMAGENET_MEAN", "IMAGENET_STD", "AugmentConfig"]
