"""Per-epoch metrics: output_dir/metrics.csv (always), TensorBoard (if importable), curves.png."""
from __future__ import annotations

import csv
import os
from pathlib import Path

COLUMNS = ("epoch", "global_step", "lr", "keep_rates", "loss", "student_gt", "teacher_gt", "distill",
           "skipped_images", "images_per_s", "epoch_time_s", "AP", "AP50", "AP75", "APm", "APl", "AR")


class MetricsLogger:
    """Appends one row per epoch; on resume, rows from the resumed epoch on are dropped first."""

    def __init__(self, output_dir, resume_epoch: int = 0, tensorboard: bool = True):
        self.dir = Path(output_dir)
        self.csv = self.dir / "metrics.csv"
        self.dir.mkdir(parents=True, exist_ok=True)
        rows = self.read() if self.csv.exists() else []
        # epochs after the checkpoint we resumed from will be run (and logged) again
        self._write_all([r for r in rows if int(r["epoch"]) <= resume_epoch])
        self.tb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
                self.tb = SummaryWriter(str(self.dir / "tensorboard"))
            except Exception:   # tensorboard is optional
                self.tb = None

    def read(self) -> list[dict]:
        with open(self.csv, newline="") as f:
            return list(csv.DictReader(f))

    def _write_all(self, rows: list[dict]) -> None:
        tmp = self.csv.with_name(self.csv.name + ".tmp")
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
            w.writeheader()
            w.writerows(rows)
        os.replace(tmp, self.csv)

    def log_epoch(self, row: dict) -> None:
        row = {k: ("" if row.get(k) is None else row.get(k)) for k in COLUMNS}
        with open(self.csv, "a", newline="") as f:
            csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore").writerow(row)
        if self.tb is not None:
            for k, v in row.items():
                if isinstance(v, (int, float)) and k != "epoch":
                    self.tb.add_scalar(f"epoch/{k}", v, int(row["epoch"]))
            self.tb.flush()
        self.plot()

    def log_step(self, step: int, values: dict) -> None:
        if self.tb is not None:
            for k, v in values.items():
                self.tb.add_scalar(f"train/{k}", v, step)

    def plot(self) -> None:
        """curves.png: training loss and validation AP per epoch."""
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        rows = self.read()
        if not rows:
            return
        ep = [int(r["epoch"]) for r in rows]
        fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
        a.plot(ep, [float(r["loss"]) for r in rows], marker="o")
        a.set(xlabel="epoch", ylabel="training loss", title="loss")
        ap = [(e, 100 * float(r["AP"])) for e, r in zip(ep, rows) if r["AP"] != ""]
        if ap:
            b.plot(*zip(*ap), marker="o", color="tab:green")
        b.set(xlabel="epoch", ylabel="AP (%)", title="validation AP (EMA)")
        fig.tight_layout()
        tmp = self.dir / "curves.tmp.png"
        fig.savefig(tmp, dpi=80)
        plt.close(fig)
        os.replace(tmp, self.dir / "curves.png")

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


__all__ = ["MetricsLogger", "COLUMNS"]
