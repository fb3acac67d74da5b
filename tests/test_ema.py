"""ModelEma: the cosine momentum schedule and the update over parameters and BatchNorm buffers."""
import math

import pytest
import torch
from torch import nn

from gtpt.engine.ema import ModelEma, ema_momentum


def test_momentum_schedule():
    assert ema_momentum(0, 100) == pytest.approx(0.996)
    assert ema_momentum(100, 100) == pytest.approx(1.0)
    assert ema_momentum(50, 100) == pytest.approx(0.998)
    assert ema_momentum(25, 100) == pytest.approx(1 - 0.004 * (math.cos(math.pi / 4) + 1) / 2)
    ms = [ema_momentum(s, 37) for s in range(38)]
    assert all(b >= a for a, b in zip(ms, ms[1:]))


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 2))


def test_update_maths_params_and_buffers():
    live = _net()
    ema = ModelEma(live, momentum=0.9)
    before = {k: v.clone() for k, v in ema.state_dict().items()}
    live.train()
    live(torch.randn(4, 3, 8, 8)).sum().backward()   # moves the BN running stats
    with torch.no_grad():
        for p in live.parameters():
            p.add_(torch.randn_like(p))
    m = ema.update(live, step=3, total_steps=10)
    assert m == pytest.approx(ema_momentum(3, 10, 0.9))
    now = live.state_dict()
    for k, v in ema.state_dict().items():
        if v.is_floating_point():
            assert torch.allclose(v, m * before[k] + (1 - m) * now[k], atol=1e-6), k
            assert not torch.equal(v, before[k]), f"{k} did not move"
        else:
            assert torch.equal(v, now[k]), k   # num_batches_tracked is copied
    assert ema.state_dict()["1.running_mean"].abs().sum() > 0


def test_independent_copy_and_state_dict_roundtrip():
    live = _net()
    ema = ModelEma(live)
    with torch.no_grad():
        live[0].weight.add_(1.0)
    assert not torch.equal(ema.module[0].weight, live[0].weight)
    assert not ema.module.training and not any(p.requires_grad for p in ema.module.parameters())
    ema.update(live, 10, 10)   # momentum 1.0 at the end: no change
    other = ModelEma(_net())
    other.load_state_dict(ema.state_dict())
    for k, v in other.state_dict().items():
        assert torch.equal(v, ema.state_dict()[k])


def test_covers_whole_gtpt_state():
    from gtpt.models import build_model
    model = build_model("gtpt-t-body")
    ema = ModelEma(model)
    assert set(ema.state_dict()) == set(model.state_dict())
    n_buf = sum(1 for k in ema._float_names if "running_" in k)
    assert n_buf > 10   # BatchNorm buffers are averaged too


def test_ema_warmup_follows_the_live_weights_early():
    from gtpt.engine.ema import ema_momentum
    assert ema_momentum(0, 1000, warmup=True) == pytest.approx(0.1)
    assert ema_momentum(0, 1000) == pytest.approx(0.996)
    assert ema_momentum(5000, 10000, warmup=True) == ema_momentum(5000, 10000)   # the cap ends early
    lin = torch.nn.Linear(2, 2)
    ema = ModelEma(lin, 0.996, warmup=True)
    with torch.no_grad():
        lin.weight.fill_(1.0)
    for step in range(20):
        ema.update(lin, step, 20)
    # without warm-up ~96% of the initial weights would remain; with it, almost none
    assert (ema.module.weight - 1.0).abs().max() < 0.05
