"""`mrcnn evaluate`: one detection pass, COCOeval (bbox, segm) first, matterport's table after.

Files (each written atomically; `--out DIR` puts all four in DIR under these names):
metrics.json (`--json`), coco_results.json (`--results`, COCO results with RLE masks),
per_image.json (`--per-image`) and precision_recall.png (`--plot`).
"""

from __future__ import annotations

import argparse
import logging
import os
from typing import Any

from mrcnn.tools.common import UsageError, load_dataset, parse_settings, write_json
from mrcnn.tools.models import inference_model
from mrcnn.tools.progress import ProgressBar

logger = logging.getLogger(__name__)

# Detectron2's default test score threshold (MODEL.ROI_HEADS.SCORE_THRESH_TEST): COCO AP
# rewards low-score detections, so matterport's 0.7 understates it.
EVAL_MIN_CONFIDENCE = 0.05
OUT_NAMES = {"json": "metrics.json", "results": "coco_results.json",
             "per_image": "per_image.json", "plot": "precision_recall.png"}


def detection_settings(args: argparse.Namespace, default: float | None) -> dict[str, Any]:
    """{"DETECTION_MIN_CONFIDENCE": ...} from --min-confidence, else `default` unless the
    user gave --set DETECTION_MIN_CONFIDENCE; empty when neither applies.

    Raises:
        UsageError: --min-confidence outside [0, 1].
    """
    value = getattr(args, "min_confidence", None)
    if value is not None:
        if not 0.0 <= value <= 1.0:
            raise UsageError(f"--min-confidence must be in [0, 1], got {value}")
        return {"DETECTION_MIN_CONFIDENCE": float(value)}
    if default is None or "DETECTION_MIN_CONFIDENCE" in parse_settings(args.settings):
        return {}
    return {"DETECTION_MIN_CONFIDENCE": default}


def output_paths(args: argparse.Namespace) -> dict[str, str | None]:
    """The file of each output: its own flag, else `--out DIR/name`, else None."""
    out_dir = getattr(args, "out", None)
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
    paths = {}
    for key, name in OUT_NAMES.items():
        given = getattr(args, key, None)
        paths[key] = given or (os.path.join(out_dir, name) if out_dir else None)
    return paths


def run(args: argparse.Namespace) -> int:
    """Evaluate on --val (or the training set when no validation set is given); returns 0.

    Prints the COCOeval lines and matterport's table once, and writes the files asked for.

    Raises:
        UsageError: bad options or dataset.
        FileNotFoundError: a dataset, image or weights file (or an output folder) is missing.
    """
    from mrcnn.evaluation.runner import evaluate_model

    if args.limit < 0:
        raise UsageError(f"--limit must be >= 0, got {args.limit}")
    paths = output_paths(args)
    for key, path in paths.items():
        folder = os.path.dirname(os.path.abspath(path)) if path else None
        if folder and not os.path.isdir(folder):
            raise FileNotFoundError(f"--{key.replace('_', '-')} {path}: folder {folder!r} "
                                    "does not exist")
    dataset, coco = load_dataset(args, "val")
    if dataset is None:
        logger.info("No validation set given: evaluating on the training set")
        dataset, coco = load_dataset(args, "train")
    model, config = inference_model(args, dataset,
                                    detection_settings(args, EVAL_MIN_CONFIDENCE))
    types = ("bbox", "segm") if args.eval_type == "both" else (args.eval_type,)
    total = min(len(dataset.image_ids), args.limit) if args.limit else len(dataset.image_ids)
    with ProgressBar(total, "evaluate", enabled=not args.quiet) as bar:
        report = evaluate_model(model, dataset, coco, eval_types=types,
                                limit=args.limit or None, progress=bar.update)
    print(report)
    if paths["json"]:
        write_json(paths["json"], report.to_dict())
    if paths["results"]:
        write_json(paths["results"], report.coco_results)
    if paths["per_image"]:
        write_json(paths["per_image"], report.per_image)
    if paths["plot"]:
        from mrcnn.vis.stats import plot_pr_curves

        if report.pr_curves:
            plot_pr_curves(report.pr_curves, path=paths["plot"], title=(
                f"COCOeval precision-recall ({report.num_images} images, score >= "
                f"{config.DETECTION_MIN_CONFIDENCE:g})"))
        else:
            logger.warning("No precision-recall curve to draw (no detection): %s not written",
                           paths["plot"])
    for path in paths.values():
        if path and os.path.exists(path):
            logger.info("Wrote %s", path)
    return 0
