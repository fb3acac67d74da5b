"""Typed experiment configuration: model + data + training + evaluation, from YAML.

A YAML file has up to five top-level sections (all optional, defaults are the paper recipe):

    model: {name: gtpt-t-body, keep_rates: [1.0, 0.7, 0.3, 0.1]}   # preset name + overrides
    data:  {dataset: coco, train_ann: ..., train_images: ..., val_ann: ..., aug: {...}}
    train: {epochs: 300, lr: 1.0e-3, batch_size: 64, amp: none, ...}
    eval:  {flip_test: true, oks_nms: 0.9, ...}
    output_dir: runs/gtpt_t_coco

`--opt key=value` overrides use dotted paths (`train.epochs=3`, `model.keep_rates=[1,1,0.5,0.3]`);
values are parsed as YAML. Unknown keys stop with an error naming the key and the file.
"""
from __future__ import annotations

import dataclasses
import os
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import yaml

from ..config import ModelConfig, PRESETS, get_model_config
from ..data.transforms import AugmentConfig


class ConfigError(ValueError):
    """A config file or override is invalid; the message names the key and the source."""


AMP_MODES = ("none", "bf16", "fp16")   # train.amp / eval.amp: autocast dtype (fp16 training adds a GradScaler)


@dataclass
class DataConfig:
    """Where the data lives and how it is read. Paths are relative to the working directory."""

    dataset: str = "coco"                 # coco | wholebody | generic (= coco: COCO-format, the model's joints)
    num_joints: int = 17                  # defaults to the model's when left out of the YAML
    train_ann: str = ""
    train_images: str = ""
    val_ann: str = ""                     # ground truth used for validation and scoring
    val_images: str = ""
    val_boxes: Optional[str] = None       # COCO detection-results json; None -> GT boxes
    use_gt_boxes: bool = False            # force GT boxes even if val_boxes is set
    box_score_thr: float = 0.0            # the recipe uses every detection
    aug: AugmentConfig = field(default_factory=AugmentConfig)
    workers: int = 4
    pin_memory: bool = True               # CUDA only

    def __post_init__(self):
        if self.dataset not in ("coco", "wholebody", "generic"):
            raise ConfigError(f"data.dataset must be coco, wholebody or generic, got {self.dataset!r}")
        if self.workers < 0:
            raise ConfigError(f"data.workers must be >= 0, got {self.workers}")


