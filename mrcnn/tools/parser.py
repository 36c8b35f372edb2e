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
    g.add_argument("--config", default=DEFAULT_CONFIG, metavar="MODULE:CLASS",
                   help=f"Config class, 'module.path:ClassName' or 'file.py:ClassName' "
                        f"(default {DEFAULT_CONFIG})")
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
                       "LOGS/{name}{YYYYmmddTHHMM}/mask_rcnn_{name}_{epoch:04d}.h5.")
    _add_dataset_args(p)
    _add_config_args(p)
    _add_weights_args(p, "none")
    p.add_argument("--exclude", default=None, metavar="heads|LIST",
                   help=f"layers not to load: 'heads' ({', '.join(HEAD_LAYERS)}) or "
                        "comma-separated names/regexes (default: heads for coco weights when "
                        f"NUM_CLASSES != {COCO_NUM_CLASSES})")
    p.add_argument("--layers", default=None, metavar="heads|3+|4+|5+|all|REGEX",
                   help="layers to train (default heads, or all with --weights none)")
    p.add_argument("--epochs", type=int, default=1,
                   help="train up to this epoch, counted over the run (as matterport; default 1)")
    p.add_argument("--lr", type=float, default=None, help="learning rate (default: the config's)")
    p.add_argument("--augment", choices=AUGMENTATIONS, default="none",
                   help="flip: left-right; flips: and up-down; affine: flip, rotate, scale")
    p.add_argument("--workers", type=int, default=None, help="data-loading threads")

    p = sub.add_parser("evaluate", help="mAP of a model on a dataset (and COCOeval for COCO)",
                       description="Evaluate on --val (or --train when no --val is given).")
    _add_dataset_args(p)
    _add_config_args(p)
    _add_weights_args(p, "last")
    p.add_argument("--limit", type=int, default=0, help="evaluate the first N images (0: all)")
    p.add_argument("--eval-type", choices=("bbox", "segm", "both"), default="both",
                   help="COCOeval type(s) for COCO data (default both)")
    p.add_argument("--json", default=None, metavar="FILE", help="also write the numbers here")

    p = sub.add_parser("detect", help="detect objects in images and write overlay PNGs")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    _add_config_args(p)
    _add_weights_args(p, "last")
    p.add_argument("--out", default="detections", metavar="DIR",
                   help="folder of the overlay PNGs (default ./detections)")
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
    p.add_argument("--augment", choices=AUGMENTATIONS, default="flip")
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
