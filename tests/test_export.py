"""ONNX export: pruning in the graph, parity with PyTorch at other batch sizes, the Predictor's
onnxruntime backend, and `gtpt export`."""
from __future__ import annotations

import collections
import functools
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch.torch_version import TorchVersion

from gtpt.cli import main
from gtpt.export import INPUT_NAME, ExportError, export_onnx, read_onnx_config
from gtpt.inference.predictor import Predictor
from gtpt.models.checkpoint import save_model
from tests._inference_utils import person_image, visible_model


@pytest.mark.parametrize("name, keep_rates", [
    ("gtpt-t-body", None),
    ("gtpt-t-wholebody", None),
    ("gtpt-t-body", (1.0, 0.8, 0.5, 0.2)),
])
def test_onnx_matches_torch_at_other_batch_sizes(tmp_path, name, keep_rates):
    model = visible_model(name)
    result = export_onnx(model, tmp_path / "m.onnx", keep_rates=keep_rates)   # traced at batch 2
    assert result.exporter == "torchscript" and result.opset == 17
    check_exported_graph(result, model, name, keep_rates)


def test_a_failed_check_leaves_no_unverified_graph(tmp_path):
    """The graph is built beside the target and replaces it only once every check passed."""
    model = visible_model()
    good = export_onnx(model, tmp_path / "m.onnx", verbose=False).path
    before = good.read_bytes()
    with pytest.raises(ExportError, match=r"m\.onnx: onnxruntime differs from PyTorch by .* \(> 0\)"):
        export_onnx(model, good, keep_rates=(1.0, 0.8, 0.5, 0.2), atol=0.0, verbose=False)   # float32 never meets 0
    assert good.read_bytes() == before                         # the earlier, verified file is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]   # and no half-made file is left
    with pytest.raises(ExportError):
        export_onnx(model, tmp_path / "new.onnx", atol=0.0, verbose=False)
    assert not (tmp_path / "new.onnx").exists()


def check_exported_graph(result, model, name, keep_rates):
    """The file `result` names: pruning in the graph, symbolic batch, metadata, parity with PyTorch."""
    assert max(result.max_abs_diff.values()) <= 1e-4 and result.verify_batch == 3
    proto = onnx.load(str(result.path))
    onnx.checker.check_model(proto)
    ops = {n.op_type for n in proto.graph.node}
    assert {"TopK", "GatherElements"} <= ops                      # pruning is inside the graph
    assert "BatchNormalization" not in ops                         # folded before export
    # the patch embedding is a strided Conv, not a 6-D transpose of the feature map and a MatMul
    perms = [a.ints for n in proto.graph.node if n.op_type == "Transpose" for a in n.attribute]
    assert max(len(p) for p in perms) < 6          # (5-D: the attention's q/k/v split)
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert {p.key: p.value for p in proto.metadata_props}["exporter"] == result.exporter
    cfg = read_onnx_config(result.path)
    assert cfg.name == name and cfg.keep_rates == tuple(keep_rates or model.keep_rates)

    sess = ort.InferenceSession(str(result.path), providers=["CPUExecutionProvider"])
    x = torch.randn(5, 3, 256, 192, generator=torch.Generator().manual_seed(1))
    # a real picture too, where pruning choices follow the image content
    img = torch.from_numpy(person_image()[:256, :192].transpose(2, 0, 1).astype(np.float32) / 64 - 2)
    x[0] = img
    with torch.no_grad():
        ref = model(x, keep_rates=keep_rates)
    got = sess.run(None, {INPUT_NAME: x.numpy()})
    for r, g in zip(ref, got):
        assert g.shape == tuple(r.shape)
        assert np.abs(r.numpy() - g).max() <= 1e-4
    if keep_rates is not None:  # the baked-in keep rates matter: the default ones differ
        with torch.no_grad():
            default = model(x)
        assert np.abs(default[0].numpy() - got[0]).max() > 1e-3


