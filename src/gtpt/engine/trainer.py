"""The training loop: GTPT + Global Perceived Loss + Adam/MultiStepLR + EMA, one device or DDP.

Exact resume: the data order depends only on (seed, epoch) (ShardSampler), augmentation only
on (seed, epoch, index) (TopDownDataset), and every RNG, optimiser, scheduler, scaler and EMA
state is in last.ckpt together with the position inside the epoch. A run killed at any point
and resumed from last.ckpt therefore ends with the same weights as an uninterrupted run.

Files in output_dir: config.yaml (resolved config), last.ckpt (resume state, atomic),
best.safetensors (EMA weights with the best validation AP), model.safetensors (final EMA),
metrics.csv, curves.png, tensorboard/ (if importable), train_batch0.jpg (the run's first batch as
the network sees it: augmented crops with their targets' joints, `draw_training_batch`),
val_batch0_pred.jpg (the latest validation's first crops with the EMA model's predicted joints).
"""
from __future__ import annotations

import contextlib
import random
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
from torch import nn

from ..data.coco import load_coco_records
from ..data.dataset import TopDownDataset, normalize_batch
from ..keypoints import get_keypoint_spec
from ..models import build_model, check_keep_rates
from ..models.checkpoint import save_model
from ..weights import load_weights
from . import distributed as du
from .batching import build_loader
from .ema import ModelEma, unwrap_model
from .evaluator import build_codec, build_val_dataset, evaluate
from .metrics import has_keypoint_ground_truth
from .experiment import ConfigError, Experiment
from .logger import MetricsLogger
from .loss import GlobalPerceivedLoss
from .state import CKPT_FORMAT, atomic_save, get_rng_state, load_checkpoint, set_rng_state


class NonFiniteLossError(RuntimeError):
    """The loss became NaN/inf; nothing was written after the bad step."""


def keep_rates_at(target: Sequence[float], epoch: int, warmup_epochs: int) -> tuple[float, ...]:
    """Student keep rates for `epoch`: linear from 1.0 (epoch 0) to `target` (epoch >= warmup)."""
    if warmup_epochs <= 0:
        return tuple(target)
    f = min(1.0, epoch / warmup_epochs)
    return tuple(round(1.0 + (t - 1.0) * f, 6) for t in target)


