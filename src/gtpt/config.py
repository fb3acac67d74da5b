"""Typed configuration: the model presets (one source of truth for T/S/B x body/whole-body).

Experiment-level settings (data, training, evaluation) live in `gtpt.engine.experiment`,
which embeds a `ModelConfig` from here.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

BODY_KEEP_RATES = (1.0, 0.7, 0.3, 0.1)
WHOLEBODY_KEEP_RATES = (1.0, 0.7, 0.5, 0.3)


@dataclass(frozen=True)
class ModelConfig:
    """One GTPT network. Field names are the package's; `official_name` maps to the authors' code.

    keep_rates: one value per 3 transformer blocks (4 stages of 12 blocks).
    image_size / patch_size: (height, width); a patch is `patch_size` cells of the stride-4 map.
    """

    name: str = "gtpt-t-body"
    num_joints: int = 17
    stem: str = "t"                 # "t" / "s": 4 ShuffleNetV2 units; "b": down/up stages
    stem_channels: int = 128
    dim: int = 128
    depth: int = 12
    heads: int = 8
    mlp_ratio: int = 3
    keep_rates: tuple[float, ...] = BODY_KEEP_RATES
    image_size: tuple[int, int] = (256, 192)
    patch_size: tuple[int, int] = (4, 3)
    split_ratio: float = 2.0
    sigma: float = 4.0
    official_name: str = "pose_gtpt_t_human"

    def __post_init__(self):
        if self.num_joints not in (17, 133):
            raise ValueError(f"{self.name}: num_joints must be 17 (COCO) or 133 (COCO-WholeBody), "
                             f"got {self.num_joints}")
        if self.stem not in ("t", "s", "b"):
            raise ValueError(f"{self.name}: stem must be 't', 's' or 'b', got {self.stem!r}")
        if self.depth != 12 or len(self.keep_rates) != 4:
            raise ValueError(f"{self.name}: GTPT has 12 blocks and 4 keep rates "
                             f"(got depth={self.depth}, keep_rates={self.keep_rates})")
        if not all(0.0 < r <= 1.0 for r in self.keep_rates):
            raise ValueError(f"{self.name}: keep rates must be in (0, 1], got {self.keep_rates}")
        object.__setattr__(self, "keep_rates", tuple(float(r) for r in self.keep_rates))
        object.__setattr__(self, "image_size", tuple(self.image_size))
        object.__setattr__(self, "patch_size", tuple(self.patch_size))

    @property
    def wholebody(self) -> bool:
        return self.num_joints == 133

    @property
    def grid(self) -> tuple[int, int]:
        """Token grid (rows, cols): 16 x 16 for 256x192 input."""
        return (self.image_size[0] // (4 * self.patch_size[0]),
                self.image_size[1] // (4 * self.patch_size[1]))

    @property
    def num_patches(self) -> int:
        return self.grid[0] * self.grid[1]

    @property
    def simcc_bins(self) -> tuple[int, int]:
        """Number of (x, y) classification bins."""
        return (int(self.image_size[1] * self.split_ratio), int(self.image_size[0] * self.split_ratio))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown model config keys {sorted(unknown)}")
        return cls(**d)

    def with_keep_rates(self, keep_rates) -> "ModelConfig":
        return replace(self, keep_rates=tuple(keep_rates))


def _preset(size: str, wholebody: bool) -> ModelConfig:
    stem_channels, dim = {"t": (128, 128), "s": (256, 192), "b": (256, 192)}[size]
    return ModelConfig(
        name=f"gtpt-{size}-{'wholebody' if wholebody else 'body'}",
        num_joints=133 if wholebody else 17, stem=size, stem_channels=stem_channels, dim=dim,
        keep_rates=WHOLEBODY_KEEP_RATES if wholebody else BODY_KEEP_RATES,
        official_name=f"pose_gtpt_{size}_{'wholebody' if wholebody else 'human'}")


PRESETS: dict[str, ModelConfig] = {
    cfg.name: cfg for cfg in (_preset(s, wb) for wb in (False, True) for s in ("t", "s", "b"))
}


def get_model_config(name: str, **overrides) -> ModelConfig:
    """Preset by name (`gtpt-t-body`, ..., `gtpt-b-wholebody`), optionally with overrides."""
    if name not in PRESETS:
        raise KeyError(f"unknown model {name!r}; choose one of {', '.join(PRESETS)}")
    cfg = PRESETS[name]
    return replace(cfg, **overrides) if overrides else cfg


__all__ = ["ModelConfig", "PRESETS", "get_model_config", "BODY_KEEP_RATES", "WHOLEBODY_KEEP_RATES"]
