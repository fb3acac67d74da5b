"""Write tests/data/detector/: two tiny random-weight ultralytics YOLO detectors exported to ONNX
(raw head: YOLO11; end-to-end: YOLO26) and the person boxes ultralytics' own predictor finds with
each on the test pictures. tests/test_detector.py checks that `gtpt.inference.detector` gives the
same boxes from the same files.

Needs ultralytics (and a torchvision that imports), so it runs in its own environment, not in CI:

    python -m venv /tmp/ul && /tmp/ul/bin/pip install torch==2.14.1 torchvision==0.29.1 ultralytics onnx onnxslim
    /tmp/ul/bin/python tools/detector_fixture/make.py

The weights are random, so the boxes mean nothing; the files pin the input/output conventions
(letterbox, padding rounding, class choice, NMS, mapping back to image pixels). The class biases
are set to zero so that many anchors pass the threshold and NMS has work to do.
"""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np
import torch
import ultralytics
import yaml
from ultralytics import YOLO

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "data" / "detector"
IMGSZ = 320
CLASSES = 3             # person (0) and two others: the best class must be the person's
CONF, IOU = 0.25, 0.7   # ultralytics' defaults
CLASS_WEIGHT_STD, CLASS_BIAS = 1.0, -2.0


def pictures() -> dict[str, Path]:
    """The shipped photos plus an odd-sized crop (odd padding on both axes)."""
    assets = ROOT / "src" / "gtpt" / "assets"
    odd = OUT / "odd_crop.png"
    cv2.imwrite(str(odd), cv2.imread(str(assets / "demo_two_people.jpg"))[17:350, 5:520])
    return {"demo.jpg": assets / "demo.jpg", "demo_two_people.jpg": assets / "demo_two_people.jpg",
            "odd_crop.png": odd}


def tiny(family: str, images: list[Path]) -> YOLO:
    cfg = Path(ultralytics.__file__).parent / "cfg" / "models" / {"yolo11": "11", "yolo26": "26"}[family]
    spec = yaml.safe_load((cfg / f"{family}.yaml").read_text())
    spec["nc"] = CLASSES
    spec["scales"] = {"n": [0.33, 0.0625, 64]}
    path = OUT / f"{family}_tiny.yaml"
    path.write_text(yaml.safe_dump(spec))
    torch.manual_seed(0)
    model = YOLO(str(path))
    path.unlink()
    # a random network's activations shrink layer by layer (class scores all ~equal: ties). Setting
    # BatchNorm's statistics from the test pictures keeps them at unit scale, so scores spread;
    # a class bias then sets how many anchors pass CONF
    for m in model.model.modules():
        if m.__class__.__name__ == "Detect":
            for branch in [getattr(m, "cv3", None), getattr(m, "one2one_cv3", None)]:
                for seq in branch or []:
                    last = list(seq.modules())[-1]
                    torch.nn.init.normal_(last.weight, std=CLASS_WEIGHT_STD / last.weight[0].numel() ** 0.5)
                    torch.nn.init.constant_(last.bias, CLASS_BIAS)
    net = model.model
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None          # a plain average over the calibration batch
    batch = np.stack([cv2.resize(cv2.imread(str(p)), (IMGSZ, IMGSZ))[..., ::-1].transpose(2, 0, 1)
                      for p in images])
    net.train()
    with torch.no_grad():
        net(torch.from_numpy(batch.copy()).float() / 255)
    net.eval()
    return model


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    pics = pictures()
    expected = {"ultralytics": ultralytics.__version__, "imgsz": IMGSZ, "conf": CONF, "iou": IOU, "models": {}}
    for family, name in (("yolo11", "yolo11_raw.onnx"), ("yolo26", "yolo26_end2end.onnx")):
        model = tiny(family, list(pics.values()))
        # nms=False keeps YOLO26's NMS-free one-to-one head in the graph ([1, 300, 6])
        exported = Path(model.export(format="onnx", imgsz=IMGSZ, simplify=True, dynamic=False,
                                     nms=False if family == "yolo26" else None))
        shutil.move(exported, OUT / name)
        det = YOLO(str(OUT / name), task="detect")
        boxes = {}
        for key, path in pics.items():
            r = det.predict(str(path), imgsz=IMGSZ, conf=CONF, iou=IOU, classes=[0], verbose=False)[0]
            xyxy = r.boxes.xyxy.cpu().numpy().astype(float)
            boxes[key] = np.concatenate([xyxy, r.boxes.conf.cpu().numpy()[:, None]], axis=1).round(4).tolist()
            print(f"{name} {key}: {len(xyxy)} person boxes")
        expected["models"][name] = boxes
    (OUT / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
