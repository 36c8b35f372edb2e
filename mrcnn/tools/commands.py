"""The `mrcnn` subcommands (argument parsing and config resolution are in `mrcnn.tools.cli`).

Each `run_*` function takes the parsed arguments, prints its results to stdout, and returns
the exit status; user errors are raised as `UsageError` (or FileNotFoundError/ValueError from
the loaders) for `mrcnn.tools.cli.main` to report in one line.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from typing import Any

import numpy as np

from mrcnn.tools.cli import UsageError, load_config_class, make_config, parse_settings

logger = logging.getLogger(__name__)

# matterport's class-specific output layers: not loadable into a model of another class count.
HEAD_LAYERS = ["mrcnn_class_logits", "mrcnn_bbox_fc", "mrcnn_bbox", "mrcnn_mask"]
COCO_NUM_CLASSES = 81
# Settings that shape the network's weights or its input: read back from a checkpoint's stored
# config for evaluate/detect, so a model trained with --set overrides loads without repeating them.
ARCHITECTURE_SETTINGS = (
    "BACKBONE", "BACKBONE_STRIDES", "TOP_DOWN_PYRAMID_SIZE", "FPN_CLASSIF_FC_LAYERS_SIZE",
    "NUM_CLASSES", "POOL_SIZE", "MASK_POOL_SIZE", "MASK_SHAPE", "IMAGE_CHANNEL_COUNT",
    "MEAN_PIXEL", "IMAGE_RESIZE_MODE", "IMAGE_MIN_DIM", "IMAGE_MAX_DIM", "IMAGE_MIN_SCALE",
    "RPN_ANCHOR_SCALES", "RPN_ANCHOR_RATIOS", "RPN_ANCHOR_STRIDE", "RPN_BBOX_STD_DEV",
    "BBOX_STD_DEV")


# ---------------------------------------------------------------------------- datasets
def dataset_format(args: argparse.Namespace) -> str | None:
    """"coco", "via", or None when no dataset option is given."""
    if args.dataset_format:
        return args.dataset_format
    if args.dataset:
        return "via"
    return "coco" if (args.train or args.val) else None


def _load_coco(annotation_json: str | None, image_dir: str | None, what: str,
               skip_invalid: bool) -> tuple[Any, Any]:
    from mrcnn.data.formats.coco import CocoDataset

    if not image_dir:
        raise UsageError(f"--{what} needs --{what}-images (the folder of its images)")
    dataset = CocoDataset()
    coco = dataset.load_coco(annotation_json, image_dir, return_coco=True,
                             skip_invalid=skip_invalid)
    dataset.prepare()
    return dataset, coco


def _load_via(args: argparse.Namespace, subset: str) -> Any:
    from mrcnn.data.formats.via import ViaDataset

    dataset = ViaDataset()
    dataset.load_via(args.dataset, subset, class_name=args.class_name,
                     class_attribute=args.class_attribute, skip_invalid=args.skip_invalid)
    dataset.prepare()
    return dataset


def load_dataset(args: argparse.Namespace, subset: str) -> tuple[Any, Any]:
    """(prepared dataset, pycocotools COCO object or None) of `subset` ("train" or "val").

    Returns (None, None) when that subset is not given (no --val, no VIA val/ folder).
    """
    fmt = dataset_format(args)
    if fmt == "via":
        if not args.dataset:
            raise UsageError("--dataset-format via needs --dataset VIA_DIR")
        if subset == "val" and not os.path.isdir(os.path.join(args.dataset, "val")):
            return None, None
        return _load_via(args, subset), None
    if fmt == "coco":
        annotation = args.train if subset == "train" else args.val
        if not annotation:
            if subset == "train":
                raise UsageError("COCO data needs --train ANN.json --train-images DIR")
            return None, None
        return _load_coco(annotation, getattr(args, f"{subset}_images"), subset,
                          args.skip_invalid)
    raise UsageError("no dataset: give --train ANN.json --train-images DIR (COCO format) or "
                     "--dataset VIA_DIR (VIA folders train/ and val/)")


def check_same_classes(train: Any, val: Any) -> None:
    """Raise UsageError when two datasets number their classes differently."""
    if val is not None and list(train.class_names) != list(val.class_names):
        raise UsageError(f"the training and validation sets have different classes "
                         f"({train.class_names[1:]} vs {val.class_names[1:]}): class ids would "
                         "not match")


def classes_from_dataset(dataset: Any, overrides: dict) -> dict:
    """{"NUM_CLASSES": n} from the dataset unless --set NUM_CLASSES was given (logged)."""
    n = int(dataset.num_classes)
    if "NUM_CLASSES" in overrides:
        if int(overrides["NUM_CLASSES"]) < n:
            raise UsageError(f"--set NUM_CLASSES={overrides['NUM_CLASSES']} but the dataset has "
                             f"{n} classes with the background ({dataset.class_names[1:]})")
        return {}
    logger.info("NUM_CLASSES = %d from the dataset (background + %s); --set NUM_CLASSES=N "
                "to override", n, ", ".join(dataset.class_names[1:]))
    return {"NUM_CLASSES": n}


# ---------------------------------------------------------------------------- weights
def resolve_checkpoint(weights: str, logs: str, cls: type, overrides: dict) -> str | None:
    """The file of `weights` when it is "last" or a path; None for none/coco/imagenet.

    Raises:
        FileNotFoundError: no checkpoint for "last", or the path does not exist.
    """
    from mrcnn.engine import runs as checkpoints
    if weights.lower() in ("none", "coco", "imagenet"):
        return None
    if weights.lower() == "last":
        name = overrides.get("NAME") or getattr(cls, "NAME", None) or "mrcnn"
        return checkpoints.find_last(logs, name)
    if not os.path.exists(weights):
        raise FileNotFoundError(f"weights file {weights!r} not found")
    return weights


def _plain(value: Any) -> Any:
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(v) for v in np.asarray(value, dtype=object).tolist()]
    return value.item() if isinstance(value, np.generic) else value


def checkpoint_settings(path: str | None, cls: type, skip: set[str]) -> dict[str, Any]:
    """Architecture settings stored in a checkpoint that differ from `cls` (not in `skip`)."""
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


def load_weights(model: Any, weights: str, path: str | None, exclude: str | None) -> None:
    """Load `weights` into `model` by name; "none" loads nothing."""
    if weights.lower() == "none":
        logger.info("Starting from random weights (--weights none)")
        return
    patterns = None
    if exclude == "heads":
        patterns = HEAD_LAYERS
    elif exclude:
        patterns = [p.strip() for p in exclude.split(",") if p.strip()]
    elif weights.lower() == "coco" and model.config.NUM_CLASSES != COCO_NUM_CLASSES:
        patterns = HEAD_LAYERS
        logger.info("NUM_CLASSES=%d differs from COCO's 81: not loading %s",
                    model.config.NUM_CLASSES, ", ".join(HEAD_LAYERS))
    source = path or weights.lower()
    logger.info("Loading weights %s", source)
    model.load_weights(source, by_name=True, exclude=patterns)


def make_augmentation(name: str) -> Any:
    """The imgaug augmenter of an --augment choice (None for "none")."""
    if name == "none":
        return None
    from mrcnn.data.augment import import_imgaug

    iaa = import_imgaug().augmenters
    if name == "flip":
        return iaa.Fliplr(0.5)
    if name == "flips":
        return iaa.Sequential([iaa.Fliplr(0.5), iaa.Flipud(0.5)])
    return iaa.Sequential([iaa.Fliplr(0.5),
                           iaa.Sometimes(0.5, iaa.Affine(rotate=(-15, 15), scale=(0.9, 1.1)))])


def _build_model(mode: str, config: Any, logs: str) -> Any:
    from mrcnn import model as modellib

    return modellib.MaskRCNN(mode=mode, config=config, model_dir=logs)


# ---------------------------------------------------------------------------- commands
def run_train(args: argparse.Namespace) -> int:
    """`mrcnn train`: load the datasets, build the config and model, load weights, train."""
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
    layers = args.layers or ("all" if args.weights.lower() == "none" else "heads")
    augmentation = make_augmentation(args.augment)
    model = _build_model("training", config, args.logs)
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


def _inference_model(args: argparse.Namespace, dataset: Any) -> tuple[Any, Any]:
    cls = load_config_class(args.config)
    overrides = parse_settings(args.settings)
    path = resolve_checkpoint(args.weights, args.logs, cls, overrides)
    derived = {}
    if dataset is not None:
        derived.update(classes_from_dataset(dataset, overrides))
    elif getattr(args, "class_names", None) and "NUM_CLASSES" not in overrides:
        derived["NUM_CLASSES"] = 1 + len(_split_names(args.class_names))
    derived.update(checkpoint_settings(path, cls, set(overrides) | set(derived)))
    config = make_config(cls, overrides, derived)
    model = _build_model("inference", config, args.logs)
    load_weights(model, args.weights, path, None)
    return model, config


def run_evaluate(args: argparse.Namespace) -> int:
    """`mrcnn evaluate`: our mAP table, and pycocotools' COCOeval stats for COCO data."""
    from mrcnn.evaluation.evaluator import evaluate_dataset

    if args.limit < 0:
        raise UsageError(f"--limit must be >= 0, got {args.limit}")
    dataset, coco = load_dataset(args, "val")
    if dataset is None:
        logger.info("No validation set given: evaluating on the training set")
        dataset, coco = load_dataset(args, "train")
    model, _ = _inference_model(args, dataset)
    result = evaluate_dataset(model, dataset, limit=args.limit or None)
    print(result)
    out: dict[str, Any] = {"evaluation": result.to_dict()}
    if coco is not None:
        from mrcnn.evaluation.coco import evaluate_coco

        types = ("bbox", "segm") if args.eval_type == "both" else (args.eval_type,)
        for eval_type in types:
            stats = evaluate_coco(model, dataset, coco, eval_type, limit=args.limit)
            out[f"coco_{eval_type}"] = stats
            print(f"COCOeval {eval_type}: " + "  ".join(f"{k} {v:.3f}" for k, v in stats.items()))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
    return 0


