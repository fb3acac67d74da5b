"""Exact resume: SIGKILL a training process mid-epoch, `--resume auto`, compare with an uninterrupted run."""
import os
import signal
import subprocess
import time

import pytest

from gtpt.engine.state import get_rng_state, load_checkpoint, set_rng_state
from tests.engine_helpers import (TINY, assert_identical, data_opts, dataset, env, gtpt_cmd,
                                  load_safetensors, run)


def _cmd(out, opts, workers, *extra):
    return gtpt_cmd("train", TINY, "--output-dir", str(out), "--device", "cpu", *extra,
                    "--opt", *opts, f"data.workers={workers}")


@pytest.mark.parametrize("accum", [1, 2])   # 2: each step accumulates 2 forwards of 1 (train.accum_steps)
def test_sigkill_mid_epoch_then_resume_is_bit_identical(tmp_path, accum):
    d = dataset(tmp_path / "d", num_images=2, people=2, seed=21)
    # 2 epochs x 2 steps; lr drops after epoch 1, a checkpoint after every step; no validation
    opts = data_opts(d) + ["train.epochs=2", f"train.batch_size={2 // accum}", f"train.accum_steps={accum}",
                           "train.ckpt_interval=1", "train.milestones=[1]", "data.aug.color_jitter=true"]
    ref = tmp_path / "ref"
    run(_cmd(ref, opts, 0))

    out = tmp_path / "killed"
    proc = subprocess.Popen(_cmd(out, opts, 2), env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt = out / "last.ckpt"
    deadline = time.time() + 180
    while not ckpt.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)   # only the process this test started
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    state = load_checkpoint(ckpt)
    assert state["epoch"] == 0 and state["step_in_epoch"] == 1, "the kill must land mid-epoch"
    assert not (out / "model.safetensors").exists()

    run(_cmd(out, opts, 1, "--resume", "auto"))   # another worker count: the data must not care
    a, b = load_checkpoint(ref / "last.ckpt"), load_checkpoint(out / "last.ckpt")
    assert a["global_step"] == b["global_step"] == 4
    assert_identical(a["model"], b["model"], "live weights")
    assert_identical(a["ema"], b["ema"], "EMA weights")
    for sa, sb in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        assert_identical(sa, sb, "Adam state")
    assert a["scheduler"]["_last_lr"] == b["scheduler"]["_last_lr"] == [1e-4]
    assert_identical(load_safetensors(ref / "model.safetensors"), load_safetensors(out / "model.safetensors"),
                     "final model")
    # the per-epoch log matches too (loss terms, lr, keep rates; timings naturally differ)
    rows = [r.split(",")[:9] for r in (out / "metrics.csv").read_text().splitlines()]
    assert len(rows) == 3 and rows == [r.split(",")[:9] for r in (ref / "metrics.csv").read_text().splitlines()]


def test_rng_state_roundtrip_is_weights_only_safe(tmp_path):
    import random

    import numpy as np
    import torch
    state = get_rng_state()
    torch.save(state, tmp_path / "rng.pt")
    expect = (random.random(), np.random.rand(), torch.rand(1).item())
    set_rng_state(torch.load(tmp_path / "rng.pt", weights_only=True))
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expect
