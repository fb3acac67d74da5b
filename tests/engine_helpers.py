"""Helpers for the engine tests: tiny generated datasets, experiment overrides, CLI subprocesses."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch

from tests.helpers import REPO_ROOT, make_coco_dataset

PYTHON = sys.executable
TINY = str(REPO_ROOT / "configs" / "tiny_cpu.yaml")


def dataset(root, num_images=2, people=2, num_joints=17, seed=0) -> tuple[str, str]:
    """(annotation json, image folder) of a generated COCO-format dataset."""
    ann = make_coco_dataset(root, num_images=num_images, people_per_image=people,
                            num_joints=num_joints, seed=seed)
    return str(ann), str(Path(root) / "images")


def data_opts(train, val=None) -> list[str]:
    opts = [f"data.train_ann={train[0]}", f"data.train_images={train[1]}"]
    if val is None:
        opts += ["data.val_ann=''", "data.val_images=''"]
    else:
        opts += [f"data.val_ann={val[0]}", f"data.val_images={val[1]}"]
    return opts


def env() -> dict:
    e = dict(os.environ)
    e["PYTHONPATH"] = str(REPO_ROOT / "src") + os.pathsep + e.get("PYTHONPATH", "")
    e.setdefault("OMP_NUM_THREADS", "2")
    return e


def gtpt_cmd(*args) -> list[str]:
    return [PYTHON, "-m", "gtpt", *args]


def run(cmd, timeout=240) -> subprocess.CompletedProcess:
    p = subprocess.run(cmd, env=env(), capture_output=True, text=True, timeout=timeout, cwd=REPO_ROOT)
    assert p.returncode == 0, f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
    return p


def load_safetensors(path) -> dict:
    from safetensors.torch import load_file
    return load_file(str(path))


def max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max((a[k].double() - b[k].double()).abs().max().item() if a[k].numel() else 0.0 for k in a)


def assert_identical(a: dict, b: dict, what: str) -> None:
    assert a.keys() == b.keys(), what
    for k in a:
        assert torch.equal(a[k], b[k]), f"{what}: '{k}' differs (max {(a[k].double() - b[k].double()).abs().max()})"
