"""Does training learn? GTPT-T body on a generated COCO-format dataset, scored on a held-out split.

    OMP_NUM_THREADS=1 python benchmarks/learning.py [--keep-rate-warmup 5] [--budget-min 35]

Uses the real pipeline (TopDownDataset augmentation, Global Perceived Loss, Adam, EMA,
flip-test evaluation, pycocotools). Stops at --epochs or when the time budget is spent, and
prints a table: epoch, steps, train images/s, loss, AP of the EMA and of the live weights.

The defaults are the setting measured in benchmarks/results/learning_2026-11-26.txt: 160
generated training images and 24 held-out ones, one stick figure each (joints colour-coded),
light augmentation (flip, scale), batch 8, 35 minutes on one CPU thread. From scratch GTPT-T
needs a few hundred optimiser steps before any held-out AP appears, so with the recipe's
augmentation and two overlapping people per image (`--aug recipe --people-per-image 2`) 17
minutes were not enough to score above 0.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from gtpt.engine.evaluator import evaluate  # noqa: E402
from gtpt.engine.experiment import load_experiment  # noqa: E402
from gtpt.engine.trainer import Trainer  # noqa: E402
from tests.helpers import make_coco_dataset  # noqa: E402


AUG_PRESETS = {
    "recipe": [],
    "light": ["data.aug.half_body_prob=0", "data.aug.rotation_prob=0", "data.aug.scale_factor=0.25"],
    "none": ["data.aug.half_body_prob=0", "data.aug.rotation_prob=0", "data.aug.scale_factor=0",
             "data.aug.flip_prob=0"],
}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--budget-min", type=float, default=35.0, help="wall-clock training budget")
    p.add_argument("--epochs", type=int, default=40, help="schedule length (EMA cosine, lr)")
    p.add_argument("--train-images", type=int, default=160)
    p.add_argument("--val-images", type=int, default=24)
    p.add_argument("--people-per-image", type=int, default=1)
    p.add_argument("--aug", choices=("recipe", "light", "none"), default="light",
                   help="recipe: the paper's augmentation; light: flip + scale 0.25, no rotation or "
                        "half-body; none: no augmentation")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--eval-every", type=int, default=4, help="epochs between evaluations")
    p.add_argument("--keep-rate-warmup", type=int, default=0, help="train.keep_rate_warmup_epochs")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--no-ema-warmup", action="store_true",
                   help="the recipe's EMA as is (over a short run it stays near the random init)")
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--device", default="cpu")
    args = p.parse_args()

    work = Path(tempfile.mkdtemp(prefix="gtpt_learning_"))
    tr = make_coco_dataset(work / "train", num_images=args.train_images, people_per_image=args.people_per_image, seed=1)
    va = make_coco_dataset(work / "val", num_images=args.val_images, people_per_image=args.people_per_image, seed=2)
    opts = [f"data.train_ann={tr}", f"data.train_images={work / 'train' / 'images'}",
            f"data.val_ann={va}", f"data.val_images={work / 'val' / 'images'}",
            f"data.workers={args.workers}", f"train.epochs={args.epochs}",
            f"train.batch_size={args.batch_size}", f"train.lr={args.lr}",
            f"train.keep_rate_warmup_epochs={args.keep_rate_warmup}", "train.ckpt_interval=0",
            f"train.ema_warmup={'false' if args.no_ema_warmup else 'true'}",
            "train.log_interval=1000", f"eval.interval={10 ** 6}", "eval.batch_size=16"]
    opts += AUG_PRESETS[args.aug]
    exp = load_experiment(ROOT / "configs" / "tiny_cpu.yaml", opts, output_dir=str(work / "run"))
    trainer = Trainer(exp, device=args.device)
    print(f"machine: {torch.get_num_threads()} threads, device {args.device}; train samples "
          f"{len(trainer.train_set)}, val people {len(trainer.val_set)}, batch {args.batch_size}, "
          f"keep-rate warm-up {args.keep_rate_warmup} epochs, aug {args.aug}; work dir {work}", flush=True)
    rows, start = [], time.perf_counter()
    header = f"{'epoch':>5} {'steps':>6} {'img/s':>7} {'loss':>9} {'AP ema':>7} {'AP live':>8} {'time s':>7}"
    while trainer.epoch < args.epochs and time.perf_counter() - start < args.budget_min * 60:
        trainer._train_epoch()
        acc = dict(trainer.epoch_acc)
        e = trainer.epoch + 1
        ap_ema = ap_live = float("nan")
        out_of_time = time.perf_counter() - start >= args.budget_min * 60
        if e % args.eval_every == 0 or e == args.epochs or out_of_time:
            ap_ema = evaluate(trainer.ema.module, trainer.val_set, exp, verbose=False)["AP"]
            ap_live = evaluate(trainer.model, trainer.val_set, exp, verbose=False)["AP"]
        trainer._end_epoch()   # lr schedule, metrics.csv, last.ckpt
        rows.append((e, trainer.global_step, acc["samples"] / max(acc["time"], 1e-9),
                     acc["loss"] / max(acc["steps"], 1), ap_ema, ap_live, time.perf_counter() - start))
        print(header if len(rows) == 1 else "", end="\n" if len(rows) == 1 else "")
        print("%5d %6d %7.2f %9.5f %7.3f %8.3f %7.0f" % rows[-1], flush=True)
    print("\nsummary")
    print(header)
    for r in rows:
        print("%5d %6d %7.2f %9.5f %7.3f %8.3f %7.0f" % r)
    scored = [r for r in rows if r[4] == r[4]]   # rows with an evaluation (not NaN)
    last, speed = scored[-1], sum(r[2] for r in rows) / len(rows)
    print(f"\nresult: held-out AP {last[4]:.3f} (EMA) / {last[5]:.3f} (live) after {last[1]} steps and "
          f"{last[6] / 60:.1f} min; best EMA AP {max(r[4] for r in scored):.3f}; "
          f"training {speed:.2f} images/s on {torch.get_num_threads()} thread(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
