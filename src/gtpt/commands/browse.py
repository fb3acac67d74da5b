"""gtpt browse CONFIG [--split train|val] [--num 16] [--start 0] [--epoch 0] [--out FILE] [--opt k=v ...]"""
from __future__ import annotations

from pathlib import Path

EPILOG = """examples:
  gtpt browse configs/gtpt_t_coco.yaml                  # 16 augmented training crops -> train_samples.jpg
  gtpt browse configs/gtpt_t_coco.yaml --split val --num 32 --cols 8
  gtpt browse my.yaml --start 100 --epoch 3 --opt data.aug.rotation_factor=0

Each crop shows the joints its SA-SimCC targets encode, decoded back: what the loss teaches, after
the config's augmentation (train) or the validation crop (val, ground-truth boxes). The picture a
training run writes first (train_batch0.jpg in its folder) is the same kind."""


def add_arguments(p):
    p.epilog = EPILOG
    p.add_argument("config", help="experiment YAML (its data section is used)")
    p.add_argument("--split", choices=("train", "val"), default="train")
    p.add_argument("--num", type=int, default=16, help="how many people (crops) to draw")
    p.add_argument("--start", type=int, default=0, help="index of the first person in the split")
    p.add_argument("--epoch", type=int, default=0, help="whose augmentation to draw (train; it changes per epoch)")
    p.add_argument("--cols", type=int, default=4, help="crops per row")
    p.add_argument("--out", default=None, metavar="FILE", help="picture to write (default: <split>_samples.jpg)")
    p.add_argument("--opt", nargs="+", default=[], metavar="KEY=VALUE",
                   help="override config values, e.g. data.train_ann=my.json data.aug.flip_prob=0")


def summary(dataset, ann_file) -> str:
    """One line on a split: people with keypoints, images, labelled joints per person."""
    labelled = [int((r.joints[:, 2] > 0).sum()) for r in dataset.records]
    images = len({r.image_id for r in dataset.records})
    k = dataset.spec.num_joints
    return (f"{ann_file}: {len(labelled)} people with keypoints in {images} images; labelled joints per "
            f"person: mean {sum(labelled) / len(labelled):.1f} of {k}, fewest {min(labelled)}")


def run(args) -> int:
    import cv2

    from ..engine.batching import SkipBadImages, collate_skipping
    from ..engine.evaluator import build_val_dataset
    from ..engine.experiment import ConfigError, load_experiment
    from ..engine.trainer import build_train_dataset
    from ..inference.draw import draw_training_batch
    try:
        if args.num < 1 or args.start < 0 or args.cols < 1 or args.epoch < 0:
            raise ValueError("--num and --cols must be at least 1, --start and --epoch at least 0")
        exp = load_experiment(args.config, args.opt)
        train = args.split == "train"
        dataset = build_train_dataset(exp) if train else build_val_dataset(exp, gt_boxes=True)
        print(summary(dataset, exp.data.train_ann if train else exp.data.val_ann))
        if args.start >= len(dataset):
            raise ValueError(f"--start {args.start}: the {args.split} split has {len(dataset)} people")
        indices = range(args.start, min(args.start + args.num, len(dataset)))
        samples = SkipBadImages(dataset)   # unreadable images are named (warning) and left out
        batch = collate_skipping([samples[(args.epoch, i)] for i in indices])
        if batch["size"] == 0:
            raise ValueError(f"none of the images of people {indices.start}-{indices.stop - 1} could be read")
        out = Path(args.out or f"{args.split}_samples.jpg")
        out.parent.mkdir(parents=True, exist_ok=True)
        if not cv2.imwrite(str(out), draw_training_batch(batch, dataset.codec, len(indices), args.cols)):
            raise ValueError(f"{out}: could not write the picture (unknown extension or unwritable folder)")
    except (ConfigError, FileNotFoundError, ValueError) as e:
        print(f"gtpt browse: error: {e}", flush=True)
        return 1
    what = f"epoch {args.epoch} augmentation" if train else "validation crops"
    print(f"wrote {out}: people {indices.start}-{indices.stop - 1} ({batch['size']} drawn, {what})")
    return 0
