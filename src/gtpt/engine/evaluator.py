"""Top-down evaluation: boxes -> crops -> (EMA) model with flip test -> keypoints -> COCO AP.

Follows the reference validation: the flipped crop's logits are flipped back with the one-bin x
shift and averaged with the plain logits (as logits), decoded by argmax, projected back to the
image, rescored (box score x mean of joint scores above `kpt_score_thr`), OKS-NMS'd per image
and scored with COCOeval. Under torchrun every rank runs a shard; rank 0 gathers and scores.
"""
from __future__ import annotations

import json
import os
import time
import warnings
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from ..codec import SimCCCodec
from ..data.coco import load_coco_records, load_detection_records
from ..data.dataset import TopDownDataset, normalize_batch
from ..inference.backends import OnnxRunner, default_micro_batch, deployment_forward, in_micro_batches
from ..keypoints import get_keypoint_spec
from . import distributed as du
from .batching import build_loader
from .experiment import Experiment
from .metrics import coco_keypoint_eval, nms_per_image, rescore, to_coco_results


def build_codec(exp: Experiment) -> SimCCCodec:
    m = exp.model
    return SimCCCodec(input_size=m.image_size, split_ratio=m.split_ratio, sigma=m.sigma)


def build_val_dataset(exp: Experiment, boxes: Optional[str] = None,
                      gt_boxes: Optional[bool] = None) -> TopDownDataset:
    """Validation samples: GT person boxes, or the detections json (`boxes` or data.val_boxes).

    gt_boxes=True forces GT boxes; an explicit `boxes` file wins over data.use_gt_boxes;
    otherwise data.use_gt_boxes / data.val_boxes decide.
    """
    d = exp.data
    if not d.val_ann:
        raise ValueError(f"{exp.source}: data.val_ann is not set; evaluation needs a ground-truth json")
    if gt_boxes is None:
        gt_boxes = False if boxes is not None else d.use_gt_boxes
    boxes = boxes if boxes is not None else d.val_boxes
    use_gt = gt_boxes
    if use_gt or not boxes:
        records = load_coco_records(d.val_ann, d.val_images, d.num_joints)
    else:
        records = load_detection_records(boxes, d.val_ann, d.val_images, d.num_joints, d.box_score_thr)
    spec = get_keypoint_spec(d.num_joints)
    return TopDownDataset(records, codec=build_codec(exp), spec=spec, train=False)


def _autocast(device: torch.device, amp: str):
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(amp)
    return torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)


@torch.no_grad()
def predict(model, loader, codec: SimCCCodec, flip_index, *, flip: bool = True, shift: bool = True,
            device=torch.device("cpu"), amp: str = "none", channels_last: bool = True,
            micro_batch: Optional[int] = None, forward=None, picture=None):
    """Run the model over a loader of validation batches.

    model: a GTPT (put in eval mode) or an `OnnxRunner` (an exported graph, float32 numpy in).
    channels_last: the input layout (the fast one for convolutions on CPUs and GPUs); micro_batch:
    images per forward (`in_micro_batches`). Neither changes the logits. forward: what runs a batch
    instead of `model` (e.g. `deployment_forward`'s compiled one). picture: a path: the first batch's
    crops (up to 16) with their predicted joints are drawn there (`draw_crop_mosaic`).

    Returns (people, skipped): people are dicts with image_id, keypoints [K, 3] (image x, y,
    joint score), score (box score), area (box area from scale, as the reference), center, scale.
    """
    if isinstance(model, OnnxRunner):
        forward, amp, channels_last = (lambda x: model(x.float().cpu().numpy())), "none", False
    else:
        model.eval()
        forward = forward or model
    people, skipped = [], []
    for batch in loader:
        skipped += batch["skipped"]
        if batch["size"] == 0:
            continue
        img = normalize_batch(batch["image"].to(device, non_blocking=True))
        if flip:
            img = torch.cat([img, img.flip(3)])   # one pass for both views (eval BN: per-sample)
        if channels_last:
            img = img.contiguous(memory_format=torch.channels_last)
        with _autocast(device, amp):
            lx, ly = in_micro_batches(forward, img, micro_batch)
        lx, ly = lx.float(), ly.float()
        if flip:
            b = lx.shape[0] // 2
            lx, ly = codec.merge_flip(lx[:b], ly[:b], lx[b:], ly[b:], flip_index, shift=shift)
        coords, scores = codec.decode(lx, ly)
        meta = batch["meta"]
        if picture is not None:
            _write_predictions_picture(picture, batch["image"], coords, scores, meta["image_id"])
            picture = None
        center, scale = meta["center"].double(), meta["scale"].double()
        xy = codec.to_image(coords.cpu().double(), center, scale).numpy()
        scores = scores.cpu().numpy()
        for i in range(xy.shape[0]):
            people.append({
                "image_id": int(meta["image_id"][i]),
                "keypoints": np.concatenate([xy[i], scores[i][:, None]], 1),
                "score": float(meta["score"][i]),
                "area": float(np.prod(scale[i].numpy() * 200.0)),
                "center": center[i].numpy(), "scale": scale[i].numpy(),
            })
    return people, skipped


def _write_predictions_picture(path, images, coords, scores, image_ids, n: int = 16) -> None:
    """The first n crops with their predicted joints (ultralytics' val_batch*_pred.jpg); a failed
    write only warns."""
    import cv2

    from ..inference.draw import draw_crop_mosaic
    joints = torch.cat([coords[:n], scores[:n, :, None]], -1).cpu().numpy()
    mosaic = draw_crop_mosaic(images[:n], joints, [f"image {int(i)}" for i in image_ids[:n]])
    if not cv2.imwrite(str(path), mosaic):
        warnings.warn(f"{path}: could not be written", stacklevel=2)


