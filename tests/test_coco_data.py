"""COCO / COCO-WholeBody json -> person records, and bad-input handling."""
import json

import cv2
import numpy as np
import pytest

from gtpt.codec import SimCCCodec
from gtpt.data.coco import load_coco_records, load_detection_records
from gtpt.data.dataset import ImageReadError, TopDownDataset
from gtpt.keypoints import get_keypoint_spec
from tests.helpers import make_coco_dataset


def _tiny(tmp_path, anns, images=None):
    images = images if images is not None else [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48}]
    path = tmp_path / "ann.json"
    path.write_text(json.dumps({"images": images, "annotations": anns,
                                "categories": [{"id": 1, "name": "person"}]}))
    return path


def _ann(aid, kps=None, bbox=(5, 5, 20, 30), **kw):
    kps = kps if kps is not None else [10, 10, 2] + [0, 0, 0] * 16
    return {"id": aid, "image_id": 1, "category_id": 1, "iscrowd": 0, "bbox": list(bbox),
            "area": 300.0, "keypoints": kps, **kw}


def test_body_records_from_generated_dataset(tmp_path):
    path = make_coco_dataset(tmp_path, num_images=3, people_per_image=2, num_joints=17, seed=1)
    recs = load_coco_records(path, tmp_path / "images", 17)
    data = json.loads(path.read_text())
    assert len(recs) == len(data["annotations"]) == 6
    r = recs[0]
    assert r.joints.shape == (17, 3) and r.joints.dtype == np.float32
    np.testing.assert_allclose(r.joints.reshape(-1), data["annotations"][0]["keypoints"], atol=1e-4)
    assert r.image_file == str((tmp_path / "images" / "000001.jpg").resolve())
    assert r.score == 1.0 and r.scale[0] / r.scale[1] == pytest.approx(0.75)
    assert cv2.imread(r.image_file) is not None


def test_wholebody_concatenation_and_invalid_parts(tmp_path):
    path = make_coco_dataset(tmp_path, num_images=4, people_per_image=3, num_joints=133, seed=2)
    data = json.loads(path.read_text())
    data["annotations"][0]["face_valid"] = False
    data["annotations"][0]["face_kpts"] = [5.0, 5.0, 2.0] * 68   # values must be ignored
    path.write_text(json.dumps(data))
    recs = {r.ann_id: r for r in load_coco_records(path, tmp_path / "images", 133)}
    a = data["annotations"][1]
    expect = np.array(a["keypoints"] + a["foot_kpts"] + a["face_kpts"] + a["lefthand_kpts"]
                      + a["righthand_kpts"]).reshape(133, 3)
    if a["face_valid"]:
        np.testing.assert_allclose(recs[a["id"]].joints, expect, atol=1e-4)
    assert not recs[data["annotations"][0]["id"]].joints[23:91, 2].any()
    # the same whole-body file also loads as 17-joint body data
    body = load_coco_records(path, tmp_path / "images", 17)
    assert body[0].joints.shape == (17, 3)


def test_generic_keypoint_count(tmp_path):
    path = _tiny(tmp_path, [_ann(1, kps=[10, 10, 2] + [0, 0, 0] * 4)])
    assert load_coco_records(path, tmp_path, 5)[0].joints.shape == (5, 3)


def test_wrong_keypoint_count_is_an_error(tmp_path):
    path = _tiny(tmp_path, [_ann(123, kps=[1, 2, 2] * 16)])
    with pytest.raises(ValueError, match=r"annotation 123 .*ann\.json.*48 keypoints values, expected 17\*3"):
        load_coco_records(path, tmp_path, 17)


def test_skips_zero_area_and_unlabelled_with_one_warning(tmp_path):
    anns = [_ann(1), _ann(2, bbox=(5, 5, 0, 0)), _ann(3, area=0), _ann(4, kps=[0] * 51),
            _ann(5, iscrowd=1)]
    path = _tiny(tmp_path, anns)
    with pytest.warns(UserWarning, match=r"ann\.json: skipped 2 person\(s\) with a zero-area box and 1 with no labelled"):
        recs = load_coco_records(path, tmp_path, 17)
    assert [r.ann_id for r in recs] == [1]


