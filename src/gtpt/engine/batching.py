"""Data loading for the engine: (epoch, index) keys -> samples -> batches, with bad-image skipping.

Policy for unreadable images (missing or corrupt files): the reference code crashes. Here the
sample is dropped from its batch with a warning, the batch is built from the readable ones,
and the trainer reports the number dropped per epoch (metrics.csv `skipped_images`). One bad
file in a 150k-image run should not kill a 17-GPU-hour job, and nothing is silently lost: every
skipped path is reported. Any other error (bad annotation, code bug) still stops the run.
"""
from __future__ import annotations

import warnings

import torch
from torch.utils.data import DataLoader, Dataset, default_collate

from ..data.dataset import ImageReadError


class SkipBadImages(Dataset):
    """Wraps a `TopDownDataset`; keys are (epoch, index) so worker copies follow the epoch.

    Returns the sample dict, or {"skipped": path} when the image cannot be read.
    """

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key):
        epoch, index = key if isinstance(key, tuple) else (getattr(self.dataset, "epoch", 0), key)
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)   # the worker's own copy: augmentation stream of this epoch
        try:
            return self.dataset[index]
        except ImageReadError as e:
            warnings.warn(f"skipping sample {index}: {e}", stacklevel=2)
            return {"skipped": e.path}


def collate_skipping(items: list) -> dict:
    """Batch the readable samples; `skipped` lists the paths that could not be read.

    Returns {image [B,3,H,W], target_x [B,K,Wx], target_y [B,K,Wy], target_weight [B,K],
    meta {...}, skipped [paths]} (B may be 0: then only `skipped` and size 0 are present).
    """
    good = [it for it in items if "skipped" not in it]
    skipped = [it["skipped"] for it in items if "skipped" in it]
    batch = default_collate(good) if good else {}
    batch["skipped"] = skipped
    batch["size"] = len(good)
    return batch


def build_loader(dataset, sampler, batch_size: int, workers: int, pin_memory: bool = False,
                 persistent: bool = True) -> DataLoader:
    """DataLoader over (epoch, index) keys from `sampler` (a ShardSampler).

    The loader has its own generator, so creating an iterator never draws from the global torch
    RNG (which a resumed run restores exactly); the dataset's augmentation RNG is per sample.
    """
    return DataLoader(SkipBadImages(dataset), batch_size=batch_size, sampler=sampler,
                      num_workers=workers, collate_fn=collate_skipping, pin_memory=pin_memory,
                      drop_last=False, persistent_workers=persistent and workers > 0,
                      generator=torch.Generator().manual_seed(0))


__all__ = ["SkipBadImages", "collate_skipping", "build_loader"]