def postprocess(people: list, spec, kpt_thr: float = 0.01, nms_thr: float = 0.9) -> list:
    """Rescore then OKS-NMS per image; returns COCO results dicts."""
    kept = nms_per_image(rescore(people, kpt_thr), nms_thr, spec.sigmas)
    return to_coco_results(kept, spec)


def print_table(stats: dict, title: str = "") -> str:
    """A paper-style line: AP AP50 AP75 APm APl AR (body) or the six whole-body subsets."""
    if "subsets" in stats:
        names = ("body", "foot", "face", "lefthand", "righthand", "wholebody")
        head = f"{'':<10}" + "".join(f"{n:>11}" for n in names)
        ap = f"{'AP':<10}" + "".join(f"{100 * stats['subsets'][n]['AP']:11.1f}" for n in names)
        ar = f"{'AR':<10}" + "".join(f"{100 * stats['subsets'][n]['AR']:11.1f}" for n in names)
        text = "\n".join([head, ap, ar])
    else:
        keys = ("AP", "AP50", "AP75", "APm", "APl", "AR")
        text = "".join(f"{k:>8}" for k in keys) + "\n" + "".join(f"{100 * stats[k]:8.1f}" for k in keys)
    if title:
        text = f"{title}\n{text}"
    print(text, flush=True)
    return text


def evaluate(model, dataset: TopDownDataset, exp: Experiment, *, device=torch.device("cpu"),
             flip: Optional[bool] = None, out_json=None, workers: Optional[int] = None,
             verbose: bool = True, compile: bool = False, picture=None) -> Optional[dict]:
    """Score `model` (eval mode, e.g. the EMA copy; or an `OnnxRunner` over an exported graph) on
    `dataset` against data.val_ann.

    compile: run a compiled deployment copy (`deployment_forward`: BatchNorm folded, channels-last,
    CUDA graphs on a GPU) instead of `model` itself; the first batch of each size compiles.
    picture: where rank 0 draws its first batch's crops with their predicted joints.

    Every rank must call it (each predicts a shard); rank 0 returns the stats dict
    (AP, AP50, ..., table, images_per_s, skipped_images, results_file, scored), others None.
    A data.val_ann without annotations (an image-info file such as COCO test-dev's) gives the
    post-processed results (OKS-NMS, rescoring) unscored: {scored: False, results, results_file, ...}.
    """
    ev = exp.eval
    flip = ev.flip_test if flip is None else flip
    spec = dataset.spec
    sampler = du.ShardSampler(len(dataset), ev.batch_size, num_replicas=du.get_world_size(),
                              rank=du.get_rank(), shuffle=False)
    loader = build_loader(dataset, sampler, ev.batch_size,
                          exp.data.workers if workers is None else workers,
                          pin_memory=device.type == "cuda", persistent=False)
    onnx = isinstance(model, OnnxRunner)
    if compile and onnx:
        raise ValueError(f"{model.path}: compile needs PyTorch weights (onnxruntime optimises the graph itself)")
    precision = "bf16" if ev.amp == "bf16" else "fp32"   # fp16: the caller's autocast, float32 weights
    forward = deployment_forward(model, device, compiled=True, precision=precision)[1] if compile else None
    t0 = time.perf_counter()
    people, skipped = predict(model, loader, dataset.codec, spec.flip_index(), flip=flip,
                              shift=ev.shift, device=device, amp=ev.amp,
                              # on a GPU the layout follows the trained model's (train.channels_last)
                              channels_last=compile or exp.train.channels_last or device.type == "cpu",
                              micro_batch=None if onnx else default_micro_batch(device), forward=forward,
                              picture=picture if du.is_main() else None)
    elapsed = time.perf_counter() - t0
    gathered = du.all_gather_objects((people, skipped))
    if not du.is_main():
        return None
    people = [p for ps, _ in gathered for p in ps]
    skipped = [s for _, ss in gathered for s in ss]
    results = postprocess(people, spec, ev.kpt_score_thr, ev.oks_nms)
    if out_json is not None:
        out_json = Path(out_json)
        out_json.parent.mkdir(parents=True, exist_ok=True)
        tmp = out_json.with_name(out_json.name + ".tmp")
        tmp.write_text(json.dumps(results))
        os.replace(tmp, out_json)
    run = dict(images_per_s=len(people) / max(elapsed, 1e-9), skipped_images=len(skipped),
               results_file=str(out_json) if out_json else None, num_results=len(results))
    scores = coco_keypoint_eval(exp.data.val_ann, results, spec)
    if scores is None:   # an image-info json, e.g. COCO test-dev's: results for submission
        if verbose:
            print(f"{exp.data.val_ann} has no keypoint annotations (an image-info file): {len(results)} "
                  f"results for {len(people)} boxes, post-processed as for scoring, not scored", flush=True)
        return {"scored": False, "results": results, **run}
    stats = {"scored": True, **scores, **run}
    if verbose:
        runs = f" ({model.path.name}, onnxruntime)" if onnx else ""
        print_table(stats, f"{exp.model.name}{runs} on {exp.data.val_ann} ({len(people)} boxes, "
                           f"flip {'on' if flip else 'off'})")
    return stats


__all__ = ["build_codec", "build_val_dataset", "predict", "postprocess", "evaluate", "print_table"]
