"""Evaluator: flip-test merge, back-projection, rescoring/NMS, detection boxes, COCO scoring, CLI."""
import json

import numpy as np
import pytest
import torch

from gtpt.data.dataset import normalize_batch
from gtpt.engine.batching import build_loader, collate_skipping, SkipBadImages
from gtpt.engine.distributed import ShardSampler
from gtpt.engine.evaluator import build_val_dataset, evaluate, postprocess, predict
from gtpt.engine.experiment import load_experiment
from gtpt.engine.metrics import coco_keypoint_eval
from gtpt.keypoints import get_keypoint_spec
from gtpt.models import build_model
from gtpt.models.checkpoint import save_model
from tests.engine_helpers import TINY, data_opts, dataset
from tests.helpers import MINI_SAMPLE, TINY_YOLO


@pytest.fixture(scope="module")
def body(tmp_path_factory):
    root = tmp_path_factory.mktemp("evalbody")
    d = dataset(root / "d", num_images=2, people=1, seed=7)
    torch.manual_seed(0)
    model = build_model("gtpt-t-body").eval()
    return root, d, model


def test_ground_truth_oracle_scores_ap_one(body):
    """GT joints pushed through rescoring, NMS and pycocotools give AP 1: the scoring chain is sound."""
    root, d, _ = body
    gt = json.loads(open(d[0]).read())
    people = []
    for a in gt["annotations"]:
        kp = np.asarray(a["keypoints"], np.float64).reshape(-1, 3)
        kp[:, 2] = 0.9
        people.append({"image_id": a["image_id"], "keypoints": kp, "score": 1.0, "area": a["area"]})
        people.append({"image_id": a["image_id"], "keypoints": kp + [1.0, 1.0, -0.5], "score": 0.5,
                       "area": a["area"]})   # a near-duplicate that OKS-NMS must remove
    res = postprocess(people, get_keypoint_spec(17), kpt_thr=0.01, nms_thr=0.9)
    assert len(res) == len(gt["annotations"])
    stats = coco_keypoint_eval(d[0], res, get_keypoint_spec(17))
    assert stats["AP"] == pytest.approx(1.0)


@pytest.mark.parametrize("micro_batch", [None, 3])   # 3: slices that cut across the flipped half
def test_predict_matches_manual_flip_decode(body, micro_batch):
    root, d, model = body
    exp = load_experiment(TINY, data_opts(d, d))
    ds = build_val_dataset(exp)
    loader = build_loader(ds, ShardSampler(len(ds), 4, shuffle=False), 4, 0, persistent=False)
    people, skipped = predict(model, loader, ds.codec, ds.spec.flip_index(), flip=True, micro_batch=micro_batch)
    assert skipped == [] and len(people) == len(ds)
    batch = collate_skipping([ds[i] for i in range(len(ds))])
    with torch.no_grad():
        img = normalize_batch(batch["image"])
        lx, ly = model(img)
        fx, fy = model(img.flip(3))
    mx, my = ds.codec.merge_flip(lx, ly, fx, fy, ds.spec.flip_index(), shift=True)
    coords, scores = ds.codec.decode(mx, my)
    xy = ds.codec.to_image(coords.double(), batch["meta"]["center"].double(), batch["meta"]["scale"].double())
    for i, p in enumerate(people):
        np.testing.assert_allclose(p["keypoints"][:, :2], xy[i].numpy(), atol=1e-4)
        np.testing.assert_allclose(p["keypoints"][:, 2], scores[i].numpy(), atol=1e-6)
        assert p["area"] == pytest.approx(float(np.prod(batch["meta"]["scale"][i].numpy() * 200)))


def test_detection_boxes_and_cli(body, tmp_path):
    """Boxes from a detection json (scores kept, no threshold), then `gtpt eval` on a .safetensors."""
    from gtpt.cli import main
    root, d, model = body
    gt = json.loads(open(d[0]).read())
    dets = [{"image_id": a["image_id"], "category_id": 1, "bbox": a["bbox"], "score": s}
            for a, s in zip(gt["annotations"], (0.9, 0.05))]
    det_path = tmp_path / "dets.json"
    det_path.write_text(json.dumps(dets))
    exp = load_experiment(TINY, data_opts(d, d) + [f"data.val_boxes={det_path}", "data.use_gt_boxes=false"])
    ds = build_val_dataset(exp)
    assert sorted(r.score for r in ds.records) == [0.05, 0.9]
    stats = evaluate(model, ds, exp, flip=False, out_json=tmp_path / "res.json", verbose=False)
    res = json.loads((tmp_path / "res.json").read_text())
    assert stats["num_results"] == len(res) == 2 and 0.0 <= stats["AP"] <= 1.0
    assert max(r["score"] for r in res) <= 0.9   # instance score = box score x mean joint score
    ckpt = save_model(model, tmp_path / "m.safetensors")
    rc = main(["eval", TINY, "--checkpoint", str(ckpt), "--boxes", str(det_path), "--no-flip",
               "--out", str(tmp_path / "cli.json"), "--opt", *data_opts(d, d)])
    assert rc == 0
    assert json.loads((tmp_path / "cli.json").read_text()) == res
    assert main(["eval", TINY, "--checkpoint", str(tmp_path / "missing.safetensors"), "--opt",
                 *data_opts(d, d)]) == 1


