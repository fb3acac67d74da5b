"""Training loop end to end on generated datasets (real jpgs, json, pycocotools scoring)."""
import csv
import json
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

from gtpt.engine.experiment import load_experiment
from gtpt.engine.state import load_checkpoint
from gtpt.engine.trainer import NonFiniteLossError, Trainer, freeze_batchnorm, keep_rates_at
from gtpt.models.checkpoint import load_model, read_model_metadata
from tests.engine_helpers import TINY, data_opts, dataset, env, load_safetensors


def _rows(out):
    with open(out / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_train_then_evaluate_body_with_unreadable_images(tmp_path):
    train = dataset(tmp_path / "train", num_images=3, people=2, seed=1)
    val = dataset(tmp_path / "val", num_images=2, people=1, seed=2)
    # one corrupt and one missing training image: their 2+2 samples are skipped and counted
    (tmp_path / "train" / "images" / "000002.jpg").write_bytes(b"not a jpeg")
    (tmp_path / "train" / "images" / "000003.jpg").unlink()
    out = tmp_path / "run"
    exp = load_experiment(TINY, data_opts(train, val) + ["train.epochs=1", "train.batch_size=2"],
                          output_dir=str(out))
    with pytest.warns(UserWarning, match="cannot read image"):
        summary = Trainer(exp, device="cpu").fit()

    rows = _rows(out)
    assert len(rows) == 1 and rows[0]["epoch"] == "1"
    assert int(rows[0]["skipped_images"]) == 4
    assert np.isfinite(float(rows[0]["loss"])) and float(rows[0]["loss"]) > 0
    ap = float(rows[0]["AP"])
    assert 0.0 <= ap <= 1.0 and summary["best_ap"] == pytest.approx(ap)
    for name in ("config.yaml", "last.ckpt", "best.safetensors", "model.safetensors", "curves.png",
                 "val_results.json"):
        assert (out / name).is_file(), name
    # the first batch as the network saw it (test_browse.py checks what the tiles show)
    first = cv2.imread(str(out / "train_batch0.jpg"))
    assert first is not None and first.shape[0] == 256 and first.shape[1] in (192, 384) and first.std() > 10
    pred = cv2.imread(str(out / "val_batch0_pred.jpg"))   # 2 validation people, predicted joints drawn
    assert pred is not None and pred.shape == (256, 384, 3)
    meta = read_model_metadata(out / "best.safetensors")
    assert json.loads(meta["epoch"]) == 1 and json.loads(meta["AP"]) == pytest.approx(ap)
    # the final model is the EMA copy stored in last.ckpt, and it differs from the live weights
    ckpt = load_checkpoint(out / "last.ckpt")
    final = load_safetensors(out / "model.safetensors")
    assert all(torch.equal(final[k], ckpt["ema"][k]) for k in final)
    assert any(not torch.equal(ckpt["model"][k], ckpt["ema"][k]) for k in final if final[k].is_floating_point())
    # 3 batches; a batch whose images were all unreadable makes no optimiser step
    assert (ckpt["epoch"], ckpt["step_in_epoch"]) == (1, 0) and ckpt["global_step"] in (2, 3)
    results = json.loads((out / "val_results.json").read_text())
    assert len(results) == 2 and all(len(r["keypoints"]) == 51 for r in results)
    model = load_model(out / "model.safetensors")
    assert model.keep_rates == (1.0, 0.7, 0.3, 0.1)
    # a second start in the same folder without --resume refuses instead of overwriting
    with pytest.raises(FileExistsError, match="--resume auto"):
        Trainer(exp, device="cpu")

    # release step: `gtpt convert --from-training` keeps only the weights (EMA or live), float16 if asked
    for live, half in ((False, True), (True, False)):
        dst = tmp_path / f"release_{live}_{half}.safetensors"
        cmd = [sys.executable, "-m", "gtpt", "convert", "--from-training", str(out / "last.ckpt"),
               "--out", str(dst)] + ["--live-weights"] * live + ["--half"] * half
        res = subprocess.run(cmd, capture_output=True, text=True, env=env())
        assert res.returncode == 0, res.stdout + res.stderr
        stored = load_safetensors(dst)
        src = ckpt["model" if live else "ema"]
        assert stored["keypoint_tokens"].dtype == (torch.float16 if half else torch.float32)
        assert all(torch.allclose(stored[k].float(), src[k].float(), atol=1e-3 if half else 0) for k in stored)
        meta = read_model_metadata(dst)
        assert meta["weights"] == ("live" if live else "ema") and json.loads(meta["global_step"]) == ckpt["global_step"]
        assert load_model(dst).cfg.name == "gtpt-t-body"
    # a run's last.ckpt also runs as it is (--weights / --checkpoint / Predictor): its EMA weights
    from gtpt import CheckpointError, load_weights
    again = load_weights(out / "last.ckpt", keep_rates=(1, 0.5, 0.3, 0.2))
    assert all(torch.equal(again.state_dict()[k], final[k]) for k in final) and not again.training
    assert again.keep_rates == (1.0, 0.5, 0.3, 0.2)
    with pytest.raises(CheckpointError, match="last.ckpt holds weights for 'gtpt-t-body', not 'gtpt-s-body'"):
        load_weights(out / "last.ckpt", expect="gtpt-s-body")
    res = subprocess.run([sys.executable, "-m", "gtpt", "convert", "--from-training", str(out / "config.yaml"),
                          "--out", str(tmp_path / "x.safetensors")], capture_output=True, text=True, env=env())
    assert res.returncode == 1 and "config.yaml" in res.stdout


def test_wholebody_train_and_evaluate(tmp_path):
    d = dataset(tmp_path / "wb", num_images=1, people=2, num_joints=133, seed=3)
    out = tmp_path / "run"
    exp = load_experiment(TINY, data_opts(d, d) + ["model.name=gtpt-t-wholebody", "data.dataset=wholebody",
                                                    "train.epochs=1", "eval.batch_size=2"], output_dir=str(out))
    Trainer(exp, device="cpu").fit()
    row = _rows(out)[0]
    assert 0.0 <= float(row["AP"]) <= 1.0
    res = json.loads((out / "val_results.json").read_text())
    assert len(res) == 2
    for r in res:
        assert len(r["keypoints"]) == 51 and len(r["foot_kpts"]) == 18 and len(r["face_kpts"]) == 204
        assert len(r["lefthand_kpts"]) == 63 and len(r["righthand_kpts"]) == 63


def test_nan_loss_stops_and_keeps_last_checkpoint(tmp_path, capsys):
    from gtpt.cli import main
    d = dataset(tmp_path / "d", num_images=2, people=2, seed=4)
    out = tmp_path / "run"
    # a huge learning rate blows the weights up after the first step: a real divergence
    rc = main(["train", TINY, "--output-dir", str(out), "--device", "cpu", "--opt", *data_opts(d),
               "train.epochs=2", "train.lr=1.0e+30", "train.ckpt_interval=1"])
    assert rc == 1
    msg = capsys.readouterr().out
    assert "gtpt train: error: training stopped: the loss is not finite at epoch 1, step 2 of 2 (global step 2)" in msg
    ckpt = load_checkpoint(out / "last.ckpt")
    assert (ckpt["epoch"], ckpt["step_in_epoch"], ckpt["global_step"]) == (0, 1, 1)
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values() if v.is_floating_point())
    assert not (out / "model.safetensors").exists() and not (out / "best.safetensors").exists()
    assert _rows(out) == []
    with pytest.raises(NonFiniteLossError):   # resuming replays the same divergence
        Trainer(load_experiment(TINY, data_opts(d) + ["train.epochs=2", "train.lr=1.0e+30"],
                                output_dir=str(out)), device="cpu", resume="auto").fit()
    assert load_checkpoint(out / "last.ckpt")["global_step"] == 1


