"""Shrink a COCO keypoint dataset to one small image per labelled person (for shipping it to a
remote GPU): each person's surroundings (2.2x the box's longer side, square, clipped) are cut
out, downscaled to at most --max-side pixels and saved as JPEG, with the box and joints mapped.
Top-down training only looks at a padded box around each person, so nothing it uses is lost.

    python tools/mini_dataset/crop_people.py --ann DIR/annotations/person_keypoints_train.json \
        --images DIR/images --out CROPS
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np


def crop_dataset(ann_path: Path, image_dir: Path, out_dir: Path, max_side: int, context: float) -> dict:
    data = json.loads(ann_path.read_text())
    images = {im["id"]: im for im in data["images"]}
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    new_images, new_anns = [], []
    for ann in data["annotations"]:
        if ann.get("num_keypoints", 0) == 0 or ann.get("iscrowd", 0):
            continue
        im = images[ann["image_id"]]
        frame = cv2.imread(str(image_dir / im["file_name"]))
        if frame is None:
            raise FileNotFoundError(f"cannot read {image_dir / im['file_name']}")
        x, y, w, h = ann["bbox"]
        side = context * max(w, h)
        cx, cy = x + w / 2, y + h / 2
        x0, y0 = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
        x1, y1 = int(min(frame.shape[1], cx + side / 2)), int(min(frame.shape[0], cy + side / 2))
        crop = frame[y0:y1, x0:x1]
        s = min(1.0, max_side / max(crop.shape[:2]))
        crop = cv2.resize(crop, (round(crop.shape[1] * s), round(crop.shape[0] * s)), interpolation=cv2.INTER_AREA)
        kp = np.asarray(ann["keypoints"], np.float64).reshape(-1, 3)
        vis = kp[:, 2] > 0
        kp[vis, 0] = (kp[vis, 0] - x0) * s
        kp[vis, 1] = (kp[vis, 1] - y0) * s
        name = f"{Path(im['file_name']).stem}_p{ann['id']}.jpg"
        cv2.imwrite(str(out_dir / "images" / name), crop, [cv2.IMWRITE_JPEG_QUALITY, 92])
        new_images.append({"id": ann["id"], "file_name": name, "width": crop.shape[1], "height": crop.shape[0]})
        box = [(x - x0) * s, (y - y0) * s, w * s, h * s]
        new_anns.append({**ann, "image_id": ann["id"], "bbox": [round(v, 2) for v in box],
                         "area": round(box[2] * box[3], 2), "keypoints": [round(float(v), 2) for v in kp.ravel()]})
    out = {**data, "images": new_images, "annotations": new_anns}
    (out_dir / ann_path.name).write_text(json.dumps(out))
    return {"people": len(new_anns)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ann", required=True, type=Path)
    p.add_argument("--images", required=True, type=Path)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--max-side", type=int, default=448)
    p.add_argument("--context", type=float, default=2.2, help="crop side / the box's longer side")
    a = p.parse_args()
    print(crop_dataset(a.ann, a.images, a.out, a.max_side, a.context))


if __name__ == "__main__":
    main()
