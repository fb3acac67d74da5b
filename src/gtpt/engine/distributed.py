"""torch.distributed helpers for runs started by `torchrun` (no home-made launcher).

`init_distributed()` reads the torchrun environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_*);
without it the run is a single process and every helper here degrades to a no-op.
Backend: NCCL on CUDA, gloo on CPU.

`ShardSampler` gives every rank its share of each global batch from one permutation seeded by
(seed, epoch), so the union of the ranks' batches equals the single-process batch of the same
global size, and a resumed run can start at any batch of an epoch.
"""
from __future__ import annotations

import os
import time
from datetime import timedelta
from typing import Iterator, Optional

import torch
import torch.distributed as dist
from torch.utils.data import Sampler

from ..device import check_device


def is_dist() -> bool:
    return dist.is_available() and dist.is_initialized()


def get_rank() -> int:
    return dist.get_rank() if is_dist() else 0


def get_world_size() -> int:
    return dist.get_world_size() if is_dist() else 1


def is_main() -> bool:
    return get_rank() == 0


def launched_by_torchrun() -> bool:
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def init_distributed(device: Optional[str] = None, timeout_s: int = 1800) -> torch.device:
    """Join the process group if torchrun started us; returns this process's device.

    device: 'cpu', 'cuda' or None (CUDA when available).
    """
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    check_device(device)
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    dev = torch.device(f"cuda:{local_rank}") if device.startswith("cuda") else torch.device("cpu")
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if launched_by_torchrun() and int(os.environ["WORLD_SIZE"]) > 1 and not is_dist():
        backend = "nccl" if dev.type == "cuda" else "gloo"
        kwargs = {"device_id": dev} if dev.type == "cuda" else {}
        dist.init_process_group(backend=backend, timeout=timedelta(seconds=timeout_s), **kwargs)
    return dev


def barrier() -> None:
    if is_dist():
        if dist.get_backend() == "nccl":
            dist.barrier(device_ids=[torch.cuda.current_device()])
        else:
            dist.barrier()


def all_gather_objects(obj) -> list:
    """[obj of rank 0, obj of rank 1, ...] on every rank (pickled python objects)."""
    if not is_dist():
        return [obj]
    out = [None] * get_world_size()
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj, src: int = 0):
    if not is_dist():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def on_main(fn):
    """fn() run by rank 0 alone, its result handed to every rank; if it raises, every rank raises
    the same error. For what only rank 0's view may decide (e.g. which checkpoint to resume from,
    read from its disk), so that no rank goes its own way or waits for one that failed."""
    result, error = None, None
    if is_main():
        try:
            result = fn()
        except Exception as e:   # handed on, raised on every rank below
            error = e
    result, error = broadcast_object((result, error))
    if error is not None:
        raise error
    return result


def all_reduce_max(value: float, device: torch.device) -> float:
    """Max of a scalar over ranks (used to stop every rank together)."""
    if not is_dist():
        return value
    t = torch.tensor([float(value)], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return float(t.item())


def broadcast_module_state(module: torch.nn.Module, src: int = 0) -> None:
    """Make every rank's copy of `module` (all state tensors) equal to rank `src`'s."""
    if not is_dist():
        return
    for t in module.state_dict().values():
        dist.broadcast(t, src=src)


def cleanup() -> None:
    """Leave the process group. The short sleep first releases the GIL so that gloo's worker thread
    can drop its last finished work (whose tensors need the GIL to be freed): torch 2.3's
    ProcessGroupGloo teardown joins that thread while holding the GIL, and 4 of 8 two-node evaluations
    of an .onnx graph deadlocked there (seen with gdb: the join against a TensorImpl destructor
    waiting for the GIL); with the sleep, 15 of 15 passed."""
    if is_dist():
        time.sleep(0.1)
        dist.destroy_process_group()


class ShardSampler(Sampler):
    """Yields (epoch, index) keys for this rank.

    Training (shuffle=True): a permutation seeded by seed + epoch is cut into global batches of
    batch_size x world_size (the incomplete tail is dropped); rank r takes the r-th contiguous
    chunk of batch_size from each. `set_epoch(epoch, start_batch)` skips batches already done.
    Evaluation (shuffle=False): rank r takes indices r, r + W, r + 2W, ... (no padding, no repeats).
    """

    def __init__(self, size: int, batch_size: int, *, num_replicas: int = 1, rank: int = 0,
                 seed: int = 0, shuffle: bool = True):
        self.size, self.batch_size = int(size), int(batch_size)
        self.num_replicas, self.rank = int(num_replicas), int(rank)
        self.seed, self.shuffle = int(seed), bool(shuffle)
        self.epoch, self.start_batch = 0, 0

    @property
    def batches_per_epoch(self) -> int:
        if not self.shuffle:
            n = len(range(self.rank, self.size, self.num_replicas))
            return -(-n // self.batch_size)
        return self.size // (self.batch_size * self.num_replicas)

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch, self.start_batch = int(epoch), int(start_batch)

    def _indices(self) -> list[int]:
        if not self.shuffle:
            return list(range(self.rank, self.size, self.num_replicas))
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        perm = torch.randperm(self.size, generator=g).tolist()
        gb = self.batch_size * self.num_replicas
        out = []
        for b in range(self.batches_per_epoch):
            lo = b * gb + self.rank * self.batch_size
            out += perm[lo:lo + self.batch_size]
        return out

    def __iter__(self) -> Iterator[tuple[int, int]]:
        idx = self._indices()[self.start_batch * self.batch_size:]
        return iter([(self.epoch, i) for i in idx])

    def __len__(self) -> int:
        n = len(self._indices()) if not self.shuffle else self.batches_per_epoch * self.batch_size
        return max(0, n - self.start_batch * self.batch_size)


__all__ = ["is_dist", "get_rank", "get_world_size", "is_main", "launched_by_torchrun", "on_main",
           "init_distributed", "barrier", "all_gather_objects", "broadcast_object", "all_reduce_max",
           "broadcast_module_state", "cleanup", "ShardSampler"]
