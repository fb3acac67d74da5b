"""gtpt predict INPUT... [--weights FILE] [--boxes detections.json | --detector yolo.onnx] [--out DIR] ...

Images, folders, globs, videos and streams (a camera index such as 0, or a URL: rtsp://,
http://...) in; DIR/predictions.json (COCO results) and annotated copies out (DIR/<name>.jpg; for
a video or stream DIR/<name>.mp4 + DIR/<name>.json per frame, people tracked across frames, joints
smoothed over time with --smooth; --json-only writes no pictures or videos). Ctrl-C stops early
and keeps what was done: the json of the images done, and the video or stream so far.
Bad files are reported by name and skipped. Exit 0 when anything was processed, 1 when
nothing could be, 2 for unusable options (weights, boxes file), 130 after Ctrl-C.
"""
from __future__ import annotations

import contextlib
import itertools
import sys
import warnings
from pathlib import Path

from ._weights import add_keep_rates_argument, add_precision_argument, add_weights_arguments, announce, \
    choose_weights
from ..inference.draw import DRAW_KPT_THR
from ..inference.smoothing import DEFAULT_BETA, DEFAULT_MIN_CUTOFF

IMAGES_PER_STEP = 8  # images read and drawn per predict_batch call (people are batched inside)


def add_arguments(p):
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="images, folders, glob patterns, video files, or streams: a camera index (0) or a URL "
                        "(rtsp://, http://...)")
    add_weights_arguments(p)
    boxes = p.add_mutually_exclusive_group()
    boxes.add_argument("--boxes", metavar="JSON", help="person boxes: COCO detection results (or see docs); "
                                                       "default: the whole image is one person")
    boxes.add_argument("--detector", metavar="ONNX",
                       help="find the people with this person detector: an ultralytics YOLO detection "
                            "model exported to ONNX (`yolo export model=yolo11n.pt format=onnx`); "
                            "also on video frames")
    p.add_argument("--det-thr", type=float, default=0.25, help="detector confidence threshold")
    p.add_argument("--det-nms", type=float, default=0.7,
                   help="detector NMS: IoU above which the weaker of two person boxes is dropped")
    p.add_argument("--det-interval", type=int, default=1, metavar="N",
                   help="videos and streams: run the detector on every N-th frame only and follow each person "
                        "by their joints in between (faster; people who walk in appear at the next detection)")
    p.add_argument("--out", default="gtpt_predictions", metavar="DIR", help="output folder")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--backend", choices=("torch", "onnxruntime"), default=None,
                   help="inference backend (default: onnxruntime for an .onnx file, else torch)")
    add_precision_argument(p)
    p.add_argument("--kpt-thr", type=float, default=DRAW_KPT_THR,
                   help="joints scoring at or below this are not drawn (SA-SimCC scores peak near 0.1)")
    p.add_argument("--no-flip", action="store_true",
                   help="skip the flip test (about 2x faster, a little less accurate)")
    add_keep_rates_argument(p)
    p.add_argument("--batch-size", type=int, default=32, help="people per forward pass")
    p.add_argument("--compile", action="store_true",
                   help="torch backend: torch.compile the network (CUDA graphs on a GPU); each new batch size "
                        "(padded to a power of two) compiles first, so it pays off on long videos")
    p.add_argument("--smooth", action="store_true",
                   help="videos: smooth each tracked person's joints over time (One-Euro filter); "
                        "less jitter, a little lag on fast moves")
    p.add_argument("--smooth-cutoff", type=float, default=DEFAULT_MIN_CUTOFF, metavar="HZ",
                   help="--smooth: cut-off frequency for still joints (lower: smoother) (default: %(default)g)")
    p.add_argument("--smooth-beta", type=float, default=DEFAULT_BETA, metavar="BETA",
                   help="--smooth: how fast the cut-off rises with speed, per person size per second "
                        "(higher: less lag) (default: %(default)g)")
    p.add_argument("--max-frames", type=int, default=None, metavar="N",
                   help="videos and streams: stop after N frames (a camera otherwise runs until Ctrl-C)")
    p.add_argument("--every-frame", action="store_true",
                   help="streams: process every frame, even when that falls behind the live stream; without "
                        "it, frames that arrive while the model is busy are skipped")
    pictures = p.add_mutually_exclusive_group()
    pictures.add_argument("--show-pruning", action="store_true",
                          help="also write DIR/<name>_pruning.png: the patches each keypoint group kept (best person)")
    pictures.add_argument("--json-only", action="store_true",
                          help="write the json results only: no annotated pictures or videos (e.g. a camera "
                               "watched for hours)")


