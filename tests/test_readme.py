"""The README's Python example runs as printed, on files made here under the names it uses."""
from __future__ import annotations

import re
import shutil

import cv2
import torch

from gtpt.assets import DEMO_IMAGE, DEMO_TWO_PEOPLE
from tests._inference_utils import write_clip
from tests.conftest import load_official_fixture
from tests.helpers import REPO_ROOT, TINY_YOLO


def test_readme_python_example_runs(tmp_path, monkeypatch, capsys):
    blocks = re.findall(r"```python\n(.*?)```", (REPO_ROOT / "README.md").read_text(), re.S)
    assert blocks, "README.md has no python example"
    monkeypatch.chdir(tmp_path)
    torch.save({"state_dict": load_official_fixture("gtpt-t-body")["state_dict"]}, "gtpt_t_coco.pth")
    shutil.copy(DEMO_IMAGE, "photo.jpg")
    shutil.copy(DEMO_TWO_PEOPLE, "group_photo.jpg")
    shutil.copy(TINY_YOLO, "yolo11n.onnx")   # tiny, random weights
    write_clip(tmp_path / "clip.mp4", cv2.imread(str(DEMO_TWO_PEOPLE)), frames=3, shift=8, fps=10.0)

    exec(compile(blocks[0], "README.md (python example)", "exec"), {"__name__": "readme"})

    lines = capsys.readouterr().out.splitlines()
    person = [line for line in lines if line.startswith("[")]   # print(p.box, p.score, p.keypoints)
    assert len(person) >= 1 and person[0].split("]")[0].split() == ["[", "60.", "20.", "300.", "520."]   # its box
    assert [line.split()[0] for line in lines[-3:]] == ["0", "1", "2"]   # one line per video frame
