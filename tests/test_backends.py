"""TorchRunner: the deployment copy's layout and micro-batches on a CPU."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from tests._inference_utils import visible_model
from gtpt.inference.backends import CPU_MICRO_BATCH, TorchRunner, in_micro_batches


@pytest.fixture(scope="module")
def model():
    return visible_model("gtpt-t-body").eval()   # pruning choices that differ from image to image


def test_micro_batches_give_the_whole_batch_outputs_and_trace(model):
    batch = np.random.default_rng(0).standard_normal((5, 3, 256, 192)).astype(np.float32)
    whole = TorchRunner(model, micro_batch=16)
    sliced = TorchRunner(model, micro_batch=2)   # 2 + 2 + 1: a short last slice
    assert TorchRunner(model).micro_batch == CPU_MICRO_BATCH
    for a, b in zip(whole(batch), sliced(batch)):
        assert a.shape == b.shape == (5, 17, a.shape[-1])
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    # the pruning trace keeps every image's row in order (slices concatenated, not interleaved)
    t_whole, t_sliced = whole.trace(batch), sliced.trace(batch)
    one = TorchRunner(model, micro_batch=1).trace(batch[3:4])
    assert t_whole.keys() == t_sliced.keys() == one.keys() and "group_entry" in t_whole
    assert not torch.equal(t_whole["after_block3"][0], t_whole["after_block3"][4])   # rows tell images apart
    for k in t_whole:   # entries are [B, n] tensors, or one such tensor per keypoint group
        for w, s, o in zip(*(_tensors(t[k]) for t in (t_whole, t_sliced, one))):
            assert s.shape[0] == 5 and torch.equal(w, s) and torch.equal(o[0], s[3]), k


def _tensors(entry):
    return entry if isinstance(entry, list) else [entry]


def test_in_micro_batches_concatenates_each_output():
    x = torch.arange(7.0)
    calls = []

    def fn(part):
        calls.append(len(part))
        return part * 2, part[:, None] + 1

    a, b = in_micro_batches(fn, x, 3)
    assert calls == [3, 3, 1]
    assert torch.equal(a, x * 2) and torch.equal(b, x[:, None] + 1)
    calls.clear()
    in_micro_batches(fn, x, None)
    assert calls == [7]


def test_runner_copy_is_channels_last_and_folded(model):
    runner = TorchRunner(model)
    convs = [m for m in runner.model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(c.weight.is_contiguous(memory_format=torch.channels_last) for c in convs)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in runner.model.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())   # the caller's model untouched


@pytest.mark.parametrize("bad", [0, -2, 2.5])
def test_bad_micro_batch_is_refused(model, bad):
    with pytest.raises(ValueError, match="micro_batch"):
        TorchRunner(model, micro_batch=bad)


def test_cpu_bf16_runs_autocast_over_float32_weights(model):
    """bfloat16 weights are for the compiled CUDA path only (`deployment_forward`); on a CPU the copy
    stays float32 and bf16 comes from the runner's autocast: the logits move, the weights do not."""
    batch = np.random.default_rng(1).standard_normal((2, 3, 256, 192)).astype(np.float32)
    fp32, bf16 = TorchRunner(model), TorchRunner(model, precision="bf16")
    assert all(p.dtype == torch.float32 for p in bf16.model.parameters())
    (ax, ay), (bx, by) = fp32(batch), bf16(batch)
    assert bx.dtype == torch.float32 and 0 < (ax - bx).abs().max() < 0.2 and (ay - by).abs().max() < 0.2
    with pytest.raises(ValueError, match="precision"):
        TorchRunner(model, precision="fp16")