@pytest.mark.skipif(TorchVersion(torch.__version__) < "2.6", reason="the torch.export-based exporter needs torch >= 2.6")
def test_torch_export_based_exporter_when_the_tracer_is_gone(tmp_path, monkeypatch, capsys):
    """PyTorch deprecated its TorchScript tracer (torch 2.9). Where it fails or is gone, "auto" uses the
    torch.export-based exporter, and that graph passes the same checks as the tracer's."""
    real_export = torch.onnx.export

    @functools.wraps(real_export)   # keeps the signature export_onnx reads its keywords from
    def export_without_tracer(*args, **kwargs):
        if kwargs.get("dynamo") is False:
            raise RuntimeError("the TorchScript-based exporter has been removed")
        return real_export(*args, **kwargs)
    monkeypatch.setattr(torch.onnx, "export", export_without_tracer)
    model = visible_model("gtpt-t-body")
    with pytest.raises(ExportError, match="TorchScript ONNX exporter failed .*removed.*'dynamo' may work"):
        export_onnx(model, tmp_path / "ts.onnx", exporter="torchscript")

    keep_rates = (1.0, 0.8, 0.5, 0.2)
    result = export_onnx(model, tmp_path / "m.onnx", keep_rates=keep_rates)   # exporter="auto"
    assert "trying the torch.export-based one" in capsys.readouterr().out
    assert result.exporter == "dynamo" and result.opset == 18
    assert [f.name for f in tmp_path.iterdir()] == ["m.onnx"]     # one self-contained file
    check_exported_graph(result, model, "gtpt-t-body", keep_rates)

    # both exporters unusable: one error that names both reasons
    monkeypatch.setitem(sys.modules, "onnxscript", None)
    with pytest.raises(ExportError, match="removed.*and so did the torch.export-based one.*needs onnxscript"):
        export_onnx(model, tmp_path / "none.onnx")
    monkeypatch.setattr(sys, "argv", ["gtpt"])
    weights = save_model(model, tmp_path / "w.safetensors")
    assert main(["export", "--weights", str(weights), "--exporter", "dynamo", "--out", str(tmp_path / "x.onnx")]) == 1
    assert "needs onnxscript: pip install 'gtpt[onnx]'" in capsys.readouterr().err


def test_predictor_onnxruntime_matches_torch(tmp_path):
    model = visible_model("gtpt-t-body")
    img = person_image()
    h, w = img.shape[:2]
    boxes = [[0.3 * w, 0.08 * h, 0.4 * w, 0.85 * h, 0.9], [0, 0, w, h, 0.5]]
    torch_people = Predictor(model).predict(img, boxes)
    onnx_pred = Predictor(model, backend="onnxruntime", cache_dir=tmp_path)
    onnx_people = onnx_pred.predict(img, boxes)
    for a, b in zip(torch_people, onnx_people):
        assert np.abs(a.keypoints[:, :2] - b.keypoints[:, :2]).max() <= 0.5
        np.testing.assert_allclose(a.keypoints[:, 2], b.keypoints[:, 2], atol=1e-4)
    # the export is cached by weights + keep rates and reused
    mtime = onnx_pred.onnx_path.stat().st_mtime_ns
    again = Predictor(model, backend="onnxruntime", cache_dir=tmp_path)
    assert again.onnx_path == onnx_pred.onnx_path and again.onnx_path.stat().st_mtime_ns == mtime
    # ...but not for a model computed another way: the traced graph follows the code and module forms
    model.patch_embed.form = "linear"
    assert Predictor(model, backend="onnxruntime", cache_dir=tmp_path).onnx_path != onnx_pred.onnx_path
    # an .onnx file on its own, and a clear error for the wrong preset
    from_file = Predictor(str(onnx_pred.onnx_path))
    np.testing.assert_array_equal(from_file.predict(img, boxes)[0].keypoints, onnx_people[0].keypoints)
    with pytest.raises(ValueError, match="not 'gtpt-t-wholebody'"):
        Predictor(str(onnx_pred.onnx_path), expect="gtpt-t-wholebody")


