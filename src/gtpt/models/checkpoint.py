"""Checkpoint I/O: the authors' checkpoints, and the package's own safetensors format.

This is the one place where the reference code's parameter names are mapped onto ours.
Nothing here unpickles arbitrary objects: official files go through
`torch.load(weights_only=True)` (numpy scalars and arrays allowed besides tensors), our own files are
safetensors with the config as JSON metadata.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
from pathlib import Path
from typing import Mapping, Optional, Union

import torch

from ..config import PRESETS, ModelConfig, get_model_config
from .gtpt import GTPT

FORMAT_VERSION = "1"

# (official pattern, ours) applied to keys with the `features.` / `ema_features.` prefix removed
_FEATURE_RULES = [
    (r"^patch2emb_norm\.", "patch_norm."),
    (r"^patch2emb_mlp\.", "patch_embed."),
    (r"^keypoint_token$", "keypoint_tokens"),
    (r"^extra_token$", "part_tokens"),
    (r"^fine_keypoint_token$", "dense_tokens"),
    (r"^transformer\.group_mask\.0\.", "group_gate.fc1."),
    (r"^transformer\.group_mask\.2\.", "group_gate.fc2."),
    (r"^transformer\.(layers|group_layers)\.(\d+)\.0\.fn\.norm\.", r"\1.\2.norm1."),
    (r"^transformer\.(layers|group_layers)\.(\d+)\.0\.fn\.fn\.to_qkv\.", r"\1.\2.attn.qkv."),
    (r"^transformer\.(layers|group_layers)\.(\d+)\.0\.fn\.fn\.to_out\.0\.", r"\1.\2.attn.proj."),
    (r"^transformer\.(layers|group_layers)\.(\d+)\.1\.fn\.norm\.", r"\1.\2.norm2."),
    (r"^transformer\.(layers|group_layers)\.(\d+)\.1\.fn\.fn\.net\.0\.", r"\1.\2.mlp.fc1."),
    (r"^transformer\.(layers|group_layers)\.(\d+)\.1\.fn\.fn\.net\.3\.", r"\1.\2.mlp.fc2."),
    (r"^(human_token|stem\..*)$", r"\1"),
]
_BLOCK_RENAMES = {"layers.": "blocks.", "group_layers.": "group_blocks."}
# official keys with no counterpart here: the fixed sine table (rebuilt from the config and
# checked) and the group-attention mask buffers (the placeholder key is left out instead)
_DROPPED = re.compile(r"^(pos_embedding|transformer\.group_layers\.\d+\.0\.fn\.fn\.mask)$")


class CheckpointError(ValueError):
    """A checkpoint does not fit the requested model; the message says what is wrong."""


def unwrap_state_dict(obj) -> dict:
    """Accept a plain state dict or one wrapped under state_dict / best_state_dict / model,
    with or without a DataParallel `module.` prefix."""
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"expected a state dict (a mapping of names to tensors), got {type(obj).__name__}")
    for key in ("state_dict", "best_state_dict", "model"):
        if key in obj and isinstance(obj[key], Mapping):
            return unwrap_state_dict(obj[key])
    return {k[len("module."):] if k.startswith("module.") else k: v for k, v in obj.items()}


def _map_feature_key(key: str) -> Optional[str]:
    if _DROPPED.match(key):
        return None
    for pattern, repl in _FEATURE_RULES:
        if re.match(pattern, key):
            out = re.sub(pattern, repl, key)
            for old, new in _BLOCK_RENAMES.items():
                out = out.replace(old, new, 1) if out.startswith(old) else out
            return out
    raise CheckpointError(f"unknown key in official checkpoint: '{key}'")


def _map_head_key(key: str) -> str:
    m = re.match(r"^(x|y)\.(0|1)\.(weight|bias)$", key)
    if not m:
        raise CheckpointError(f"unknown head key in official checkpoint: 'mlp_head_{key}'")
    axis, layer, kind = m.groups()
    return f"head.{'norm' if layer == '0' else 'fc'}_{axis}.{kind}"


def guess_official_config(sd: Mapping[str, torch.Tensor], prefix: str = "features.") -> str:
    """Name of the preset an official state dict was made for, from its shapes."""
    try:
        dim = sd[prefix + "human_token"].shape[-1]
        channels = sd[prefix + "patch2emb_norm.weight"].shape[0]
    except KeyError as e:
        raise CheckpointError(f"not a GTPT checkpoint: missing {e.args[0]!r}") from None
    b_stem = any(k.startswith(prefix + "stem.down_layer") for k in sd)
    size = "b" if b_stem else {128: "t", 256: "s"}.get(channels, f"?(stem {channels} channels)")
    kind = "wholebody" if prefix + "extra_token" in sd else "body"
    return f"gtpt-{size}-{kind} (dim {dim})"


def official_to_gtpt(sd: Mapping[str, torch.Tensor], use_ema: bool = True) -> dict[str, torch.Tensor]:
    """Official names -> ours (float tensors cast to float32). `use_ema` picks the EMA copy,
    which the reference evaluates with; else the live weights."""
    feat, head = ("ema_features.", "ema_mlp_head_") if use_ema else ("features.", "mlp_head_")
    out = {}
    for key, value in sd.items():
        if key.startswith(feat):
            new = _map_feature_key(key[len(feat):])
        elif key.startswith(head):
            new = _map_head_key(key[len(head):])
        elif key.startswith(("features.", "ema_features.", "mlp_head_", "ema_mlp_head_")):
            continue  # the other copy
        else:
            raise CheckpointError(f"unknown key in official checkpoint: '{key}'")
        if new is not None:
            out[new] = value.float() if value.is_floating_point() else value
    if not out:
        raise CheckpointError(f"no '{feat}*' weights found in the official checkpoint")
    return out


def _check_and_load(model: GTPT, sd: Mapping[str, torch.Tensor], source: str) -> None:
    own = model.state_dict()
    missing = sorted(set(own) - set(sd))
    unexpected = sorted(set(sd) - set(own))
    wrong = [f"{k}: checkpoint {tuple(sd[k].shape)} vs model {tuple(own[k].shape)}"
             for k in own if k in sd and sd[k].shape != own[k].shape]
    if missing or unexpected or wrong:
        lines = [f"{source} does not fit model '{model.cfg.name}':"]
        if missing:
            lines.append(f"  missing keys ({len(missing)}): {', '.join(missing[:8])}{' ...' if len(missing) > 8 else ''}")
        if unexpected:
            lines.append(f"  unexpected keys ({len(unexpected)}): {', '.join(unexpected[:8])}"
                         f"{' ...' if len(unexpected) > 8 else ''}")
        if wrong:
            lines.append(f"  wrong shapes ({len(wrong)}): {'; '.join(wrong[:4])}{' ...' if len(wrong) > 4 else ''}")
        raise CheckpointError("\n".join(lines))
    model.load_state_dict(sd, strict=True)


def _numpy_globals() -> list:
    """numpy scalars and arrays, which rebuild from raw bytes and run no code. Training scripts of
    the HRNet/SimCC lineage store the best AP ('perf') as a numpy float beside the weights."""
    import numpy as np
    multiarray = (np._core if hasattr(np, "_core") else np.core).multiarray
    found = [np.dtype, np.ndarray] + sorted({type(np.dtype(c)) for c in np.typecodes["All"] if c != "O"}, key=str)
    for module in ("numpy.core", "numpy._core"):   # the names numpy 1 and numpy 2 write
        found += [(multiarray.scalar, f"{module}.multiarray.scalar"),
                  (multiarray._reconstruct, f"{module}.multiarray._reconstruct")]
    return found


def _allowed_names(allowed: list) -> set:
    return {g[1] if isinstance(g, tuple) else f"{g.__module__}.{g.__qualname__}" for g in allowed}


def _is_safetensors(path: str) -> bool:
    from safetensors import safe_open
    try:
        with safe_open(path, framework="pt"):
            return True
    except Exception:
        return False


def load_weights_only(path, map_location="cpu", trusted_hint: str = ""):
    """torch.load(weights_only=True) with numpy scalars and arrays allowed. A file that needs any
    other Python object, or is no torch checkpoint at all, raises CheckpointError saying which;
    trusted_hint is appended to the first kind (what to do if the user trusts the file)."""
    path = str(path)
    serialization = torch.serialization
    allowed = _numpy_globals() if hasattr(serialization, "safe_globals") else []   # torch >= 2.5
    try:
        with serialization.safe_globals(allowed) if allowed else contextlib.nullcontext():
            return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:
        error = e
    if not hasattr(serialization, "get_unsafe_globals_in_checkpoint"):
        raise CheckpointError(f"cannot read {path} as a weights-only torch checkpoint: {error}") from error
    try:
        names = serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception as e:   # not a zip archive of pickles: garbage, truncated or another format
        if _is_safetensors(path):
            raise CheckpointError(f"{path} is a safetensors file, not a .pth checkpoint: load it with "
                                  "gtpt.load_model (gtpt predict/eval --weights)") from e
        detail = str(error).splitlines()[0] if str(error) else ""
        detail = "" if detail.startswith("Weights only load failed") else f": {detail}"   # torch's advice misleads here
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint (damaged, truncated, "
                              f"or another format){detail}") from e
    allowed_names = _allowed_names(allowed)
    names = [n for n in names if n not in allowed_names]
    if not names:
        raise CheckpointError(f"cannot read {path} as a weights-only torch checkpoint: {error}") from error
    raise CheckpointError(f"{path} holds Python objects besides tensors and plain data ({', '.join(names)}), "
                          f"and gtpt never unpickles arbitrary objects{trusted_hint}") from error


def load_official_checkpoint(path_or_state_dict: Union[str, os.PathLike, Mapping], name: Optional[str] = None,
                             use_ema: bool = True, keep_rates=None) -> GTPT:
    """Build preset `name` and fill it from one of the authors' checkpoints (EMA weights by
    default). Without `name`, the preset is read from the checkpoint's shapes. Raises
    CheckpointError naming the problem if the checkpoint does not fit."""
    source = "state dict"
    if isinstance(path_or_state_dict, (str, os.PathLike)):
        source = str(path_or_state_dict)
        if not Path(source).is_file():
            raise FileNotFoundError(f"official checkpoint not found: {source}")
        obj = load_weights_only(source, trusted_hint=". If you trust the file, take its weights out yourself, e.g. "
                                f"sd = torch.load('{source}', weights_only=False)['state_dict'], and pass sd to "
                                "gtpt.load_official_checkpoint(sd, name)")
    else:
        obj = path_or_state_dict
    sd = unwrap_state_dict(obj)
    prefix = "ema_features." if use_ema else "features."
    found = None   # the preset its shapes say, "gtpt-t-body (dim 128)": picks `name`, or checks it
    if name is None or prefix + "human_token" in sd:
        try:
            found = guess_official_config(sd, prefix)
        except CheckpointError as e:
            raise CheckpointError(f"{source}: {e}") from None
    if name is None:
        name = found.split(" ")[0]
        if name not in PRESETS:
            raise CheckpointError(f"{source}: cannot tell which preset it holds ({found}); name it")
    cfg = get_model_config(name)
    if keep_rates is not None:
        cfg = cfg.with_keep_rates(keep_rates)
    model = GTPT(cfg)
    if found is not None and (not found.startswith(name + " ") or f"(dim {cfg.dim})" not in found):
        raise CheckpointError(f"{source} holds a {found} checkpoint, not '{name}' (dim {cfg.dim})")
    table = sd.get(prefix + "pos_embedding")
    if table is not None and (table.shape != model.pos_embed.shape
                              or not torch.allclose(table.float(), model.pos_embed, atol=1e-5)):
        raise CheckpointError(f"{source}: its position table differs from the sine table of '{name}'")
    _check_and_load(model, official_to_gtpt(sd, use_ema), source)
    return model.eval()


# ---------------------------------------------------------------------- our format
def save_model(model: GTPT, path: Union[str, os.PathLike], metadata: Optional[dict] = None,
               dtype: Optional[torch.dtype] = None) -> Path:
    """Write weights (safetensors) with the model config as JSON metadata; atomic (tmp + rename)."""
    from safetensors.torch import save_file
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {}
    for k, v in model.state_dict().items():
        v = v.detach().cpu()
        if dtype is not None and v.is_floating_point():
            v = v.to(dtype)
        tensors[k] = v.contiguous()
    meta = {"gtpt_format": FORMAT_VERSION, "config": json.dumps(model.cfg.to_dict())}
    meta.update({k: v if isinstance(v, str) else json.dumps(v) for k, v in (metadata or {}).items()})
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata=meta)
    os.replace(tmp, path)
    return path


def read_model_metadata(path: Union[str, os.PathLike]) -> dict:
    """The metadata of a saved model (config and anything passed to save_model)."""
    from safetensors import safe_open
    path = str(path)
    if not Path(path).is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    try:
        with safe_open(path, framework="pt") as f:
            meta = f.metadata() or {}
    except Exception as e:
        raise CheckpointError(f"{path} is not a safetensors file ({e}); official .pth checkpoints "
                              f"go through `gtpt convert --from-official`") from e
    if "config" not in meta:
        raise CheckpointError(f"{path} has no gtpt config in its metadata; was it written by gtpt?")
    return meta


def load_model(path: Union[str, os.PathLike], keep_rates=None, map_location="cpu",
               expect: Optional[str] = None) -> GTPT:
    """Load a model written by `save_model` (float16 files come back as float32).

    expect: a preset name the file must hold (clear error otherwise).
    """
    from safetensors.torch import load_file
    meta = read_model_metadata(path)
    cfg = ModelConfig.from_dict(json.loads(meta["config"]))
    if expect is not None and cfg.name != expect:
        raise CheckpointError(f"{path} holds weights for '{cfg.name}', not '{expect}'")
    if keep_rates is not None:
        cfg = cfg.with_keep_rates(keep_rates)
    model = GTPT(cfg)
    sd = {k: (v.float() if v.is_floating_point() else v) for k, v in load_file(str(path), device="cpu").items()}
    _check_and_load(model, sd, str(path))
    return model.to(map_location).eval()