@dataclass
class TrainConfig:
    """Optimisation recipe (defaults: the paper's 300-epoch Adam schedule, batch 64 per GPU)."""

    epochs: int = 300
    time_budget_min: Optional[float] = None  # re-plan epochs to end in about this many minutes
    lr: float = 1e-3
    milestones: tuple = (200, 260)        # epochs at which lr *= gamma
    gamma: float = 0.1
    batch_size: int = 64                  # per device and forward; global = batch_size x world size x accum_steps
    accum_steps: int = 1                  # forwards per optimiser step: 4 x 64 on 1 GPU = the recipe's 4 GPUs x 64
    weight_decay: float = 0.0             # Adam, no weight decay in the recipe
    amp: str = "none"                     # none | bf16 | fp16 (fp16 uses a GradScaler)
    grad_clip: Optional[float] = None     # max global grad norm; None = off (recipe)
    ema: bool = True
    ema_momentum: float = 0.996           # rises to 1.0 along a cosine over the whole run
    ema_warmup: bool = False              # cap m at (1+step)/(10+step): for short runs (off in the recipe)
    keep_rate_warmup_epochs: int = 0      # >0: student keep rates go 1.0 -> target linearly
    freeze_bn: bool = False               # BatchNorm in eval mode (running stats) while training
    sync_bn: bool = False                 # SyncBatchNorm under DDP (CUDA only)
    seed: int = 0
    init_weights: Optional[str] = None     # start from these weights (any file `load_weights` reads)
    ckpt_interval: int = 500              # write last.ckpt every N optimiser steps (0: epoch ends only)
    log_interval: int = 20                # steps between progress-bar / TensorBoard updates
    channels_last: bool = True            # CUDA only
    compile: bool = False                 # torch.compile the training model
    compile_mode: Optional[str] = None    # e.g. "max-autotune"
    fused_adam: bool = True               # CUDA only

    def __post_init__(self):
        self.milestones = tuple(int(m) for m in self.milestones)
        if self.amp not in AMP_MODES:
            raise ConfigError(f"train.amp must be none, bf16 or fp16, got {self.amp!r}")
        for name in ("epochs", "batch_size", "accum_steps"):
            if getattr(self, name) < 1:
                raise ConfigError(f"train.{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.ema_momentum <= 1.0:
            raise ConfigError(f"train.ema_momentum must be in [0, 1], got {self.ema_momentum}")
        if self.time_budget_min is not None and self.time_budget_min <= 0:
            raise ConfigError(f"train.time_budget_min must be > 0, got {self.time_budget_min}")
        if self.keep_rate_warmup_epochs < 0:
            raise ConfigError(f"train.keep_rate_warmup_epochs must be >= 0, got {self.keep_rate_warmup_epochs}")


@dataclass
class EvalConfig:
    """Validation / test settings (the reference's flip test, rescoring and OKS-NMS)."""

    flip_test: bool = True
    shift: bool = True                    # one-bin x shift of the flipped logits
    kpt_score_thr: float = 0.01           # joints counted in the instance rescoring
    oks_nms: float = 0.9
    batch_size: int = 64
    interval: int = 10                    # validate every N epochs (and after the last)
    amp: str = "none"                     # none | bf16 | fp16 autocast (`gtpt eval --precision`)

    def __post_init__(self):
        if self.amp not in AMP_MODES:
            raise ConfigError(f"eval.amp must be none, bf16 or fp16, got {self.amp!r}")
        if self.batch_size < 1:
            raise ConfigError(f"eval.batch_size must be >= 1, got {self.batch_size}")


@dataclass
class Experiment:
    """Everything one training or evaluation run needs."""

    model: ModelConfig = field(default_factory=lambda: PRESETS["gtpt-t-body"])
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    output_dir: str = "runs/gtpt"
    source: str = "<defaults>"            # the YAML file it came from (for messages)

    def __post_init__(self):
        if self.data.num_joints != self.model.num_joints:
            raise ConfigError(f"{self.source}: data.num_joints={self.data.num_joints} but model "
                              f"'{self.model.name}' predicts {self.model.num_joints} joints")
        if self.data.dataset == "wholebody" and self.model.num_joints != 133:
            raise ConfigError(f"{self.source}: data.dataset=wholebody needs a whole-body model (133 joints)")

    def to_dict(self) -> dict:
        """Plain (YAML/JSON-safe) nested dict; `model` is stored in full."""
        d = _plain(dataclasses.asdict(self))
        d.pop("source", None)
        return d

    def save(self, path=None) -> Path:
        """Write the resolved config (default output_dir/config.yaml)."""
        path = Path(path) if path else Path(self.output_dir) / "config.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))
        os.replace(tmp, path)
        return path


# ------------------------------------------------------------------ building from dicts
def _plain(obj):
    """Tuples -> lists recursively (YAML and weights-only torch.load friendly)."""
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def _coerce_number(typ, value, key: str, source: str):
    """Numbers for float / int fields. YAML 1.1 reads `1e-3` (no dot) as a string, so numeric
    strings become floats; anything else that is not a number is a ConfigError naming the key."""
    args = typing.get_args(typ)
    base = next((a for a in args if a is not type(None)), typ) if args else typ
    if value is None or base not in (float, int):
        return value
    if isinstance(value, bool):
        raise ConfigError(f"{source}: '{key}' must be a number, got {value!r}")
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise ConfigError(f"{source}: '{key}' must be a number, got {value!r}") from None
    if base is int:
        if not isinstance(value, (int, float)) or float(value) != int(value):
            raise ConfigError(f"{source}: '{key}' must be an integer, got {value!r}")
        return int(value)
    if not isinstance(value, (int, float)):
        raise ConfigError(f"{source}: '{key}' must be a number, got {value!r}")
    return float(value)


def _build(cls, values: dict, where: str, source: str):
    """Dataclass `cls` from a dict, recursing into dataclass fields; unknown keys -> ConfigError."""
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise ConfigError(f"{source}: '{where}' must be a mapping, got {type(values).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs = {}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(f"{source}: unknown key '{where}.{key}' (known: {', '.join(known)})")
        typ = hints[key]
        if dataclasses.is_dataclass(typ) and not isinstance(value, typ):
            value = _build(typ, value, f"{where}.{key}", source)
        else:
            value = _coerce_number(typ, value, f"{where}.{key}", source)
        kwargs[key] = value
    try:
        return cls(**kwargs)
    except ConfigError as e:
        raise ConfigError(f"{source}: {e}") from None
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{source}: invalid '{where}' section: {e}") from None


def _build_model(values, source: str) -> ModelConfig:
    if isinstance(values, ModelConfig):
        return values
    values = dict(values or {})
    name = values.pop("name", "gtpt-t-body")
    if name not in PRESETS:
        raise ConfigError(f"{source}: unknown model.name {name!r}; choose one of {', '.join(PRESETS)}")
    known = {f.name for f in dataclasses.fields(ModelConfig)}
    for key in values:
        if key not in known:
            raise ConfigError(f"{source}: unknown key 'model.{key}' (known: {', '.join(sorted(known))})")
    for key in ("keep_rates", "image_size", "patch_size"):
        if key in values:
            values[key] = tuple(values[key])
    try:
        return get_model_config(name, **values)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{source}: invalid 'model' section: {e}") from None


def experiment_from_dict(raw: dict, source: str = "<dict>") -> Experiment:
    """Build an `Experiment` from a nested dict (the YAML structure)."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: top level must be a mapping, got {type(raw).__name__}")
    sections = {"model", "data", "train", "eval", "output_dir"}
    for key in raw:
        if key not in sections:
            raise ConfigError(f"{source}: unknown key '{key}' (top-level sections: {', '.join(sorted(sections))})")
    model = _build_model(raw.get("model"), source)
    data_raw = raw.get("data") or {}
    if isinstance(data_raw, dict) and "num_joints" not in data_raw:
        data_raw = {**data_raw, "num_joints": model.num_joints}
    data = _build(DataConfig, data_raw, "data", source)
    train = _build(TrainConfig, raw.get("train"), "train", source)
    ev = _build(EvalConfig, raw.get("eval"), "eval", source)
    try:
        return Experiment(model=model, data=data, train=train, eval=ev,
                          output_dir=str(raw.get("output_dir", "runs/gtpt")), source=source)
    except ConfigError as e:
        raise ConfigError(str(e)) from None


# ------------------------------------------------------------------ overrides
def parse_override(text: str) -> tuple[list[str], Any]:
    """'train.epochs=3' -> (['train', 'epochs'], 3); the value is parsed as YAML."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like key=value (e.g. train.epochs=3)")
    key, value = text.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"override {text!r} has an empty key")
    try:
        parsed = yaml.safe_load(value) if value.strip() else ""
    except yaml.YAMLError as e:
        raise ConfigError(f"override {text!r}: cannot parse value ({e})") from None
    return key.split("."), parsed


