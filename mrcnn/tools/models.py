"""Building the network a subcommand needs: config from the checkpoint, model, weights.

Reading a `--weights` argument ("none", "last", "coco", "imagenet" or a path) and choosing
the layers not to load are `mrcnn.engine.runs.resolve_weights` and `exclude_for`, the same
rules `MaskRCNN` users get; this module only wires them to the command's options. Building a
model from a config belongs here, on the command-line side: `mrcnn.checkpoint` never does.
"""

from __future__ import annotations

import argparse
import logging
import os
from typing import Any

import numpy as np

from mrcnn.engine import runs
from mrcnn.tools.common import (
    classes_from_dataset,
    config_name,
    for_command_line,
    load_config_class,
    make_config,
    parse_settings,
    split_names,
)

logger = logging.getLogger(__name__)

# Settings that shape the network's weights or its input: read back from a checkpoint's stored
# config for evaluate/detect, so a model trained with --set overrides loads without repeating them.
ARCHITECTURE_SETTINGS = (
    "BACKBONE", "BACKBONE_STRIDES", "TOP_DOWN_PYRAMID_SIZE", "FPN_CLASSIF_FC_LAYERS_SIZE",
    "NUM_CLASSES", "POOL_SIZE", "MASK_POOL_SIZE", "MASK_SHAPE", "IMAGE_CHANNEL_COUNT",
    "MEAN_PIXEL", "IMAGE_RESIZE_MODE", "IMAGE_MIN_DIM", "IMAGE_MAX_DIM", "IMAGE_MIN_SCALE",
    "RPN_ANCHOR_SCALES", "RPN_ANCHOR_RATIOS", "RPN_ANCHOR_STRIDE", "RPN_BBOX_STD_DEV",
    "BBOX_STD_DEV")


def build_model(mode: str, config: Any, logs: str) -> Any:
    """`mrcnn.model.MaskRCNN(mode, config, logs)`: "training" or "inference"."""
    from mrcnn import model as modellib

    return modellib.MaskRCNN(mode=mode, config=config, model_dir=logs)


def resolve_checkpoint(weights: str, logs: str, cls: type, overrides: dict) -> str | None:
    """The file behind `--weights` (None for "none"), found before any model is built.

    Raises:
        FileNotFoundError: no checkpoint for "last", no file for "coco"/"imagenet", or the
            path does not exist (see `mrcnn.engine.runs.resolve_weights`).
    """
    return runs.resolve_weights(weights, logs, config_name(cls, overrides))


def _plain(value: Any) -> Any:
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(v) for v in np.asarray(value, dtype=object).tolist()]
    return value.item() if isinstance(value, np.generic) else value


def checkpoint_settings(path: str | None, cls: type, skip: set[str]) -> dict[str, Any]:
    """Architecture settings stored in a checkpoint that differ from `cls` (not in `skip`).

    Returns:
        {setting: stored value}; empty for a file without a stored config (matterport's).
    """
    from mrcnn.checkpoint.h5_format import read_h5_extras

    if path is None or not os.path.isfile(path):
        return {}
    try:
        stored = read_h5_extras(path).get("config") or {}
    except (OSError, ValueError):
        return {}
    out = {}
    for key in ARCHITECTURE_SETTINGS:
        if key in skip or key not in stored or not hasattr(cls, key):
            continue
        default = getattr(cls, key)
        if callable(default) or (key == "BACKBONE" and not isinstance(stored[key], str)):
            continue
        if _plain(stored[key]) != _plain(default):
            out[key] = tuple(stored[key]) if isinstance(default, tuple) else stored[key]
    if out:
        logger.info("Settings taken from the checkpoint's config: %s", out)
    return out


