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

This module is the entry point (`mrcnn` console script, `python -m mrcnn`): it parses the
arguments (`mrcnn.tools.parser`), runs the subcommand (`mrcnn.tools.commands`) and turns errors
into exit statuses. Shared option handling is in `mrcnn.tools.common` and model building in
`mrcnn.tools.models`.
"""

from __future__ import annotations

import logging
import os
import sys

from mrcnn.tools.commands import COMMANDS
from mrcnn.tools.common import UsageError
from mrcnn.tools.parser import build_parser


def use_headless_matplotlib() -> None:
    """Select matplotlib's Agg backend: the command writes pictures to files and needs no
    screen. The library never does this (it leaves the backend to the user); a process that
    already imported pyplot (a notebook calling `main`) keeps the backend it chose."""
    if "matplotlib.pyplot" in sys.modules:
        return
    import matplotlib

    matplotlib.use("Agg")


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
    use_headless_matplotlib()
    try:
        return int(COMMANDS[args.command](args) or 0)
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
