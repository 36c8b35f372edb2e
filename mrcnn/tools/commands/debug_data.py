"""`mrcnn debug-data`: PNGs of a few images and the anchor-match table of a dataset."""

from __future__ import annotations

import argparse
import logging

from mrcnn.tools.common import (
    UsageError,
    augmentation_available,
    classes_from_dataset,
    load_config_class,
    load_dataset,
    make_augmentation,
    make_config,
    parse_settings,
    write_json,
)

logger = logging.getLogger(__name__)


def run(args: argparse.Namespace) -> int:
    """Draw and check the --subset; returns 1 with --fail-on-unmatched when an object has no
    anchor at IoU >= 0.3, else 0. `--json FILE` also writes the result (atomically).

    Raises:
        UsageError: bad options (negative counts, image ids out of range, no such subset).
    """
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
    augment = args.augment
    if augment is None:  # the default: flips when a library can do them
        augment = "flip" if augmentation_available() else "none"
        if augment == "none":
            logger.info("No augmentation library (imgaug or albumentations): drawing no "
                        "augmented samples (pip install \"mrcnn[augment]\" to add them)")
    result = debug_dataset(dataset, config, args.out, image_ids=args.image_ids,
                           count=args.images, augmentation=make_augmentation(augment),
                           augment_samples=args.samples, check_limit=args.check_limit or None,
                           seed=int(config.RANDOM_SEED or 0))
    print(result)
    if args.json:
        write_json(args.json, result.to_dict())
    return 1 if args.fail_on_unmatched and result.unmatched else 0