def load_weights(model: Any, weights: str, path: str | None,
                 exclude: str | None = None) -> None:
    """Load the resolved `path` of `--weights` into `model` by name; None loads nothing.

    Args:
        model: a `MaskRCNN`.
        weights: the `--weights` argument as given ("coco" decides the default exclusions).
        path: `resolve_checkpoint(weights, ...)`.
        exclude: `--exclude`: "heads", comma-separated names/regexes, or None (see
            `mrcnn.engine.runs.exclude_for`).
    """
    if path is None:
        logger.info("Starting from random weights (--weights %s)", weights)
        return
    patterns = runs.exclude_for(weights, exclude, model.config.NUM_CLASSES)
    logger.info("Loading weights %s", path)
    try:
        model.load_weights(path, by_name=True, exclude=patterns)
    except ValueError as err:  # its advice names Python arguments: name the flags instead
        raise for_command_line(err) from err


def inference_model(args: argparse.Namespace, dataset: Any,
                    settings: dict[str, Any] | None = None) -> tuple[Any, Any]:
    """(inference MaskRCNN with its weights, config) for evaluate and detect.

    NUM_CLASSES comes from `dataset` (or --class-names) unless --set; the architecture
    settings come from the checkpoint's stored config unless --set; `settings` (the
    command's own, e.g. DETECTION_MIN_CONFIDENCE) win over both but not over --set.
    """
    cls = load_config_class(args.config)
    overrides = parse_settings(args.settings)
    path = resolve_checkpoint(args.weights, args.logs, cls, overrides)
    derived = {}
    if dataset is not None:
        derived.update(classes_from_dataset(dataset, overrides))
    elif getattr(args, "class_names", None) and "NUM_CLASSES" not in overrides:
        derived["NUM_CLASSES"] = 1 + len(split_names(args.class_names))
    derived.update(checkpoint_settings(path, cls, set(overrides) | set(derived)))
    derived.update(settings or {})
    config = make_config(cls, overrides, derived)
    model = build_model("inference", config, args.logs)
    load_weights(model, args.weights, path)
    return model, config


def read_checkpoint_metadata(path: str | None) -> dict[str, Any]:
    """What a checkpoint says about itself, for commands given no config or class names.

    Checkpoints written by `mrcnn train` / `MaskRCNN.train` store the training set's class
    names, the detection settings and the training state beside the weights
    (`mrcnn.engine.train_loop.checkpoint_metadata`); earlier ones of this project only the
    config (the detection settings are then taken from it); matterport's files nothing.

    Args:
        path: a weights file, or None.

    Returns:
        {"class_names": [names, index = class id, "BG" first] or None, "detection":
        {DETECTION_MIN_CONFIDENCE, DETECTION_NMS_THRESHOLD, DETECTION_MAX_INSTANCES: value}
        (only those stored), "training": {"layers", "learning_rate", "epochs",
        "lr_schedule"} or None, "epoch": int or None, "config": dict or None}. All empty
        for None, a missing file, a TF checkpoint or a file without extras.
    """
    from mrcnn.checkpoint.h5_format import read_h5_extras
    from mrcnn.engine.train_loop import DETECTION_SETTINGS

    out: dict[str, Any] = {"class_names": None, "detection": {}, "training": None,
                           "epoch": None, "config": None}
    if path is None or not os.path.isfile(path):
        return out
    try:
        extras = read_h5_extras(path)
    except (OSError, ValueError):
        return out
    metadata = extras.get("metadata") or {}
    config = extras.get("config") or {}
    out["epoch"], out["config"] = extras.get("epoch"), extras.get("config")
    out["class_names"] = metadata.get("class_names")
    out["training"] = metadata.get("training")
    detection = metadata.get("detection") or {k: config[k] for k in DETECTION_SETTINGS
                                               if k in config}
    out["detection"] = {k: detection[k] for k in DETECTION_SETTINGS if k in detection}
    return out


def checkpoint_class_names(path: str | None) -> list[str] | None:
    """The class names stored in a checkpoint without the background (for labels), or None."""
    names = read_checkpoint_metadata(path)["class_names"]
    return list(names[1:]) if names else None


def checkpoint_detection_settings(path: str | None, skip: set[str] | None = None
                                  ) -> dict[str, Any]:
    """The detection settings stored in a checkpoint, minus the names in `skip` (--set):
    `derived` values for `make_config` so that a checkpoint detects as in training."""
    stored = read_checkpoint_metadata(path)["detection"]
    return {k: v for k, v in stored.items() if k not in (skip or set())}
