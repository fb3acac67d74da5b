"""The model against tensors produced by the authors' code (T body and T whole-body)."""
from __future__ import annotations

import pytest
import torch

from gtpt import load_official_checkpoint

TOL = 1e-4


def _max_diff(a, b):
    return (a - b).abs().max().item()


@pytest.fixture(scope="module", params=[True, False], ids=["fused", "plain"])
def loaded(request, official):
    name, fx = official
    model = load_official_checkpoint(fx["state_dict"], name)
    for blk in list(model.blocks) + list(model.group_blocks):
        blk.attn.fused = request.param
    return name, fx, model


def test_eval_logits_and_flip(loaded):
    _, fx, model = loaded
    with torch.no_grad():
        px, py = model(fx["x"])
        fpx, fpy = model(fx["x"].flip(3))
    ev = fx["eval"]
    assert _max_diff(px, ev["pred_x"]) < TOL and _max_diff(py, ev["pred_y"]) < TOL
    assert _max_diff(fpx, ev["flip_pred_x"]) < TOL and _max_diff(fpy, ev["flip_pred_y"]) < TOL


def test_keep_rates_one_matches_nopruning(loaded):
    _, fx, model = loaded
    with torch.no_grad():
        px, py = model(fx["x"], keep_rates=(1, 1, 1, 1))
    assert _max_diff(px, fx["eval"]["nopruning_pred_x"]) < TOL
    assert _max_diff(py, fx["eval"]["nopruning_pred_y"]) < TOL


def test_kept_patch_ids_at_every_pruning_step(loaded):
    _, fx, model = loaded
    trace = {}
    with torch.no_grad():
        model(fx["x"], trace=trace)
    ref = fx["eval"]["kept_patch_ids"]
    assert torch.equal(trace["after_block3"], ref["after_block3"].sort(1).values)
    for key in ("group_entry", "after_group_block3"):
        assert len(trace[key]) == 3
        for ours, theirs in zip(trace[key], ref[key]):
            assert torch.equal(ours, theirs.sort(1).values), key


def test_intermediates(loaded):
    _, fx, model = loaded
    inter = fx["eval"]["intermediates"]
    with torch.no_grad():
        stem = model.stem(fx["x"])
        tokens = model.forward_features(fx["x"])
        kp = model.forward_tokens(tokens)
    assert _max_diff(stem, inter["stem_out"]) < TOL
    patch = tokens[:, 1:] - model.pos_embed  # the reference stores the embedding before positions
    assert _max_diff(patch, inter["patch_embed_out"]) < TOL
    assert _max_diff(kp, inter["head_in"]) < TOL


def test_train_mode_student_and_teacher(official):
    name, fx = official
    # train mode uses the live weights; the fixture's live and EMA copies are equal
    model = load_official_checkpoint(fx["state_dict"], name, use_ema=False).train()
    out = model(fx["x"])
    for key, ref in fx["train"].items():
        assert _max_diff(out[key], ref) < TOL, key


def test_live_and_ema_copies_both_load(official):
    name, fx = official
    a = load_official_checkpoint(fx["state_dict"], name, use_ema=True).state_dict()
    b = load_official_checkpoint(fx["state_dict"], name, use_ema=False).state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
