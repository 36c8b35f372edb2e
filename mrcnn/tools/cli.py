"""The `mrcnn` command: train, evaluate, detect, inspect weights and debug datasets.

    mrcnn train --train ann.json --train-images imgs/ --val val.json --val-images vimgs/ \\
        --config samples.shapes.train:DemoConfig --set IMAGE_MAX_DIM=256 --weights coco \\
        --layers heads --epochs 10
    mrcnn train --dataset balloon/ --set NAME=balloon --weights coco --epochs 30
    mrcnn evaluate --val val.json --val-images vimgs/ --weights last --limit 100
    mrcnn detect a.jpg b.jpg --weights logs/run/mask_rcnn_x_0010.h5 --out detections/
    mrcnn inspect-weights mask_rcnn_coco.h5 --config mypackage.config:MyConfig
    mrcnn debug-data --dataset balloon/ --augment flip --out debug/

Datasets are a COCO instances JSON with its image folder (`--train/--train-images`,
`--val/--val-images`) or a VIA folder (`--dataset DIR` with `train/` and `val/` subfolders,
each holding `via_region_data.json`). The config is a Python class (`--config
module.path:ClassName` or `path/to/file.py:ClassName`, default `mrcnn.config:Config`) plus
`--set NAME=VALUE` overrides, parsed as Python literals. NUM_CLASSES comes from the dataset
unless set. Errors in the input print one line and exit with status 2; a training run that
diverges exits with 1. `--debug` shows tracebacks.

The command implementations live in `mrcnn.tools.commands`; this module parses arguments and
resolves configs.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import importlib.util
import logging
import os
import re
import sys
from typing import Any

logger = logging.getLogger("mrcnn.tools.cli")

DEFAULT_CONFIG = "mrcnn.config:Config"
DEFAULT_NAME = "mrcnn"  # NAME of a config class that has none (it names runs and checkpoints)
AUGMENTATIONS = ("none", "flip", "flips", "affine")
_SETTING = re.compile(r"^[A-Z][A-Z0-9_]*$")


class UsageError(Exception):
    """A user error: bad options, missing files, bad data. Exits with status 2."""


# ---------------------------------------------------------------------------- configs
def load_config_class(spec: str) -> type:
    """Import the Config class named by `"module.path:ClassName"` or `"file.py:ClassName"`.

    A module path is looked up from the working directory too (as `python -m` does).

    Raises:
        UsageError: `spec` is malformed or names nothing importable, or not a Config class.
    """
    from mrcnn.config import Config

    module_name, sep, class_name = spec.rpartition(":")
    if not sep or not module_name or not class_name.isidentifier():
        raise UsageError(f"--config must look like 'module.path:ClassName' or "
                         f"'path/to/file.py:ClassName', got {spec!r}")
    try:
        if module_name.endswith(".py"):
            if not os.path.isfile(module_name):
                raise UsageError(f"--config {spec!r}: file {module_name!r} not found")
            name = "mrcnn_user_config_" + re.sub(r"\W", "_", os.path.abspath(module_name))
            module_spec = importlib.util.spec_from_file_location(name, module_name)
            module = importlib.util.module_from_spec(module_spec)
            module_spec.loader.exec_module(module)
        else:
            if os.getcwd() not in sys.path:
                sys.path.append(os.getcwd())
            module = importlib.import_module(module_name)
    except ImportError as err:
        raise UsageError(f"--config {spec!r}: cannot import {module_name!r}: {err}") from err
    cls = getattr(module, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, Config)):
        raise UsageError(f"--config {spec!r}: {module_name} has no Config subclass "
                         f"{class_name!r}")
    return cls


def parse_value(text: str) -> Any:
    """A --set value: a Python literal (`0.5`, `(8, 16)`, `True`, `None`, `'x'`) or, if the
    text is not one, the text itself as a string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text


def parse_settings(items: list[str] | None) -> dict[str, Any]:
    """`["NAME=VALUE", ...]` to {NAME: value}; later items win.

    Raises:
        UsageError: an item without `=` or whose name is not an upper-case setting name.
    """
    out: dict[str, Any] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not _SETTING.match(name):
            raise UsageError(f"--set expects NAME=VALUE with an upper-case config setting "
                             f"name (e.g. IMAGE_MAX_DIM=512), got {item!r}")
        out[name] = parse_value(value.strip())
    return out


def make_config(cls: type, overrides: dict[str, Any], derived: dict[str, Any] | None = None,
                ) -> Any:
    """`cls.from_dict` with `derived` values (dataset class count, checkpoint settings)
    under the user's `overrides`; a config without NAME gets DEFAULT_NAME.

    Raises:
        UsageError: unknown setting names or values that do not validate.
    """
    values = dict(derived or {})
    values.update(overrides)
    if not values.get("NAME") and not getattr(cls, "NAME", None):
        values["NAME"] = DEFAULT_NAME
        logger.info("Config NAME is not set: using %r (--set NAME=... to change)", DEFAULT_NAME)
    try:
        return cls.from_dict(values)
    except (ValueError, TypeError) as err:
        raise UsageError(f"config {cls.__name__}: {err}") from err


# ---------------------------------------------------------------------------- parser
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
                   help="layers not to load: 'heads' (the class-specific output layers) or "
                        "comma-separated names/regexes (default: heads for coco weights when "
                        "NUM_CLASSES != 81)")
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
    return parser


def _message(err: BaseException) -> str:
    if isinstance(err, OSError) and err.strerror and not err.filename:
        return err.strerror
    return str(err) if str(err) else type(err).__name__


def main(argv: list[str] | None = None) -> int:
    """Run the `mrcnn` command line; returns the exit status (0 ok, 1 failed run, 2 bad
    input). Never raises, except with --debug."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, or argparse's usage error (status 2)
        return int(exit_.code or 0)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    from mrcnn.tools import commands as cli_commands
    commands = {"train": cli_commands.run_train, "evaluate": cli_commands.run_evaluate,
                "detect": cli_commands.run_detect,
                "inspect-weights": cli_commands.run_inspect_weights,
                "debug-data": cli_commands.run_debug_data}
    try:
        return int(commands[args.command](args) or 0)
    except KeyboardInterrupt:
        print("mrcnn: interrupted", file=sys.stderr)
        return 130
    except (UsageError, FileNotFoundError, ValueError, ImportError, KeyError) as err:
        if args.debug:
            raise
        print(f"mrcnn {args.command}: error: {_message(err)}", file=sys.stderr)
        return 2
    except FloatingPointError as err:
        if args.debug:
            raise
        print(f"mrcnn {args.command}: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
