"""Box/crop geometry and training augmentation."""
import cv2
import numpy as np
import pytest

from gtpt.data.transforms import (AugmentConfig, affine_points, box_to_center_scale, clean_bbox,
                                  color_jitter, draw_augmentation, flip_joints, get_affine_transform,
                                  half_body_center_scale, random_occlusion, transform_joints,
                                  warp_image)
from gtpt.keypoints import get_keypoint_spec
from tests.helpers import load_fixture


def test_clean_bbox_reference_semantics():
    np.testing.assert_allclose(clean_bbox([20.5, 10.25, 70, 60], 128, 96), [20.5, 10.25, 69, 59])
    # clipped at the image border: x2 = min(W-1, ...)
    np.testing.assert_allclose(clean_bbox([-10, -5, 300, 300], 128, 96), [0, 0, 127, 95])
    assert clean_bbox([10, 10, 5, 5], 128, 96, area=0) is None
    assert clean_bbox([200, 10, 5, 5], 128, 96) is None          # entirely right of the image
    assert clean_bbox([10, 10, 0.5, 0.5], 128, 96) is not None   # sub-pixel box still kept


def test_box_to_center_scale_matches_fixture():
    p = load_fixture("human")["pipeline"]
    box = clean_bbox(p["annotation"]["bbox_xywh"], 128, 96)
    c, s = box_to_center_scale(box)
    assert c.dtype == np.float32 and s.dtype == np.float32
    np.testing.assert_array_equal(c, p["center"].numpy())
    np.testing.assert_array_equal(s, p["scale"].numpy())
    # aspect is always W/H = 0.75 after widening
    c, s = box_to_center_scale([0, 0, 10, 100])
    assert s[0] / s[1] == pytest.approx(0.75) and s[1] == pytest.approx(100 / 200 * 1.25)


def test_affine_maps_box_to_crop_and_back():
    c, s = np.array([300.0, 200.0], np.float32), np.array([0.9, 1.2], np.float32)
    for rot in (0.0, 30.0, -75.0):
        t = get_affine_transform(c, s, rot, (192, 256))
        inv = get_affine_transform(c, s, rot, (192, 256), inv=True)
        np.testing.assert_allclose(affine_points([c], t)[0], [96, 128], atol=1e-4)
        pts = np.array([[10.0, 20.0], [150.0, 240.0]])
        np.testing.assert_allclose(affine_points(affine_points(pts, inv), t), pts, atol=1e-3)
        # zoom: scale[0]*200 source pixels span the 192 output pixels
        assert np.linalg.det(t[:, :2]) == pytest.approx((192 / 180) ** 2, rel=1e-5)
    t = get_affine_transform(c, s, 90.0, (192, 256))
    # +90 degrees: a point above the center in the source lands to its right/left in the crop
    up = affine_points([[300.0, 150.0]], t)[0]
    assert abs(up[1] - 128) < 1e-3 and abs(up[0] - 96) > 40


def _naive_bilinear(img, t, out_w, out_h):
    inv = cv2.invertAffineTransform(t)
    out = np.zeros((out_h, out_w, img.shape[2]))
    h, w = img.shape[:2]
    for y in range(out_h):
        for x in range(out_w):
            sx = inv[0, 0] * x + inv[0, 1] * y + inv[0, 2]
            sy = inv[1, 0] * x + inv[1, 1] * y + inv[1, 2]
            x0, y0 = int(np.floor(sx)), int(np.floor(sy))
            for yy, wy in ((y0, 1 - (sy - y0)), (y0 + 1, sy - y0)):
                for xx, wx in ((x0, 1 - (sx - x0)), (x0 + 1, sx - x0)):
                    if 0 <= yy < h and 0 <= xx < w:
                        out[y, x] += img[yy, xx] * wx * wy
    return out


def test_warp_image_is_bilinear_with_zero_border():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    for c, s, r in (((20, 15), (0.3, 0.4), 0.0), ((5, 25), (0.2, 0.27), 37.0), ((-30, 5), (0.1, 0.13), -80.0)):
        t = get_affine_transform(np.float32(c), np.float32(s), r, (24, 32))
        ref = _naive_bilinear(img.astype(np.float64), t, 24, 32)
        got = warp_image(img, t, (24, 32))
        assert got.shape == (32, 24, 3) and got.dtype == np.uint8
        assert np.abs(got - ref).max() <= 0.5 + 1e-3     # float32 rounding only
    # far outside the image: all zeros
    t = get_affine_transform(np.float32([500, 500]), np.float32([0.2, 0.27]), 0, (24, 32))
    assert not warp_image(img, t, (24, 32)).any()


def test_warp_matches_reference_crop():
    for name in ("human", "wholebody"):
        p = load_fixture(name)["pipeline"]
        t = get_affine_transform(p["center"].numpy(), p["scale"].numpy(), 0, (192, 256))
        crop = warp_image(p["image_bgr_uint8"].numpy(), t, (192, 256))
        mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
        ref = (p["input"].numpy().transpose(1, 2, 0) * std + mean)[..., ::-1] * 255
        assert np.abs(crop - ref).max() < 1e-3