def _err(msg: str) -> None:
    print(f"gtpt predict: {msg}", file=sys.stderr, flush=True)


def build_predictor(args, choice):
    from ..inference.detector import PersonDetector
    from ..inference.predictor import Predictor
    detector = None
    if getattr(args, "detector", None):
        detector = PersonDetector(args.detector, args.device, score_thr=args.det_thr, nms_thr=args.det_nms)
        print(f"people from {detector}")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "UNTRAINED weights", UserWarning)  # announce() already said so
        return Predictor(choice.source, device=args.device, backend=args.backend, flip_test=not args.no_flip,
                         keep_rates=args.keep_rates, batch_size=args.batch_size, expect=choice.expect,
                         precision=args.precision, detector=detector, compile=getattr(args, "compile", False))


def run(args) -> int:
    from ..inference.io import InputError, expand_inputs, load_boxes
    from ..inference.smoothing import KeypointSmoother
    from ..models.checkpoint import CheckpointError

    items, problems = expand_inputs(args.inputs)
    for msg in problems:
        _err(msg)
    if not items:
        _err("nothing to do: no image or video file among the inputs")
        return 1
    for flag, value in (("--max-frames", args.max_frames), ("--det-interval", args.det_interval)):
        if value is not None and value < 1:
            _err(f"error: {flag} must be >= 1, got {value}")
            return 2
    images = [it.path for it in items if it.kind == "image"]
    videos = [it.path for it in items if it.kind in ("video", "stream")]
    boxes = None
    if args.boxes:
        try:
            boxes = load_boxes(args.boxes, images)
        except InputError as e:
            _err(f"error: {e}")
            return 2
        missing = [p.name for p in images if p not in boxes]
        if missing:
            _err(f"{args.boxes} has no boxes for {len(missing)} image(s), which get no people: "
                 f"{', '.join(missing[:10])}{' ...' if len(missing) > 10 else ''}")
        if videos:
            _err("--boxes applies to images only; video frames use the whole frame as the person box "
                 "(--detector finds the people in each frame)")
    if args.det_interval > 1 and not args.detector:
        _err("--det-interval applies with --detector only; ignored")
    if args.smooth and not videos:
        _err("--smooth applies to videos only; the images are not smoothed")
    try:
        KeypointSmoother(args.smooth_cutoff, args.smooth_beta)   # bad settings fail before any work
        choice = choose_weights(args.weights, args.model)
        announce(choice)
        predictor = build_predictor(args, choice)
    except (CheckpointError, FileNotFoundError, ValueError, ImportError) as e:
        _err(f"error: {e}")
        return 2

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    names = _output_names(images + videos)
    done = 0
    try:
        if images:
            done += _run_images(predictor, images, boxes, names, out, args)
        for v in videos:
            done += _run_video(predictor, v, names[v], out, args)
    except KeyboardInterrupt:
        _err("stopped by Ctrl-C")
        return 130
    finally:
        if predictor.times.images:
            print(predictor.times.summary(), flush=True)
    if done == 0:
        _err("nothing could be processed")
        return 1
    return 0


def _output_names(paths: list) -> dict:
    """Unique output stems (clip.mp4 and clip.jpg, or two a.jpg in different folders, do not collide;
    nor does a video called predictions.mp4 with the images' predictions.json)."""
    from ..inference.io import safe_stem, stream_name
    used, out = {"predictions"}, {}
    for p in paths:
        stem, n = stream_name(p) if isinstance(p, str) else safe_stem(p), 2
        name = stem
        while name in used:
            name, n = f"{stem}_{n}", n + 1
        used.add(name)
        out[p] = name
    return out


