"""`mrcnn train`: load the datasets, build the config and model, load weights, train."""

from __future__ import annotations

import argparse
import logging

from mrcnn.tools.common import (
    UsageError,
    check_same_classes,
    classes_from_dataset,
    load_config_class,
    load_dataset,
    make_augmentation,
    make_config,
    parse_settings,
)
from mrcnn.tools.models import build_model, load_weights, resolve_checkpoint

logger = logging.getLogger(__name__)


def run(args: argparse.Namespace) -> int:
    """Train up to `--epochs` (counted over the run, as matterport); returns 0.

    NUM_CLASSES comes from the training set unless --set. `--layers` defaults to "heads",
    or "all" when starting from random weights (`--weights none`).

    Raises:
        UsageError: bad options or datasets with different classes.
        FileNotFoundError: a dataset, image or weights file is missing.
        FloatingPointError: the training diverged (exit status 1).
    """
    if args.epochs < 1:
        raise UsageError(f"--epochs must be >= 1, got {args.epochs}")
    cls = load_config_class(args.config)
    overrides = parse_settings(args.settings)
    train_ds, _ = load_dataset(args, "train")
    val_ds, _ = load_dataset(args, "val")
    check_same_classes(train_ds, val_ds)
    if val_ds is None:
        logger.info("No validation set: training without validation")
    config = make_config(cls, overrides, classes_from_dataset(train_ds, overrides))
    path = resolve_checkpoint(args.weights, args.logs, cls, overrides)
    layers = args.layers or ("all" if path is None else "heads")
    augmentation = make_augmentation(args.augment)
    model = build_model("training", config, args.logs)
    load_weights(model, args.weights, path, args.exclude)
    if model.epoch >= args.epochs:
        print(f"Nothing to train: the run is at epoch {model.epoch} and --epochs is "
              f"{args.epochs} (epochs count over the whole run)")
        return 0
    learning_rate = args.lr if args.lr is not None else config.LEARNING_RATE
    print(f"Training {layers} from epoch {model.epoch} to {args.epochs}, lr {learning_rate}, "
          f"{train_ds.num_images} training images, run directory {model.log_dir}")
    model.train(train_ds, val_ds, learning_rate=learning_rate, epochs=args.epochs,
                layers=layers, augmentation=augmentation, workers=args.workers,
                verbose=2 if args.quiet else "auto")
    print(f"Done: checkpoints in {model.log_dir}")
    return 0