def test_empty_dataset_after_filtering(tmp_path):
    path = _tiny(tmp_path, [_ann(4, kps=[0] * 51)])
    with pytest.warns(UserWarning), pytest.raises(ValueError, match="no usable person annotations"):
        load_coco_records(path, tmp_path, 17)


def test_no_images_and_missing_or_truncated_json(tmp_path):
    with pytest.raises(ValueError, match="no images"):
        load_coco_records(_tiny(tmp_path, [_ann(1)], images=[]), tmp_path, 17)
    with pytest.raises(FileNotFoundError, match="nope.json"):
        load_coco_records(tmp_path / "nope.json", tmp_path, 17)
    good = json.dumps({"images": [], "annotations": []})
    bad = tmp_path / "trunc.json"
    bad.write_text(good[: len(good) // 2])
    with pytest.raises(ValueError, match=r"trunc\.json: malformed or truncated JSON"):
        load_coco_records(bad, tmp_path, 17)
    lst = tmp_path / "list.json"
    lst.write_text("[]")
    with pytest.raises(ValueError, match="expected a JSON dict"):
        load_coco_records(lst, tmp_path, 17)


def test_unknown_image_id_is_an_error(tmp_path):
    a = _ann(9)
    a["image_id"] = 77
    with pytest.raises(ValueError, match="annotation 9 .* unknown image id 77"):
        load_coco_records(_tiny(tmp_path, [a]), tmp_path, 17)


def test_missing_and_corrupt_images_raise_named_errors(tmp_path):
    path = _tiny(tmp_path, [_ann(1)])
    recs = load_coco_records(path, tmp_path, 17)
    ds = TopDownDataset(recs, codec=SimCCCodec(), spec=get_keypoint_spec(17), train=False)
    with pytest.raises(ImageReadError, match=r"a\.jpg: file not found"):
        ds[0]
    (tmp_path / "a.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    with pytest.raises(ImageReadError, match=r"a\.jpg: not a decodable image") as e:
        ds[0]
    assert e.value.path.endswith("a.jpg")
    cv2.imwrite(str(tmp_path / "a.jpg"), np.zeros((48, 64, 3), np.uint8))
    assert ds[0]["image"].shape == (3, 256, 192)


def test_detection_records(tmp_path):
    gt = make_coco_dataset(tmp_path, num_images=2, people_per_image=1, seed=3)
    dets = [{"image_id": 1, "category_id": 1, "bbox": [10, 20, 30, 60], "score": 0.9},
            {"image_id": 2, "category_id": 1, "bbox": [0, 0, 50, 50], "score": 0.05},
            {"image_id": 2, "category_id": 3, "bbox": [0, 0, 50, 50], "score": 0.99}]
    dp = tmp_path / "dets.json"
    dp.write_text(json.dumps(dets))
    recs = load_detection_records(dp, gt, tmp_path / "images", 17)
    assert [r.score for r in recs] == [0.9, 0.05]
    np.testing.assert_allclose(recs[0].center, [25, 50])
    np.testing.assert_allclose(recs[0].scale, [60 * 0.75 / 200 * 1.25, 60 / 200 * 1.25], rtol=1e-6)
    assert recs[0].joints.shape == (17, 3) and not recs[0].joints.any()
    assert len(load_detection_records(dp, gt, tmp_path / "images", 17, score_thr=0.1)) == 1
    dets[0]["image_id"] = 999
    dp.write_text(json.dumps(dets))
    with pytest.raises(ValueError, match=r"dets\.json: detection 0 refers to image id 999"):
        load_detection_records(dp, gt, tmp_path / "images", 17)


def test_malformed_keypoint_values_are_named(tmp_path):
    path = _tiny(tmp_path, [_ann(41, kps=["a", 2, 2] + [0, 0, 0] * 16)])
    with pytest.raises(ValueError, match=r"annotation 41 in .*ann\.json has malformed keypoints"):
        load_coco_records(path, tmp_path, 17)


def test_image_error_survives_loader_workers(tmp_path):
    from torch.utils.data import DataLoader
    recs = load_coco_records(_tiny(tmp_path, [_ann(1)]), tmp_path, 17)
    ds = TopDownDataset(recs, codec=SimCCCodec(), spec=get_keypoint_spec(17), train=True)
    with pytest.raises(ImageReadError, match=r"a\.jpg: file not found"):
        next(iter(DataLoader(ds, batch_size=1, num_workers=1)))