def freeze_batchnorm(model: nn.Module) -> None:
    """Put every BatchNorm in eval mode (running statistics, no update); weights still train."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()


def build_train_dataset(exp: Experiment) -> TopDownDataset:
    d = exp.data
    if not d.train_ann:
        raise ConfigError(f"{exp.source}: data.train_ann is not set")
    records = load_coco_records(d.train_ann, d.train_images, d.num_joints)
    return TopDownDataset(records, codec=build_codec(exp), spec=get_keypoint_spec(d.num_joints),
                          train=True, aug=d.aug, seed=exp.train.seed)


class Trainer:
    """`Trainer(exp, device=None, resume=None).fit()`; resume: None, 'auto' or a last.ckpt path."""

    def __init__(self, exp: Experiment, device: Optional[str] = None, resume: Optional[str] = None):
        self.exp = exp
        t = exp.train
        self.device = du.init_distributed(device)
        self.world, self.rank = du.get_world_size(), du.get_rank()
        self.out = Path(exp.output_dir)
        self.cuda = self.device.type == "cuda"
        # rank 0 decides and reads; every rank resumes from its copy (the run folder need not be shared)
        resume_path = du.on_main(lambda: self._resume_path(resume))

        random.seed(t.seed)
        np.random.seed(t.seed)
        torch.manual_seed(t.seed)   # same initial weights on every rank

        self.train_set = build_train_dataset(exp)
        global_batch = t.batch_size * self.world * t.accum_steps
        if len(self.train_set) < global_batch:
            raise ValueError(f"{exp.data.train_ann}: {len(self.train_set)} training samples, fewer than one "
                             f"global batch ({t.batch_size} per device x {self.world} x {t.accum_steps} "
                             f"accumulated = {global_batch})")
        if exp.data.val_ann and not has_keypoint_ground_truth(exp.data.val_ann):
            raise ConfigError(f"{exp.data.val_ann} (data.val_ann) has no keypoint annotations: validation "
                              f"needs ground truth (`gtpt eval` writes unscored results for such a file)")
        self.val_set = build_val_dataset(exp) if exp.data.val_ann else None

        model = build_model(exp.model)
        if t.init_weights:  # fine-tuning: start from trained weights (a resume overrides them)
            start = du.on_main(lambda: load_weights(t.init_weights, expect=exp.model.name).state_dict())
            model.load_state_dict(start)
        model = model.to(self.device)
        if t.sync_bn and self.world > 1:
            if not self.cuda:
                raise ConfigError("train.sync_bn needs CUDA: SyncBatchNorm does not run on CPU/gloo")
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        if self.cuda and t.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.model = model
        self.ema = ModelEma(model, t.ema_momentum, t.ema_warmup) if t.ema else None
        self.optimizer = torch.optim.Adam(model.parameters(), lr=t.lr, weight_decay=t.weight_decay,
                                          fused=True if (self.cuda and t.fused_adam) else None)
        self.scheduler = torch.optim.lr_scheduler.MultiStepLR(self.optimizer, list(t.milestones), t.gamma)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=t.amp == "fp16")
        self.loss_fn = GlobalPerceivedLoss()
        net = model
        if self.world > 1:
            net = nn.parallel.DistributedDataParallel(
                model, device_ids=[self.device.index] if self.cuda else None)
        self.net = torch.compile(net, mode=t.compile_mode) if t.compile else net

        # the sampler deals each rank accum_steps x batch_size samples per optimiser step, which the
        # loader cuts into accum_steps forwards: forward j of rank r holds what rank r x accum + j of
        # world x accum devices would hold, so accumulation reproduces a run on more devices
        self.sampler = du.ShardSampler(len(self.train_set), t.batch_size * t.accum_steps, num_replicas=self.world,
                                       rank=self.rank, seed=t.seed, shuffle=True)
        self.loader = build_loader(self.train_set, self.sampler, t.batch_size, exp.data.workers,
                                   pin_memory=self.cuda and exp.data.pin_memory)
        self.steps_per_epoch = self.sampler.batches_per_epoch   # optimiser steps
        self.total_steps = t.epochs * self.steps_per_epoch

        # position and bookkeeping (overwritten by a resume)
        self.epoch, self.step_in_epoch, self.global_step = 0, 0, 0
        self.elapsed_s = 0.0       # wall time of the run so far (time budget), across resumes
        self._config_epochs = t.epochs   # a time budget rescales the config's plan (train.epochs changes)
        self.best_ap, self.best_epoch = -1.0, -1
        self.epoch_acc = self._new_acc()
        if resume_path is not None:
            self._load(resume_path)
        self._pending: list = []   # (epoch, step, global_step, loss tensor, terms) not yet checked
        self._check_every = t.log_interval if self.cuda else 1   # CPU: checking is free

        self.logger = None
        if du.is_main():
            self.out.mkdir(parents=True, exist_ok=True)
            exp.save(self.out / "config.yaml")
            self.logger = MetricsLogger(self.out, resume_epoch=self.epoch)

    # ------------------------------------------------------------------ resume
    def _resume_path(self, resume: Optional[str]) -> Optional[Path]:
        last = self.out / "last.ckpt"
        if resume is None:
            if last.exists():
                raise FileExistsError(f"{last} exists: pass --resume auto to continue that run, or "
                                      f"choose another --output-dir (nothing was overwritten)")
            return None
        if resume == "auto":
            if not last.exists():
                print(f"--resume auto: no {last} yet, starting from scratch", flush=True)
                return None
            return last
        return Path(resume)

    def _load(self, path: Path) -> None:
        ckpt = du.on_main(lambda: load_checkpoint(path, map_location="cpu"))
        if ckpt["config"]["model"] != self.exp.to_dict()["model"]:
            raise ConfigError(f"{path} was trained as model {ckpt['config']['model'].get('name')} with "
                              f"other settings than this config's model section")
        self.model.load_state_dict(ckpt["model"])
        if self.ema is not None:
            self.ema.load_state_dict(ckpt["ema"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict({**ckpt["scheduler"], "milestones": Counter(ckpt["scheduler"]["milestones"])})
        self.scaler.load_state_dict(ckpt["scaler"])
        self.epoch, self.step_in_epoch = int(ckpt["epoch"]), int(ckpt["step_in_epoch"])
        self.global_step = int(ckpt["global_step"])
        self.elapsed_s = float(ckpt.get("elapsed_s", 0.0))
        planned = int(ckpt.get("epochs", self.exp.train.epochs))
        if self.exp.train.time_budget_min is not None:
            self._set_epochs(planned)   # the budget's own plan goes on
        elif planned != self.exp.train.epochs and du.is_main():   # e.g. a finished run extended
            print(f"note: {path} was planned for {planned} epochs; going on to train.epochs="
                  f"{self.exp.train.epochs} (lr steps stay at epochs "
                  f"{sorted(set(self.scheduler.milestones.elements()))})", flush=True)
        self.best_ap, self.best_epoch = float(ckpt["best_ap"]), int(ckpt["best_epoch"])
        self.epoch_acc = dict(ckpt["epoch_acc"])
        was = (int(ckpt["world_size"]), int(ckpt["config"]["train"].get("accum_steps", 1)))
        now = (self.world, self.exp.train.accum_steps)
        if was[0] * was[1] != now[0] * now[1] and du.is_main():
            print(f"warning: {path} was written with {was[0]} process(es) x {was[1]} accumulated, resuming "
                  f"with {now[0]} x {now[1]}: the data order of the rest of the run differs", flush=True)
        set_rng_state(ckpt["rng"])
        if du.is_main():
            print(f"resumed from {path}: epoch {self.epoch + 1}, step {self.step_in_epoch}/"
                  f"{self.steps_per_epoch}, global step {self.global_step}", flush=True)

    def _save_last(self) -> None:
        if not du.is_main():
            return
        ckpt = {
            "format": CKPT_FORMAT,
            "model": unwrap_model(self.model).state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else {},
            "optimizer": self.optimizer.state_dict(),
            # milestones as a dict: torch 2.3 (checked) loads no collections.Counter with weights_only=True
            "scheduler": {**self.scheduler.state_dict(), "milestones": dict(self.scheduler.milestones)},
            "scaler": self.scaler.state_dict(),
            "epoch": self.epoch, "step_in_epoch": self.step_in_epoch, "global_step": self.global_step,
            "epochs": self.exp.train.epochs, "elapsed_s": self.elapsed_s,
            "best_ap": self.best_ap, "best_epoch": self.best_epoch,
            "epoch_acc": dict(self.epoch_acc), "world_size": self.world,
            "rng": get_rng_state(), "config": self.exp.to_dict(),
        }
        atomic_save(ckpt, self.out / "last.ckpt")

    # ------------------------------------------------------------------ checks
    @staticmethod
    def _new_acc() -> dict:
        return {"loss": 0.0, "student_gt": 0.0, "teacher_gt": 0.0, "distill": 0.0, "steps": 0,
                "samples": 0, "skipped": 0, "time": 0.0}

    def _check_finite(self) -> None:
        """Sync point: raise if any loss since the last check was NaN/inf (on any rank)."""
        pending, self._pending = self._pending, []
        bad = None
        if pending:
            losses = torch.stack([p[3] for p in pending]).cpu()
            terms = torch.stack([p[4] for p in pending]).cpu()   # [n, 3]
            finite = torch.isfinite(losses)
            if not bool(finite.all()):
                bad = pending[int((~finite).nonzero()[0])]
            for l, tm in zip(losses.tolist(), terms.tolist()):
                a = self.epoch_acc
                a["loss"] += l
                a["student_gt"] += tm[0]
                a["teacher_gt"] += tm[1]
                a["distill"] += tm[2]
                a["steps"] += 1
        first_bad = du.all_reduce_max(-1 if bad is None else bad[2], self.device)
        if first_bad >= 0:
            where = (f"epoch {bad[0] + 1}, step {bad[1]} of {self.steps_per_epoch} (global step {bad[2]})"
                     if bad is not None else f"global step {int(first_bad)} on another rank")
            value = f" (loss = {float(bad[3])})" if bad is not None else ""
            raise NonFiniteLossError(
                f"training stopped: the loss is not finite at {where}{value}. Nothing was written "
                f"after that step; {self.out / 'last.ckpt'} and best.safetensors are as before. "
                f"Lower train.lr, enable train.grad_clip, or check the data.")

    # ------------------------------------------------------------------ one step
    def _autocast(self):
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.exp.train.amp)
        return torch.autocast(self.device.type, dtype=dtype, enabled=dtype is not None)

    def _forward_backward(self, batch: dict, keep_rates, sync: bool) -> None:
        """Loss of one forward, its gradients added to .grad (1/accum_steps each: a step's gradient is
        the mean of its forwards', as DDP's is of its ranks'). sync=False: no all-reduce yet (DDP)."""
        t = self.exp.train
        img = normalize_batch(batch["image"].to(self.device, non_blocking=True))
        if self.cuda and t.channels_last:
            img = img.contiguous(memory_format=torch.channels_last)
        tx = batch["target_x"].to(self.device, non_blocking=True)
        ty = batch["target_y"].to(self.device, non_blocking=True)
        tw = batch["target_weight"].to(self.device, non_blocking=True)
        # DDP decides in the forward whether the backward all-reduces: both go under no_sync
        no_sync = self.net.no_sync if not sync and self.world > 1 else contextlib.nullcontext
        with no_sync():
            with self._autocast():
                out = self.net(img, keep_rates=keep_rates)
            out = {k: v.float() for k, v in out.items()}   # the KL terms in float32
            loss, terms = self.loss_fn(out, tx, ty, tw)
            self.scaler.scale(loss / t.accum_steps).backward()
        self._pending.append((self.epoch, self.step_in_epoch + 1, self.global_step + 1, loss.detach(),
                              torch.stack([terms["student_gt"], terms["teacher_gt"], terms["distill"]]).detach()))

    def _optimizer_step(self) -> None:
        t = self.exp.train
        if t.grad_clip:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), t.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.global_step += 1
        if self.ema is not None:
            self.ema.update(self.model, self.global_step, self.total_steps)

    # ------------------------------------------------------------------ epochs
    def fit(self) -> dict:
        """Train to train.epochs; returns a summary (best AP, final files, last metrics)."""
        t = self.exp.train
        if du.is_main():
            print(self.plan(), flush=True)
        try:
            while self.epoch < t.epochs:
                t0 = time.perf_counter()
                self._train_epoch()
                self._end_epoch(time.perf_counter() - t0)
            return self._finish()
        finally:
            if self.logger is not None:
                self.logger.close()

    def plan(self) -> str:
        """One line: what this run will do (model, data, global batch, steps, device, output)."""
        t = self.exp.train
        per_step = t.batch_size * self.world * t.accum_steps
        parts = [f"{t.batch_size} per forward"] + [f"{self.world} processes"] * (self.world > 1) \
            + [f"{t.accum_steps} accumulated"] * (t.accum_steps > 1)
        amp = "" if t.amp == "none" else f", {t.amp}"
        where = (f"from epoch {self.epoch + 1}, step {self.step_in_epoch}" if self.global_step
                 else "from the start")
        steps = f"{self.steps_per_epoch} step{'s' * (self.steps_per_epoch != 1)}"
        return (f"training {self.exp.model.name} on {len(self.train_set)} samples: {t.epochs} epochs of "
                f"{steps} x {per_step} images ({' x '.join(parts)}), {self.device}{amp}, {where} -> {self.out}")

    def _train_epoch(self) -> None:
        t = self.exp.train
        rates = keep_rates_at(self.exp.model.keep_rates, self.epoch, t.keep_rate_warmup_epochs)
        check_keep_rates(self.exp.model, rates)
        self.sampler.set_epoch(self.epoch, self.step_in_epoch)
        self.net.train()
        if t.freeze_bn:
            freeze_batchnorm(self.model)
        bar = None
        if du.is_main():
            from tqdm import tqdm
            bar = tqdm(total=self.steps_per_epoch, initial=self.step_in_epoch, dynamic_ncols=True,
                       desc=f"epoch {self.epoch + 1}/{t.epochs}", leave=False)
        t0 = time.perf_counter()
        self.optimizer.zero_grad(set_to_none=True)
        stepped = False   # has a forward of this step had any readable image
        for i, batch in enumerate(self.loader):
            last = (i + 1) % t.accum_steps == 0   # the step's last forward: all-reduce, then the optimiser
            self.epoch_acc["skipped"] += len(batch["skipped"])
            if self.global_step == 0 and batch["size"] > 0 and self.logger is not None:
                self._write_sample_picture(batch)   # the run's first readable batch, once
            if batch["size"] > 0:
                self._forward_backward(batch, rates, sync=last)
                self.epoch_acc["samples"] += batch["size"] * self.world
                stepped = True
            elif self.world > 1:
                raise RuntimeError(f"every image of a batch was unreadable on rank {self.rank} "
                                   f"(epoch {self.epoch + 1}, step {self.step_in_epoch + 1}); "
                                   f"fix the data: the ranks cannot stay in step")
            if not last:
                continue
            if stepped:   # a step whose images were all unreadable makes no update
                self._optimizer_step()
            stepped = False
            self.step_in_epoch += 1
            if self.step_in_epoch % self._check_every == 0:
                self._check_finite()
            if bar is not None:
                bar.update(1)
                if self.step_in_epoch % t.log_interval == 0:
                    self._log_progress(bar)
            if (t.ckpt_interval and self.global_step % t.ckpt_interval == 0
                    and self.step_in_epoch < self.steps_per_epoch):
                self._check_finite()
                self.epoch_acc["time"] += time.perf_counter() - t0
                t0 = time.perf_counter()
                self._save_last()
        self._check_finite()
        self.epoch_acc["time"] += time.perf_counter() - t0
        if bar is not None:
            bar.close()

    def _write_sample_picture(self, batch) -> None:
        """train_batch0.jpg: check the data pipeline by eye before the run gets far (as ultralytics'
        train_batch*.jpg); a picture that cannot be written only warns."""
        import cv2

        from ..inference.draw import draw_training_batch
        path = self.out / "train_batch0.jpg"
        if path.exists():
            return
        if not cv2.imwrite(str(path), draw_training_batch(batch, self.train_set.codec)):
            warnings.warn(f"{path}: could not be written", stacklevel=2)

    def _log_progress(self, bar) -> None:
        a = self.epoch_acc
        if a["steps"]:
            bar.set_postfix(loss=f"{a['loss'] / a['steps']:.4f}", lr=f"{self.optimizer.param_groups[0]['lr']:.2e}")
            if self.logger is not None:
                self.logger.log_step(self.global_step, {"loss": a["loss"] / a["steps"]})

    def _should_eval(self) -> bool:
        e = self.exp.eval.interval
        return self.val_set is not None and ((self.epoch + 1) % max(e, 1) == 0 or self.epoch + 1 == self.exp.train.epochs)

    def eval_model(self) -> nn.Module:
        return self.ema.module if self.ema is not None else unwrap_model(self.model)

    def _set_epochs(self, epochs: int) -> None:
        self.exp.train.epochs = epochs
        self.total_steps = epochs * self.steps_per_epoch

    def _replan(self) -> None:
        """Time budget: set epochs so the run ends in about train.time_budget_min minutes.

        Like ultralytics' `time`: from the mean wall time per epoch so far (evaluation included),
        and with the lr milestones scaled in proportion. It re-plans only while the lr is still at
        its first value (a passed milestone cannot move), and rank 0 decides for every rank.
        """
        t, done = self.exp.train, self.epoch + 1
        if t.time_budget_min is None or (t.milestones and done >= min(self.scheduler.milestones)):
            return
        epochs = max(done + 1, int(t.time_budget_min * 60 / (self.elapsed_s / done)))
        epochs = du.broadcast_object(epochs)
        if epochs == t.epochs:
            return
        self.scheduler.milestones = Counter(max(done + 1, round(m * epochs / self._config_epochs))
                                            for m in t.milestones)
        self._set_epochs(epochs)
        if du.is_main():
            print(f"time budget {t.time_budget_min:g} min: {epochs} epochs, lr steps at epochs "
                  f"{sorted(self.scheduler.milestones)}", flush=True)

    def _end_epoch(self, train_time_s: float = 0.0) -> None:
        a, lr = self.epoch_acc, self.optimizer.param_groups[0]["lr"]
        stats, t_eval = None, time.perf_counter()
        if self._should_eval():
            if self.ema is not None:
                du.broadcast_module_state(self.ema.module)   # every rank scores rank 0's EMA
            stats = evaluate(self.eval_model(), self.val_set, self.exp, device=self.device,
                             out_json=self.out / "val_results.json", verbose=du.is_main(),
                             picture=self.out / "val_batch0_pred.jpg")
            self.net.train()
        self.scheduler.step()
        self.elapsed_s += train_time_s + (time.perf_counter() - t_eval)
        self._replan()
        if du.is_main():
            steps = max(a["steps"], 1)
            row = {"epoch": self.epoch + 1, "global_step": self.global_step, "lr": lr,
                   "keep_rates": " ".join(f"{r:g}" for r in keep_rates_at(
                       self.exp.model.keep_rates, self.epoch, self.exp.train.keep_rate_warmup_epochs)),
                   "loss": a["loss"] / steps, "student_gt": a["student_gt"] / steps,
                   "teacher_gt": a["teacher_gt"] / steps, "distill": a["distill"] / steps,
                   "skipped_images": a["skipped"], "images_per_s": a["samples"] / max(a["time"], 1e-9),
                   "epoch_time_s": a["time"]}
            if a["skipped"]:
                print(f"epoch {self.epoch + 1}: skipped {a['skipped']} unreadable image(s) (see warnings)",
                      flush=True)
            if stats is not None:
                row.update({k: stats[k] for k in ("AP", "AP50", "AP75", "APm", "APl", "AR")})
                if stats["AP"] > self.best_ap:
                    self.best_ap, self.best_epoch = stats["AP"], self.epoch + 1
                    save_model(self.eval_model(), self.out / "best.safetensors",
                               metadata={"AP": stats["AP"], "epoch": self.epoch + 1, "weights": "ema"})
            self.logger.log_epoch(row)
            print(f"epoch {self.epoch + 1}/{self.exp.train.epochs}: loss {row['loss']:.5f}, "
                  f"{row['images_per_s']:.1f} img/s" + (f", AP {100 * stats['AP']:.2f}" if stats else ""),
                  flush=True)
        self.epoch_acc = self._new_acc()
        self.epoch += 1
        self.step_in_epoch = 0
        self._save_last()

    def _finish(self) -> dict:
        summary = {"best_ap": self.best_ap, "best_epoch": self.best_epoch, "global_step": self.global_step,
                   "output_dir": str(self.out)}
        if du.is_main():
            path = save_model(self.eval_model(), self.out / "model.safetensors",
                              metadata={"epochs": self.exp.train.epochs, "weights": "ema" if self.ema else "live",
                                        "best_ap": self.best_ap})
            summary["model"] = str(path)
        du.barrier()
        return summary


def train(exp: Experiment, device: Optional[str] = None, resume: Optional[str] = None) -> dict:
    """Build a Trainer and run it to the end."""
    return Trainer(exp, device=device, resume=resume).fit()


__all__ = ["Trainer", "train", "NonFiniteLossError", "keep_rates_at", "freeze_batchnorm",
           "build_train_dataset"]