def test_transform_joints_only_moves_visible():
    t = get_affine_transform(np.float32([50, 50]), np.float32([0.5, 0.6667]), 0, (192, 256))
    j = np.array([[50.0, 50.0], [7.0, 9.0]])
    out = transform_joints(j, np.array([1, 0]), t)
    np.testing.assert_allclose(out[0], [96, 128], atol=1e-3)
    np.testing.assert_array_equal(out[1], [7, 9])


def test_flip_joints_swaps_pairs_and_mirrors():
    spec = get_keypoint_spec(17)
    j = np.arange(34, dtype=float).reshape(17, 2)
    vis = np.ones(17)
    vis[3] = 0
    fj, fv = flip_joints(j, vis, 100, spec.flip_index())
    assert fj[1, 0] == 100 - j[2, 0] - 1 and fj[1, 1] == j[2, 1]   # left eye <- mirrored right eye
    assert fv[4] == 0 and not fj[4].any()                           # invisible left ear moved to 4, zeroed
    assert fj[0, 0] == 100 - j[0, 0] - 1


def test_half_body_selects_upper_or_lower():
    spec = get_keypoint_spec(17)
    joints = np.array([[50 + 2 * k, 10 + 10 * k] for k in range(17)], float)
    vis = np.ones(17)
    seen = set()
    for seed in range(40):
        c, s = half_body_center_scale(joints, vis, spec.upper_body_ids, np.random.default_rng(seed))
        upper = c[1] < joints[11:, 1].min()
        seen.add(bool(upper))
        sel = joints[:11] if upper else joints[11:]
        np.testing.assert_allclose(c, sel.mean(0), rtol=1e-6)
        h = np.ptp(sel[:, 1])
        assert s[1] == pytest.approx(h / 200 * 1.5, rel=1e-5)
    assert seen == {True, False}
    assert half_body_center_scale(joints, np.eye(17)[0], spec.upper_body_ids, np.random.default_rng(0)) is None


def test_draw_augmentation_ranges_and_determinism():
    spec = get_keypoint_spec(17)
    cfg = AugmentConfig()
    joints = np.random.default_rng(1).uniform(0, 100, (17, 2))
    c0, s0 = np.float32([50, 50]), np.float32([0.5, 0.6667])
    draws = [draw_augmentation(c0, s0, joints, np.ones(17), spec.upper_body_ids, cfg,
                               np.random.default_rng(i)) for i in range(400)]
    ratios = np.array([d.scale[0] / s0[0] for d in draws if not d.half_body])
    assert ratios.min() >= 0.65 - 1e-6 and ratios.max() <= 1.35 + 1e-6
    rots = np.array([d.rotation for d in draws])
    assert np.abs(rots).max() <= 90 and 0.5 < np.mean(rots != 0) < 0.7
    assert 0.4 < np.mean([d.flip for d in draws]) < 0.6
    assert 0.2 < np.mean([d.half_body for d in draws]) < 0.4
    # too few visible joints: never half-body
    few = [draw_augmentation(c0, s0, joints, np.r_[np.ones(8), np.zeros(9)], spec.upper_body_ids, cfg,
                             np.random.default_rng(i)).half_body for i in range(100)]
    assert not any(few)
    a = draw_augmentation(c0, s0, joints, np.ones(17), spec.upper_body_ids, cfg, np.random.default_rng(7))
    b = draw_augmentation(c0, s0, joints, np.ones(17), spec.upper_body_ids, cfg, np.random.default_rng(7))
    assert a.rotation == b.rotation and np.array_equal(a.scale, b.scale) and a.flip == b.flip


def test_color_jitter_changes_image_within_bounds():
    img = np.random.default_rng(0).integers(0, 256, (20, 20, 3), dtype=np.uint8)
    out = color_jitter(img, AugmentConfig(color_jitter=True), np.random.default_rng(3))
    assert out.dtype == np.uint8 and out.shape == img.shape and not np.array_equal(out, img)
    assert np.abs(out.astype(int) - img).mean() < 60


def test_random_occlusion_covers_one_box_of_the_given_size():
    img = np.full((256, 192, 3), 128, np.uint8)
    cfg = AugmentConfig(occlusion_prob=1.0, occlusion_area=(0.05, 0.1))
    for seed in range(20):
        out = random_occlusion(img, cfg, np.random.default_rng(seed))
        ys, xs = np.nonzero((out != img).any(axis=2))
        box = (ys.max() - ys.min() + 1) * (xs.max() - xs.min() + 1)
        assert 0.04 * img.shape[0] * img.shape[1] <= box <= 0.1 * img.shape[0] * img.shape[1]
        assert len(ys) > 0.9 * box                     # one filled box (noise rarely hits 128)
        assert np.array_equal(img, np.full_like(img, 128))   # the input is untouched
    off = AugmentConfig(occlusion_prob=0.0)
    assert random_occlusion(img, off, np.random.default_rng(0)) is img
    with pytest.raises(ValueError, match="occlusion_area"):
        AugmentConfig(occlusion_area=(0.2, 0.1))
