#!/usr/bin/env python3
"""Copy-paste augmentation for gtpt-mini: labelled people cut out and pasted onto other scenes.

gtpt-mini has a few people in two or three places, so a model trained on it learns those places.
This tool makes new training images that keep each labelled person (and its labels) but change
everything around them:

1. ``masks`` (needs mediapipe, like build.py): BlazePose with ``enable_segmentation=True`` runs on
   every person crop (from crop_people.py). The mask is kept only if the teacher's joints on this
   run agree with the stored label (OKS >= --min-oks), so that it belongs to the labelled person
   and not to a neighbour. Masks are written as PNG next to a ``masks.json`` index.
2. ``paste`` (numpy + OpenCV only): for every masked person, --variants new images: the person,
   recoloured (hue turn, saturation and brightness scaled on the person alone, which also mimics
   backlight), is alpha-blended onto a random window of a background image (people-free pictures
   from OpenCV's samples and matplotlib's sample data, per-video median backgrounds, and
   procedural clutter), then blurred, noised and JPEG-compressed at random. Joints and box are
   unchanged. The output json holds the original crops plus the new images.

    venv/bin/python tools/mini_dataset/composite.py masks --crops CROPS
    python tools/mini_dataset/composite.py backgrounds --opencv-doc-examples DEB/usr/share/doc/opencv-doc/examples --out BG_DIR
    python tools/mini_dataset/composite.py paste --crops CROPS --backgrounds BG_DIR [BG_DIR ...] \
        --out CROPS_PLUS --variants 3
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build import BLAZE_TO_COCO, oks, read_frames  # noqa: E402  (shared with the builder)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp"}
BACKGROUND_MAX_SIDE = 1024   # pictures are shrunk to this when loaded
# people-free pictures under opencv-doc's examples/ (lena, messi5, basketball*, Megamind* show people)
OPENCV_DOC_BACKGROUNDS = [
    *(f"data/{n}" for n in (
        "aero1.jpg", "aero3.jpg", "aloeL.jpg", "apple.jpg", "baboon.jpg", "blox.jpg", "board.jpg",
        "box_in_scene.png", "building.jpg", "butterfly.jpg", "fruits.jpg", "graf1.png", "graf3.png",
        "home.jpg", "HappyFish.jpg", "leuvenA.jpg", "leuvenB.jpg", "orange.jpg", "rubberwhale1.png",
        "smarties.png", "squirrel_cls.jpg", "starry_night.jpg", "stuff.jpg", "sudoku.png",
        "chicky_512.png", "cards.png", "pic1.png", "ela_original.jpg", "licenseplate_motion.jpg",
        "left01.jpg", "right05.jpg")),
    *(f"text/scenetext0{i}.jpg" for i in range(1, 7)),
    "reg/home.png", "alphamat/input_images/plant.jpg", "dnn_superres/butterfly.png",
]


def load_crops(crops: Path) -> dict:
    ann_file = crops / "person_keypoints_train.json"
    if not ann_file.is_file():
        raise SystemExit(f"{ann_file}: not found (make it with crop_people.py)")
    return json.loads(ann_file.read_text())


# ---------------------------------------------------------------- masks (mediapipe)
def make_masks(crops: Path, min_oks: float) -> None:
    import mediapipe as mp

    data = load_crops(crops)
    anns = {a["image_id"]: a for a in data["annotations"]}
    out_dir = crops / "masks"
    out_dir.mkdir(exist_ok=True)
    index, rejected = {}, 0
    with mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1,
                                enable_segmentation=True, min_detection_confidence=0.3) as pose:
        for im in data["images"]:
            path = crops / "images" / im["file_name"]
            bgr = cv2.imread(str(path))
            if bgr is None:
                raise SystemExit(f"{path}: cannot read image")
            h, w = bgr.shape[:2]
            s = max(1.0, 256 / max(h, w))                       # the teacher wants >= 256 px
            big = cv2.resize(bgr, (round(w * s), round(h * s)), interpolation=cv2.INTER_CUBIC) if s > 1 else bgr
            res = pose.process(cv2.cvtColor(big, cv2.COLOR_BGR2RGB))
            ann = anns[im["id"]]
            if res.pose_landmarks is None or res.segmentation_mask is None:
                rejected += 1
                continue
            lm = np.array([[p.x * w, p.y * h, 1.0] for p in res.pose_landmarks.landmark])[BLAZE_TO_COCO]
            gt = np.asarray(ann["keypoints"], np.float64).reshape(-1, 3)
            score = oks(lm, gt, ann["bbox"][2] * ann["bbox"][3])
            if score < min_oks:
                rejected += 1
                continue
            mask = cv2.resize(res.segmentation_mask, (w, h), interpolation=cv2.INTER_LINEAR)
            name = Path(im["file_name"]).stem + ".png"
            cv2.imwrite(str(out_dir / name), np.clip(mask * 255, 0, 255).astype(np.uint8))
            index[im["file_name"]] = {"mask": name, "oks": round(score, 3)}
    (crops / "masks.json").write_text(json.dumps(index, indent=0))
    print(f"masks: {len(index)} kept, {rejected} rejected (no pose/mask or OKS < {min_oks})")


# ---------------------------------------------------------------- backgrounds
def make_backgrounds(examples: Path, out: Path) -> None:
    """Collect the background pictures: opencv-doc pictures, tree.avi frames, vtest's median, and
    matplotlib's people-free sample picture when matplotlib is installed."""
    out.mkdir(parents=True, exist_ok=True)
    for rel in OPENCV_DOC_BACKGROUNDS:
        src = examples / rel
        if not src.is_file():
            raise SystemExit(f"{src}: not found (is --opencv-doc-examples the `examples` folder?)")
        shutil.copyfile(src, out / rel.replace("/", "_"))
    for i, frame in enumerate(read_frames(str(examples / "data" / "tree.avi"), BACKGROUND_MAX_SIDE, step=40)):
        cv2.imwrite(str(out / f"tree_{i:02d}.jpg"), frame)
    median = np.median(np.stack(read_frames(str(examples / "data" / "vtest.avi"), BACKGROUND_MAX_SIDE, step=13)), axis=0)
    cv2.imwrite(str(out / "vtest_median.jpg"), median.astype(np.uint8))   # the street without walkers
    try:
        import matplotlib
        shutil.copyfile(Path(matplotlib.get_data_path()) / "sample_data" / "Minduka_Present_Blue_Pack.png",
                        out / "Minduka_Present_Blue_Pack.png")
    except (ImportError, OSError):
        print("matplotlib's sample picture not found: left out")
    print(f"backgrounds: {len(list(out.iterdir()))} pictures in {out}")