def apply_overrides(raw: dict, overrides: Sequence[str], source: str) -> dict:
    """Set dotted keys in the nested dict (keys are checked later when the dataclasses are built)."""
    raw = dict(raw or {})
    for text in overrides or ():
        path, value = parse_override(text)
        node = raw
        for part in path[:-1]:
            child = node.get(part)
            if child is None:
                child = {}
            elif not isinstance(child, dict):
                raise ConfigError(f"override {text!r}: '{part}' is not a section (in {source})")
            node[part] = child = dict(child)
            node = child
        node[path[-1]] = value
    return raw


def load_experiment(path=None, overrides: Sequence[str] = (), output_dir: Optional[str] = None) -> Experiment:
    """YAML file (or None for defaults) + `--opt` overrides -> validated `Experiment`."""
    source = str(path) if path else "<defaults>"
    raw = {}
    if path:
        if not Path(path).is_file():
            raise FileNotFoundError(f"config file not found: {path}")
        try:
            raw = yaml.safe_load(Path(path).read_text()) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: not valid YAML ({e})") from None
    if overrides:
        source = f"{source} with --opt {' '.join(overrides)}"
    raw = apply_overrides(raw, overrides, source)
    if output_dir:
        raw["output_dir"] = output_dir
    return experiment_from_dict(raw, source)


__all__ = ["ConfigError", "DataConfig", "TrainConfig", "EvalConfig", "Experiment",
           "experiment_from_dict", "load_experiment", "apply_overrides", "parse_override"]