def _run_images(predictor, paths, boxes, names, out: Path, args) -> int:
    """Images -> annotated copies and COCO results as they go (DIR/predictions.partial.jsonl), then
    DIR/predictions.json. Ctrl-C writes the json for the images done (Ctrl-C is then raised again)."""
    import cv2
    from tqdm import tqdm

    from ..inference.draw import draw_poses
    from ..inference.io import InputError, JsonListWriter, image_ids, read_image

    ids = image_ids(paths)
    results, done = JsonListWriter(out / "predictions.json"), 0
    bar = tqdm(total=len(paths), unit="img", desc="images", disable=len(paths) < 2 or None, file=sys.stderr)
    interrupted = False
    try:
        for start in range(0, len(paths), IMAGES_PER_STEP):
            chunk, imgs = [], []
            for p in paths[start:start + IMAGES_PER_STEP]:
                try:
                    imgs.append(read_image(p))
                    chunk.append(p)
                except InputError as e:
                    _err(f"skipped: {e}")
                    bar.update(1)
            if not chunk:
                continue
            box_rows = [boxes.get(p, (None, []))[1] if boxes is not None else None for p in chunk]
            people_lists = predictor.predict_batch(imgs, box_rows, names=[str(p) for p in chunk])
            for p, img, people in zip(chunk, imgs, people_lists):
                image_id = boxes[p][0] if boxes is not None and p in boxes and boxes[p][0] is not None else ids[p]
                if not args.json_only:
                    cv2.imwrite(str(out / f"{names[p]}.jpg"), draw_poses(img, people, kpt_thr=args.kpt_thr))
                if args.show_pruning and people:
                    _write_pruning(predictor, img, people, out / f"{names[p]}_pruning.png")
                # an image counts as done, json entries included, once its picture is written
                for person in people:
                    results.append(person.to_coco(image_id, p.name))
                done += 1
                bar.update(1)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        bar.close()
    if done:
        results.close()
        wrote = "predictions.json" if args.json_only else "annotated copies and predictions.json"
        print(f"{done} image(s), {results.count} person(s): {wrote} in {out}")
    else:
        results.discard()
    if interrupted:
        raise KeyboardInterrupt
    return done


def _write_pruning(predictor, img, people, path: Path) -> None:
    import cv2

    from ..inference.draw import draw_pruning
    if predictor.model is None:
        _err("--show-pruning needs PyTorch weights; skipped for the .onnx graph")
        return
    best = max(people, key=lambda q: q.score)
    trace = predictor.kept_patches(img, best.box)
    cv2.imwrite(str(path), draw_pruning(img, best.box, trace, predictor.cfg.image_size,
                                        predictor.cfg.grid, keypoints=best.keypoints))


def _run_video(predictor, source, name: str, out: Path, args) -> int:
    """One video file or stream -> DIR/<name>.mp4 and DIR/<name>.json. Ctrl-C or --max-frames end it
    early with both files written for the frames done (Ctrl-C is then raised again)."""
    from tqdm import tqdm

    from ..inference.draw import draw_poses
    from ..inference.io import InputError, JsonListWriter
    from ..inference.smoothing import KeypointSmoother
    from ..inference.video import VideoReader, VideoWriter

    try:
        reader = VideoReader(source, latest_only=not args.every_frame)
    except InputError as e:
        _err(f"skipped: {e}")
        return 0
    smoother = KeypointSmoother(args.smooth_cutoff, args.smooth_beta) if args.smooth else None
    smoothing = ({"filter": "one-euro", "min_cutoff": args.smooth_cutoff, "beta": args.smooth_beta}
                 if args.smooth else None)
    frames_json = JsonListWriter(out / f"{name}.json", {"video": str(reader.path), "fps": reader.fps,
                                                        "num_joints": predictor.num_joints, "smoothing": smoothing})
    total = min(filter(None, (reader.frame_count, args.max_frames)), default=None)
    bar = tqdm(total=total, unit="frame", desc=name, disable=None, file=sys.stderr)
    interrupted = False
    try:
        video = contextlib.nullcontext() if args.json_only else VideoWriter(out / f"{name}.mp4", reader.fps)
        with reader, video as writer:
            # people keep their track_id from frame to frame; a stream goes frame by frame (no waiting
            # for a batch of live frames), a file reads no further than --max-frames
            step = 1 if reader.is_stream else min(args.batch_size, args.max_frames or args.batch_size)
            frames = predictor.predict_video(reader, smooth=smoother, frames_per_step=step,
                                             det_interval=args.det_interval)
            for f in itertools.islice(frames, args.max_frames):
                t = round(f.time, 4)   # one value for the json and the video's real-time slots
                if writer is not None:
                    writer.write(draw_poses(f.image, f.people, kpt_thr=args.kpt_thr), t)
                frames_json.append({"frame": f.index, "time": t,
                                    "people": [q.to_coco() for q in f.people]})
                bar.update(1)
    except InputError as e:
        frames_json.discard()
        _err(f"skipped: {e}")
        return 0
    except KeyboardInterrupt:
        interrupted = True
    finally:
        bar.close()
    frames_json.close()
    wrote = "" if args.json_only else f"{out / (name + '.mp4')} and "
    print(f"{reader.path}: {frames_json.count} frame(s) -> {wrote}{out / (name + '.json')}")
    if reader.skipped:
        print(f"{reader.path}: {reader.skipped} frame(s) arrived while the model was busy and were skipped "
              "(--every-frame keeps them)")
    if interrupted:
        raise KeyboardInterrupt
    return 1
