"""The shipped demo weights (GTPT-T body trained on gtpt-mini): small, float16, announced, and
they find the joints of people from videos held out of their training (pycocotools OKS)."""
import json
import subprocess
import sys

import numpy as np
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from safetensors.torch import load_file

from gtpt import Predictor
from gtpt.commands._weights import DEMO_WEIGHTS, choose_weights
from gtpt.inference.draw import DRAW_KPT_THR
from gtpt.models.checkpoint import read_model_metadata
from tests.engine_helpers import env
from tests.helpers import MINI_SAMPLE as SAMPLE

HELD_OUT = ("p2s_single_cam04_0040.jpg", "p2s_multi_cam04_0010.jpg")   # the val videos (cam04)
MIN_OKS = 0.75   # measured 0.91 (0.88, 0.95) with the shipped file; an untrained model 0.09


def test_file_is_small_float16_and_described():
    assert DEMO_WEIGHTS.is_file(), "the demo weights must ship inside the package"
    assert DEMO_WEIGHTS.stat().st_size < 6 * 2 ** 20
    tensors = load_file(str(DEMO_WEIGHTS))
    assert all(t.dtype == torch.float16 for t in tensors.values() if t.is_floating_point())
    meta = read_model_metadata(DEMO_WEIGHTS)
    assert json.loads(meta["config"])["name"] == "gtpt-t-body"
    assert "gtpt-mini" in meta["note"] and "model card" in meta["note"]
    choice = choose_weights(None, None)
    assert not choice.untrained and choice.source == str(DEMO_WEIGHTS)
    assert choose_weights(None, "gtpt-s-body").untrained   # other presets have no demo weights


def _held_out_oks(weights) -> list[float]:
    """OKS (pycocotools) of each labelled held-out person, predicted from its ground-truth box."""
    coco = COCO(str(SAMPLE / "person_keypoints.json"))
    predictor = Predictor(weights, device="cpu", flip_test=True)
    results, image_ids = [], []
    for img in coco.dataset["images"]:
        if img["file_name"] not in HELD_OUT:
            continue
        image_ids.append(img["id"])
        anns = [a for a in coco.loadAnns(coco.getAnnIds(imgIds=img["id"])) if a["num_keypoints"] > 0]
        people = predictor.predict(str(SAMPLE / "images" / img["file_name"]), [a["bbox"] for a in anns])
        for person in people:
            results.append({"image_id": img["id"], "category_id": 1, "score": 1.0,
                            "keypoints": person.keypoints.reshape(-1).tolist()})
    ev = COCOeval(coco, coco.loadRes(results), "keypoints")
    ev.params.imgIds = image_ids
    ev.evaluate()
    oks = []   # ev.ious[image, category]: [predictions, ground truths in annotation order]
    for image_id in image_ids:
        gts = coco.loadAnns(coco.getAnnIds(imgIds=image_id))
        ious = np.asarray(ev.ious[image_id, 1])
        oks += [float(ious[:, g].max()) for g, a in enumerate(gts) if a["num_keypoints"] > 0]
    return oks


def test_held_out_people_are_found():
    oks = _held_out_oks(str(DEMO_WEIGHTS))
    assert len(oks) == 2
    assert np.mean(oks) >= MIN_OKS, oks
    # the same measurement fails for an untrained model: the check can tell
    assert np.mean(_held_out_oks("gtpt-t-body")) < MIN_OKS / 2


def test_demo_uses_the_shipped_weights(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "gtpt", "demo", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=300, env=env())
    assert proc.returncode == 0, proc.stderr
    assert f"shipped demo weights {DEMO_WEIGHTS}" in proc.stdout and "UNTRAINED" not in proc.stdout
    person = json.loads((tmp_path / "demo_predictions.json").read_text())[0]
    kp = np.array(person["keypoints"]).reshape(-1, 3)
    # most joints clear the drawing threshold (16 of 17 measured), so the picture shows a skeleton
    assert (kp[:, 2] > DRAW_KPT_THR).sum() >= 10
