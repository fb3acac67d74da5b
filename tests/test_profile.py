"""MAC counting: the paper's figures, and agreement with an independent forward-hook count."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from torch import nn

from gtpt import build_model
from gtpt.profile import count_cost

PAPER = {  # recipe.md: thop-style GMACs and params (M) of the reference code
    "gtpt-t-body": (0.663, 2.37), "gtpt-s-body": (1.626, 5.43), "gtpt-b-body": (3.647, 8.32),
    "gtpt-t-wholebody": (0.832, 2.37), "gtpt-s-wholebody": (1.995, 5.43), "gtpt-b-wholebody": (4.015, 8.32),
}
FULL = {"gtpt-t-body": 0.768, "gtpt-s-body": 1.780, "gtpt-b-body": 3.783}
UNPRUNED = {"gtpt-t-body": 1.298, "gtpt-s-body": 3.052, "gtpt-b-body": 5.073}


@pytest.mark.parametrize("name", list(PAPER))
def test_paper_figures(name):
    cost = count_cost(build_model(name))
    gmacs, params = PAPER[name]
    assert abs(cost.gmacs - gmacs) / gmacs < 0.01
    assert abs(cost.params / 1e6 - params) < 0.01
    if name in FULL:
        assert abs(cost.gmacs_with_attention - FULL[name]) / FULL[name] < 0.01
        unpruned = count_cost(build_model(name), (1, 1, 1, 1)).gmacs
        assert abs(unpruned - UNPRUNED[name]) / UNPRUNED[name] < 0.01


def _hook_count(model, keep_rates=None):
    """thop's rules applied with forward hooks to the modules a real forward pass runs."""
    total = {"macs": 0}

    def hook(m, inp, out):
        if isinstance(m, nn.Conv2d):
            total["macs"] += out.numel() * m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]
        elif isinstance(m, nn.Linear):
            total["macs"] += out.numel() * m.in_features
        elif isinstance(m, (nn.BatchNorm2d, nn.LayerNorm)):
            total["macs"] += 4 * out.numel()

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    with torch.no_grad():
        model.eval()(torch.randn(1, 3, 256, 192), keep_rates=keep_rates)
    for h in handles:
        h.remove()
    return total["macs"]


@pytest.mark.parametrize("name,rates", [("gtpt-t-body", None), ("gtpt-b-body", None),
                                        ("gtpt-t-wholebody", None), ("gtpt-s-body", (0.9, 0.5, 0.4, 0.2)),
                                        ("gtpt-t-wholebody", (1.0, 1.0, 1.0, 1.0))])
def test_analytic_count_equals_hook_count(name, rates):
    model = build_model(name)
    assert count_cost(model, rates).macs == _hook_count(model, rates)


def test_profile_cli_json():
    run = subprocess.run([sys.executable, "-m", "gtpt", "profile", "--model", "gtpt-t-body", "--json"],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    row = json.loads(run.stdout)
    assert abs(row["gmacs"] - 0.663) < 0.007 and row["keep_rates"] == [1.0, 0.7, 0.3, 0.1]
    bad = subprocess.run([sys.executable, "-m", "gtpt", "profile", "--keep-rates", "1", "0.5", "0.8", "0.1"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "increase" in bad.stdout