def test_empty_and_too_small_datasets(tmp_path):
    d = dataset(tmp_path / "d", num_images=1, people=1, seed=5)
    empty = tmp_path / "empty.json"
    data = json.loads(open(d[0]).read())
    data["annotations"] = []
    empty.write_text(json.dumps(data))
    exp = load_experiment(TINY, data_opts((str(empty), d[1])), output_dir=str(tmp_path / "a"))
    with pytest.raises(ValueError, match="empty.json: no usable person annotations"):
        Trainer(exp, device="cpu")
    exp = load_experiment(TINY, data_opts(d) + ["train.batch_size=4"], output_dir=str(tmp_path / "b"))
    with pytest.raises(ValueError, match="1 training samples, fewer than one global batch"):
        Trainer(exp, device="cpu")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_keep_rate_warmup_schedule():
    target = (1.0, 0.7, 0.3, 0.1)
    assert keep_rates_at(target, 5, 0) == target
    assert keep_rates_at(target, 0, 4) == (1.0, 1.0, 1.0, 1.0)
    assert keep_rates_at(target, 2, 4) == pytest.approx((1.0, 0.85, 0.65, 0.55))
    assert keep_rates_at(target, 4, 4) == pytest.approx(target)
    assert keep_rates_at(target, 9, 4) == pytest.approx(target)


