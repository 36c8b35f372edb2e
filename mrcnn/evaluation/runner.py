"""One detection pass over a dataset feeding every metric: COCOeval (bbox and segm) and
matterport's `compute_ap` table, plus the COCO results and one record per image.

    from mrcnn.evaluation.runner import evaluate_model
    report = evaluate_model(model, dataset, coco)     # coco: pycocotools COCO or None
    print(report)                                     # COCOeval first, then matterport's table

Each image is loaded once at its original size (`dataset.load_image`), detected once
(`model.detect`, batches of `config.BATCH_SIZE`), and its detections are scored right away,
so no mask of an earlier image is kept in memory:

- COCOeval, the headline: the detections become COCO result dicts (compressed RLE masks) and
  pycocotools scores them against `coco` (the dataset's own annotations) or, for any other
  dataset, against its masks turned into COCO ground truth (`dataset_as_coco`). COCO pools
  the detections of all images per class, so these numbers compare with published COCO and
  Detectron2 figures when the detection score threshold is the same (Detectron2: 0.05).
- matterport's `compute_ap` (`MetricAccumulator`): AP per image, then averaged over images.
  Kept for continuity with matterport's notebooks; it is not comparable with COCO AP.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mrcnn.evaluation.coco import STAT_NAMES, build_coco_results, dataset_as_coco, score_coco
from mrcnn.evaluation.evaluator import (
    DEFAULT_IOU_THRESHOLDS,
    EvaluationResult,
    MetricAccumulator,
)
from mrcnn.structures.boxes import extract_bboxes

logger = logging.getLogger(__name__)

EVAL_TYPES = ("bbox", "segm")


@dataclass
class EvaluationReport:
    """Everything one evaluation pass measured.

    Attributes:
        matterport: matterport's per-image-averaged `compute_ap` metrics.
        coco: {"bbox" | "segm": the 12 COCOeval numbers keyed by STAT_NAMES}.
        coco_results: the COCO result dicts of every detection (RLE masks), keyed by the
            COCO image ids of the ground truth.
        per_image: one dict per image: image_id (internal), coco_image_id, path,
            ground_truth (instance count), detections, and matterport's ap50, ap, recall50
            (None without ground truth).
        pr_curves: {label: (recall [101], precision [101])} from COCOeval at IoU 0.5 and
            0.75, area "all", 100 detections, averaged over the classes that have ground
            truth.
        num_images: images evaluated.
        min_confidence: the model's DETECTION_MIN_CONFIDENCE (None when unknown).
    """

    matterport: EvaluationResult
    coco: dict[str, dict[str, float]] = field(default_factory=dict)
    coco_results: list[dict] = field(default_factory=list)
    per_image: list[dict] = field(default_factory=list)
    pr_curves: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    num_images: int = 0
    min_confidence: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """{"evaluation": matterport's metrics, "coco_bbox": {...}, "coco_segm": {...}}."""
        out: dict[str, Any] = {"evaluation": self.matterport.to_dict()}
        for eval_type, stats in self.coco.items():
            out[f"coco_{eval_type}"] = dict(stats)
        return out

    def __str__(self) -> str:
        threshold = ("" if self.min_confidence is None
                     else f", detections with score >= {self.min_confidence:g}")
        lines = [f"COCOeval (pycocotools) on {self.num_images} images{threshold}:"]
        for eval_type, stats in self.coco.items():
            lines.append(f"COCOeval {eval_type}: "
                         + "  ".join(f"{k} {v:.3f}" for k, v in stats.items()))
        lines += ["", "matterport compute_ap (mask IoU; AP per image, then the mean over "
                  "images; not comparable with COCO AP):", str(self.matterport)]
        return "\n".join(lines)


class _InternalClasses:
    """Stands in for the dataset in `build_coco_results` when the ground truth is
    `dataset_as_coco`'s: category ids are the internal class ids."""

    source = "internal"

    @staticmethod
    def get_source_class_id(class_id: int, source: str) -> int:
        return int(class_id)


def _ground_truth(dataset: Any, image_id: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(class_ids [N], boxes [N, (y1, x1, y2, x2)], masks [H, W, N]) at the original size,
    without crowd regions and empty masks."""
    masks, class_ids = dataset.load_mask(image_id)
    masks = np.asarray(masks, dtype=bool)
    class_ids = np.asarray(class_ids).reshape(-1)
    if masks.ndim != 3:
        masks = np.zeros(dataset.load_image(image_id).shape[:2] + (0,), dtype=bool)
    keep = (class_ids > 0) & masks.any(axis=(0, 1))
    masks = masks[..., keep]
    return class_ids[keep].astype(np.int32), extract_bboxes(masks), masks


def _nan_to_none(value: float) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


def _pr_curves(eval_type: str, precision: np.ndarray | None
               ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    if precision is None:
        return {}
    recall = np.linspace(0.0, 1.0, precision.shape[1])
    curves = {}
    for index, iou in ((0, "0.50"), (5, "0.75")):
        # [recall points, classes] at area "all" (0) and 100 detections (last).
        p = precision[index, :, :, 0, -1]
        valid = p[0] > -1 if p.ndim == 2 else np.zeros(0, dtype=bool)
        if valid.any():
            curves[f"{eval_type} IoU {iou}"] = (recall, p[:, valid].mean(axis=1))
    return curves


def evaluate_model(model: Any, dataset: Any, coco: Any = None,
                   eval_types: Sequence[str] = EVAL_TYPES,
                   image_ids: Sequence[int] | None = None, limit: int | None = None,
                   iou_thresholds: Sequence[float] = DEFAULT_IOU_THRESHOLDS,
                   progress: Callable[[int], None] | None = None) -> EvaluationReport:
    """Detect once on every image and compute every metric (see the module doc).

    Args:
        model: an inference-mode `MaskRCNN` (anything with `detect(images)` and `config`).
        dataset: a prepared dataset; with `coco`, the one loaded from it.
        coco: the pycocotools COCO ground truth of `dataset`, or None to build it from the
            dataset's masks.
        eval_types: COCOeval types, a subset of ("bbox", "segm").
        image_ids: internal image ids (default all of the dataset).
        limit: evaluate only the first `limit` images (None or 0: all).
        iou_thresholds: mask-IoU thresholds of matterport's averaged mAP.
        progress: called with the number of images done after each batch (a progress bar).

    Returns:
        An `EvaluationReport`; `print(report)` shows the tables.

    Raises:
        ValueError: no image to evaluate, an unknown eval type, or a model without masks
            when "segm" is asked for.
    """
    eval_types = tuple(eval_types)
    bad = [t for t in eval_types if t not in EVAL_TYPES]
    if bad or not eval_types:
        raise ValueError(f"eval_types must be a non-empty subset of {EVAL_TYPES}, got "
                         f"{eval_types!r}")
    ids = [int(i) for i in (dataset.image_ids if image_ids is None else image_ids)]
    ids = ids[:int(limit)] if limit else ids
    if not ids:
        raise ValueError("evaluate_model: no image to evaluate")
    if coco is None:
        coco, classes = dataset_as_coco(dataset, ids), _InternalClasses()
        coco_ids = {i: i for i in ids}
    else:
        classes = dataset
        coco_ids = {i: dataset.image_info[i]["id"] for i in ids}
    config = model.config
    batch = max(1, int(getattr(config, "BATCH_SIZE", 1)))
    scores = MetricAccumulator(iou_thresholds)
    report = EvaluationReport(matterport=EvaluationResult(0.0, 0.0, 0.0), num_images=len(ids),
                              min_confidence=getattr(config, "DETECTION_MIN_CONFIDENCE", None))
    start_time = time.time()
    for start in range(0, len(ids), batch):
        chunk = ids[start:start + batch]
        detections = model.detect([dataset.load_image(i) for i in chunk], verbose=0)
        for image_id, r in zip(chunk, detections, strict=True):
            masks = r.get("masks")
            if masks is None and "segm" in eval_types:
                raise ValueError("evaluate_model: the model returned no masks (segm)")
            gt_class_ids, gt_boxes, gt_masks = _ground_truth(dataset, image_id)
            ap50, ap, recall = scores.add(gt_class_ids, gt_boxes, gt_masks, r)
            report.coco_results.extend(build_coco_results(
                classes, [coco_ids[image_id]], r["rois"], r["class_ids"], r["scores"],
                None if masks is None or np.ndim(masks) != 3 else masks))
            report.per_image.append({
                "image_id": image_id, "coco_image_id": coco_ids[image_id],
                "path": dataset.image_info[image_id].get("path"),
                "ground_truth": len(gt_class_ids), "detections": len(r["class_ids"]),
                "ap50": _nan_to_none(ap50), "ap": _nan_to_none(ap),
                "recall50": _nan_to_none(recall)})
        if progress is not None:
            progress(len(chunk))
    logger.info("detection and scoring of %d images took %.1f s", len(ids),
                time.time() - start_time)
    report.matterport = scores.result(getattr(dataset, "class_names", []), len(ids))
    if not report.coco_results:
        logger.warning("evaluate_model: the model detected nothing; every COCO score is 0")
    for eval_type in eval_types:
        stats, precision = score_coco(coco, report.coco_results, eval_type,
                                      [coco_ids[i] for i in ids])
        report.coco[eval_type] = stats
        report.pr_curves.update(_pr_curves(eval_type, precision))
    return report


__all__ = ["EVAL_TYPES", "STAT_NAMES", "EvaluationReport", "evaluate_model"]
