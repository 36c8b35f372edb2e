"""`mrcnn detect IMAGE_OR_DIR...`: detect objects; overlay PNGs, COCO results JSON, a summary.

Folders are searched (not recursively) for image files by extension and taken in sorted
order. Class names and detection settings come, first to last, from --class-names /
--min-confidence / --set, a dataset given with the dataset options, what the checkpoint
stores (a `class_names` extra, its config's CLASS_NAMES and DETECTION_* settings), and the
config class.
"""

from __future__ import annotations

import argparse
import logging
import os
from typing import Any

from mrcnn.tools.common import (
    UsageError,
    dataset_format,
    load_config_class,
    load_dataset,
    parse_settings,
    read_image,
    split_names,
    write_json,
)
from mrcnn.tools.models import inference_model, read_checkpoint_metadata, resolve_checkpoint
from mrcnn.tools.progress import ProgressBar

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
# Settings a checkpoint's stored config carries that change what detect returns.
DETECTION_SETTINGS = ("DETECTION_MIN_CONFIDENCE", "DETECTION_NMS_THRESHOLD",
                      "DETECTION_MAX_INSTANCES", "POST_NMS_ROIS_INFERENCE")


def find_images(inputs: list[str]) -> list[str]:
    """The image files named by `inputs`: files as given, folders' image files sorted.

    Raises:
        FileNotFoundError: an input does not exist.
        UsageError: a folder holds no image file.
    """
    paths = []
    for item in inputs:
        if os.path.isdir(item):
            found = sorted(os.path.join(item, name) for name in os.listdir(item)
                           if name.lower().endswith(IMAGE_EXTENSIONS)
                           and os.path.isfile(os.path.join(item, name)))
            if not found:
                raise UsageError(f"folder {item!r} holds no image file "
                                 f"({', '.join(IMAGE_EXTENSIONS)})")
            paths.extend(found)
        elif os.path.isfile(item):
            paths.append(item)
        else:
            raise FileNotFoundError(f"image {item!r} not found")
    return paths


def checkpoint_metadata(path: str | None) -> tuple[dict[str, Any], list[str] | None]:
    """(the stored settings, the stored class names or None) of a weights file, from
    `tools.models.read_checkpoint_metadata`: the stored config with the checkpoint's detection
    settings on top; empty for matterport's files and TF checkpoints."""
    meta = read_checkpoint_metadata(path)
    stored = dict(meta["config"] or {})
    stored.update(meta["detection"])
    names = meta["class_names"] or stored.get("CLASS_NAMES")
    return stored, [str(n) for n in names] if names else None


def class_names_for(args: argparse.Namespace, dataset: Any, config: Any,
                    stored_names: list[str] | None = None) -> list[str]:
    """The names to caption detections with, "BG" first, one per class of the config:
    --class-names, else the dataset's, else the checkpoint's, else the config's CLASS_NAMES;
    unnamed classes get "class N"."""
    if args.class_names:
        names = ["BG"] + split_names(args.class_names)
    elif dataset is not None:
        names = list(dataset.class_names)
    else:
        names = list(stored_names or getattr(config, "CLASS_NAMES", None) or [])
        names = names if names and names[0] == "BG" else ["BG"] + names
    return names + [f"class {i}" for i in range(len(names), config.NUM_CLASSES)]


def _settings(args: argparse.Namespace, stored: dict[str, Any],
              stored_names: list[str] | None, has_dataset: bool) -> dict[str, Any]:
    overrides = parse_settings(args.settings)
    out = {k: stored[k] for k in DETECTION_SETTINGS if k in stored and k not in overrides}
    if stored_names and not has_dataset and not args.class_names \
            and "NUM_CLASSES" not in overrides and "NUM_CLASSES" not in stored:
        out["NUM_CLASSES"] = len(stored_names) + (0 if stored_names[0] == "BG" else 1)
    if args.min_confidence is not None:
        if not 0.0 <= args.min_confidence <= 1.0:
            raise UsageError(f"--min-confidence must be in [0, 1], got {args.min_confidence}")
        out["DETECTION_MIN_CONFIDENCE"] = float(args.min_confidence)
    return out


def _coco_results(image_id: int, r: dict) -> list[dict]:
    from mrcnn.evaluation.coco import build_coco_results

    class _Classes:  # category ids are the model's class ids
        source = "model"

        @staticmethod
        def get_source_class_id(class_id: int, source: str) -> int:
            return int(class_id)

    masks = r.get("masks")
    return build_coco_results(_Classes(), [image_id], r["rois"], r["class_ids"], r["scores"],
                              masks if masks is not None and masks.ndim == 3 else None)


def run(args: argparse.Namespace) -> int:
    """Detect in every image; write `{stem}_detections.png` per image to --out (unless
    --no-images) and the COCO results to --json (a list of result dicts: image_id is the
    image's 1-based position, category_id the model's class id, segmentation compressed RLE,
    plus the image's file_name); list the detections; returns 0.

    Raises:
        FileNotFoundError: an image, a folder for --json or the weights file is missing.
        UsageError: an image cannot be read, or bad options.
    """
    paths = find_images(args.images)
    if args.json and not os.path.isdir(os.path.dirname(os.path.abspath(args.json))):
        raise FileNotFoundError(f"--json {args.json}: its folder does not exist")
    images = [read_image(p, 3) for p in paths]  # fail on a bad file before building
    dataset = None
    if dataset_format(args) is not None:
        dataset, _ = load_dataset(args, "train")
    checkpoint = resolve_checkpoint(args.weights, args.logs, load_config_class(args.config),
                                    parse_settings(args.settings))
    stored, stored_names = checkpoint_metadata(checkpoint)
    model, config = inference_model(args, dataset,
                                    _settings(args, stored, stored_names, dataset is not None))
    names = class_names_for(args, dataset, config, stored_names)
    if config.IMAGE_CHANNEL_COUNT != 3:
        images = [read_image(p, config.IMAGE_CHANNEL_COUNT) for p in paths]
    if not args.no_images:
        os.makedirs(args.out, exist_ok=True)
    if args.verbose:
        print(f"Processing {len(images)} images (score >= "
              f"{config.DETECTION_MIN_CONFIDENCE:g})")
    results: list[dict] = []
    with ProgressBar(len(paths), "detect", enabled=not args.quiet) as bar:
        for image_id, (path, image) in enumerate(zip(paths, images, strict=True), start=1):
            if args.verbose:
                bar.clear()
                print(f"image {path}: shape {image.shape} min {int(image.min())} "
                      f"max {int(image.max())} {image.dtype}")
            r = model.detect([image])[0]
            for result in _coco_results(image_id, r):
                results.append({**result, "file_name": path})
            out = None
            if not args.no_images:
                from mrcnn.vis import drawing

                stem = os.path.splitext(os.path.basename(path))[0]
                out = os.path.join(args.out, f"{stem}_detections.png")
                drawing.display_instances(image, r["rois"], r["masks"], r["class_ids"], names,
                                          r["scores"], title=os.path.basename(path),
                                          figsize=(8, 8), path=out)
            bar.clear()
            print(f"{path}: {len(r['class_ids'])} detections" + (f" -> {out}" if out else ""))
            for box, class_id, score in zip(r["rois"], r["class_ids"], r["scores"],
                                            strict=True):
                print(f"    {names[int(class_id)]:<16} {float(score):.3f}  "
                      f"(y1, x1, y2, x2) = {tuple(int(v) for v in box)}")
            bar.update(1)
    if args.json:
        write_json(args.json, results)
        logger.info("Wrote %d detections to %s", len(results), args.json)
    return 0
