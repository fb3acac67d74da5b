"""tools/mini_dataset: crop_people and composite's paste step on the committed real sample frames
(the masks step needs mediapipe, which the package and CI do not install)."""
import importlib.util
import json

import cv2
import numpy as np

from tests.helpers import MINI_SAMPLE as SAMPLE
from tests.helpers import REPO_ROOT


def _tool(name):
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "tools" / "mini_dataset" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_crop_then_paste_keeps_people_and_labels(tmp_path):
    crop_people, composite = _tool("crop_people"), _tool("composite")
    crops = tmp_path / "crops"
    ann_file = tmp_path / "person_keypoints_train.json"
    ann_file.write_text((SAMPLE / "person_keypoints.json").read_text())
    people = crop_people.crop_dataset(ann_file, SAMPLE / "images", crops, max_side=448, context=2.2)["people"]
    data = json.loads((crops / "person_keypoints_train.json").read_text())
    assert people == len(data["images"]) == len(data["annotations"]) > 3

    # a mask per person: the labelled joints' hull, widened (what the teacher's segmentation gives)
    (crops / "masks").mkdir()
    index = {}
    for im, ann in zip(data["images"], data["annotations"]):
        kp = np.asarray(ann["keypoints"]).reshape(-1, 3)
        mask = np.zeros((im["height"], im["width"]), np.uint8)
        cv2.fillConvexPoly(mask, cv2.convexHull(kp[kp[:, 2] > 0, :2].astype(np.int32)), 255)
        mask = cv2.dilate(mask, np.ones((9, 9), np.uint8))
        cv2.imwrite(str(crops / "masks" / (im["file_name"][:-4] + ".png")), mask)
        index[im["file_name"]] = {"mask": im["file_name"][:-4] + ".png", "oks": 1.0}
    skipped = data["images"][0]["file_name"]
    del index[skipped]                                  # a person without a mask gets no variants
    (crops / "masks.json").write_text(json.dumps(index))
    backgrounds = tmp_path / "bg"
    backgrounds.mkdir()
    cv2.imwrite(str(backgrounds / "stripes.png"), np.tile(np.arange(256, dtype=np.uint8)[None, :, None], (200, 1, 3)))

    out = tmp_path / "plus"
    composite.paste(crops, [backgrounds], out, variants=2, seed=0, max_side=160)
    plus = json.loads((out / "person_keypoints_train.json").read_text())
    anns = {a["image_id"]: a for a in plus["annotations"]}
    assert len(plus["images"]) == people + 2 * (people - 1) == len(anns)
    assert len({a["id"] for a in plus["annotations"]}) == len(anns)
    originals = {im["file_name"]: (im, anns[im["id"]]) for im in data["images"]}
    for im in plus["images"]:
        img = cv2.imread(str(out / "images" / im["file_name"]))
        assert img is not None and img.shape[:2] == (im["height"], im["width"])
        if "_cp" not in im["file_name"]:
            continue
        source_im, source_ann = originals[im["file_name"].rsplit("_cp", 1)[0] + ".jpg"]
        assert source_im["file_name"] != skipped and max(img.shape[:2]) <= 160
        s = min(1.0, 160 / max(source_im["width"], source_im["height"]))   # the labels scale exactly
        kp, kp0 = (np.asarray(a["keypoints"]).reshape(-1, 3) for a in (anns[im["id"]], source_ann))
        assert np.array_equal(kp[:, 2], kp0[:, 2])
        np.testing.assert_allclose(kp[:, :2], kp0[:, :2] * s, atol=0.02)
        np.testing.assert_allclose(anns[im["id"]]["bbox"], np.asarray(source_ann["bbox"]) * s, atol=0.02)
        # the surroundings changed: far from the mask, the picture is not the original crop any more
        mask = cv2.imread(str(crops / "masks" / index[source_im["file_name"]]["mask"]), cv2.IMREAD_GRAYSCALE)
        mask = cv2.resize(mask, (im["width"], im["height"])) > 0
        original = cv2.resize(cv2.imread(str(crops / "images" / source_im["file_name"])), (im["width"], im["height"]))
        far = ~cv2.dilate(mask.astype(np.uint8), np.ones((15, 15), np.uint8)).astype(bool)
        assert np.abs(img.astype(int) - original)[far].mean() > 10
