"""Compiled inference (`deployment_forward(compiled=True)`): power-of-two padding, the Predictor and
the evaluator give the eager outputs. Slow: two compiles on the CPU, ~1.5 min."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch._dynamo.utils import counters

from gtpt.cli import main
from gtpt.engine.evaluator import build_val_dataset, evaluate
from gtpt.engine.experiment import load_experiment
from gtpt.inference import Predictor
from gtpt.inference.backends import padded_to_power_of_two
from gtpt.models.checkpoint import save_model
from tests._inference_utils import person_image, visible_model, write_jpg
from tests.engine_helpers import TINY, data_opts, dataset


@pytest.mark.parametrize("channels_last", [False, True])
def test_padding_reaches_the_next_power_of_two_and_changes_no_real_row(channels_last):
    seen = []

    def fn(x):   # per-image outputs, as the network's
        seen.append((x.shape[0], x.is_contiguous(memory_format=torch.channels_last)))
        return x.sum((1, 2, 3)), x.amax((1, 2, 3))[:, None]

    x = torch.randn(5, 3, 4, 2)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    for n, size in ((5, 8), (4, 4), (1, 1), (3, 4)):
        a, b = padded_to_power_of_two(fn)(x[:n])
        ref_a, ref_b = fn(x[:n])
        assert seen[-2] == (size, channels_last) and a.shape == (n,) and b.shape == (n, 1)
        assert torch.equal(a, ref_a) and torch.equal(b, ref_b)


@pytest.mark.slow
def test_compiled_predictor_and_evaluator_give_the_eager_outputs(tmp_path):
    model = visible_model("gtpt-t-body")
    image = person_image()
    h, w = image.shape[:2]
    boxes = np.array([[0, 0, w, h], [w * 0.1, h * 0.05, w * 0.6, h * 0.9], [w * 0.3, h * 0.2, w * 0.5, h * 0.7]])
    eager, compiled = Predictor(model), Predictor(model, compile=True)
    # with the flip test, 1, 2 and 3 people are batches of 2, 4 and 6 = 4 + 2 (CPU micro-batches of 4)
    for n in (1, 2, 3):
        graphs = counters["stats"]["unique_graphs"]
        ref, out = eager.predict(image, boxes[:n]), compiled.predict(image, boxes[:n])
        if n == 3:
            assert counters["stats"]["unique_graphs"] == graphs   # sizes 4 and 2 were compiled already
        assert len(ref) == len(out) == n
        for r, o in zip(ref, out):
            np.testing.assert_allclose(o.keypoints[:, :2], r.keypoints[:, :2], atol=1e-3)   # image px
            np.testing.assert_allclose(o.keypoints[:, 2], r.keypoints[:, 2], atol=1e-5)
            assert o.score == pytest.approx(r.score, abs=1e-5)
    with pytest.raises(ValueError, match="compile"):
        Predictor(model, backend="onnxruntime", compile=True)

    d = dataset(tmp_path / "d", num_images=3, people=1, seed=5)
    exp = load_experiment(TINY, data_opts(d, d))
    results = []
    for compile in (False, True):
        out = tmp_path / f"res_{compile}.json"
        stats = evaluate(model, build_val_dataset(exp), exp, out_json=out, verbose=False, compile=compile)
        results.append((stats["AP"], json.loads(out.read_text())))
    (ap, ref), (ap_compiled, res) = results
    assert ap_compiled == ap and len(res) == len(ref) == 3
    ckpt = save_model(model, tmp_path / "m.safetensors")
    assert main(["eval", TINY, "--checkpoint", str(ckpt), "--compile", "--out", str(tmp_path / "cli.json"),
                 "--opt", *data_opts(d, d)]) == 0
    assert json.loads((tmp_path / "cli.json").read_text()) == res
    write_jpg(tmp_path / "x.jpg", image)
    runs = []
    for extra in ([], ["--compile"]):
        out = tmp_path / f"predict{len(extra)}"
        assert main(["predict", str(tmp_path / "x.jpg"), "--weights", str(ckpt), "--out", str(out), *extra]) == 0
        runs.append(json.loads((out / "predictions.json").read_text())[0]["keypoints"])
    np.testing.assert_allclose(runs[1], runs[0], atol=1e-2)
    assert main(["predict", str(tmp_path / "x.jpg"), "--compile", "--backend", "onnxruntime",
                 "--out", str(tmp_path / "ort")]) != 0
    for r, o in zip(ref, res):
        assert r["image_id"] == o["image_id"]
        np.testing.assert_allclose(o["keypoints"], r["keypoints"], atol=1e-2)   # json rounds to 2 decimals


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (benchmarks/gpu_sweep.sh runs it)")
def test_cuda_compiled_predictor_gives_the_eager_joints():
    """CUDA graphs, space-to-depth and sdpa-split under the Predictor in bf16: batch sizes 2 and 8
    (padded from 6), then 2 again (a recorded graph replayed after another one ran)."""
    model = visible_model("gtpt-t-body")
    image = person_image()
    h, w = image.shape[:2]
    boxes = np.array([[w * 0.05 * i, h * 0.03 * i, w * (0.9 - 0.1 * i), h * (0.95 - 0.1 * i)] for i in range(3)])
    eager = Predictor(model, device="cuda", precision="bf16")
    compiled = Predictor(model, device="cuda", precision="bf16", compile=True)
    for n in (1, 3, 1):
        out, ref = compiled.predict(image, boxes[:n]), eager.predict(image, boxes[:n])
        diff = np.abs(np.stack([o.keypoints[:, :2] for o in out]) - np.stack([r.keypoints[:, :2] for r in ref]))
        assert len(out) == n and np.median(diff) <= 2.0, (n, np.median(diff))   # px: bf16 rounding
    # the pruning trace runs the compiled path's copy (bf16 weights) eagerly: nearly the same patches
    trace, ref = compiled.kept_patches(image, boxes[0]), eager.kept_patches(image, boxes[0])
    steps = [k for k in ref if k.startswith("after_block")]
    assert trace.keys() == ref.keys() and steps
    assert np.mean([np.isin(trace[k], ref[k]).mean() for k in steps]) > 0.9


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (benchmarks/gpu_sweep.sh runs it)")
def test_cuda_compiled_bf16_eval_gives_the_eager_results(tmp_path, capsys):
    """`gtpt eval --compile --precision bf16` on a GPU (bf16 weights, CUDA graphs) against eager bf16
    autocast, on the real photos of mini_sample with the demo weights: joints within bf16 rounding."""
    from gtpt.assets import DEMO_WEIGHTS
    from tests.helpers import MINI_SAMPLE
    val = (MINI_SAMPLE / "person_keypoints.json", MINI_SAMPLE / "images")
    joints, ap = [], []
    for extra in ([], ["--compile"]):
        out = tmp_path / f"r{len(extra)}.json"
        assert main(["eval", TINY, "--checkpoint", str(DEMO_WEIGHTS), "--gt-boxes", "--device", "cuda",
                     "--precision", "bf16", "--out", str(out), "--opt", *data_opts(val, val), *extra]) == 0
        lines = capsys.readouterr().out.splitlines()
        ap.append(float(lines[[i for i, line in enumerate(lines) if line.split()[:1] == ["AP"]][0] + 1].split()[0]))
        joints.append(np.array([r["keypoints"] for r in json.loads(out.read_text())]).reshape(-1, 17, 3))
    shift = np.linalg.norm(joints[1][..., :2] - joints[0][..., :2], axis=-1)
    assert len(joints[1]) == len(joints[0]) == 14 and np.median(shift) < 2.0 and abs(ap[1] - ap[0]) < 3, (
        np.median(shift), ap)
