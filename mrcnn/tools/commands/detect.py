"""`mrcnn detect IMAGE...`: detect objects and write one overlay PNG per image."""

from __future__ import annotations

import argparse
import os
from typing import Any

from mrcnn.tools.common import dataset_format, load_dataset, read_image, split_names
from mrcnn.tools.models import inference_model


def class_names_for(args: argparse.Namespace, dataset: Any, config: Any) -> list[str]:
    """The names to caption detections with, "BG" first, one per class of the config:
    --class-names, else the dataset's, else the config's CLASS_NAMES; unnamed classes get
    "class N"."""
    if args.class_names:
        names = ["BG"] + split_names(args.class_names)
    elif dataset is not None:
        names = list(dataset.class_names)
    else:
        names = list(getattr(config, "CLASS_NAMES", None) or [])
        names = names if names and names[0] == "BG" else ["BG"] + names
    return names + [f"class {i}" for i in range(len(names), config.NUM_CLASSES)]


def run(args: argparse.Namespace) -> int:
    """Write `{stem}_detections.png` per image to --out and list the detections; returns 0.

    Raises:
        FileNotFoundError: an image or the weights file is missing.
        UsageError: an image cannot be read, or bad options.
    """
    from mrcnn.vis import drawing

    images = [read_image(p, 3) for p in args.images]  # fail on a bad path before building
    dataset = None
    if dataset_format(args) is not None:
        dataset, _ = load_dataset(args, "train")
    model, config = inference_model(args, dataset)
    names = class_names_for(args, dataset, config)
    if config.IMAGE_CHANNEL_COUNT != 3:
        images = [read_image(p, config.IMAGE_CHANNEL_COUNT) for p in args.images]
    os.makedirs(args.out, exist_ok=True)
    for path, image in zip(args.images, images, strict=True):
        r = model.detect([image])[0]
        stem = os.path.splitext(os.path.basename(path))[0]
        out = os.path.join(args.out, f"{stem}_detections.png")
        drawing.display_instances(image, r["rois"], r["masks"], r["class_ids"], names,
                                  r["scores"], title=os.path.basename(path), figsize=(8, 8),
                                  path=out)
        print(f"{path}: {len(r['class_ids'])} detections -> {out}")
        for box, class_id, score in zip(r["rois"], r["class_ids"], r["scores"], strict=True):
            print(f"    {names[int(class_id)]:<16} {float(score):.3f}  "
                  f"(y1, x1, y2, x2) = {tuple(int(v) for v in box)}")
    return 0
