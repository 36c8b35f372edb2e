"""Detection metrics in numpy: matching by mask IoU, VOC-style average precision, recall.

These follow matterport's `utils.compute_ap` family: predictions are matched greedily by
descending score to the unmatched ground-truth instance of the same class with the highest
mask IoU, and AP is the area under the interpolated (monotone) precision/recall curve using
all points (PASCAL VOC 2010+ style), not COCO's 101-point average.

Empty inputs never give NaN: with ground truth but no predictions AP and recall are 0, and an
image without ground truth also scores 0 (there is nothing to recall).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from mrcnn.structures.boxes import compute_overlaps, compute_overlaps_masks, trim_zeros
from mrcnn.structures.checks import check_boxes

logger = logging.getLogger(__name__)


def compute_matches(gt_boxes: np.ndarray, gt_class_ids: np.ndarray, gt_masks: np.ndarray,
                    pred_boxes: np.ndarray, pred_class_ids: np.ndarray,
                    pred_scores: np.ndarray, pred_masks: np.ndarray,
                    iou_threshold: float = 0.5, score_threshold: float = 0.0
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Match predictions to ground-truth instances by mask IoU.

    All-zero (padding) rows of `gt_boxes` and `pred_boxes` are dropped first, with their
    masks/scores. Predictions are then sorted by descending score; each takes the unmatched
    ground truth of the same class with the highest IoU, if that IoU is >= `iou_threshold`.

    Args:
        gt_boxes: [N, (y1, x1, y2, x2)] ground-truth pixel boxes.
        gt_class_ids: [N] int class ids.
        gt_masks: [height, width, N] ground-truth masks.
        pred_boxes: [M, (y1, x1, y2, x2)] predicted pixel boxes.
        pred_class_ids: [M] int class ids.
        pred_scores: [M] confidence scores.
        pred_masks: [height, width, M] predicted masks.
        iou_threshold: minimum mask IoU for a match.
        score_threshold: matterport's argument, kept with its behaviour: candidate pairs whose
            IoU (not score) is below it are skipped. 0 disables it.

    Returns:
        gt_match: [N] float, for each ground truth the index of its matched prediction (in the
            score-sorted order), or -1.
        pred_match: [M] float, for each prediction sorted by descending score, the index of
            its matched ground truth, or -1.
        overlaps: [M, N] mask IoU between the sorted predictions and the ground truth.

    Raises:
        ValueError: if the per-instance arrays do not have matching lengths.
    """
    gt_boxes = trim_zeros(check_boxes("gt_boxes", gt_boxes, empty_ok=True))
    pred_boxes = trim_zeros(check_boxes("pred_boxes", pred_boxes, empty_ok=True))
    n_gt, n_pred = len(gt_boxes), len(pred_boxes)
    gt_class_ids = np.asarray(gt_class_ids).reshape(-1)
    pred_class_ids = np.asarray(pred_class_ids).reshape(-1)
    pred_scores = np.asarray(pred_scores).reshape(-1)
    gt_masks = np.asarray(gt_masks)
    pred_masks = np.asarray(pred_masks)
    n_gt_masks = gt_masks.shape[-1] if gt_masks.ndim else 0
    n_pred_masks = pred_masks.shape[-1] if pred_masks.ndim else 0
    for name, size, needed in (("gt_class_ids", len(gt_class_ids), n_gt),
                               ("gt_masks", n_gt_masks, n_gt),
                               ("pred_class_ids", len(pred_class_ids), n_pred),
                               ("pred_scores", len(pred_scores), n_pred),
                               ("pred_masks", n_pred_masks, n_pred)):
        if size < needed:
            raise ValueError(f"{name} has {size} entries for {needed} (non-zero) boxes")
    gt_class_ids = gt_class_ids[:n_gt]
    gt_masks = gt_masks[..., :n_gt]

    order = np.argsort(-pred_scores[:n_pred], kind="stable")
    pred_class_ids = pred_class_ids[order]
    pred_masks = pred_masks[..., order]

    if n_pred and n_gt:
        overlaps = compute_overlaps_masks(pred_masks, gt_masks)
    else:
        overlaps = np.zeros((n_pred, n_gt))
    gt_match = -1 * np.ones(n_gt)
    pred_match = -1 * np.ones(n_pred)
    for i in range(n_pred):
        candidates = np.argsort(-overlaps[i], kind="stable")
        below = np.nonzero(overlaps[i, candidates] < score_threshold)[0]
        if below.size:
            candidates = candidates[:below[0]]
        for j in candidates:
            if gt_match[j] > -1:
                continue
            if overlaps[i, j] < iou_threshold:
                break  # candidates are sorted: no later one can reach the threshold
            if pred_class_ids[i] == gt_class_ids[j]:
                gt_match[j] = i
                pred_match[i] = j
                break
    return gt_match, pred_match, overlaps


