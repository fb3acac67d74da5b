"""Evaluation scoring: rescoring, OKS-NMS, COCO AP (pycocotools) and whole-body AP (vs xtcocotools)."""
import contextlib
import copy
import io
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from gtpt.engine.metrics import (STAT_NAMES, WHOLEBODY_SUBSETS, coco_keypoint_eval, nms_per_image,
                                 oks_iou, oks_nms, rescore, to_coco_results, wholebody_keypoint_eval)
from gtpt.keypoints import get_keypoint_spec
from tests.helpers import make_coco_dataset


def test_rescore_uses_joints_above_threshold():
    kp = np.array([[0, 0, 0.5], [0, 0, 0.005], [0, 0, 0.3]])
    (p,) = rescore([{"keypoints": kp, "score": 0.9}])
    assert p["score"] == pytest.approx(0.9 * (0.5 + 0.3) / 2) and p["box_score"] == 0.9
    (q,) = rescore([{"keypoints": kp, "score": 0.9}], kpt_thr=0.2)
    assert q["score"] == pytest.approx(0.9 * 0.4)
    (z,) = rescore([{"keypoints": kp * [1, 1, 0], "score": 0.9}])
    assert z["score"] == 0.0


def test_oks_nms_suppresses_duplicates_only():
    spec = get_keypoint_spec(17)
    rng = np.random.default_rng(0)
    base = np.c_[rng.uniform(0, 100, (17, 2)), np.ones(17)]
    far = base + [300, 0, 0]
    people = [{"keypoints": base, "area": 5000.0, "score": 0.5, "image_id": 1},
              {"keypoints": base + [0.3, -0.2, 0], "area": 5000.0, "score": 0.9, "image_id": 1},
              {"keypoints": far, "area": 5000.0, "score": 0.4, "image_id": 1},
              {"keypoints": base, "area": 5000.0, "score": 0.1, "image_id": 2}]
    assert oks_nms(people[:3], 0.9, spec.sigmas) == [1, 2]
    assert oks_nms(people[:3], 1.0, spec.sigmas) == [1, 0, 2]   # nothing exceeds OKS 1
    kept = nms_per_image(people, 0.9, spec.sigmas)
    assert sorted(p["score"] for p in kept) == [0.1, 0.4, 0.9]
    o = oks_iou(base, 5000.0, np.stack([base, far]), np.array([5000.0, 5000.0]), spec.sigmas)
    assert o[0] == pytest.approx(1.0) and o[1] < 1e-6


def _quiet():
    return contextlib.redirect_stdout(io.StringIO())


def _pycoco_direct(gt_path, results, sigmas):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    with _quiet():
        gt = COCO(str(gt_path))
        dt = gt.loadRes(copy.deepcopy(results))
        ev = COCOeval(gt, dt, "keypoints")
        ev.params.kpt_oks_sigmas = sigmas
        ev.evaluate(); ev.accumulate(); ev.summarize()
    return ev.stats


def test_body_ap_perfect_and_shifted(tmp_path):
    spec = get_keypoint_spec(17)
    gt_path = make_coco_dataset(tmp_path, num_images=4, people_per_image=3, num_joints=17, seed=4)
    gt = json.loads(gt_path.read_text())
    rng = np.random.default_rng(0)
    people = [{"image_id": a["image_id"], "score": float(rng.uniform(0.5, 1)),
               "keypoints": np.array(a["keypoints"], float).reshape(17, 3) * [1, 1, 0] + [0, 0, 0.9]}
              for a in gt["annotations"]]
    perfect = coco_keypoint_eval(gt_path, to_coco_results(people), spec)
    assert perfect["AP"] == pytest.approx(1.0) and perfect["AR"] == pytest.approx(1.0)
    assert "AP" in perfect["table"] and "100.00" in perfect["table"]
    shifted = [dict(p, keypoints=p["keypoints"] + [rng.normal(0, 3), rng.normal(0, 3), 0]) for p in people]
    res = to_coco_results(shifted)
    got = coco_keypoint_eval(gt_path, res, spec)
    assert 0.0 < got["AP"] < 1.0
    direct = _pycoco_direct(gt_path, res, spec.sigmas)
    for name, v in zip(STAT_NAMES, direct):
        assert got[name] == pytest.approx(v, abs=1e-12), name
    with pytest.raises(ValueError, match="image_id 99"):
        coco_keypoint_eval(gt_path, [dict(res[0], image_id=99)], spec)
    # an image-info file (COCO test-dev's kind): nothing to score against, for body and whole-body
    info = tmp_path / "image_info.json"
    info.write_text(json.dumps({"images": gt["images"], "categories": gt["categories"]}))
    assert coco_keypoint_eval(info, res, spec) is None
    assert coco_keypoint_eval(info, [], get_keypoint_spec(133)) is None
    info.write_text(json.dumps({"images": gt["images"]}))
    with pytest.raises(ValueError, match="ground truth lacks 'categories'"):
        coco_keypoint_eval(info, res, spec)


