"""The argument parser of the `mrcnn` command: every subcommand's options, nothing else.

`build_parser()` is used by `mrcnn.tools.cli.main`; the subcommands themselves are in
`mrcnn.tools.commands`.
"""

from __future__ import annotations

import argparse

from mrcnn.engine.runs import COCO_NUM_CLASSES, HEAD_LAYERS
from mrcnn.tools.common import AUGMENTATIONS, DEFAULT_CONFIG


def _add_config_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("config")
    g.add_argument("--config", default=DEFAULT_CONFIG, metavar="MODULE:CLASS|FILE",
                   help=f"Config class, 'module.path:ClassName' or 'file.py:ClassName', or a "
                        f"JSON/YAML file of settings (optional _BASE_: 'module:Class'; a run's "
                        f"config.json works) (default {DEFAULT_CONFIG})")
    g.add_argument("--set", dest="settings", action="extend", nargs="+", default=[],
                   metavar="NAME=VALUE", help="override config settings; values are Python "
                   "literals (IMAGE_MAX_DIM=512 RPN_ANCHOR_SCALES='(16, 32, 64, 128, 256)')")


def _add_dataset_args(p: argparse.ArgumentParser, required: bool = True) -> None:
    g = p.add_argument_group("dataset" if required else "dataset (optional: class names)")
    g.add_argument("--dataset-format", choices=("coco", "via"), default=None,
                   help="default: via with --dataset, coco with --train/--val")
    g.add_argument("--train", metavar="ANN.json", help="COCO instances JSON of the training set")
    g.add_argument("--train-images", metavar="DIR", help="image folder of --train")
    g.add_argument("--val", metavar="ANN.json", help="COCO instances JSON of the validation set")
    g.add_argument("--val-images", metavar="DIR", help="image folder of --val")
    g.add_argument("--dataset", metavar="VIA_DIR",
                   help="VIA dataset folder with train/ and val/ subfolders")
    g.add_argument("--class-name", default="object",
                   help="VIA: the class of every region (default 'object')")
    g.add_argument("--class-attribute", default=None, metavar="KEY",
                   help="VIA: region attribute holding each region's class name")
    g.add_argument("--skip-invalid", action="store_true",
                   help="skip (log and count) bad images and annotations instead of failing")


def _add_weights_args(p: argparse.ArgumentParser, default: str) -> None:
    p.add_argument("--weights", default=default, metavar="{none,last,coco,imagenet,PATH}",
                   help=f"weights to start from (default {default})")
    p.add_argument("--logs", default="logs", metavar="DIR",
                   help="directory of training runs (default ./logs)")


