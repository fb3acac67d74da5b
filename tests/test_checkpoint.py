"""Official checkpoint import and the package's own safetensors format."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from gtpt import CheckpointError, build_model, load_model, load_official_checkpoint, save_model
from gtpt.engine.state import load_checkpoint

from .conftest import load_official_fixture


@pytest.fixture(scope="module")
def body():
    return load_official_fixture("gtpt-t-body")


def _logits(model, x):
    with torch.no_grad():
        return model.eval()(x)[0]


@pytest.mark.parametrize("wrap", ["plain", "state_dict", "best_state_dict", "model", "module"])
def test_wrapped_checkpoints_load(body, wrap, tmp_path):
    sd = body["state_dict"]
    obj = {"plain": sd, "state_dict": {"state_dict": sd, "epoch": 3}, "best_state_dict": {"best_state_dict": sd},
           "model": {"model": sd}, "module": {"state_dict": {f"module.{k}": v for k, v in sd.items()}}}[wrap]
    path = tmp_path / "ckpt.pth"
    torch.save(obj, path)
    model = load_official_checkpoint(path, "gtpt-t-body")
    assert (_logits(model, body["x"]) - body["eval"]["pred_x"]).abs().max() < 1e-4


def test_wrong_preset_is_named(body):
    with pytest.raises(CheckpointError, match="gtpt-t-body.*not 'gtpt-t-wholebody'"):
        load_official_checkpoint(body["state_dict"], "gtpt-t-wholebody")
    with pytest.raises(CheckpointError, match="not 'gtpt-s-body'"):
        load_official_checkpoint(body["state_dict"], "gtpt-s-body")


def test_missing_unknown_and_misshapen_keys_are_named(body):
    sd = dict(body["state_dict"])
    del sd["ema_features.transformer.layers.2.1.fn.fn.net.0.weight"]
    with pytest.raises(CheckpointError, match=r"missing keys.*blocks\.2\.mlp\.fc1\.weight"):
        load_official_checkpoint(sd, "gtpt-t-body")
    sd = dict(body["state_dict"], **{"ema_features.transformer.extra_thing": torch.zeros(1)})
    with pytest.raises(CheckpointError, match="unknown key.*extra_thing"):
        load_official_checkpoint(sd, "gtpt-t-body")
    sd = dict(body["state_dict"])
    sd["ema_mlp_head_x.1.weight"] = torch.zeros(10, 128)
    with pytest.raises(CheckpointError, match=r"wrong shapes.*head\.fc_x\.weight"):
        load_official_checkpoint(sd, "gtpt-t-body")


class _Evil:
    def __reduce__(self):
        return (print, ("unpickled!",))


NAMES_REFUSED_GLOBALS = hasattr(torch.serialization, "get_unsafe_globals_in_checkpoint")   # torch >= 2.5


def test_arbitrary_pickles_are_refused(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": _Evil()}, path)
    match = r"holds Python objects besides tensors.*\(builtins\.print\)" if NAMES_REFUSED_GLOBALS else "weights-only"
    with pytest.raises(CheckpointError, match=match) as info:
        load_official_checkpoint(path, "gtpt-t-body")
    assert "unpickled!" not in str(info.value)


@pytest.mark.skipif(not hasattr(torch.serialization, "safe_globals"), reason="needs torch >= 2.5")
def test_numpy_values_beside_the_weights_load(body, tmp_path):
    """HRNet-lineage training scripts save the best AP as a numpy float next to the weights."""
    path = tmp_path / "checkpoint.pth"
    torch.save({"epoch": 210, "model": "gtpt", "state_dict": body["state_dict"], "perf": np.float64(0.711),
                "history": np.arange(3, dtype=np.float32)}, path)
    model = load_official_checkpoint(path, "gtpt-t-body")
    assert (_logits(model, body["x"]) - body["eval"]["pred_x"]).abs().max() < 1e-4


@pytest.mark.skipif(not NAMES_REFUSED_GLOBALS, reason="needs torch >= 2.5")
def test_unreadable_files_say_what_they_are(body, tmp_path):
    garbage, cut, ours = tmp_path / "garbage.pth", tmp_path / "cut.pth", tmp_path / "ours.pth"
    garbage.write_bytes(b"not a checkpoint at all" * 10)
    torch.save(body["state_dict"], cut)
    cut.write_bytes(cut.read_bytes()[:100_000])    # an interrupted download
    save_model(build_model("gtpt-t-body"), ours)
    for path, match in ((garbage, r"garbage\.pth is not a readable PyTorch checkpoint \(damaged"),
                        (cut, r"cut\.pth is not a readable PyTorch checkpoint.*zip archive"),
                        (ours, r"ours\.pth is a safetensors file.*gtpt\.load_model")):
        with pytest.raises(CheckpointError, match=match) as info:
            load_official_checkpoint(path, "gtpt-t-body")
        assert "will likely succeed" not in str(info.value)   # torch's advice to unpickle anything
    with pytest.raises(CheckpointError, match=r"cut\.pth is not a readable PyTorch checkpoint"):
        load_checkpoint(cut)    # training checkpoints (resume, convert --from-training) are read the same way


@pytest.mark.parametrize("dtype", [None, torch.float16])
def test_safetensors_roundtrip(body, tmp_path, dtype):
    model = load_official_checkpoint(body["state_dict"], "gtpt-t-body")
    path = save_model(model, tmp_path / "m.safetensors", metadata={"note": "test"}, dtype=dtype)
    again = load_model(path)
    assert again.cfg == model.cfg
    diff = (_logits(again, body["x"]) - body["eval"]["pred_x"]).abs().max()
    assert diff < (1e-4 if dtype is None else 5e-2)
    assert not list(tmp_path.glob("*.tmp"))  # written atomically


def test_load_model_checks_preset_and_format(tmp_path):
    path = save_model(build_model("gtpt-t-wholebody"), tmp_path / "wb.safetensors")
    with pytest.raises(CheckpointError, match="gtpt-t-wholebody.*not 'gtpt-t-body'"):
        load_model(path, expect="gtpt-t-body")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="not a safetensors file"):
        load_model(bad)
    with pytest.raises(FileNotFoundError, match="nope.safetensors"):
        load_model(tmp_path / "nope.safetensors")


def test_keep_rates_override_on_load(tmp_path):
    path = save_model(build_model("gtpt-t-body"), tmp_path / "m.safetensors")
    assert load_model(path, keep_rates=(1, 0.5, 0.3, 0.2)).keep_rates == (1.0, 0.5, 0.3, 0.2)


def test_convert_cli(tmp_path):
    src = tmp_path / "official.pth"
    torch.save(load_official_fixture("gtpt-t-body")["state_dict"], src)
    out = tmp_path / "converted.safetensors"
    run = subprocess.run([sys.executable, "-m", "gtpt", "convert", "--from-official", str(src),
                          "--model", "gtpt-t-body", "--out", str(out)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert load_model(out).cfg.name == "gtpt-t-body"
    run = subprocess.run([sys.executable, "-m", "gtpt", "convert", "--from-official", str(src),
                          "--model", "gtpt-b-body", "--out", str(out)], capture_output=True, text=True)
    assert run.returncode == 1 and "not 'gtpt-b-body'" in run.stdout
    out.unlink()
    run = subprocess.run([sys.executable, "-m", "gtpt", "convert", "--from-official", str(src),
                          "--out", str(out)], capture_output=True, text=True)   # the preset read from the shapes
    assert run.returncode == 0 and "gtpt-t-body" in run.stdout and load_model(out).cfg.name == "gtpt-t-body"


def test_every_kind_of_weights_file_runs_as_it_is(body, tmp_path):
    """`load_weights` (behind --weights, --checkpoint, Predictor): the authors' .pth without converting,
    our .safetensors, with clear errors for files that are not weights."""
    from gtpt import Predictor, load_weights
    from gtpt.assets import DEMO_IMAGE
    official = tmp_path / "gtpt_t_coco.pth"
    torch.save({"state_dict": body["state_dict"]}, official)
    model = load_weights(official)
    assert model.cfg.name == "gtpt-t-body" and not model.training
    assert (_logits(model, body["x"]) - body["eval"]["pred_x"]).abs().max() < 1e-4
    assert load_weights(official, keep_rates=(1, 1, 1, 1)).keep_rates == (1.0, 1.0, 1.0, 1.0)
    with pytest.raises(CheckpointError, match="not 'gtpt-s-body'"):
        load_weights(official, expect="gtpt-s-body")
    ours = save_model(model, tmp_path / "ours.safetensors")
    people = [Predictor(w).predict(str(DEMO_IMAGE))[0] for w in (official, ours)]
    np.testing.assert_allclose(people[0].keypoints, people[1].keypoints, atol=1e-4)

    torch.save({"state_dict": {"backbone.conv.weight": torch.zeros(1)}}, tmp_path / "resnet.pth")
    (tmp_path / "weights.npz").write_bytes(b"x")
    for path, match in (("resnet.pth", r"resnet\.pth: not a GTPT checkpoint: missing 'ema_features\.human_token'"),
                        ("weights.npz", r"weights\.npz: unknown weights file kind '\.npz' \(expected \.safetensors"),
                        ("model.onnx", "model.onnx: no such weights file")):
        with pytest.raises((CheckpointError, FileNotFoundError), match=match):
            load_weights(tmp_path / path)
    (tmp_path / "model.onnx").write_bytes(b"x")
    with pytest.raises(CheckpointError, match="model.onnx: this needs PyTorch weights"):
        load_weights(tmp_path / "model.onnx")


_TO_OFFICIAL = [  # ours -> the authors' names (the inverse of gtpt.models.checkpoint's rules)
    (r"^patch_norm\.", "patch2emb_norm."), (r"^patch_embed\.", "patch2emb_mlp."),
    (r"^keypoint_tokens$", "keypoint_token"), (r"^part_tokens$", "extra_token"),
    (r"^dense_tokens$", "fine_keypoint_token"),
    (r"^group_gate\.fc1\.", "transformer.group_mask.0."), (r"^group_gate\.fc2\.", "transformer.group_mask.2."),
    (r"^(blocks|group_blocks)\.(\d+)\.norm1\.", r"transformer.\1.\2.0.fn.norm."),
    (r"^(blocks|group_blocks)\.(\d+)\.attn\.qkv\.", r"transformer.\1.\2.0.fn.fn.to_qkv."),
    (r"^(blocks|group_blocks)\.(\d+)\.attn\.proj\.", r"transformer.\1.\2.0.fn.fn.to_out.0."),
    (r"^(blocks|group_blocks)\.(\d+)\.norm2\.", r"transformer.\1.\2.1.fn.norm."),
    (r"^(blocks|group_blocks)\.(\d+)\.mlp\.fc1\.", r"transformer.\1.\2.1.fn.fn.net.0."),
    (r"^(blocks|group_blocks)\.(\d+)\.mlp\.fc2\.", r"transformer.\1.\2.1.fn.fn.net.3."),
]


def _official_layout(model) -> dict:
    import re
    sd = {}
    for key, value in model.state_dict().items():
        if key.startswith("head."):
            part, kind = key[5:].split(".")
            layer, axis = part.split("_")
            sd[f"ema_mlp_head_{axis}.{0 if layer == 'norm' else 1}.{kind}"] = value.half()
            continue
        for pattern, repl in _TO_OFFICIAL:
            key = re.sub(pattern, repl, key)
        key = key.replace("transformer.blocks.", "transformer.layers.").replace(
            "transformer.group_blocks.", "transformer.group_layers.")
        sd["ema_features." + key] = value.half() if value.is_floating_point() else value
    sd["ema_features.pos_embedding"] = model.pos_embed.clone()
    return sd


@pytest.mark.parametrize("name", ["gtpt-s-body", "gtpt-b-body", "gtpt-b-wholebody"])
def test_official_layout_roundtrip_for_presets_without_fixtures(name):
    """S and B use the authors' module names too (e.g. the B stem's up stages); a state dict in
    their layout loads into the right preset and is refused by the others."""
    model = build_model(name)
    sd = _official_layout(model)
    assert "ema_features.stem.conv1.0.weight" in sd
    if "-b-" in name:
        assert sd["ema_features.stem.upsample1.0.weight"].shape == (384 * 4, 512, 1, 1)
        assert sd["ema_features.stem.up_layer1.0.0.weight"].shape == (384, 768, 1, 1)
    loaded = load_official_checkpoint(sd)   # the preset read from the shapes
    assert loaded.cfg.name == name
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value.half().float() if value.is_floating_point() else value)
    other = {"gtpt-s-body": "gtpt-b-body", "gtpt-b-body": "gtpt-s-body", "gtpt-b-wholebody": "gtpt-b-body"}[name]
    with pytest.raises(CheckpointError, match=f"not '{other}'"):
        load_official_checkpoint(sd, other)
