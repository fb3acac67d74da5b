"""SA-SimCC codec against the official reference fixtures (targets, flip-back, decode)."""
import numpy as np
import pytest
import torch

from gtpt.codec import SimCCCodec
from gtpt.keypoints import get_keypoint_spec
from tests.helpers import load_fixture

CASES = [("human", 17), ("wholebody", 133)]
TOL = 1e-5


@pytest.fixture(scope="module", params=CASES, ids=[c[0] for c in CASES])
def fx(request):
    name, k = request.param
    return load_fixture(name), get_keypoint_spec(k)


def test_encode_matches_reference_targets(fx):
    d, _ = fx
    codec = SimCCCodec((256, 192), 2.0, 4.0)
    t = d["targets"]
    for b in range(t["joints"].shape[0]):
        tx, ty, w = codec.encode(t["joints"][b].numpy(), t["joints_vis"][b].numpy())
        assert tx.dtype == np.float32 and tx.shape == tuple(t["target_x"][b].shape)
        np.testing.assert_allclose(tx, t["target_x"][b].numpy(), atol=TOL, rtol=0)
        np.testing.assert_allclose(ty, t["target_y"][b].numpy(), atol=TOL, rtol=0)
        np.testing.assert_array_equal(w, t["target_weight"][b, :, 0].numpy())


def test_encode_window_edge_cases():
    codec = SimCCCodec()
    joints = np.array([[-5.3, 100.7], [-12.5, 10], [-13.5, 10], [191.9, 255.9], [204.5, 10],
                       [203.9, 10], [50, 60]])
    tx, ty, w = codec.encode(joints, np.array([1, 1, 1, 1, 1, 1, 0]))
    # int() truncates toward zero: br_x = int(-12.5+13) = 0 passes, int(-13.5+13) = 0 passes,
    # ul_x = int(204.5-12) = 192 fails, int(203.9-12) = 191 passes
    np.testing.assert_array_equal(w, [1, 1, 1, 1, 0, 1, 0])
    assert not tx[4].any() and not ty[6].any()
    peak = 1 / (4 * np.sqrt(2 * np.pi))
    assert tx[3].argmax() == 383 and ty[3].argmax() == 511
    np.testing.assert_allclose(SimCCCodec().encode([[10.0, 20.0]], [1])[0].max(), peak, rtol=1e-6)


def test_flip_back_matches_reference(fx):
    d, spec = fx
    codec = SimCCCodec()
    fx_, fy_ = codec.flip_back(d["eval"]["flip_pred_x"], d["eval"]["flip_pred_y"], spec.flip_index())
    assert torch.allclose(fx_, d["decode"]["flip_back_shifted_x"], atol=TOL, rtol=0)
    assert torch.allclose(fy_, d["decode"]["flip_back_y"], atol=TOL, rtol=0)
    # without the shift the last x bin differs from the shifted version
    nx, _ = codec.flip_back(d["eval"]["flip_pred_x"], d["eval"]["flip_pred_y"], spec.flip_index(), shift=False)
    assert torch.equal(nx[..., 1:], fx_[..., :-1]) and not torch.equal(nx, fx_)


def test_flip_decode_matches_reference(fx):
    d, spec = fx
    codec = SimCCCodec()
    e, dec = d["eval"], d["decode"]
    lx, ly = codec.merge_flip(e["pred_x"], e["pred_y"], e["flip_pred_x"], e["flip_pred_y"], spec.flip_index())
    coords, scores = codec.decode(lx, ly)
    assert coords.shape == (2, spec.num_joints, 2) and scores.shape == (2, spec.num_joints)
    assert torch.equal((coords[..., 0] * 2).long(), dec["argmax_x"])
    assert torch.equal((coords[..., 1] * 2).long(), dec["argmax_y"])
    assert torch.allclose(coords, dec["coords_input"], atol=TOL, rtol=0)
    assert torch.allclose(scores, dec["scores"][..., 0], atol=TOL, rtol=0)
    img = codec.to_image(coords, dec["centers"], dec["scales"])
    # float32 values of ~300 px: one ulp is 3e-5, so compare relative to magnitude too
    assert torch.allclose(img, dec["coords_image"], atol=TOL, rtol=1e-6)
    assert torch.allclose(img, dec["official_all_preds"][..., :2], atol=TOL, rtol=1e-6)
    assert torch.allclose(scores, dec["official_all_preds"][..., 2], atol=TOL, rtol=0)
    img_np = codec.to_image(coords.numpy(), dec["centers"].numpy(), dec["scales"].numpy())
    np.testing.assert_allclose(img_np, dec["coords_image"].numpy(), atol=TOL, rtol=1e-6)


def test_decode_without_flip_is_plain_argmax():
    torch.manual_seed(0)
    lx, ly = torch.randn(3, 5, 384), torch.randn(3, 5, 512)
    coords, scores = SimCCCodec().decode(lx, ly)
    assert torch.equal(coords[..., 0], lx.argmax(-1).float() / 2)
    expect = torch.minimum(lx.softmax(-1).amax(-1), ly.softmax(-1).amax(-1))
    assert torch.allclose(scores, expect)


def test_encode_decode_roundtrip():
    codec = SimCCCodec()
    joints = np.array([[10.0, 20.5], [100.5, 200.0], [191.5, 255.5]])
    tx, ty, _ = codec.encode(joints, np.ones(3))
    # log of an unnormalised Gaussian is a valid logit vector with its peak at 2*coord
    coords, _ = codec.decode(torch.log(torch.from_numpy(tx) + 1e-12)[None], torch.log(torch.from_numpy(ty) + 1e-12)[None])
    np.testing.assert_allclose(coords[0].numpy(), joints, atol=1e-6)