def _wholebody_case(tmp_path):
    """Generated whole-body gt with extra hard cases, and perturbed, partly broken results."""
    gt_path = make_coco_dataset(tmp_path, num_images=6, people_per_image=3, num_joints=133, seed=8,
                                image_size=(240, 320))
    gt = json.loads(gt_path.read_text())
    rng = np.random.default_rng(1)
    for i, a in enumerate(gt["annotations"]):
        a["area"] = float(a["area"] * rng.choice([0.05, 0.3, 1.0, 3.0]))   # spread over size ranges
        if i % 5 == 1:     # a person without labelled hands / feet
            for part in ("lefthand", "righthand", "foot"):
                a[f"{part}_kpts"] = [0.0] * len(a[f"{part}_kpts"])
                a[f"{part}_valid"] = False
        if i % 7 == 3:
            a["iscrowd"] = 1
    gt_path.write_text(json.dumps(gt))
    results = []
    for i, a in enumerate(gt["annotations"]):
        if i % 6 == 5:
            continue                                   # missed person
        kp = np.array(a["keypoints"] + a["foot_kpts"] + a["face_kpts"] + a["lefthand_kpts"]
                      + a["righthand_kpts"], float).reshape(133, 3)
        sigma = rng.choice([0.5, 2.0, 6.0])
        kp[:, :2] = np.where(kp[:, 2:] > 0, kp[:, :2], rng.uniform(0, 200, (133, 2)))
        kp[:, :2] += rng.normal(0, sigma, (133, 2))
        kp[:, 2] = rng.uniform(0.05, 1, 133)
        if i % 4 == 2:
            kp[91:112, 2] = 0                          # no left-hand scores: dropped for that part
        r = {"image_id": a["image_id"], "category_id": 1, "keypoints": kp.reshape(-1).tolist(),
             "score": float(rng.uniform(0.1, 1))}
        if i % 3 == 0:
            r["face_score"] = float(rng.uniform(0, 1))
        results.append(r)
        if i % 4 == 0:                                 # a false positive elsewhere
            fp = kp.copy()
            fp[:, :2] += rng.uniform(30, 60, 2)
            results.append({"image_id": a["image_id"], "category_id": 1,
                            "keypoints": fp.reshape(-1).tolist(), "score": float(rng.uniform(0, 0.5))})
    return gt_path, results


def _xtcocotools_python():
    """The interpreter of the side environment that has xtcocotools (see Makefile / .ci/run)."""
    exe = os.environ.get("GTPT_XTCOCOTOOLS_PYTHON",
                         str(Path(__file__).resolve().parents[1] / ".venv-xtcocotools" / "bin" / "python"))
    if not Path(exe).is_file():
        if os.environ.get("CI"):
            pytest.fail(f"xtcocotools side environment missing at {exe} (.ci/run must create it)")
        pytest.skip(f"xtcocotools side environment missing at {exe}; run `make test` to create it")
    return exe


def _xtcoco_all(tmp_path, gt_path, results, sigmas):
    """{subset: stats} from xtcocotools itself, run in its own numpy<2 interpreter."""
    res, out, sig = tmp_path / "xt_results.json", tmp_path / "xt_out.json", tmp_path / "xt_sigmas.json"
    res.write_text(json.dumps(results))
    sig.write_text(json.dumps([float(v) for v in sigmas]))
    script = Path(__file__).with_name("xtcoco_reference.py")
    run = subprocess.run([_xtcocotools_python(), str(script), str(gt_path), str(res), str(out), str(sig)],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    return json.loads(out.read_text())


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_wholebody_six_subsets_match_xtcocotools(tmp_path):
    spec = get_keypoint_spec(133)
    gt_path, flat_results = _wholebody_case(tmp_path)
    split = []
    for r in flat_results:   # the split layout xtcocotools reads, keeping the extra score keys
        s = {k: v for k, v in r.items() if k != "keypoints"}
        s.update(to_coco_results([{"image_id": r["image_id"], "score": r["score"],
                                   "keypoints": np.array(r["keypoints"]).reshape(133, 3)}], spec)[0])
        split.append(s)
    ours = wholebody_keypoint_eval(gt_path, flat_results, spec)
    ours_split = wholebody_keypoint_eval(gt_path, split, spec)
    reference = _xtcoco_all(tmp_path, gt_path, split, spec.sigmas)
    for name in WHOLEBODY_SUBSETS:
        ref = reference[name]
        for stat, v in zip(STAT_NAMES, ref):
            assert ours["subsets"][name][stat] == pytest.approx(v, abs=1e-6), (name, stat)
            assert ours_split["subsets"][name][stat] == pytest.approx(v, abs=1e-6), (name, stat)
    aps = [ours["subsets"][n]["AP"] for n in WHOLEBODY_SUBSETS]
    assert all(0 < ap < 1 for ap in aps) and len(set(aps)) == 6   # a discriminating case
    assert ours["AP"] == ours["subsets"]["wholebody"]["AP"] and ours["face_AP"] == aps[2]
    assert coco_keypoint_eval(gt_path, flat_results, spec)["AP"] == ours["AP"]
    assert "lefthand" in ours["table"]


def test_wholebody_result_split_layout():
    spec = get_keypoint_spec(133)
    kp = np.arange(133 * 3, dtype=float).reshape(133, 3)
    (r,) = to_coco_results([{"image_id": 1, "score": 0.5, "keypoints": kp}], spec)
    assert len(r["keypoints"]) == 51 and len(r["foot_kpts"]) == 18 and len(r["face_kpts"]) == 204
    assert len(r["lefthand_kpts"]) == len(r["righthand_kpts"]) == 63
    assert r["righthand_kpts"][-1] == kp[-1, 2] and r["foot_kpts"][0] == kp[17, 0]
