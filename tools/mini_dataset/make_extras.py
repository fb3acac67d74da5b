#!/usr/bin/env python3
"""Derived artefacts of a built gtpt-mini dataset (needs only numpy + opencv).

  grid     draw labelled frames (boxes + skeletons) into one picture, for checking by eye
  sample   write the small committed test sample (tests/data/mini_sample/)
  demo     write a single downscaled frame (e.g. src/gtpt/assets/demo.jpg)
"""
from __future__ import annotations

import argparse
import json
import os

import cv2
import numpy as np

SKELETON = [[16, 14], [14, 12], [17, 15], [15, 13], [12, 13], [6, 12], [7, 13], [6, 7], [6, 8],
            [7, 9], [8, 10], [9, 11], [2, 3], [1, 2], [1, 3], [2, 4], [3, 5], [4, 6], [5, 7]]
# BGR; left side green, right side orange, centre blue
LEFT, RIGHT, MID = (0, 200, 0), (0, 140, 255), (255, 160, 50)


def joint_colour(j):
    if j == 0:
        return MID
    return LEFT if j % 2 == 1 else RIGHT


def load(ann_path):
    with open(ann_path) as f:
        coco = json.load(f)
    by_img = {}
    for a in coco["annotations"]:
        by_img.setdefault(a["image_id"], []).append(a)
    return coco, by_img


def draw(im, anns, scale=1.0, thick=2):
    for a in anns:
        x, y, w, h = [v * scale for v in a["bbox"]]
        if a["num_keypoints"] == 0:  # unlabelled person (ignored by COCO eval): red box
            cv2.rectangle(im, (int(x), int(y)), (int(x + w), int(y + h)), (0, 0, 255), max(1, thick - 1))
            continue
        cv2.rectangle(im, (int(x), int(y)), (int(x + w), int(y + h)), (255, 255, 0), thick)
        kp = np.array(a["keypoints"], float).reshape(-1, 3)
        kp[:, :2] *= scale
        for i, j in SKELETON:
            i, j = i - 1, j - 1
            if kp[i, 2] > 0 and kp[j, 2] > 0:
                c = MID if (i < 5 and j < 5) or {i, j} in ({5, 6}, {11, 12}) else joint_colour(j)
                cv2.line(im, tuple(int(v) for v in kp[i, :2]), tuple(int(v) for v in kp[j, :2]), c, thick, cv2.LINE_AA)
        for j in range(len(kp)):
            if kp[j, 2] > 0:
                cv2.circle(im, (int(kp[j, 0]), int(kp[j, 1])), thick + 1, joint_colour(j), -1, cv2.LINE_AA)
    return im


def fit(im, tw, th):
    s = min(tw / im.shape[1], th / im.shape[0])
    r = cv2.resize(im, (int(im.shape[1] * s), int(im.shape[0] * s)), interpolation=cv2.INTER_AREA)
    canvas = np.full((th, tw, 3), 40, np.uint8)
    y0, x0 = (th - r.shape[0]) // 2, (tw - r.shape[1]) // 2
    canvas[y0:y0 + r.shape[0], x0:x0 + r.shape[1]] = r
    return canvas