def test_time_budget_replans_epochs_and_milestones(tmp_path, capsys):
    d = dataset(tmp_path / "d", num_images=2, people=2, seed=6)
    opts = data_opts(d) + ["train.epochs=40", "train.milestones=[30,36]", "train.batch_size=2"]
    # the re-planning rule, from a given elapsed time: 30 s per epoch and 2 minutes -> 4 epochs
    trainer = Trainer(load_experiment(TINY, opts + ["train.time_budget_min=2"], output_dir=str(tmp_path / "a")),
                      device="cpu")
    trainer.elapsed_s = 30.0
    trainer._replan()
    assert trainer.exp.train.epochs == 4 and trainer.total_steps == 4 * trainer.steps_per_epoch
    assert sorted(trainer.scheduler.milestones.elements()) == [3, 4]
    # once the lr has stepped, the plan is fixed
    trainer.epoch, trainer.elapsed_s = 2, 1.0
    trainer._replan()
    assert trainer.exp.train.epochs == 4
    # end to end: a budget far below one epoch's time stops after 2 epochs (1 done + at least 1 more),
    # both lr steps land on epoch 2, and the plan survives in last.ckpt
    out = tmp_path / "b"
    summary = Trainer(load_experiment(TINY, opts + ["train.time_budget_min=1e-6"], output_dir=str(out)),
                      device="cpu").fit()
    assert "time budget 1e-06 min: 2 epochs, lr steps at epochs [2]" in capsys.readouterr().out
    assert [r["epoch"] for r in _rows(out)] == ["1", "2"]
    ckpt = load_checkpoint(out / "last.ckpt")
    assert ckpt["epochs"] == 2 and ckpt["elapsed_s"] > 0 and ckpt["global_step"] == summary["global_step"]
    assert ckpt["optimizer"]["param_groups"][0]["lr"] == pytest.approx(1e-3 * 0.01)
    # a resume keeps the plan (2 epochs, not the config's 40): the run is already complete
    resumed = Trainer(load_experiment(TINY, opts + ["train.time_budget_min=1e-6"], output_dir=str(out)),
                      device="cpu", resume="auto")
    assert resumed.exp.train.epochs == 2 and sorted(resumed.scheduler.milestones.elements()) == [2, 2]
    assert resumed.fit()["global_step"] == summary["global_step"]


def test_accumulated_gradient_is_the_mean_of_the_forwards(tmp_path):
    """train.accum_steps: two forwards of 2 add up to the gradient of one forward of 4 (BatchNorm
    frozen, so a sample's gradient does not depend on its batch). Adam hides a gradient's scale,
    so this is checked on the gradients themselves, not on the trained weights."""
    from gtpt.engine.batching import collate_skipping
    d = dataset(tmp_path / "d", num_images=2, people=2, seed=9)
    exp = load_experiment(TINY, data_opts(d) + ["train.batch_size=2", "train.accum_steps=2", "train.freeze_bn=true"],
                          output_dir=str(tmp_path / "run"))
    trainer = Trainer(exp, device="cpu")
    assert "2 epochs of 1 step x 4 images (2 per forward x 2 accumulated), cpu, from the start" in trainer.plan()
    trainer.net.train()
    freeze_batchnorm(trainer.model)
    batch = collate_skipping([trainer.train_set[i] for i in range(4)])
    half = [collate_skipping([trainer.train_set[i] for i in idx]) for idx in ((0, 1), (2, 3))]
    rates = exp.model.keep_rates

    def grads():
        out = {n: p.grad.clone() for n, p in trainer.model.named_parameters() if p.grad is not None}
        trainer.model.zero_grad(set_to_none=True)
        return out

    trainer.exp.train.accum_steps = 1
    trainer._forward_backward(batch, rates, sync=True)
    whole = grads()
    trainer.exp.train.accum_steps = 2
    for part, last in zip(half, (False, True)):
        trainer._forward_backward(part, rates, sync=last)
    accumulated = grads()
    assert whole.keys() == accumulated.keys() and len(whole) > 10
    scale = max(g.abs().max().item() for g in whole.values())
    assert max((whole[n] - accumulated[n]).abs().max().item() for n in whole) < 1e-5 * scale


def test_init_weights_start_from_a_weights_file(tmp_path):
    """train.init_weights: fine-tuning starts from any file `load_weights` reads; another preset's is refused."""
    from gtpt.models import build_model
    from gtpt.models.checkpoint import CheckpointError, save_model
    d = dataset(tmp_path / "d", num_images=2, people=2, seed=10)
    torch.manual_seed(123)
    start = build_model("gtpt-t-body")
    path = save_model(start, tmp_path / "start.safetensors")
    exp = load_experiment(TINY, data_opts(d) + [f"train.init_weights={path}"], output_dir=str(tmp_path / "run"))
    model = Trainer(exp, device="cpu").model
    assert all(torch.equal(model.state_dict()[k], v) for k, v in start.state_dict().items())
    other = save_model(build_model("gtpt-t-wholebody"), tmp_path / "wb.safetensors")
    exp = load_experiment(TINY, data_opts(d) + [f"train.init_weights={other}"], output_dir=str(tmp_path / "run2"))
    with pytest.raises(CheckpointError, match="wb.safetensors holds weights for 'gtpt-t-wholebody', not 'gtpt-t-body'"):
        Trainer(exp, device="cpu")