def test_unreadable_image_is_skipped_and_reported(tmp_path):
    d = dataset(tmp_path / "d", num_images=2, people=1, seed=8)
    exp = load_experiment(TINY, data_opts(d, d))
    ds = build_val_dataset(exp)
    bad = ds.records[0].image_file
    open(bad, "wb").write(b"\x00" * 10)
    wrapped = SkipBadImages(ds)
    with pytest.warns(UserWarning, match="cannot read image"):
        items = [wrapped[(0, i)] for i in range(len(ds))]
    batch = collate_skipping(items)
    assert batch["skipped"] == [bad] and batch["size"] == 1 and batch["image"].shape == (1, 3, 256, 192)


def test_eval_scores_an_exported_graph_on_real_photos(tmp_path, capsys):
    """`gtpt eval --checkpoint x.onnx` scores the graph a user deploys: on real photos, the float32
    graph (dynamic batch, or batch 1 only) gives its weights' results, int8 nearly; files that do not
    fit the config are named."""
    from gtpt.assets import DEMO_WEIGHTS
    from gtpt.cli import main
    from gtpt.export import export_onnx
    from gtpt.models.checkpoint import load_model
    val = (MINI_SAMPLE / "person_keypoints.json", MINI_SAMPLE / "images")
    model = load_model(DEMO_WEIGHTS)
    graphs = {"fp32": export_onnx(model, tmp_path / "fp32.onnx").path,
              "batch1": export_onnx(model, tmp_path / "batch1.onnx", dynamic_batch=False).path,
              "int8": export_onnx(model, tmp_path / "int8.onnx", int8=True).path}
    capsys.readouterr()
    results, ap = {}, {}
    for name, ckpt in {"torch": DEMO_WEIGHTS, **graphs}.items():
        out = tmp_path / f"{name}.json"
        assert main(["eval", TINY, "--checkpoint", str(ckpt), "--gt-boxes", "--out", str(out),
                     "--opt", *data_opts(val, val)]) == 0
        printed = capsys.readouterr().out
        assert ("onnxruntime" in printed) == (name != "torch")
        lines = printed.splitlines()
        ap[name] = float(lines[[i for i, line in enumerate(lines) if line.split()[:1] == ["AP"]][0] + 1].split()[0])
        results[name] = json.loads(out.read_text())
    kp = {k: np.array([r["keypoints"] for r in v]).reshape(len(v), -1, 3) for k, v in results.items()}
    assert len(results["torch"]) == 14 and ap["torch"] > 30   # the demo weights find these people
    for name in ("fp32", "batch1"):
        np.testing.assert_allclose(kp[name], kp["torch"], atol=1e-3)
        assert ap[name] == ap["torch"]
    shift = np.linalg.norm(kp["int8"][..., :2] - kp["torch"][..., :2], axis=-1)
    assert np.median(shift) < 2.0 and abs(ap["int8"] - ap["torch"]) < 5, (np.median(shift), ap)

    def run(graph, *flags, opts=()):
        rc = main(["eval", TINY, "--checkpoint", str(graph), "--gt-boxes", *flags, "--out",
                   str(tmp_path / "other.json"), "--opt", *data_opts(val, val), *opts])
        return rc, capsys.readouterr().out

    rc, out = run(graphs["fp32"], opts=["model.name=gtpt-s-body"])
    assert rc == 1 and "fp32.onnx holds an exported 'gtpt-t-body', not 'gtpt-s-body'" in out
    rc, out = run(TINY_YOLO)
    assert rc == 1 and "yolo11_raw.onnx: not exported by `gtpt export`" in out
    rc, out = run(graphs["fp32"], "--compile")
    assert rc == 1 and "compile needs PyTorch weights" in out
    rc, out = run(graphs["fp32"], "--precision", "bf16")
    assert rc == 1 and "fp32.onnx: an .onnx graph runs in float32" in out
    with pytest.warns(UserWarning, match=r"exported with keep rates \[1.0, 0.7, 0.3, 0.1\]; those run"):
        rc, out = run(graphs["fp32"], opts=["model.keep_rates=[1,0.8,0.5,0.3]"])
    assert rc == 0 and json.loads((tmp_path / "other.json").read_text()) == results["fp32"]


