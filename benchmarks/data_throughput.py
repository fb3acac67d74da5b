"""Training input pipeline speed: TopDownDataset (read, augment, warp, encode) through the DataLoader.

    python benchmarks/data_throughput.py --ann DIR/person_keypoints_train.json --images DIR/images \
        [--config configs/gtpt_t_mini.yaml] [--workers 0 2] [--batch 64] [--batches 20]

Small models train as fast as their data workers feed them (the gtpt-mini runs on an H200 were
input-bound), so this is the number to watch when changing augmentation. Each row is images/s
after one warm-up batch, with the config's augmentation (training mode) and one OpenCV / torch
thread per worker, as DataLoader workers run.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))   # model_speed, beside this file

from gtpt.engine.batching import build_loader  # noqa: E402
from gtpt.engine.distributed import ShardSampler  # noqa: E402
from gtpt.engine.experiment import load_experiment  # noqa: E402
from gtpt.engine.trainer import build_train_dataset  # noqa: E402
from model_speed import cpu_name  # noqa: E402


def images_per_s(dataset, workers: int, batch: int, batches: int) -> float:
    sampler = ShardSampler(len(dataset), batch, shuffle=True, seed=0)
    loader = build_loader(dataset, sampler, batch, workers, persistent=False)
    it = iter(loader)
    next(it)                                    # warm-up: worker start, first batch
    t, n = time.perf_counter(), 0
    for _ in range(batches):
        try:
            n += next(it)["size"]
        except StopIteration:
            break
    return n / (time.perf_counter() - t)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ann", required=True)
    p.add_argument("--images", required=True)
    p.add_argument("--config", default="configs/gtpt_t_mini.yaml", help="its data.aug section is used")
    p.add_argument("--workers", nargs="+", type=int, default=[0, 2])
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--batches", type=int, default=20)
    args = p.parse_args(argv)
    exp = load_experiment(args.config, [f"data.train_ann={args.ann}", f"data.train_images={args.images}"])
    dataset = build_train_dataset(exp)
    cv2.setNumThreads(1)
    torch.set_num_threads(1)                    # the main process too, for the 0-worker row
    print(f"machine: {cpu_name()}, torch {torch.__version__}, OpenCV {cv2.__version__}")
    print(f"data: {args.ann} ({len(dataset)} people), aug from {args.config}, batch {args.batch}")
    print(f"{'workers':>8}{'images/s':>11}{'ms/image/worker':>17}")
    for w in args.workers:
        rate = images_per_s(dataset, w, args.batch, args.batches)
        print(f"{w:>8}{rate:>11.1f}{1e3 * max(w, 1) / rate:>17.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