def cmd_grid(a):
    coco, by_img = load(a.ann)
    imgs = {i["file_name"]: i for i in coco["images"]}
    names = a.files.split(",") if a.files else [i["file_name"] for i in coco["images"]][::max(1, a.every)][:a.n]
    tiles = []
    for n in names:
        info = imgs[n]
        im = cv2.imread(os.path.join(a.images, n))
        im = draw(im, by_img.get(info["id"], []), thick=max(1, round(max(im.shape[:2]) / 400)))
        t = fit(im, a.tile_w, a.tile_h)
        if a.label:
            cv2.putText(t, n[:-4], (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
        tiles.append(t)
    while len(tiles) % a.cols:
        tiles.append(np.full_like(tiles[0], 40))
    rows = [np.hstack(tiles[i:i + a.cols]) for i in range(0, len(tiles), a.cols)]
    grid = np.vstack(rows)
    if a.out.endswith(".png"):
        cv2.imwrite(a.out, grid, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    else:
        cv2.imwrite(a.out, grid, [cv2.IMWRITE_JPEG_QUALITY, 85])
    print(a.out, grid.shape, os.path.getsize(a.out))


def cmd_sample(a):
    """Copy chosen frames, downscaled to --max-side, with their labels rescaled."""
    out_imgs = []
    out_anns = []
    cats = None
    os.makedirs(os.path.join(a.out, "images"), exist_ok=True)
    for ann in a.ann.split(","):
        coco, by_img = load(ann)
        cats = coco["categories"]
        imgs = {i["file_name"]: i for i in coco["images"]}
        for n in a.files.split(","):
            if n not in imgs:
                continue
            info = imgs[n]
            im = cv2.imread(os.path.join(a.images, n))
            s = min(1.0, a.max_side / max(im.shape[:2]))
            im = cv2.resize(im, (round(im.shape[1] * s), round(im.shape[0] * s)), interpolation=cv2.INTER_AREA)
            cv2.imwrite(os.path.join(a.out, "images", n), im, [cv2.IMWRITE_JPEG_QUALITY, a.quality])
            iid = len(out_imgs) + 1
            out_imgs.append({"id": iid, "file_name": n, "width": im.shape[1], "height": im.shape[0]})
            for an in by_img.get(info["id"], []):
                kp = np.array(an["keypoints"], float).reshape(-1, 3)
                kp[:, :2] *= s
                kps = []
                for x, y, v in kp:
                    kps += [round(x, 2), round(y, 2), int(v)]
                b = [round(v * s, 2) for v in an["bbox"]]
                out_anns.append({"id": len(out_anns) + 1, "image_id": iid, "category_id": 1, "bbox": b,
                                 "area": round(b[2] * b[3], 2), "iscrowd": 0, "keypoints": kps,
                                 "num_keypoints": an["num_keypoints"]})
    order = {n: i for i, n in enumerate(a.files.split(","))}
    assert len(out_imgs) == len(order), "some --files were not found"
    coco = {"info": {"description": "gtpt-mini test sample (see tools/mini_dataset/README.md)"}, "licenses": [],
            "images": out_imgs, "annotations": out_anns, "categories": cats}
    with open(os.path.join(a.out, "person_keypoints.json"), "w") as f:
        json.dump(coco, f, separators=(",", ":"))
    print(len(out_imgs), "images", len(out_anns), "people ->", a.out)


def cmd_demo(a):
    im = cv2.imread(a.image)
    if a.crop:
        x0, y0, x1, y1 = [int(v) for v in a.crop.split(",")]
        im = im[y0:y1, x0:x1]
    s = min(1.0, a.max_side / max(im.shape[:2]))
    im = cv2.resize(im, (round(im.shape[1] * s), round(im.shape[0] * s)), interpolation=cv2.INTER_AREA)
    q = a.quality
    while True:
        ok, buf = cv2.imencode(".jpg", im, [cv2.IMWRITE_JPEG_QUALITY, q])
        if len(buf) <= a.max_bytes or q <= 60:
            break
        q -= 5
    with open(a.out, "wb") as f:
        f.write(buf.tobytes())
    print(a.out, im.shape, len(buf), "bytes, quality", q)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("grid", help="draw labelled frames into one picture")
    g.add_argument("--ann", required=True)
    g.add_argument("--images", required=True)
    g.add_argument("--files", default="", help="comma-separated file names (default: every --every-th image)")
    g.add_argument("--every", type=int, default=10)
    g.add_argument("--n", type=int, default=12)
    g.add_argument("--cols", type=int, default=4)
    g.add_argument("--tile-w", type=int, default=270)
    g.add_argument("--tile-h", type=int, default=480)
    g.add_argument("--label", action="store_true")
    g.add_argument("--out", required=True)
    s = sub.add_parser("sample", help="write a downscaled test sample with its COCO json")
    s.add_argument("--ann", required=True, help="comma-separated annotation files to take labels from")
    s.add_argument("--images", required=True)
    s.add_argument("--files", required=True)
    s.add_argument("--max-side", type=int, default=480)
    s.add_argument("--quality", type=int, default=85)
    s.add_argument("--out", required=True)
    d = sub.add_parser("demo", help="write one downscaled frame")
    d.add_argument("--image", required=True)
    d.add_argument("--crop", default="", help="x0,y0,x1,y1 crop before resizing")
    d.add_argument("--max-side", type=int, default=640)
    d.add_argument("--quality", type=int, default=90)
    d.add_argument("--max-bytes", type=int, default=150_000)
    d.add_argument("--out", required=True)
    a = ap.parse_args()
    {"grid": cmd_grid, "sample": cmd_sample, "demo": cmd_demo}[a.cmd](a)


if __name__ == "__main__":
    main()
