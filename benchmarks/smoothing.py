"""Keypoint smoothing (One-Euro filter): error against known trajectories, and jitter on a real video.

    python benchmarks/smoothing.py                        # generated trajectories, a sweep of settings
    python benchmarks/smoothing.py --video clip.mp4       # also: jitter of the demo model's joints on a video

Generated part: joints move along known paths at 30 fps (still; a slow sway; walking-like 1 Hz
swings; fast 2 Hz arm swings of 0.3 person sizes, up to 3.8 sizes/s), with Gaussian noise of
--noise person sizes added as a per-frame pose estimate would. Each row gives the RMS error
against the true path, in % of the person size, per kind of motion: smoothing helps where it
removes more noise than the lag it adds. "raw" is the unfiltered noisy estimate.

Video part: the Predictor (demo weights, whole frame as the box unless --detector) runs on every
frame, and the rows give the median frame-to-frame jitter (|x[t-1] - 2 x[t] + x[t+1]|, % of the
person size, `gtpt.inference.smoothing.person_size`) of joints scoring above the drawing threshold,
raw and smoothed with each setting, and how far the smoothed joints sit from the raw ones. There is
no ground truth here: "shift" mixes removed noise and added lag.
"""
from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from gtpt.inference.smoothing import DEFAULT_BETA, DEFAULT_D_CUTOFF, DEFAULT_MIN_CUTOFF, OneEuroFilter  # noqa: E402

MOTIONS = {            # name -> (frequency Hz, amplitude in person sizes)
    "still": (0.0, 0.0),
    "sway": (0.3, 0.05),
    "walk": (1.0, 0.15),
    "fast": (2.0, 0.30),
}


def trajectories(fps: float, seconds: float, joints: int, rng) -> dict:
    """name -> true positions [T, joints, 2] in person sizes (each joint its own phase and direction)."""
    t = np.arange(int(fps * seconds)) / fps
    out = {}
    for name, (freq, amp) in MOTIONS.items():
        phase = rng.uniform(0, 2 * np.pi, joints)
        direction = rng.normal(size=(joints, 2))
        direction /= np.linalg.norm(direction, axis=1, keepdims=True)
        offset = amp * np.sin(2 * np.pi * freq * t[:, None] + phase)            # [T, joints]
        out[name] = 0.5 + offset[..., None] * direction                          # [T, joints, 2]
    return out


def settings(args) -> list:
    """(label, (min_cutoff, beta, d_cutoff)) for each setting of the sweep; the default first."""
    default = (DEFAULT_MIN_CUTOFF, DEFAULT_BETA, DEFAULT_D_CUTOFF)
    grid = [(c, b, d) for d in args.d_cutoffs for c in args.min_cutoffs for b in args.betas]
    return [(f"{c:g} Hz, beta {b:g}, d {d:g} Hz{' *' if (c, b, d) == default else ''}", (c, b, d))
            for c, b, d in [default] + [g for g in grid if g != default]]


def synthetic(args) -> None:
    rng = np.random.default_rng(0)
    truth = trajectories(args.fps, args.seconds, args.joints, rng)
    noisy = {k: v + rng.normal(scale=args.noise, size=v.shape) for k, v in truth.items()}
    print(f"generated joints: {args.joints} per motion, {args.seconds:g} s at {args.fps:g} fps, noise "
          f"{args.noise * 100:g} % of the person size; RMS error vs truth / noise (raw = 1; * = default)")
    print(f"{'setting':<28}" + "".join(f"{k:>7}" for k in MOTIONS))
    print(f"{'raw':<28}" + "".join(f"{1:>7.2f}" for _ in MOTIONS))
    for label, params in settings(args):
        errs = []
        for k in MOTIONS:
            f = OneEuroFilter(*params)
            est = np.stack([f(x, i / args.fps, scale=1.0) for i, x in enumerate(noisy[k])])
            errs.append(float(np.sqrt(np.mean((est - truth[k]) ** 2))) / args.noise)
        print(f"{label:<28}" + "".join(f"{e:>7.2f}" for e in errs))


def video(args) -> None:
    import gtpt
    from gtpt.commands._weights import DEMO_WEIGHTS
    from gtpt.inference.draw import DRAW_KPT_THR
    from gtpt.inference.smoothing import KeypointSmoother, person_size
    from gtpt.inference.tracking import PoseTracker
    from gtpt.inference.video import VideoReader

    pred = gtpt.Predictor(args.weights or str(DEMO_WEIGHTS), detector=args.detector)
    tracker = PoseTracker()
    people = []   # the first person seen, frame by frame, until it is lost
    with VideoReader(args.video) as reader:
        fps = reader.fps
        for i, frame in enumerate(reader):
            if args.max_frames and i >= args.max_frames:
                break
            first = [p for p in tracker.update(pred.predict(frame)) if p.track_id == 0]
            if not first:
                break
            people.append(first[0])
    raw = np.stack([p.keypoints for p in people])
    size = np.array([person_size(p.keypoints, p.box) for p in people])[:, None]
    conf = raw[1:-1, :, 2] > DRAW_KPT_THR

    def jitter(k):
        acc = np.linalg.norm(k[:-2, :, :2] - 2 * k[1:-1, :, :2] + k[2:, :, :2], axis=-1) / size[1:-1]
        return 100 * float(np.median(acc[conf]))
    print(f"\n{args.video}: {len(raw)} frames at {fps:g} fps, {int(conf.sum())} joint samples scoring above "
          f"{DRAW_KPT_THR:g}; medians, % of the person size ({float(np.median(size)):.0f} px)")
    print(f"{'setting':<28}{'jitter':>8}{'shift':>8}")
    print(f"{'raw':<28}{jitter(raw):>8.2f}{0:>8.2f}")
    for label, params in settings(args):
        smoother = KeypointSmoother(*params)
        smooth = np.stack([smoother.update([copy.copy(p)], i / fps)[0].keypoints for i, p in enumerate(people)])
        shift = np.linalg.norm(smooth[:, :, :2] - raw[:, :, :2], axis=-1) / size
        print(f"{label:<28}{jitter(smooth):>8.2f}{100 * float(np.median(shift[1:-1][conf])):>8.2f}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--fps", type=float, default=30.0)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--joints", type=int, default=50)
    p.add_argument("--noise", type=float, default=0.01, help="per-frame noise, person sizes (std)")
    p.add_argument("--min-cutoffs", nargs="+", type=float, default=[1.0])
    p.add_argument("--betas", nargs="+", type=float, default=[4.0, 16.0, 64.0])
    p.add_argument("--d-cutoffs", nargs="+", type=float, default=[1.0, 4.0])
    p.add_argument("--video", help="also measure jitter on this video")
    p.add_argument("--weights", help="pose weights for --video (default: the shipped demo weights)")
    p.add_argument("--detector", help="YOLO ONNX person detector for --video (default: whole frame)")
    p.add_argument("--max-frames", type=int, default=0)
    args = p.parse_args(argv)
    synthetic(args)
    if args.video:
        video(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
