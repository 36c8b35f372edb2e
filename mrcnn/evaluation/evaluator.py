"""Dataset-level detection metrics: per-class AP, mAP@0.5, mAP@[0.5:0.95] and recall@0.5.

`evaluate_dataset(model, dataset)` loads every image with its ground truth through
`load_image_gt` (resized with the model's config, as the network sees it), runs
`model.detect` on it, and scores the detections with `mrcnn.evaluation.metrics` (mask IoU matching,
all-point interpolated AP as matterport computes it). Definitions, all per image first and then
averaged over images (matterport's habit; COCO instead pools detections over the whole dataset):

- Crowd ground truth (negative class ids) is left out: it is neither to be found nor a miss.
- mAP@0.5: mean over the images that have ground truth of `compute_ap` at mask IoU 0.5.
- mAP@[0.5:0.95]: mean over the same images of the AP averaged over `iou_thresholds`.
- recall@0.5: mean over the same images of the fraction of ground-truth instances matched by
  a prediction of their class at mask IoU >= 0.5.
- Per-class AP@0.5 of class c: `compute_ap` with only the ground truth and the predictions of
  class c, averaged over the images where c appears in the ground truth or in the predictions
  (an image where c is only predicted scores 0, one where it is only in the ground truth
  scores 0). Classes that appear nowhere get no entry.

Images without ground truth do not enter mAP or recall (their AP is undefined); their false
positives still lower the per-class AP of the classes predicted there.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from mrcnn.data.ground_truth import load_image_gt
from mrcnn.evaluation.metrics import compute_ap, compute_matches

logger = logging.getLogger(__name__)

DEFAULT_IOU_THRESHOLDS = tuple(float(t) for t in np.round(np.arange(0.5, 1.0, 0.05), 2))


@dataclass
class EvaluationResult:
    """Metrics of a model over a dataset (definitions in the module doc).

    Attributes:
        map50: mAP at mask IoU 0.5.
        map: mAP averaged over `iou_thresholds` (COCO's AP@[0.5:0.95] by default).
        recall50: mean recall at mask IoU 0.5.
        per_class_ap: {class id: AP@0.5} for every class seen in ground truth or predictions.
        per_class_images: {class id: number of images its AP is averaged over}.
        class_names: {class id: name}.
        num_images: images evaluated.
        num_images_with_gt: of them, images with (non-crowd) ground truth.
        iou_thresholds: the thresholds of `map`.
    """

    map50: float
    map: float
    recall50: float
    per_class_ap: dict[int, float] = field(default_factory=dict)
    per_class_images: dict[int, int] = field(default_factory=dict)
    class_names: dict[int, str] = field(default_factory=dict)
    num_images: int = 0
    num_images_with_gt: int = 0
    iou_thresholds: tuple[float, ...] = DEFAULT_IOU_THRESHOLDS

    def to_dict(self) -> dict[str, Any]:
        """Plain Python values (JSON-serializable); per-class APs keyed by class name."""
        out = asdict(self)
        out["per_class_ap"] = {self._name(c): ap for c, ap in self.per_class_ap.items()}
        out["per_class_images"] = {self._name(c): n for c, n in self.per_class_images.items()}
        out["class_names"] = {str(c): n for c, n in self.class_names.items()}
        out["iou_thresholds"] = list(self.iou_thresholds)
        return out

    def _name(self, class_id: int) -> str:
        return self.class_names.get(class_id, str(class_id))

    def __str__(self) -> str:
        low, high = self.iou_thresholds[0], self.iou_thresholds[-1]
        width = max([len(self._name(c)) for c in self.per_class_ap] + [16])
        lines = [f"Evaluation on {self.num_images} images "
                 f"({self.num_images_with_gt} with ground truth)",
                 f"{'class':<{width}}  {'AP@0.5':>7}  {'images':>6}"]
        for class_id in sorted(self.per_class_ap):
            lines.append(f"{self._name(class_id):<{width}}  {self.per_class_ap[class_id]:7.3f}  "
                         f"{self.per_class_images[class_id]:6d}")
        lines += [f"{'mAP@0.5':<{width}}  {self.map50:7.3f}",
                  f"{f'mAP@[{low:.2f}:{high:.2f}]':<{width}}  {self.map:7.3f}",
                  f"{'recall@0.5':<{width}}  {self.recall50:7.3f}"]
        return "\n".join(lines)


def _check_thresholds(iou_thresholds: Sequence[float]) -> tuple[float, ...]:
    thresholds = tuple(float(t) for t in np.asarray(iou_thresholds, dtype=np.float64).ravel())
    if not thresholds or not all(0.0 < t <= 1.0 for t in thresholds):
        raise ValueError(f"iou_thresholds must be a non-empty list of values in (0, 1], got "
                         f"{iou_thresholds!r}")
    return thresholds


def image_metrics(gt_class_ids: np.ndarray, gt_boxes: np.ndarray, gt_masks: np.ndarray,
                  result: dict, iou_thresholds: Sequence[float]
                  ) -> tuple[float, float, float, dict[int, float]]:
    """Metrics of one image's detections (crowd ground truth must be removed already).

    Args:
        gt_class_ids: [N] positive class ids.
        gt_boxes: [N, (y1, x1, y2, x2)] pixel boxes.
        gt_masks: [height, width, N] bool.
        result: one `model.detect` dict: rois [M, (y1, x1, y2, x2)] pixels, class_ids [M],
            scores [M], masks [height, width, M].
        iou_thresholds: thresholds of the averaged AP.

    Returns:
        (AP@0.5, AP averaged over iou_thresholds, recall@0.5, {class id: AP@0.5 of that
        class alone}) with the first three NaN when there is no ground truth.
    """
    pred = (np.asarray(result["rois"]).reshape(-1, 4), np.asarray(result["class_ids"]),
            np.asarray(result["scores"]), np.asarray(result["masks"]))
    if pred[3].ndim != 3:  # no detections may come back as an empty 1-D array
        pred = pred[:3] + (np.zeros(gt_masks.shape[:2] + (0,), dtype=bool),)
    gt = (gt_boxes, gt_class_ids, gt_masks)
    ap50 = ap_range = recall = float("nan")
    if len(gt_class_ids):
        ap50 = compute_ap(*gt, *pred, iou_threshold=0.5)[0]
        ap_range = float(np.mean([compute_ap(*gt, *pred, iou_threshold=t)[0]
                                  for t in iou_thresholds]))
        gt_match = compute_matches(*gt, *pred, iou_threshold=0.5)[0]
        recall = float(np.mean(gt_match > -1))
    per_class = {}
    for class_id in sorted(set(gt_class_ids.tolist()) | set(pred[1].tolist())):
        g, p = gt_class_ids == class_id, pred[1] == class_id
        per_class[int(class_id)] = compute_ap(gt_boxes[g], gt_class_ids[g], gt_masks[..., g],
                                              pred[0][p], pred[1][p], pred[2][p],
                                              pred[3][..., p], iou_threshold=0.5)[0]
    return ap50, ap_range, recall, per_class


class MetricAccumulator:
    """Adds up `image_metrics` image by image; `result()` gives the `EvaluationResult`.

    The one place where matterport's per-image numbers become dataset numbers (definitions in
    the module doc), shared by `evaluate_dataset` and `mrcnn.evaluation.runner`.
    """

    def __init__(self, iou_thresholds: Sequence[float] = DEFAULT_IOU_THRESHOLDS) -> None:
        self.iou_thresholds = _check_thresholds(iou_thresholds)
        self.ap50s: list[float] = []
        self.ap_ranges: list[float] = []
        self.recalls: list[float] = []
        self.per_class: dict[int, list[float]] = defaultdict(list)

    def add(self, gt_class_ids: np.ndarray, gt_boxes: np.ndarray, gt_masks: np.ndarray,
            result: dict) -> tuple[float, float, float]:
        """Score one image (arguments as `image_metrics`; crowd ground truth removed).

        Returns:
            (AP@0.5, AP over the thresholds, recall@0.5), NaN without ground truth.
        """
        ap50, ap_range, recall, classes = image_metrics(
            gt_class_ids, gt_boxes, gt_masks, result, self.iou_thresholds)
        if len(gt_class_ids):
            self.ap50s.append(ap50)
            self.ap_ranges.append(ap_range)
            self.recalls.append(recall)
        for class_id, ap in classes.items():
            self.per_class[class_id].append(ap)
        return ap50, ap_range, recall

    def result(self, class_names: Sequence[str], num_images: int) -> EvaluationResult:
        """The `EvaluationResult` of the images added so far."""

        def mean(values: list[float]) -> float:
            return float(np.mean(values)) if values else 0.0

        names = list(class_names)
        per_class = dict(sorted(self.per_class.items()))
        return EvaluationResult(
            map50=mean(self.ap50s), map=mean(self.ap_ranges), recall50=mean(self.recalls),
            per_class_ap={c: mean(v) for c, v in per_class.items()},
            per_class_images={c: len(v) for c, v in per_class.items()},
            class_names={c: names[c] if 0 <= c < len(names) else str(c) for c in per_class},
            num_images=num_images, num_images_with_gt=len(self.ap50s),
            iou_thresholds=self.iou_thresholds)


def evaluate_dataset(model: Any, dataset: Any, config: Any = None,
                     image_ids: Sequence[int] | None = None,
                     iou_thresholds: Sequence[float] = DEFAULT_IOU_THRESHOLDS,
                     limit: int | None = None) -> EvaluationResult:
    """Evaluate an inference model on dataset images (definitions in the module doc).

    Args:
        model: an inference-mode `MaskRCNN` (anything with `detect(images)` and `config`).
        dataset: a prepared `mrcnn.data.dataset.Dataset`.
        config: config for `load_image_gt` (resizing); default `model.config`.
        image_ids: internal image ids (default all of the dataset).
        iou_thresholds: mask-IoU thresholds averaged in `map`.
        limit: evaluate only the first `limit` images.

    Returns:
        An `EvaluationResult`; `print(result)` shows a table.

    Raises:
        ValueError: no image to evaluate, or bad `iou_thresholds`.
    """
    config = config if config is not None else model.config
    thresholds = _check_thresholds(iou_thresholds)
    ids = [int(i) for i in (dataset.image_ids if image_ids is None else image_ids)]
    if limit:
        ids = ids[:int(limit)]
    if not ids:
        raise ValueError("evaluate_dataset: no image to evaluate")
    batch = max(1, int(getattr(config, "BATCH_SIZE", 1)))
    scores = MetricAccumulator(thresholds)
    start_time = time.time()
    for start in range(0, len(ids), batch):
        chunk = [load_image_gt(dataset, config, i) for i in ids[start:start + batch]]
        results = model.detect([gt[0] for gt in chunk], verbose=0)
        for (_, _, class_ids, boxes, masks), result in zip(chunk, results, strict=True):
            keep = class_ids > 0
            scores.add(class_ids[keep], boxes[keep], masks[..., keep], result)
    logger.info("evaluated %d images in %.1f s", len(ids), time.time() - start_time)
    result = scores.result(getattr(dataset, "class_names", []), len(ids))
    logger.info("\n%s", result)
    return result
