"""torch.compile (inductor, CPU) gives the reference outputs too. Slow: one compile, ~1-2 min."""
from __future__ import annotations

import pytest
import torch

from gtpt import load_official_checkpoint

from .conftest import load_official_fixture


@pytest.mark.slow
def test_compiled_model_matches_reference_logits():
    fx = load_official_fixture("gtpt-t-body")
    model = load_official_checkpoint(fx["state_dict"], "gtpt-t-body")
    compiled = torch.compile(model, dynamic=False)
    with torch.no_grad():
        px, py = compiled(fx["x"])
    assert (px - fx["eval"]["pred_x"]).abs().max() < 1e-4
    assert (py - fx["eval"]["pred_y"]).abs().max() < 1e-4
