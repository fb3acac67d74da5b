"""Pictures: skeletons coloured by body part, which patches each keypoint group kept, and the
training samples the network learns from.

All functions take and return uint8 BGR images (OpenCV order) and never modify their input.
"""
from __future__ import annotations

import re
from typing import Optional, Sequence

import cv2
import numpy as np

from ..keypoints import PART_COLOURS, get_keypoint_spec
from .crops import box_to_crop, crop_transform
from .person import Person

BOX_COLOUR = (80, 200, 80)
FONT = cv2.FONT_HERSHEY_SIMPLEX


# Joint scores are SA-SimCC softmax peaks: a prediction exactly as sharp as the training target
# (sigma 4 bins) peaks at 1 / (sqrt(2 pi) 4) = 0.0997, so the usual heatmap threshold of 0.3 would
# hide every joint. 0.02 is a fifth of that best score.
DRAW_KPT_THR = 0.02


def _bgr(rgb) -> tuple[int, int, int]:
    return int(rgb[2]), int(rgb[1]), int(rgb[0])


def draw_poses(image: np.ndarray, people: Sequence, kpt_thr: float = DRAW_KPT_THR, draw_boxes: bool = True,
               thickness: Optional[int] = None) -> np.ndarray:
    """Skeletons, joint dots and boxes of `people` (Person objects) on a copy of `image`.

    Links and joints whose scores are <= kpt_thr are not drawn. Line width follows the image
    size; whole-body face and hand points are drawn smaller than body joints.
    """
    out = image.copy()
    if not people:
        return out
    h, w = out.shape[:2]
    t = thickness or max(1, int(round(min(h, w) / 240)))
    spec = get_keypoint_spec(people[0].num_joints)
    for p in people:
        kp = np.asarray(p.keypoints, np.float64)
        if draw_boxes:
            x, y, bw, bh = (float(v) for v in p.box)
            cv2.rectangle(out, (int(round(x)), int(round(y))), (int(round(x + bw)), int(round(y + bh))),
                          BOX_COLOUR, t, cv2.LINE_AA)
            label = f"{p.score:.2f}" if getattr(p, "track_id", None) is None else f"#{p.track_id} {p.score:.2f}"
            cv2.putText(out, label, (int(x) + 2, max(int(y) - 4, 12)), FONT, 0.4 * t + 0.1,
                        BOX_COLOUR, max(1, t // 2), cv2.LINE_AA)
        ok = (kp[:, 2] > kpt_thr) & np.isfinite(kp[:, :2]).all(1)
        pts = np.round(kp[:, :2]).astype(int)
        for a, b in spec.skeleton:
            if ok[a] and ok[b]:
                dense = spec.joint_parts[a] in ("face", "left_hand", "right_hand")
                cv2.line(out, tuple(pts[a]), tuple(pts[b]), _bgr(spec.link_colour(a, b)),
                         max(1, t // 2) if dense else t + 1, cv2.LINE_AA)
        for k in np.flatnonzero(ok):
            part = spec.joint_parts[k]
            r = max(1, t // 2) if part in ("face", "left_hand", "right_hand") else t + 2
            cv2.circle(out, tuple(pts[k]), r, _bgr(PART_COLOURS[part]), -1, cv2.LINE_AA)
    return out


# ------------------------------------------------------------------ pruning picture
GROUP_NAMES = {17: ("face", "arms", "legs"), 133: ("face + head", "arms + hands", "legs + feet")}
_GROUP_JOINTS = {17: ([0, 1, 2, 3, 4], list(range(5, 11)), list(range(11, 17))),
                 133: ([0, 1, 2, 3, 4] + list(range(23, 91)), list(range(5, 11)) + list(range(91, 133)),
                       list(range(11, 17)) + list(range(17, 23)))}


def pruning_stages(trace: dict) -> tuple[list[str], list[list[np.ndarray]]]:
    """Trace -> (stage labels, per group the patch ids kept after each stage).

    Shared steps ('after_block{i}') apply to all three groups; then each group's own
    'group_entry' and 'after_group_block{j}' (fine block 6 + j).
    """
    shared = sorted((int(m.group(1)), k) for k in trace if (m := re.fullmatch(r"after_block(\d+)", k)))
    own = sorted((int(m.group(1)), k) for k in trace if (m := re.fullmatch(r"after_group_block(\d+)", k)))
    labels = [f"block {i}" for i, _ in shared]
    per_group = [[np.asarray(trace[k]) for _, k in shared] for _ in range(3)]
    if "group_entry" in trace:
        labels.append("group entry")
        for g in range(3):
            per_group[g].append(np.asarray(trace["group_entry"][g]))
    labels += [f"block {6 + j}" for j, _ in own]
    for _, k in own:
        for g in range(3):
            per_group[g].append(np.asarray(trace[k][g]))
    return labels, per_group


def _level_colours(n: int) -> list[tuple[int, int, int]]:
    """n distinct BGR colours from dark purple to yellow (plasma), for levels 1..n."""
    ramp = cv2.applyColorMap(np.linspace(40, 250, max(n, 1)).astype(np.uint8)[:, None], cv2.COLORMAP_PLASMA)
    return [tuple(int(v) for v in c[0]) for c in ramp]


def pruning_panels(image: np.ndarray, box, trace: dict, input_size=(256, 192), grid=(16, 16),
                   keypoints: Optional[np.ndarray] = None, panel_height: int = 420) -> list[np.ndarray]:
    """One picture per keypoint group: the person's region with every input patch tinted by
    the last pruning stage it survived (untinted and dimmed: dropped at the first step).

    Patches are 16x12 input pixels on the 16x16 grid; each is drawn where the crop's inverse
    affine transform puts it in the image. keypoints [K, 3] (optional) marks the group's joints.
    """
    h_img, w_img = image.shape[:2]
    crop = box_to_crop(np.asarray(box, np.float64)[:4], w_img, h_img, input_size)
    if crop is None:
        raise ValueError(f"box {list(box)} lies outside the {w_img}x{h_img} image")
    to_image = crop_transform(*crop, input_size, inv=True)                      # crop px -> image px
    (in_h, in_w), (gr, gc) = input_size, grid
    ph, pw = in_h // gr, in_w // gc
    labels, per_group = pruning_stages(trace)
    colours = _level_colours(len(labels))

    # region shown: the crop's footprint in the image, clipped to it
    corners = np.array([[0, 0], [in_w, 0], [in_w, in_h], [0, in_h]], np.float64)
    foot = corners @ to_image[:, :2].T + to_image[:, 2]
    x0, y0 = np.clip(np.floor(foot.min(0)), 0, [w_img - 1, h_img - 1]).astype(int)
    x1, y1 = np.clip(np.ceil(foot.max(0)), [x0 + 1, y0 + 1], [w_img, h_img]).astype(int)
    zoom = panel_height / (y1 - y0)
    size = (max(1, int(round((x1 - x0) * zoom))), panel_height)
    # crop px -> panel px, for warping the level map and drawing the grid
    to_panel = to_image.copy()
    to_panel[:, 2] -= (x0, y0)
    to_panel *= zoom
    base = cv2.resize(image[y0:y1, x0:x1], size, interpolation=cv2.INTER_AREA)

    num_joints = None if keypoints is None else len(keypoints)
    panels = []
    for g, stages in enumerate(per_group):
        level = np.zeros(gr * gc, np.uint8)                     # stages survived per patch
        for ids in stages:
            level[ids.astype(int)] += 1
        cells = np.kron(level.reshape(gr, gc), np.ones((ph, pw), np.uint8))
        lv = cv2.warpAffine(cells, to_panel, size, flags=cv2.INTER_NEAREST,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=255)
        panel = (base * 0.35).astype(np.uint8)                   # dropped at the first step: dimmed
        for L, colour in enumerate(colours, start=1):
            m = lv == L
            panel[m] = (0.45 * base[m] + 0.55 * np.array(colour)).astype(np.uint8)
        panel[lv == 255] = base[lv == 255] // 5                  # outside the crop
        for r in range(gr + 1):                                  # patch grid
            _poly(panel, to_panel, [(0, r * ph), (in_w, r * ph)])
        for c in range(gc + 1):
            _poly(panel, to_panel, [(c * pw, 0), (c * pw, in_h)])
        if keypoints is not None and num_joints in _GROUP_JOINTS:
            for k in _GROUP_JOINTS[num_joints][g]:
                x, y, s = keypoints[k]
                if s > 0:
                    c = (int(round((x - x0) * zoom)), int(round((y - y0) * zoom)))
                    cv2.circle(panel, c, 4 if k < 17 else 2, (255, 255, 255), -1, cv2.LINE_AA)
                    cv2.circle(panel, c, 4 if k < 17 else 2, (0, 0, 0), 1, cv2.LINE_AA)
        names = GROUP_NAMES.get(num_joints, GROUP_NAMES[17])
        counts = " > ".join(str(len(s)) for s in [np.arange(gr * gc)] + stages)
        panels.append(_titled(panel, f"{names[g]}: {counts}"))
    return panels


def _poly(img, m, pts_crop, colour=(200, 200, 200)):
    pts = np.asarray(pts_crop, np.float64) @ m[:, :2].T + m[:, 2]
    cv2.polylines(img, [np.round(pts).astype(np.int32)], False, colour, 1, cv2.LINE_AA)


def _titled(panel: np.ndarray, title: str) -> np.ndarray:
    bar = np.full((28, panel.shape[1], 3), 30, np.uint8)
    scale = min(0.55, 0.9 * panel.shape[1] / max(1, 10 * len(title)))
    cv2.putText(bar, title, (6, 19), FONT, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return np.concatenate([bar, panel], axis=0)


def draw_pruning(image: np.ndarray, box, trace: dict, input_size=(256, 192), grid=(16, 16),
                 keypoints: Optional[np.ndarray] = None, panel_height: int = 420) -> np.ndarray:
    """The pruning picture: the three group panels side by side, with a legend below.

    trace: `Predictor.kept_patches(image, box)` (original patch ids kept after each step).
    """
    panels = pruning_panels(image, box, trace, input_size, grid, keypoints, panel_height)
    gap = np.full((panels[0].shape[0], 6, 3), 255, np.uint8)
    row = np.concatenate([x for p in panels for x in (p, gap)][:-1], axis=1)
    labels, _ = pruning_stages(trace)
    entries = [((60, 60, 60), "dropped at the first step")] + [
        (c, f"kept to {lab}" if i < len(labels) - 1 else f"kept to the end ({lab})")
        for i, (c, lab) in enumerate(zip(_level_colours(len(labels)), labels))]
    widths = [30 + cv2.getTextSize(text, FONT, 0.45, 1)[0][0] for _, text in entries]
    width = max(row.shape[1], 8 + sum(widths))
    if width > row.shape[1]:  # narrow pictures: the legend widens the canvas
        row = np.concatenate([row, np.full((row.shape[0], width - row.shape[1], 3), 255, np.uint8)], axis=1)
    legend = np.full((34, width, 3), 255, np.uint8)
    x = 8
    for (colour, text), dx in zip(entries, widths):
        cv2.rectangle(legend, (x, 9), (x + 16, 25), colour, -1)
        cv2.putText(legend, text, (x + 22, 22), FONT, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        x += dx
    return np.concatenate([row, legend], axis=0)


# ------------------------------------------------------------------ training samples
def draw_crop_mosaic(images, joints: np.ndarray, captions: Sequence[str], kpt_thr: float = DRAW_KPT_THR,
                     cols: int = 4) -> np.ndarray:
    """Network input crops with joints drawn, as a BGR mosaic of ceil(n / cols) x min(n, cols) tiles.

    images: [n,3,H,W] uint8 RGB (a collated `TopDownDataset` batch's `image`); joints: [n,K,3] =
    (x, y, score) in input pixels, drawn where score > kpt_thr; captions: n strings, one per tile.
    """
    n = len(images)
    if n == 0:
        raise ValueError("draw_crop_mosaic: no images")
    h, w = images.shape[2:]
    cols = min(cols, n)
    mosaic = np.zeros((-(-n // cols) * h, cols * w, 3), np.uint8)
    for i in range(n):
        crop = np.ascontiguousarray(images[i].permute(1, 2, 0).numpy()[:, :, ::-1])
        tile = draw_poses(crop, [Person(np.zeros(4), 1.0, joints[i], 1.0)], kpt_thr=kpt_thr, draw_boxes=False)
        (tw, th), _ = cv2.getTextSize(captions[i], FONT, 0.4, 1)
        cv2.rectangle(tile, (0, h - th - 10), (tw + 8, h), (30, 30, 30), -1)   # legible on any crop
        cv2.putText(tile, captions[i], (4, h - 5), FONT, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
        r, c = divmod(i, cols)
        mosaic[r * h:(r + 1) * h, c * w:(c + 1) * w] = tile
    return mosaic


def draw_training_batch(batch: dict, codec, max_images: int = 16, cols: int = 4) -> np.ndarray:
    """A mosaic of what the network is trained on: the crops of a collated `TopDownDataset` batch
    (after augmentation) with the joints their SA-SimCC targets encode, decoded back (joints without
    a target are not drawn), each captioned with its image id and augmentation. A wrong flip pair
    shows as swapped left/right colours, a wrong codec as joints off the person.

    batch: image [B,3,H,W] uint8 RGB, target_x [B,K,Wx], target_y [B,K,Wy], target_weight [B,K],
    meta {image_id [B], flipped [B], rotation [B]}. Returns `draw_crop_mosaic`'s picture of the
    first min(B, max_images).
    """
    n = min(int(batch["image"].shape[0]), max_images)
    if n == 0:
        raise ValueError("draw_training_batch: the batch holds no images")
    coords, _ = codec.decode(batch["target_x"][:n], batch["target_y"][:n])   # argmax of each target
    joints = np.concatenate([coords.numpy(), batch["target_weight"][:n, :, None].numpy()], axis=2)
    meta = batch["meta"]
    captions = []
    for i in range(n):
        rot = float(meta["rotation"][i])
        captions.append(f"image {int(meta['image_id'][i])}" + " flip" * bool(meta["flipped"][i])
                        + (f" rot {rot:+.0f}" if rot else ""))
    return draw_crop_mosaic(batch["image"][:n], joints, captions, kpt_thr=0.5, cols=cols)


__all__ = ["draw_poses", "draw_pruning", "draw_crop_mosaic", "draw_training_batch", "pruning_panels", "pruning_stages", "GROUP_NAMES"]