def test_export_command(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["gtpt"])
    weights = save_model(visible_model("gtpt-t-body"), tmp_path / "body.safetensors")
    out = tmp_path / "body_static.onnx"
    rc = main(["export", "--weights", str(weights), "--format", "onnx", "--no-dynamic-batch",
               "--keep-rates", "1.0", "0.7", "0.4", "0.2", "--out", str(out)])
    text = capsys.readouterr().out
    assert rc == 0 and out.is_file()
    assert "max |diff|" in text and f"weights: {weights}" in text
    proto = onnx.load(str(out))
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_value == 1
    # a fixed-batch graph still serves a Predictor (it feeds one crop at a time)
    people = Predictor(str(out)).predict(person_image())
    assert people[0].keypoints.shape == (17, 3)

    monkeypatch.setattr(sys, "argv", ["gtpt"])
    rc = main(["export", "--weights", str(weights), "--model", "gtpt-s-body", "--out", str(tmp_path / "x.onnx")])
    err = capsys.readouterr().err
    assert rc == 2 and "holds weights for 'gtpt-t-body', not 'gtpt-s-body'" in err


def test_export_without_weights_uses_the_demo_weights(tmp_path, monkeypatch, capsys):
    """As the README says for demo, predict, export and bench: no --weights, the shipped demo weights."""
    from gtpt.commands._weights import DEMO_WEIGHTS
    from gtpt.models.checkpoint import load_model
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["gtpt"])
    rc = main(["export"])
    text = capsys.readouterr().out
    assert rc == 0 and f"weights: shipped demo weights {DEMO_WEIGHTS}" in text
    runner = Predictor(str(tmp_path / "gtpt-t-body.onnx"))._runner
    x = np.random.default_rng(0).standard_normal((2, 3, 256, 192)).astype(np.float32)
    want = load_model(DEMO_WEIGHTS).eval()(torch.from_numpy(x))
    for got, ref in zip(runner(x), want):
        np.testing.assert_allclose(got.numpy(), ref.detach().numpy(), atol=1e-4)


def test_int8_export(tmp_path, monkeypatch, capsys):
    """--int8: the matrix products become int8 (dynamic), convolutions stay float32, the config
    travels in the file, and the Predictor's joints stay where the float32 graph puts them."""
    model = visible_model("gtpt-t-body")
    fp32 = export_onnx(model, tmp_path / "fp32.onnx", verbose=False)
    int8 = export_onnx(model, tmp_path / "int8.onnx", int8=True, verbose=False)
    assert fp32.int8_shift_px is None and int8.max_abs_diff == fp32.max_abs_diff   # float32 verified first
    median, worst = int8.int8_shift_px
    assert 0 <= median <= worst and median <= 1.0
    ops = collections.Counter(n.op_type for n in onnx.load(str(int8.path)).graph.node)
    ref_ops = collections.Counter(n.op_type for n in onnx.load(str(fp32.path)).graph.node)
    assert ops["MatMulInteger"] == ops["DynamicQuantizeLinear"] > 0 and ops["ConvInteger"] == 0
    assert ops["Conv"] == ref_ops["Conv"] and ops["TopK"] == ref_ops["TopK"]      # pruning untouched
    assert int8.path.stat().st_size < 0.5 * fp32.path.stat().st_size
    assert read_onnx_config(int8.path).name == "gtpt-t-body"
    assert {p.key: p.value for p in onnx.load(str(int8.path)).metadata_props}["quantization"].startswith("int8")
    assert sorted(f.name for f in tmp_path.iterdir()) == ["fp32.onnx", "int8.onnx"]   # no temporary left

    img = person_image()
    ref, got = Predictor(str(fp32.path)).predict(img)[0], Predictor(str(int8.path)).predict(img)[0]
    moved = np.hypot(*(ref.keypoints[:, :2] - got.keypoints[:, :2]).T)
    assert np.median(moved) <= 2.0                                   # image pixels, a 420x560 photo

    monkeypatch.setattr(sys, "argv", ["gtpt"])
    weights = save_model(model, tmp_path / "w.safetensors")
    assert main(["export", "--weights", str(weights), "--int8", "--no-dynamic-batch", "--out", str(tmp_path / "cli.onnx")]) == 0
    out = capsys.readouterr().out
    assert "int8: decoded joints moved" in out and "batch 1, opset 17, torchscript exporter, int8)" in out
