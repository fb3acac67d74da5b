"""What `--det-interval N` saves: the person detector's time per frame against GTPT's per person.

    python benchmarks/detector_cost.py --detector yolo11n.onnx --image frame.jpg --threads 2

Times, on one picture, a `PersonDetector` call (letterbox, onnxruntime, NMS) and the Predictor on one
person (crop, flip test, decode), then prints the time per frame and the frames per second for
1..several people when the detector runs on every N-th frame only (the frames between follow the
people by their joints, which costs nothing extra). Without --image: the shipped demo photo.
"""
from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import cv2
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from gtpt.assets import DEMO_IMAGE, DEMO_WEIGHTS  # noqa: E402
from gtpt.inference.detector import PersonDetector  # noqa: E402
from gtpt.inference.predictor import Predictor  # noqa: E402


def median_ms(fn, repeats: int) -> float:
    fn()   # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--detector", required=True, help="an ultralytics YOLO detection model exported to ONNX")
    p.add_argument("--image", default=str(DEMO_IMAGE), help="the picture to time on (default: the demo photo)")
    p.add_argument("--weights", default=str(DEMO_WEIGHTS), help="GTPT weights (default: the demo weights)")
    p.add_argument("--threads", type=int, help="CPU threads for PyTorch and onnxruntime (default: theirs)")
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--people", type=int, nargs="+", default=[1, 3])
    p.add_argument("--intervals", type=int, nargs="+", default=[1, 2, 3, 5])
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    image = cv2.imread(args.image)
    if image is None:
        p.error(f"{args.image}: cannot read the picture")
    detector = PersonDetector(args.detector, threads=args.threads)
    predictor = Predictor(args.weights)
    h, w = image.shape[:2]
    box = [[w * 0.25, h * 0.1, w * 0.5, h * 0.8, 1.0]]
    det_ms = median_ms(lambda: detector(image), args.repeats)
    pose_ms = median_ms(lambda: predictor.predict(image, box), args.repeats)

    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}")
    print(f"{Path(args.detector).name} on a {w}x{h} picture: {det_ms:.1f} ms per frame; "
          f"{Path(args.weights).name}: {pose_ms:.1f} ms per person (flip test)")
    print(f"{'people':<8}{'detect every':<14}{'ms/frame':>10}{'frames/s':>10}")
    for n in args.people:
        for every in args.intervals:
            ms = det_ms / every + pose_ms * n
            print(f"{n:<8}{every:<14}{ms:>10.1f}{1000 / ms:>10.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
