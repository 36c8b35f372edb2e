"""`mrcnn evaluate`: our mAP table, and pycocotools' COCOeval stats for COCO data."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from mrcnn.tools.common import UsageError, load_dataset, write_json
from mrcnn.tools.models import inference_model

logger = logging.getLogger(__name__)


def run(args: argparse.Namespace) -> int:
    """Evaluate on --val (or the training set when no validation set is given); returns 0.

    Prints `evaluate_dataset`'s table and, for COCO data, one COCOeval line per --eval-type;
    `--json FILE` also writes the numbers (atomically).

    Raises:
        UsageError: bad options or dataset.
        FileNotFoundError: a dataset, image or weights file is missing.
    """
    from mrcnn.evaluation.evaluator import evaluate_dataset

    if args.limit < 0:
        raise UsageError(f"--limit must be >= 0, got {args.limit}")
    dataset, coco = load_dataset(args, "val")
    if dataset is None:
        logger.info("No validation set given: evaluating on the training set")
        dataset, coco = load_dataset(args, "train")
    model, _ = inference_model(args, dataset)
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
        write_json(args.json, out)
    return 0
