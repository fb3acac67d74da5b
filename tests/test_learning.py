"""The whole chain learns: training on 4 generated images drives AP on them far above chance.

It fits the training images (no augmentation, ~2 min on 2 CPU cores), which says nothing about
generalisation (see benchmarks/learning.py) but would fail for any bug that breaks the link
between targets, loss, decoding and scoring (a flipped axis, a wrong pair swap, a bad crop).
"""
from __future__ import annotations

import csv

import pytest

from tests.engine_helpers import TINY, data_opts, dataset, gtpt_cmd, run


@pytest.mark.slow
def test_training_fits_a_tiny_dataset(tmp_path):
    d = dataset(tmp_path / "d", num_images=4, people=1, seed=3)
    no_aug = ["data.aug.half_body_prob=0", "data.aug.scale_factor=0", "data.aug.rotation_prob=0",
              "data.aug.flip_prob=0"]
    opts = data_opts(d, d) + no_aug + ["train.epochs=200", "train.batch_size=4", "train.ema=false",
                                       "eval.interval=200", "train.log_interval=50"]
    out = tmp_path / "run"
    run(gtpt_cmd("train", TINY, "--output-dir", str(out), "--device", "cpu", "--opt", *opts), timeout=900)
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert float(rows[-1]["loss"]) < 0.25 * float(rows[0]["loss"])
    assert float(rows[-1]["AP"]) > 0.5, rows[-1]
