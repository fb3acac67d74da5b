"""Shared pytest fixtures: the authors' reference tensors (../shared beside the repo)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

torch.set_num_threads(min(2, torch.get_num_threads()))

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "official"
FIXTURE_FILES = {"gtpt-t-body": "pose_gtpt_t_human.pt", "gtpt-t-wholebody": "pose_gtpt_t_wholebody.pt"}


def load_official_fixture(name: str) -> dict:
    path = FIXTURES / FIXTURE_FILES[name]
    if not path.is_file():
        pytest.skip(f"reference fixtures not found at {path} (../shared must sit beside the repo)")
    return torch.load(path, weights_only=True)


@pytest.fixture(scope="session", params=list(FIXTURE_FILES))
def official(request):
    """(preset name, fixture dict) for T body and T whole-body."""
    return request.param, load_official_fixture(request.param)