def test_eval_precision_bf16(tmp_path, capsys):
    """`gtpt eval --precision bf16` runs the network in bfloat16 autocast: on real photos the joints
    move by a few SimCC bins at most and the AP stays; eval.amp typos and bf16 with an .onnx graph are refused."""
    from gtpt.assets import DEMO_WEIGHTS
    from gtpt.cli import main
    val = (MINI_SAMPLE / "person_keypoints.json", MINI_SAMPLE / "images")
    kp, printed = {}, {}
    for precision in ("fp32", "bf16"):
        out = tmp_path / f"{precision}.json"
        assert main(["eval", TINY, "--checkpoint", str(DEMO_WEIGHTS), "--gt-boxes", "--precision", precision,
                     "--out", str(out), "--opt", *data_opts(val, val)]) == 0
        printed[precision] = capsys.readouterr().out
        kp[precision] = np.array([r["keypoints"] for r in json.loads(out.read_text())]).reshape(-1, 17, 3)
    moved = np.linalg.norm(kp["bf16"][..., :2] - kp["fp32"][..., :2], axis=-1)
    assert 0 < moved.max() and np.median(moved) < 2.0, moved   # bf16 really ran, and stays close
    ap = {p: float(t.splitlines()[-2].split()[0]) for p, t in printed.items()}
    assert abs(ap["bf16"] - ap["fp32"]) < 3, ap
    assert main(["eval", TINY, "--checkpoint", str(DEMO_WEIGHTS), "--opt", *data_opts(val, val),
                 "eval.amp=bf61"]) == 1
    assert "eval.amp must be none, bf16 or fp16, got 'bf61'" in capsys.readouterr().out


def test_eval_without_ground_truth_writes_the_results_for_submission(tmp_path, capsys):
    """An image-info json (COCO test-dev's kind: images, no annotations) as data.val_ann: `gtpt eval`
    writes the results exactly as a scored run would (same boxes, flip test, rescoring, OKS-NMS) and
    says they are not scored; training refuses it as validation data, naming the file."""
    from gtpt.assets import DEMO_WEIGHTS
    from gtpt.cli import main
    from gtpt.engine.experiment import ConfigError
    from gtpt.engine.trainer import Trainer
    gt = json.loads((MINI_SAMPLE / "person_keypoints.json").read_text())
    dets = []
    for a in (a for a in gt["annotations"] if a["num_keypoints"] > 0):   # each person, and a near copy
        x, y, w, h = a["bbox"]
        dets += [{"image_id": a["image_id"], "category_id": 1, "bbox": [x, y, w, h], "score": 0.9},
                 {"image_id": a["image_id"], "category_id": 1, "bbox": [x + 2, y + 2, w, h], "score": 0.5}]
    (tmp_path / "dets.json").write_text(json.dumps(dets))
    info = tmp_path / "image_info.json"
    info.write_text(json.dumps({"images": gt["images"], "categories": gt["categories"]}))
    images = MINI_SAMPLE / "images"
    results = {}
    for name, ann in (("scored", MINI_SAMPLE / "person_keypoints.json"), ("info", info)):
        out = tmp_path / f"{name}.json"
        rc = main(["eval", TINY, "--checkpoint", str(DEMO_WEIGHTS), "--boxes", str(tmp_path / "dets.json"),
                   "--out", str(out), "--opt", *data_opts((ann, images), (ann, images))])
        printed = capsys.readouterr().out
        assert rc == 0 and ("not scored" in printed) == (name == "info") and ("AP" in printed.split()) == (name == "scored")
        results[name] = json.loads(out.read_text())
    assert results["info"] == results["scored"]
    assert 14 <= len(results["info"]) < len(dets)   # OKS-NMS dropped near copies
    exp = load_experiment(TINY, data_opts((MINI_SAMPLE / "person_keypoints.json", images), (info, images)),
                          output_dir=str(tmp_path / "run"))
    with pytest.raises(ConfigError, match="image_info.json .data.val_ann. has no keypoint annotations"):
        Trainer(exp, device="cpu")
