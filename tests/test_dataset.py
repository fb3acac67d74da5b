"""TopDownDataset: the validation pipeline vs the reference, and training augmentation."""
import json

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from gtpt.codec import SimCCCodec
from gtpt.data.coco import load_coco_records
from gtpt.data.dataset import TopDownDataset, normalize_batch
from gtpt.data.transforms import AugmentConfig
from gtpt.keypoints import get_keypoint_spec
from tests.helpers import load_fixture, make_coco_dataset

TOL = 1e-5


@pytest.mark.parametrize("name,k", [("human", 17), ("wholebody", 133)])
def test_validation_sample_matches_reference_pipeline(tmp_path, name, k):
    p = load_fixture(name)["pipeline"]
    img = p["image_bgr_uint8"].numpy()
    cv2.imwrite(str(tmp_path / "img.png"), img)      # lossless: the real file path is exercised
    ann = {"id": 7, "image_id": 3, "category_id": 1, "iscrowd": 0, "area": 4200.0,
           "bbox": p["annotation"]["bbox_xywh"],
           "keypoints": p["annotation"]["keypoints_xyv"].numpy().reshape(-1).tolist()}
    (tmp_path / "ann.json").write_text(json.dumps({
        "images": [{"id": 3, "file_name": "img.png", "width": img.shape[1], "height": img.shape[0]}],
        "annotations": [ann], "categories": [{"id": 1, "name": "person"}]}))
    recs = load_coco_records(tmp_path / "ann.json", tmp_path, k)
    ds = TopDownDataset(recs, codec=SimCCCodec(), spec=get_keypoint_spec(k), train=False)
    s = ds[0]
    m = s["meta"]
    np.testing.assert_allclose(m["center"], p["center"].numpy(), atol=TOL, rtol=0)
    np.testing.assert_allclose(m["scale"], p["scale"].numpy(), atol=TOL, rtol=0)
    assert s["image"].dtype == torch.uint8 and s["image"].shape == (3, 256, 192)
    assert torch.allclose(normalize_batch(s["image"]), p["input"], atol=TOL, rtol=0)
    # joints are float32 values up to ~190: allow one float32 ulp
    np.testing.assert_allclose(m["joints"][:, :2], p["joints_input_space"][:, :2].numpy(), atol=TOL, rtol=1e-7)
    np.testing.assert_array_equal(m["joints"][:, 2], p["joints_vis"][:, 0].numpy())
    assert torch.allclose(s["target_x"], p["target_x"], atol=TOL, rtol=0)
    assert torch.allclose(s["target_y"], p["target_y"], atol=TOL, rtol=0)
    assert torch.equal(s["target_weight"], p["target_weight"][:, 0])
    assert m["image_id"] == 3 and m["ann_id"] == 7 and m["score"] == 1.0


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    root = tmp_path_factory.mktemp("gen")
    path = make_coco_dataset(root, num_images=3, people_per_image=2, num_joints=17, seed=5)
    return load_coco_records(path, root / "images", 17)


def _ds(recs, **aug):
    return TopDownDataset(recs, codec=SimCCCodec(), spec=get_keypoint_spec(17), train=True,
                          aug=AugmentConfig(**aug), seed=11)


def test_train_sample_deterministic_per_seed_epoch_index(generated):
    ds = _ds(generated)
    a, b = ds[2], ds[2]
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["target_x"], b["target_x"])
    ds.set_epoch(1)
    c = ds[2]
    assert not torch.equal(a["image"], c["image"])
    ds.set_epoch(0)
    assert torch.equal(ds[2]["image"], a["image"])
    # independent of the access order and of the number of loader workers
    seq = [ds[i]["image"] for i in range(len(ds))]
    for workers in (0, 2):
        loader = DataLoader(ds, batch_size=2, num_workers=workers, shuffle=False)
        batched = torch.cat([bt["image"] for bt in loader])
        assert torch.equal(batched, torch.stack(seq))
    batch = next(iter(DataLoader(ds, batch_size=3)))
    assert batch["target_x"].shape == (3, 17, 384) and batch["meta"]["center"].shape == (3, 2)


def test_train_targets_follow_the_image(tmp_path):
    """One bright dot per joint: after random scale/rotation/flip, each target peak sits on it."""
    rng = np.random.default_rng(0)
    img = np.zeros((200, 160, 3), np.uint8)
    joints = np.zeros((17, 3))
    joints[:, 0] = rng.uniform(40, 120, 17)
    joints[:, 1] = rng.uniform(40, 160, 17)
    joints[:, 2] = 2
    joints[3:, 2] = 0            # keep only 3 joints labelled so their dots stay separate
    joints[3:, :2] = 0
    for x, y, v in joints:
        if v:
            cv2.circle(img, (int(round(x)), int(round(y))), 2, (255, 255, 255), -1)
    cv2.imwrite(str(tmp_path / "a.png"), img)
    ann = {"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0, "area": 1e4,
           "bbox": [30, 30, 100, 140], "keypoints": joints.reshape(-1).tolist()}
    (tmp_path / "a.json").write_text(json.dumps({
        "images": [{"id": 1, "file_name": "a.png", "width": 160, "height": 200}],
        "annotations": [ann], "categories": [{"id": 1, "name": "person"}]}))
    recs = load_coco_records(tmp_path / "a.json", tmp_path, 17)
    ds = TopDownDataset(recs, codec=SimCCCodec(), spec=get_keypoint_spec(17), train=True,
                        aug=AugmentConfig(rotation_prob=1.0, half_body_prob=0.0), seed=3)
    mean = torch.tensor([0.485, 0.456, 0.406])[:, None, None]
    std = torch.tensor([0.229, 0.224, 0.225])[:, None, None]
    n_flip = 0
    for epoch in range(6):
        ds.set_epoch(epoch)
        s = ds[0]
        n_flip += s["meta"]["flipped"]
        grey = (normalize_batch(s["image"]) * std + mean).mean(0)
        for k in np.nonzero(s["target_weight"].numpy())[0]:
            x = int(s["target_x"][k].argmax()) / 2
            y = int(s["target_y"][k].argmax()) / 2
            assert np.allclose(s["meta"]["joints"][k, :2], (x, y), atol=0.5)
            patch = grey[max(int(y) - 1, 0):int(y) + 2, max(int(x) - 1, 0):int(x) + 2]
            assert patch.max() > 0.5, f"no dot under joint {k} at epoch {epoch}"
    assert 0 < n_flip < 6


def test_dataset_rejects_mismatched_spec(generated):
    with pytest.raises(ValueError, match="17 joints but the keypoint spec has 133"):
        TopDownDataset(generated, codec=SimCCCodec(), spec=get_keypoint_spec(133), train=False)
