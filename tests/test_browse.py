"""Crops as the network sees them, drawn: `draw_training_batch` (targets), `draw_crop_mosaic`
(predictions), `gtpt browse`, and a training run's train_batch0.jpg / val_batch0_pred.jpg (checked in
test_trainer.py), on the real photos of tests/data/mini_sample."""
import shutil

import cv2
import numpy as np
import pytest

from gtpt.codec import SimCCCodec
from gtpt.data.coco import load_coco_records
from gtpt.data.dataset import TopDownDataset
from gtpt.engine.batching import SkipBadImages, collate_skipping
from gtpt.inference.draw import DRAW_KPT_THR, draw_crop_mosaic, draw_training_batch
from gtpt.keypoints import PART_COLOURS, get_keypoint_spec
from tests.engine_helpers import TINY
from tests.helpers import MINI_SAMPLE

ANN, IMAGES = MINI_SAMPLE / "person_keypoints.json", MINI_SAMPLE / "images"


def _batch(train: bool, indices, epoch: int = 0):
    with pytest.warns(UserWarning, match="no labelled joints"):   # 3 people of the file have none
        records = load_coco_records(str(ANN), str(IMAGES), 17)
    dataset = TopDownDataset(records, codec=SimCCCodec(), spec=get_keypoint_spec(17), train=train, seed=3)
    return collate_skipping([SkipBadImages(dataset)[(epoch, i)] for i in indices]), dataset.codec


@pytest.mark.parametrize("train", [False, True])
def test_each_tile_shows_the_joints_its_targets_encode(train):
    """Every labelled joint is a dot of its part's colour (left and right differ) where its target
    peaks; unlabelled joints, whose targets are zero (argmax at pixel 0, 0), are not drawn; empty
    tiles stay black."""
    batch, codec = _batch(train, range(5))
    mosaic = draw_training_batch(batch, codec, cols=3)
    h, w = 256, 192
    assert mosaic.shape == (2 * h, 3 * w, 3) and not mosaic[h:, 2 * w:].any()
    spec = get_keypoint_spec(17)
    coords, _ = codec.decode(batch["target_x"], batch["target_y"])
    hits = total = 0
    for i in range(5):
        r, c = divmod(i, 3)
        tile = mosaic[r * h:(r + 1) * h, c * w:(c + 1) * w]
        crop = batch["image"][i].permute(1, 2, 0).numpy()[:, :, ::-1]
        weight = batch["target_weight"][i].numpy()
        for k in np.flatnonzero(weight > 0):
            x, y = np.round(coords[i, k].numpy()).astype(int)
            if not (0 <= x < w and 0 <= y < h - 20):   # off the crop, or under the caption
                continue
            colour = PART_COLOURS[spec.joint_parts[k]]
            hits += tuple(int(v) for v in tile[y, x]) == (colour[2], colour[1], colour[0])   # BGR
            total += 1
        xy = np.round(coords[i, weight > 0].numpy())
        if (weight == 0).any() and not (xy < 12).all(1).any():   # nothing labelled near the corner
            assert np.array_equal(tile[:4, :4], crop[:4, :4]), i
    # a dot drawn later (a neighbouring joint, a limb) may cover a few centres
    assert total >= 40 and hits >= 0.85 * total, (hits, total)
    flipped = batch["meta"]["flipped"].numpy()
    assert not train or flipped.any(), "no flipped sample: pick other indices or seed"


def test_browse_command(tmp_path, capsys):
    """`gtpt browse` writes the picture, sums the split up, names unreadable images and bad input."""
    from pycocotools.coco import COCO

    from gtpt.cli import main
    data = tmp_path / "data"
    shutil.copytree(MINI_SAMPLE, data)
    opts = ["--opt", f"data.train_ann={data / ANN.name}", f"data.train_images={data / 'images'}",
            f"data.val_ann={data / ANN.name}", f"data.val_images={data / 'images'}"]
    rc = main(["browse", TINY, "--split", "val", "--start", "2", "--num", "2", "--out", str(tmp_path / "v.png"), *opts])
    assert rc == 0 and cv2.imread(str(tmp_path / "v.png")).shape == (256, 2 * 192, 3)
    assert "people 2-3 (2 drawn, validation crops)" in capsys.readouterr().out

    broken = sorted((data / "images").iterdir())[0]
    broken.write_bytes(b"not a jpeg")

    coco = COCO(str(ANN))
    people = [a for a in coco.loadAnns(coco.getAnnIds()) if a["num_keypoints"] > 0]
    with pytest.warns(UserWarning, match=f"cannot read image.*{broken.name}"):
        rc = main(["browse", TINY, "--num", "14", "--cols", "5", "--out", str(tmp_path / "train.jpg"), *opts])
    out = capsys.readouterr().out
    assert rc == 0, out
    images = len({a["image_id"] for a in people})
    assert f"{len(people)} people with keypoints in {images} images" in out
    on_broken = sum(a["image_id"] == next(i["id"] for i in coco.dataset["images"] if i["file_name"] == broken.name)
                    for a in people)
    assert f"people 0-13 ({14 - on_broken} drawn, epoch 0 augmentation)" in out
    picture = cv2.imread(str(tmp_path / "train.jpg"))
    rows = -(-(14 - on_broken) // 5)
    assert picture is not None and picture.shape == (rows * 256, 5 * 192, 3)

    rc = main(["browse", TINY, "--split", "val", "--start", "2", "--num", "2", "--out", str(tmp_path / "v.png"), *opts])
    assert rc == 1 and "none of the images of people 2-3 could be read" in capsys.readouterr().out

    rc = main(["browse", TINY, "--start", "99", *opts])
    assert rc == 1 and f"--start 99: the train split has {len(people)} people" in capsys.readouterr().out
    rc = main(["browse", TINY, "--opt", f"data.train_ann={tmp_path / 'missing.json'}"])
    assert rc == 1 and "missing.json" in capsys.readouterr().out


def test_predicted_joints_are_drawn_above_the_score_threshold():
    """`draw_crop_mosaic` (the validation picture): joints scoring above DRAW_KPT_THR are drawn, a
    crop whose joints all score below it stays as it was (but for its caption)."""
    batch, _ = _batch(False, range(2))
    joints = np.zeros((2, 17, 3))
    joints[..., 0], joints[..., 1] = np.linspace(20, 170, 17), 100
    joints[0, :, 2], joints[1, :, 2] = 2 * DRAW_KPT_THR, DRAW_KPT_THR / 2
    mosaic = draw_crop_mosaic(batch["image"], joints, ["drawn", "not drawn"])
    crops = [batch["image"][i].permute(1, 2, 0).numpy()[:, :, ::-1] for i in range(2)]
    tiles = mosaic[:, :192], mosaic[:, 192:]
    spec = get_keypoint_spec(17)
    for k in range(17):
        colour = PART_COLOURS[spec.joint_parts[k]][::-1]
        x, y = int(joints[0, k, 0]), int(joints[0, k, 1])
        assert tuple(int(v) for v in tiles[0][y, x]) == colour, k
    assert np.array_equal(tiles[1][:230], crops[1][:230]) and not np.array_equal(tiles[0][:230], crops[0][:230])