def _add_train_run_args(p: argparse.ArgumentParser) -> None:
    """`mrcnn train`'s run folder, resume, schedule, evaluation, checkpoint and TensorBoard
    options. Their defaults are None ("not given"): `--resume` fills them from the run."""
    g = p.add_argument_group("run folder and resume")
    g.add_argument("--resume", nargs="?", const="last", default=None, metavar="RUN|CHECKPOINT",
                   help="continue a run as it was (layers, learning-rate schedule, optimizer "
                        "state, epoch, data and options; flags given again win): its folder, "
                        "a checkpoint, or nothing for the newest run (of --run-name / "
                        "--output-dir when given)")
    g.add_argument("--run-name", default=None, metavar="NAME",
                   help="write the run to LOGS/NAME instead of LOGS/{name}{YYYYmmddTHHMM}")
    g.add_argument("--output-dir", default=None, metavar="DIR",
                   help="write the run to this folder (checkpoints, config.json, "
                        "metrics.json, training_curves.png, TensorBoard logs)")
    g = p.add_argument_group("learning-rate schedule (per step; epochs count over the run)")
    g.add_argument("--lr-schedule", choices=("constant", "step", "cosine"), default=None,
                   help="decay after warmup: step (x --lr-gamma at each --lr-steps epoch) or "
                        "cosine (to 0 at --epochs); default constant")
    g.add_argument("--lr-steps", type=int, nargs="+", default=None, metavar="EPOCH",
                   help="epochs at which the step schedule multiplies the rate by --lr-gamma")
    g.add_argument("--lr-gamma", type=float, default=None, help="step-decay factor (0.1)")
    warm = g.add_mutually_exclusive_group()
    warm.add_argument("--warmup-steps", type=int, default=None,
                      help="linear warmup over the first N steps (batches)")
    warm.add_argument("--warmup-epochs", type=int, default=None,
                      help="linear warmup over the first N epochs")
    g = p.add_argument_group("evaluation and checkpoints")
    g.add_argument("--eval-period", type=int, default=None, metavar="N",
                   help="mask mAP@0.5 on the validation set every N epochs (logged as mAP)")
    g.add_argument("--eval-limit", type=int, default=None, metavar="N",
                   help="evaluate on the first N validation images (default all)")
    g.add_argument("--keep", type=int, default=None, metavar="N",
                   help="keep only the newest N epoch checkpoints (default all)")
    g.add_argument("--best", default=None, metavar="METRIC",
                   help="also keep the best epoch as mask_rcnn_{name}_best.h5 by METRIC "
                        "(val_loss, mAP with --eval-period, ...)")
    g = p.add_argument_group("TensorBoard")
    g.add_argument("--log-every", type=int, default=None, metavar="N",
                   help="write the scalars every N steps (default once per epoch)")
    g.add_argument("--tb-images", type=int, default=None, metavar="N",
                   help="draw detections on N validation images into TensorBoard (every "
                        "--eval-period epochs, else every epoch)")


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of the `mrcnn` command."""
    parser = argparse.ArgumentParser(
        prog="mrcnn", description="Mask R-CNN: train, evaluate, detect, inspect weights and "
        "debug datasets.", epilog="Run 'mrcnn COMMAND --help' for a command's options.")
    parser.add_argument("-q", "--quiet", action="store_true", help="log warnings only")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("train", help="train on a COCO-format or VIA dataset",
                       description="Train Mask R-CNN. Checkpoints go to "
                       "LOGS/{name}{YYYYmmddTHHMM}/mask_rcnn_{name}_{epoch:04d}.h5 (or the "
                       "folder of --run-name / --output-dir), with config.json, metrics.json "
                       "and training_curves.png beside them.")
    _add_dataset_args(p)
    _add_config_args(p)
    _add_weights_args(p, "none")
    p.add_argument("--exclude", default=None, metavar="heads|LIST",
                   help=f"layers not to load: 'heads' ({', '.join(HEAD_LAYERS)}) or "
                        "comma-separated names/regexes (default: heads for coco weights when "
                        f"NUM_CLASSES != {COCO_NUM_CLASSES})")
    p.add_argument("--layers", default=None, metavar="heads|3+|4+|5+|all|REGEX",
                   help="layers to train (default heads, or all with --weights none)")
    p.add_argument("--epochs", type=int, default=None,
                   help="train up to this epoch, counted over the run (as matterport; default 1)")
    p.add_argument("--lr", type=float, default=None, help="learning rate (default: the config's)")
    p.add_argument("--augment", choices=AUGMENTATIONS, default=None,
                   help="flip: left-right; flips: and up-down; affine: flip, rotate, scale "
                        "(default none)")
    p.add_argument("--workers", type=int, default=None, help="data-loading threads")
    _add_train_run_args(p)

    p = sub.add_parser("evaluate", help="mAP of a model on a dataset (and COCOeval for COCO)",
                       description="Evaluate on --val (or --train when no --val is given).")
    _add_dataset_args(p)
    _add_config_args(p)
    _add_weights_args(p, "last")
    p.add_argument("--limit", type=int, default=0, help="evaluate the first N images (0: all)")
    p.add_argument("--eval-type", choices=("bbox", "segm", "both"), default="both",
                   help="COCOeval type(s) for COCO data (default both)")
    p.add_argument("--min-confidence", type=float, default=None, metavar="SCORE",
                   help="keep detections scoring at least this (default 0.05, Detectron2's; "
                        "--set DETECTION_MIN_CONFIDENCE=... works too)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="write metrics.json, coco_results.json, per_image.json and "
                        "precision_recall.png into DIR")
    p.add_argument("--json", default=None, metavar="FILE",
                   help="the metrics as JSON (COCOeval and matterport's)")
    p.add_argument("--results", default=None, metavar="FILE",
                   help="the detections as COCO results (RLE masks)")
    p.add_argument("--per-image", default=None, metavar="FILE",
                   help="one record per image (detections, ground truth, matterport AP)")
    p.add_argument("--plot", default=None, metavar="FILE.png",
                   help="COCOeval precision-recall curves (IoU 0.5 and 0.75)")

    p = sub.add_parser("detect", help="detect objects in images and write overlay PNGs",
                       description="Detect objects in image files and in the image files of "
                       "folders (by extension, sorted).")
    p.add_argument("images", nargs="+", metavar="IMAGE_OR_DIR")
    _add_config_args(p)
    _add_weights_args(p, "last")
    p.add_argument("--out", "--save-images", dest="out", default="detections", metavar="DIR",
                   help="folder of the overlay PNGs (default ./detections)")
    p.add_argument("--no-images", action="store_true", help="write no overlay PNG")
    p.add_argument("--json", default=None, metavar="FILE",
                   help="write the detections as COCO results (RLE masks) here")
    p.add_argument("--min-confidence", type=float, default=None, metavar="SCORE",
                   help="keep detections scoring at least this (default: the checkpoint's "
                        "or the config's DETECTION_MIN_CONFIDENCE)")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="print each image processed and its shape (as matterport)")
    p.add_argument("--class-names", default=None, metavar="A,B,...",
                   help="comma-separated class names (without the background)")
    _add_dataset_args(p, required=False)

    p = sub.add_parser("inspect-weights", help="list a weights file and diff it with a model")
    p.add_argument("file", help="Keras-2 .h5 weights file or TF checkpoint")
    p.add_argument("--config", default=None, metavar="MODULE:CLASS",
                   help="also dry-run loading into the model of this config")
    p.add_argument("--set", dest="settings", action="extend", nargs="+", default=[],
                   metavar="NAME=VALUE", help="config overrides for --config")
    p.add_argument("--all", action="store_true", help="also list layers without weights")

    p = sub.add_parser("debug-data", help="draw ground truth, augmentations and anchors; list "
                       "objects no anchor matches", description="Write PNGs of a few images "
                       "and check every object against the RPN anchors (IoU 0.7).")
    _add_dataset_args(p)
    _add_config_args(p)
    p.add_argument("--subset", choices=("train", "val"), default="train")
    p.add_argument("--out", default="debug_data", metavar="DIR", help="PNG folder")
    p.add_argument("--images", type=int, default=4, help="images to draw (default 4)")
    p.add_argument("--image-ids", type=int, nargs="+", default=None,
                   help="internal ids of the images to draw (instead of the first --images)")
    p.add_argument("--augment", choices=AUGMENTATIONS, default=None,
                   help="augmented samples to draw (default: flip when imgaug or "
                   "albumentations is installed, else none)")
    p.add_argument("--samples", type=int, default=3, help="augmented samples per image")
    p.add_argument("--check-limit", type=int, default=0,
                   help="check the anchors on the first N images only (0: all)")
    p.add_argument("--json", default=None, metavar="FILE", help="also write the result here")
    p.add_argument("--fail-on-unmatched", action="store_true",
                   help="exit with 1 when an object has best anchor IoU < 0.3")

    p = sub.add_parser("export", help="write a serving SavedModel (uint8 images in, "
                       "detections out)", description="Build the inference model, load "
                       "--weights and write a TensorFlow Serving SavedModel to --output.")
    _add_config_args(p)
    _add_weights_args(p, "last")
    p.add_argument("--output", required=True, metavar="DIR",
                   help="SavedModel directory to create (e.g. serving/mask_rcnn/1)")
    p.add_argument("--class-names", default=None, metavar="A,B,...",
                   help="comma-separated class names (without the background)")
    return parser