def _split_names(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise UsageError(f"--class-names must list at least one name, got {text!r}")
    return names


def _read_image(path: str, channels: int) -> np.ndarray:
    import skimage.io

    from mrcnn.data.dataset import convert_channels, to_uint8

    if not os.path.isfile(path):
        raise FileNotFoundError(f"image {path!r} not found")
    try:
        image = skimage.io.imread(path)
    except (OSError, ValueError) as err:
        raise UsageError(f"cannot read image {path!r}: {err}") from err
    return convert_channels(to_uint8(image), channels)


def run_detect(args: argparse.Namespace) -> int:
    """`mrcnn detect IMAGE...`: one overlay PNG per image in --out."""
    from mrcnn.vis import drawing as visualize
    images = [_read_image(p, 3) for p in args.images]  # fail on a bad path before building
    dataset = None
    if dataset_format(args) is not None:
        dataset, _ = load_dataset(args, "train")
    model, config = _inference_model(args, dataset)
    if args.class_names:
        names = ["BG"] + _split_names(args.class_names)
    elif dataset is not None:
        names = list(dataset.class_names)
    else:
        names = list(getattr(config, "CLASS_NAMES", None) or [])
        names = names if names and names[0] == "BG" else ["BG"] + names
    names += [f"class {i}" for i in range(len(names), config.NUM_CLASSES)]
    if config.IMAGE_CHANNEL_COUNT != 3:
        images = [_read_image(p, config.IMAGE_CHANNEL_COUNT) for p in args.images]
    os.makedirs(args.out, exist_ok=True)
    for path, image in zip(args.images, images, strict=True):
        r = model.detect([image])[0]
        stem = os.path.splitext(os.path.basename(path))[0]
        out = os.path.join(args.out, f"{stem}_detections.png")
        visualize.display_instances(image, r["rois"], r["masks"], r["class_ids"], names,
                                    r["scores"], title=os.path.basename(path), figsize=(8, 8),
                                    path=out)
        print(f"{path}: {len(r['class_ids'])} detections -> {out}")
        for box, class_id, score in zip(r["rois"], r["class_ids"], r["scores"], strict=True):
            print(f"    {names[int(class_id)]:<16} {float(score):.3f}  "
                  f"(y1, x1, y2, x2) = {tuple(int(v) for v in box)}")
    return 0


def run_inspect_weights(args: argparse.Namespace) -> int:
    """`mrcnn inspect-weights FILE`: the file listing, and a dry-run load into a config's
    training model."""
    from mrcnn.tools.inspect_weights import file_kind, inspect_weights

    if args.settings and not args.config:
        raise UsageError("--set needs --config (the class the overrides apply to)")
    print(inspect_weights(args.file, None, show_all=args.all))
    if args.config:
        import tempfile

        cls = load_config_class(args.config)
        config = make_config(cls, parse_settings(args.settings))
        with tempfile.TemporaryDirectory() as logs:
            keras_model = _build_model("training", config, logs).keras_model
            if file_kind(args.file) == "h5":
                from mrcnn.checkpoint.loading import load_weights_h5
                report = load_weights_h5(keras_model, args.file, by_name=True,
                                         skip_mismatch=True, dry_run=True)
            else:
                from mrcnn.checkpoint.tf_checkpoint import load_tf_checkpoint
                report = load_tf_checkpoint(keras_model, args.file, None, skip_mismatch=True,
                                            dry_run=True)
        print(f"\nDiff against the model of {args.config}:\n{report}")
    return 0


def run_debug_data(args: argparse.Namespace) -> int:
    """`mrcnn debug-data`: PNGs of a few images and the anchor-match table."""
    from mrcnn.tools.debug_data import debug_dataset

    if args.images < 0 or args.samples < 0 or args.check_limit < 0:
        raise UsageError("--images, --samples and --check-limit must be >= 0")
    cls = load_config_class(args.config)
    overrides = parse_settings(args.settings)
    dataset, _ = load_dataset(args, args.subset)
    if dataset is None:
        raise UsageError(f"no {args.subset} set given")
    config = make_config(cls, overrides, classes_from_dataset(dataset, overrides))
    if args.image_ids:
        bad = [i for i in args.image_ids if not 0 <= i < dataset.num_images]
        if bad:
            raise UsageError(f"--image-ids {bad} out of range 0..{dataset.num_images - 1}")
    result = debug_dataset(dataset, config, args.out, image_ids=args.image_ids,
                           count=args.images, augmentation=make_augmentation(args.augment),
                           augment_samples=args.samples, check_limit=args.check_limit or None,
                           seed=int(config.RANDOM_SEED or 0))
    print(result)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result.to_dict(), f, indent=2, default=str)
    return 1 if args.fail_on_unmatched and result.unmatched else 0