# ---------------------------------------------------------------- paste (numpy + OpenCV)
def load_backgrounds(dirs: list[Path], max_side: int = BACKGROUND_MAX_SIDE) -> list[np.ndarray]:
    bgs = []
    for d in dirs:
        files = [d] if d.is_file() else sorted(p for p in d.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        for p in files:
            im = cv2.imread(str(p), cv2.IMREAD_COLOR)
            if im is None or min(im.shape[:2]) < 64:
                continue
            s = min(1.0, max_side / max(im.shape[:2]))
            bgs.append(cv2.resize(im, None, fx=s, fy=s, interpolation=cv2.INTER_AREA) if s < 1 else im)
    if not bgs:
        raise SystemExit(f"no background images found in {', '.join(map(str, dirs))}")
    return bgs


def procedural_background(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Smooth colour noise plus random lines, boxes and blobs: clutter without people."""
    small = rng.uniform(0, 255, (rng.integers(2, 9), rng.integers(2, 9), 3)).astype(np.float32)
    im = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    for _ in range(rng.integers(3, 15)):
        color = tuple(float(c) for c in rng.uniform(0, 255, 3))
        p, q = (int(rng.integers(0, w)), int(rng.integers(0, h))), (int(rng.integers(0, w)), int(rng.integers(0, h)))
        kind = rng.integers(3)
        if kind == 0:
            cv2.line(im, p, q, color, int(rng.integers(1, 12)))
        elif kind == 1:
            cv2.rectangle(im, p, q, color, -1 if rng.random() < 0.5 else int(rng.integers(1, 8)))
        else:
            cv2.circle(im, p, int(rng.integers(3, max(4, min(h, w) // 3))), color, -1)
    return np.clip(im + rng.normal(0, rng.uniform(0, 12), im.shape), 0, 255).astype(np.uint8)


def background_window(bgs: list[np.ndarray], h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    if rng.random() < 0.2:
        return procedural_background(h, w, rng)
    src = bgs[rng.integers(len(bgs))]
    H, W = src.shape[:2]
    # a window with the crop's aspect ratio, 20-100% of the picture's size
    frac = rng.uniform(0.2, 1.0)
    ww = max(8, int(min(W, H * w / h) * frac))
    wh = max(8, int(ww * h / w))
    x0, y0 = int(rng.integers(0, max(1, W - ww + 1))), int(rng.integers(0, max(1, H - wh + 1)))
    out = cv2.resize(src[y0:y0 + wh, x0:x0 + ww], (w, h), interpolation=cv2.INTER_LINEAR)
    if rng.random() < 0.5:
        out = out[:, ::-1]
    gain = rng.uniform(0.5, 1.4, 3) if rng.random() < 0.5 else np.full(3, rng.uniform(0.5, 1.5))
    return np.clip(out * gain, 0, 255).astype(np.uint8)


def recolour(bgr: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    hsv = cv2.cvtColor(bgr, cv2.COLOR_BGR2HSV).astype(np.float32)
    hsv[..., 0] = (hsv[..., 0] + rng.uniform(-90, 90) * (rng.random() < 0.6)) % 180
    hsv[..., 1] *= rng.uniform(0.4, 1.6)
    hsv[..., 2] *= rng.uniform(0.35, 1.3)                   # dark people: backlit, in shadow
    return cv2.cvtColor(np.clip(hsv, 0, [179, 255, 255]).astype(np.uint8), cv2.COLOR_HSV2BGR)


def paste_one(person: np.ndarray, mask: np.ndarray, bgs, rng: np.random.Generator) -> np.ndarray:
    h, w = person.shape[:2]
    alpha = np.clip((mask.astype(np.float32) / 255 - 0.25) / 0.5, 0, 1)
    alpha = cv2.GaussianBlur(alpha, (0, 0), rng.uniform(0.5, 1.5))[..., None]
    fg = recolour(person, rng).astype(np.float32)
    out = alpha * fg + (1 - alpha) * background_window(bgs, h, w, rng).astype(np.float32)
    if rng.random() < 0.3:
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.5, 1.8))
    out += rng.normal(0, rng.uniform(0, 8), out.shape)
    out = np.clip(out, 0, 255).astype(np.uint8)
    if rng.random() < 0.15:
        out = cv2.cvtColor(cv2.cvtColor(out, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    return out


def scale_annotation(ann: dict, s: float) -> dict:
    """`ann` with box, area and labelled joints scaled by `s` (unlabelled joints stay 0, 0, 0)."""
    if s == 1:
        return ann
    kp = np.asarray(ann["keypoints"], np.float64).reshape(-1, 3)
    kp[kp[:, 2] > 0, :2] *= s
    return {**ann, "bbox": [round(v * s, 2) for v in ann["bbox"]], "area": round(ann["area"] * s * s, 2),
            "keypoints": [round(float(v), 2) for v in kp.ravel()]}


def paste(crops: Path, bg_dirs: list[Path], out: Path, variants: int, seed: int, max_side: int) -> None:
    data = load_crops(crops)
    index_file = crops / "masks.json"
    if not index_file.is_file():
        raise SystemExit(f"{index_file}: not found (run the `masks` step first)")
    index = json.loads(index_file.read_text())
    bgs = load_backgrounds(bg_dirs)
    rng = np.random.default_rng(seed)
    (out / "images").mkdir(parents=True, exist_ok=True)
    anns = {a["image_id"]: a for a in data["annotations"]}
    images, annotations = [], []
    next_id = max(im["id"] for im in data["images"]) + 1
    for im in data["images"]:
        shutil.copyfile(crops / "images" / im["file_name"], out / "images" / im["file_name"])
        images.append(im)
        annotations.append(anns[im["id"]])
        if im["file_name"] not in index:
            continue
        person = cv2.imread(str(crops / "images" / im["file_name"]))
        mask = cv2.imread(str(crops / "masks" / index[im["file_name"]]["mask"]), cv2.IMREAD_GRAYSCALE)
        s = min(1.0, max_side / max(person.shape[:2]))       # smaller files; the labels scale along
        if s < 1:
            size = (round(person.shape[1] * s), round(person.shape[0] * s))
            person = cv2.resize(person, size, interpolation=cv2.INTER_AREA)
            mask = cv2.resize(mask, size, interpolation=cv2.INTER_AREA)
        ann = scale_annotation(anns[im["id"]], s)
        for v in range(variants):
            name = f"{Path(im['file_name']).stem}_cp{v}.jpg"
            cv2.imwrite(str(out / "images" / name), paste_one(person, mask, bgs, rng),
                        [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(70, 95))])
            images.append({**im, "id": next_id, "file_name": name,
                           "width": person.shape[1], "height": person.shape[0]})
            annotations.append({**ann, "id": next_id, "image_id": next_id})
            next_id += 1
    (out / "person_keypoints_train.json").write_text(json.dumps({**data, "images": images,
                                                                 "annotations": annotations}))
    print(f"paste: {len(images)} images ({len(images) - len(data['images'])} new) from "
          f"{len(index)} masked people and {len(bgs)} background pictures -> {out}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="step", required=True)
    m = sub.add_parser("masks", help="person masks from BlazePose (needs mediapipe)")
    m.add_argument("--crops", required=True, type=Path, help="output folder of crop_people.py")
    m.add_argument("--min-oks", type=float, default=0.7)
    b = sub.add_parser("backgrounds", help="collect the people-free background pictures")
    b.add_argument("--opencv-doc-examples", required=True, type=Path,
                   help="usr/share/doc/opencv-doc/examples of the unpacked opencv-doc .deb")
    b.add_argument("--out", required=True, type=Path)
    s = sub.add_parser("paste", help="write the pasted images and their json")
    s.add_argument("--crops", required=True, type=Path)
    s.add_argument("--backgrounds", required=True, type=Path, nargs="+", help="folders or files")
    s.add_argument("--out", required=True, type=Path)
    s.add_argument("--variants", type=int, default=3, help="new images per masked person")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--max-side", type=int, default=320, help="downscale the new images to at most this")
    a = p.parse_args()
    if a.step == "masks":
        make_masks(a.crops, a.min_oks)
    elif a.step == "backgrounds":
        make_backgrounds(a.opencv_doc_examples, a.out)
    else:
        paste(a.crops, a.backgrounds, a.out, a.variants, a.seed, a.max_side)


if __name__ == "__main__":
    main()
