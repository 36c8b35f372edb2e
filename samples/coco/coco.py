"""Mask R-CNN on MS COCO: train or evaluate (matterport's samples/coco/coco.py command line).

    # Train a new model starting from pre-trained COCO weights
    python samples/coco/coco.py train --dataset=/path/to/coco/ --model=coco
    # Train a new model starting from ImageNet weights
    python samples/coco/coco.py train --dataset=/path/to/coco/ --model=imagenet
    # Continue training the last model you trained
    python samples/coco/coco.py train --dataset=/path/to/coco/ --model=last
    # Run COCO evaluation on the last model you trained (bbox; --eval-type segm for masks)
    python samples/coco/coco.py evaluate --dataset=/path/to/coco/ --model=last --limit=500

The data must already be on disk, laid out as distributed by cocodataset.org:

    {dataset}/annotations/instances_{subset}{year}.json
    {dataset}/{subset}{year}/*.jpg       (minival and valminusminival read val{year}/)

Nothing is downloaded here: `--download` only says where to get the files.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from mrcnn.config import Config  # noqa: E402
from mrcnn.data.formats import coco as coco_format  # noqa: E402
from mrcnn.engine.runs import exclude_for, resolve_weights  # noqa: E402
from mrcnn.evaluation.coco import evaluate_coco  # noqa: E402

logger = logging.getLogger("coco")

DEFAULT_LOGS_DIR = os.path.join(ROOT, "logs")
DEFAULT_DATASET_YEAR = "2014"
DOWNLOAD_HELP = ("this project downloads nothing. Get the COCO {year} images and the "
                 "instances annotations from https://cocodataset.org/#download and unpack them "
                 "into {dataset!r} as annotations/instances_<subset>{year}.json and "
                 "<subset>{year}/ (the 2014 minival/valminusminival annotation files are "
                 "matterport's, from its v1.0 release)")


class CocoConfig(Config):
    """Configuration for training on MS COCO (matterport's values)."""

    NAME = "coco"
    IMAGES_PER_GPU = 2  # a 12 GB GPU holds two images; adjust down for less memory
    NUM_CLASSES = 1 + 80  # background + the 80 COCO classes


class InferenceConfig(CocoConfig):
    """One image at a time, every detection kept (COCO evaluation ranks them by score)."""

    GPU_COUNT = 1
    IMAGES_PER_GPU = 1
    DETECTION_MIN_CONFIDENCE = 0


def coco_paths(dataset_dir: str, subset: str, year: str = DEFAULT_DATASET_YEAR
               ) -> tuple[str, str]:
    """(annotation JSON path, image folder) of a COCO subset, as distributed."""
    image_subset = "val" if subset in ("minival", "valminusminival") else subset
    return (os.path.join(dataset_dir, "annotations", f"instances_{subset}{year}.json"),
            os.path.join(dataset_dir, f"{image_subset}{year}"))


def missing_paths(dataset_dir: str, subsets: list[str], year: str) -> list[str]:
    """The annotation files and image folders of `subsets` that are not on disk."""
    missing = []
    for subset in subsets:
        annotation_json, image_dir = coco_paths(dataset_dir, subset, year)
        missing += [p for p in (annotation_json,) if not os.path.isfile(p)]
        missing += [p for p in (image_dir,) if not os.path.isdir(p)]
    return missing


class CocoDataset(coco_format.CocoDataset):
    """matterport's sample dataset class: `load_coco` takes the COCO root, subset and year."""

    def load_coco(self, dataset_dir: str, subset: str, year: str = DEFAULT_DATASET_YEAR,
                  class_ids: list[int] | None = None, class_map: dict | None = None,
                  return_coco: bool = False, auto_download: bool = False,
                  limit: int | None = None, skip_invalid: bool = False) -> Any:
        """Load a subset ("train", "val", "minival", "valminusminival") of COCO `year`.

        `auto_download` is accepted for matterport's signature; nothing is downloaded.

        Raises:
            FileNotFoundError: the annotation file or image folder is not on disk.
        """
        if auto_download:
            logger.warning("auto_download: %s", DOWNLOAD_HELP.format(year=year,
                                                                     dataset=dataset_dir))
        missing = missing_paths(dataset_dir, [subset], year)
        if missing:
            raise FileNotFoundError(f"COCO {subset}{year} is not on disk: missing {missing}; "
                                    + DOWNLOAD_HELP.format(year=year, dataset=dataset_dir))
        annotation_json, image_dir = coco_paths(dataset_dir, subset, year)
        return super().load_coco(annotation_json, image_dir, class_ids=class_ids,
                                 class_map=class_map, return_coco=return_coco, limit=limit,
                                 skip_invalid=skip_invalid)


def load_model(mode: str, config: Config, logs: str, weights: str) -> Any:
    """Build a MaskRCNN and load `weights` ("coco", "last", "imagenet" or a path)."""
    from mrcnn import model as modellib  # deferred: TensorFlow is slow to import

    path = resolve_weights(weights, logs, config.NAME)
    model = modellib.MaskRCNN(mode=mode, config=config, model_dir=logs)
    if path:
        logger.info("Loading weights %s", path)
        model.load_weights(path, by_name=True,
                           exclude=exclude_for(weights, None, config.NUM_CLASSES))
    return model


def train(model: Any, config: Config, args: argparse.Namespace) -> None:
    """matterport's three training stages: heads, ResNet stage 4 and up, then all layers."""
    from mrcnn.data.augment import import_imgaug

    iaa = import_imgaug().augmenters
    dataset_train = CocoDataset()
    dataset_train.load_coco(args.dataset, "train", year=args.year)
    if args.year == "2014":
        dataset_train.load_coco(args.dataset, "valminusminival", year=args.year)
    dataset_train.prepare()
    dataset_val = CocoDataset()
    dataset_val.load_coco(args.dataset, "val" if args.year == "2017" else "minival",
                          year=args.year)
    dataset_val.prepare()
    augmentation = iaa.Fliplr(0.5)
    for epochs, layers, learning_rate in ((40, "heads", config.LEARNING_RATE),
                                          (120, "4+", config.LEARNING_RATE),
                                          (160, "all", config.LEARNING_RATE / 10)):
        logger.info("Training %s up to epoch %d", layers, epochs)
        model.train(dataset_train, dataset_val, learning_rate=learning_rate, epochs=epochs,
                    layers=layers, augmentation=augmentation)


def evaluate(model: Any, args: argparse.Namespace) -> dict[str, float]:
    """COCOeval of the model on `limit` validation images; returns the 12 stats."""
    dataset_val = CocoDataset()
    subset = "val" if args.year == "2017" else "minival"
    coco = dataset_val.load_coco(args.dataset, subset, year=args.year, return_coco=True)
    dataset_val.prepare()
    logger.info("Running COCO evaluation on %d images.", args.limit)
    return evaluate_coco(model, dataset_val, coco, args.eval_type,
                                     limit=int(args.limit))


def _str2bool(value: str) -> bool:
    if value.lower() in ("1", "true", "yes", "y"):
        return True
    if value.lower() in ("0", "false", "no", "n"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Train Mask R-CNN on MS COCO.")
    parser.add_argument("command", metavar="<command>", choices=("train", "evaluate"),
                        help="'train' or 'evaluate' on MS COCO")
    parser.add_argument("--dataset", required=True, metavar="/path/to/coco/",
                        help="Directory of the MS-COCO dataset")
    parser.add_argument("--year", default=DEFAULT_DATASET_YEAR, metavar="<year>",
                        help=f"Year of the MS-COCO dataset (2014 or 2017) "
                             f"(default={DEFAULT_DATASET_YEAR})")
    parser.add_argument("--model", required=True, metavar="/path/to/weights.h5",
                        help="Path to weights .h5 file or 'coco', 'last' or 'imagenet'")
    parser.add_argument("--logs", default=DEFAULT_LOGS_DIR, metavar="/path/to/logs/",
                        help="Logs and checkpoints directory (default=logs/)")
    parser.add_argument("--limit", type=int, default=500, metavar="<image count>",
                        help="Images to use for evaluation (default=500)")
    parser.add_argument("--download", type=_str2bool, nargs="?", const=True, default=False,
                        metavar="<True|False>", help="Prints where to get COCO; nothing is "
                        "downloaded (default=False)")
    parser.add_argument("--eval-type", choices=("bbox", "segm"), default="bbox",
                        help="COCOeval type for 'evaluate' (default=bbox)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the process exit status."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    print(f"Command: {args.command}\nModel: {args.model}\nDataset: {args.dataset}\n"
          f"Year: {args.year}\nLogs: {args.logs}\nDownload: {args.download}")
    if args.download:
        print("--download: " + DOWNLOAD_HELP.format(year=args.year, dataset=args.dataset))
    if args.command == "train":
        subsets = ["train", "valminusminival", "minival"] if args.year == "2014" \
            else ["train", "val"]
    else:
        subsets = ["val" if args.year == "2017" else "minival"]
    missing = missing_paths(args.dataset, subsets, args.year)
    if missing:
        print(f"error: COCO {args.year} data not found: missing " + ", ".join(missing)
              + "\n" + DOWNLOAD_HELP.format(year=args.year, dataset=args.dataset),
              file=sys.stderr)
        return 2

    config = CocoConfig() if args.command == "train" else InferenceConfig()
    config.display()
    mode = "training" if args.command == "train" else "inference"
    try:
        model = load_model(mode, config, args.logs, args.model)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: cannot load weights {args.model!r}: {err}", file=sys.stderr)
        return 2
    if args.command == "train":
        train(model, config, args)
    else:
        stats = evaluate(model, args)
        for name, value in stats.items():
            print(f"{name:>6}: {value:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