def compute_ap(gt_boxes: np.ndarray, gt_class_ids: np.ndarray, gt_masks: np.ndarray,
               pred_boxes: np.ndarray, pred_class_ids: np.ndarray, pred_scores: np.ndarray,
               pred_masks: np.ndarray, iou_threshold: float = 0.5
               ) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """Average precision of one image's detections at one mask-IoU threshold.

    Args:
        gt_boxes, gt_class_ids, gt_masks, pred_boxes, pred_class_ids, pred_scores,
            pred_masks: as in `compute_matches`.
        iou_threshold: minimum mask IoU for a true positive.

    Returns:
        mAP: the average precision (0.0 when there is no ground truth or no prediction).
        precisions: [M + 2] interpolated precisions, padded with 0 at both ends.
        recalls: [M + 2] recalls, padded with 0 at the start and 1 at the end.
        overlaps: [M, N] mask IoU between score-sorted predictions and ground truth.
    """
    gt_match, pred_match, overlaps = compute_matches(
        gt_boxes, gt_class_ids, gt_masks, pred_boxes, pred_class_ids, pred_scores, pred_masks,
        iou_threshold)
    hits = np.cumsum(pred_match > -1)
    precisions = hits / (np.arange(len(pred_match)) + 1)
    recalls = hits.astype(np.float32) / max(len(gt_match), 1)
    if len(gt_match) == 0:
        logger.debug("compute_ap: no ground truth; AP is 0 by convention")

    precisions = np.concatenate([[0], precisions, [0]])
    recalls = np.concatenate([[0], recalls, [1]])
    # Interpolate: precision at each recall is the best precision at any higher recall.
    precisions = np.maximum.accumulate(precisions[::-1])[::-1]
    steps = np.nonzero(recalls[:-1] != recalls[1:])[0] + 1
    m_ap = float(np.sum((recalls[steps] - recalls[steps - 1]) * precisions[steps]))
    return m_ap, precisions, recalls, overlaps


def compute_ap_range(gt_box: np.ndarray, gt_class_id: np.ndarray, gt_mask: np.ndarray,
                     pred_box: np.ndarray, pred_class_id: np.ndarray, pred_score: np.ndarray,
                     pred_mask: np.ndarray, iou_thresholds: Sequence[float] | None = None,
                     verbose: int = 1) -> float:
    """Mean of `compute_ap` over a range of IoU thresholds (COCO's AP@[.5:.95] by default).

    Args:
        gt_box, gt_class_id, gt_mask, pred_box, pred_class_id, pred_score, pred_mask: as in
            `compute_matches`.
        iou_thresholds: thresholds to average over; default `np.arange(0.5, 1.0, 0.05)`.
        verbose: log the AP at each threshold and the mean (INFO level) when non-zero.

    Returns:
        The mean AP over the thresholds.

    Raises:
        ValueError: if `iou_thresholds` is empty.
    """
    if iou_thresholds is None:
        iou_thresholds = np.arange(0.5, 1.0, 0.05)
    iou_thresholds = np.asarray(iou_thresholds, dtype=np.float64).reshape(-1)
    if iou_thresholds.size == 0:
        raise ValueError("iou_thresholds must not be empty")
    aps = []
    for threshold in iou_thresholds:
        ap, _, _, _ = compute_ap(gt_box, gt_class_id, gt_mask, pred_box, pred_class_id,
                                 pred_score, pred_mask, iou_threshold=threshold)
        if verbose:
            logger.info("AP @%.2f:\t %.3f", threshold, ap)
        aps.append(ap)
    mean_ap = float(np.mean(aps))
    if verbose:
        logger.info("AP @%.2f-%.2f:\t %.3f", iou_thresholds[0], iou_thresholds[-1], mean_ap)
    return mean_ap


def compute_recall(pred_boxes: np.ndarray, gt_boxes: np.ndarray,
                   iou: float) -> tuple[float, np.ndarray]:
    """Recall of ground-truth boxes by predicted boxes (e.g. RPN proposals) at a box IoU.

    Args:
        pred_boxes: [M, (y1, x1, y2, x2)] predicted boxes.
        gt_boxes: [N, (y1, x1, y2, x2)] ground-truth boxes, same coordinates.
        iou: minimum box IoU for a prediction to count as covering a ground truth.

    Returns:
        recall: fraction of ground-truth boxes that are the best match of some prediction
            with IoU >= `iou` (0.0 when there is no ground truth or no prediction).
        positive_ids: int indices of the predictions with IoU >= `iou` to some ground truth.
    """
    pred_boxes = check_boxes("pred_boxes", pred_boxes, empty_ok=True)
    gt_boxes = check_boxes("gt_boxes", gt_boxes, empty_ok=True)
    if len(pred_boxes) == 0 or len(gt_boxes) == 0:
        return 0.0, np.zeros(0, dtype=np.int64)
    overlaps = compute_overlaps(pred_boxes, gt_boxes)
    iou_max = overlaps.max(axis=1)
    iou_argmax = overlaps.argmax(axis=1)
    positive_ids = np.nonzero(iou_max >= iou)[0]
    matched_gt = np.unique(iou_argmax[positive_ids])
    return len(matched_gt) / len(gt_boxes), positive_ids
