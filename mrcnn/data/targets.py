"""Training targets in numpy: RPN anchor targets, random ROIs and detection-head targets.

All coordinates are in pixels, boxes as `(y1, x1, y2, x2)` with `y2`/`x2` exclusive, as in
matterport's Mask_RCNN. Every function takes an explicit `rng` (a `numpy.random.Generator`, a
seed, or None for fresh entropy) so that sampling can be reproduced.
"""

from __future__ import annotations

import numpy as np

from mrcnn.structures.boxes import box_refinement, compute_overlaps, trim_zeros
from mrcnn.structures.checks import check_boxes, check_int
from mrcnn.structures.image import resize
from mrcnn.structures.masks import expand_mask

# The IoU thresholds of target assignment, for both twins (these numpy functions and the TF
# `mrcnn.modeling.graph_ops.detection_targets_graph`).
# Anchor/GT IoU thresholds of the RPN (Faster R-CNN paper, kept by matterport).
RPN_POSITIVE_IOU = 0.7
RPN_NEGATIVE_IOU = 0.3
# An anchor or ROI touching a crowd box at least this much is never a negative (matterport).
CROWD_IOU = 0.001
# Share of random ROIs drawn around GT boxes; the rest cover the whole image (matterport).
ROIS_AROUND_GT_SHARE = 0.9
# Detection-head ROIs with IoU >= this with a GT box are positive, below it negative
# (matterport's DetectionTargetLayer; the Fast R-CNN paper's foreground threshold).
DETECTION_FG_IOU = 0.5

RngLike = np.random.Generator | int | None


def _check_gt(gt_class_ids: np.ndarray, gt_boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    gt_class_ids = np.asarray(gt_class_ids).reshape(-1)
    gt_boxes = check_boxes("gt_boxes", gt_boxes, empty_ok=True)
    if gt_class_ids.shape[0] != gt_boxes.shape[0]:
        raise ValueError(
            f"gt_class_ids and gt_boxes must have the same length, got "
            f"{gt_class_ids.shape[0]} class ids and {gt_boxes.shape[0]} boxes")
    return gt_class_ids, gt_boxes


def _intersecting_pairs(anchors: np.ndarray, boxes: np.ndarray
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """IoU of the (box, anchor) pairs that intersect, in pixel coordinates.

    Most anchors touch none of the few boxes of an image, so the full [num_anchors, num_boxes]
    IoU matrix (compute_overlaps) is mostly zeros and, at ~260k anchors, costs several times
    more than building it sparsely: a boolean intersection test in [num_boxes, num_anchors]
    layout (long contiguous rows), then the IoU of the surviving pairs only. The values are
    bit-identical to compute_overlaps (same float64 operations).

    Returns:
        pair_box: [P] int64 box index of each intersecting pair, ascending.
        pair_anchor: [P] int64 anchor index of each pair.
        pair_iou: [P] float64 IoU, > 0.
    """
    ay1, ax1, ay2, ax2 = (np.ascontiguousarray(anchors[:, k], dtype=np.float64)
                          for k in range(4))
    by1, bx1, by2, bx2 = (boxes[:, k, None].astype(np.float64) for k in range(4))
    hit = np.less(ay1, by2)
    scratch = np.empty_like(hit)
    hit &= np.greater(ay2, by1, out=scratch)
    hit &= np.less(ax1, bx2, out=scratch)
    hit &= np.greater(ax2, bx1, out=scratch)
    # flatnonzero on the flat mask is several times faster than 2-D nonzero.
    pair_box, pair_anchor = np.divmod(np.flatnonzero(hit), anchors.shape[0])
    by1, bx1, by2, bx2 = by1[pair_box, 0], bx1[pair_box, 0], by2[pair_box, 0], bx2[pair_box, 0]
    ay1, ax1, ay2, ax2 = ay1[pair_anchor], ax1[pair_anchor], ay2[pair_anchor], ax2[pair_anchor]
    inter = ((np.minimum(ay2, by2) - np.maximum(ay1, by1))
             * (np.minimum(ax2, bx2) - np.maximum(ax1, bx1)))
    union = (ay2 - ay1) * (ax2 - ax1) + (by2 - by1) * (bx2 - bx1) - inter
    return pair_box, pair_anchor, inter / union


def build_rpn_targets(image_shape: tuple[int, ...] | np.ndarray, anchors: np.ndarray,
                      gt_class_ids: np.ndarray, gt_boxes: np.ndarray, config,
                      rng: RngLike = None) -> tuple[np.ndarray, np.ndarray]:
    """Label anchors positive/negative/neutral and compute the positives' box deltas.

    matterport's rules, fully vectorized: crowd boxes (negative class ids) are removed from the
    ground truth, and an anchor whose IoU with any crowd box is >= 0.001 is never negative. An
    anchor is negative when its best IoU with a GT box is < 0.3 and positive when it is >= 0.7;
    for every GT box, the anchor(s) with its highest IoU are positive too, however low that IoU
    (ties included, as in matterport; a GT box that overlaps no anchor at all is skipped).
    Positives are then randomly subsampled to at most RPN_TRAIN_ANCHORS_PER_IMAGE // 2 and
    negatives to fill the rest of RPN_TRAIN_ANCHORS_PER_IMAGE; the dropped ones become neutral.

    Args:
        image_shape: [height, width(, channels)] of the molded image. Unused, as in matterport;
            anchors crossing the image border are kept.
        anchors: [num_anchors, (y1, x1, y2, x2)] in pixel coordinates.
        gt_class_ids: [num_gt] int class ids; negative ids mark crowd boxes.
        gt_boxes: [num_gt, (y1, x1, y2, x2)] in pixel coordinates. May be empty.
        config: a Config (RPN_TRAIN_ANCHORS_PER_IMAGE, RPN_BBOX_STD_DEV are read).
        rng: numpy Generator (or seed) for the subsampling; None draws fresh entropy.

    Returns:
        rpn_match: [num_anchors] int32, 1 positive, -1 negative, 0 neutral.
        rpn_bbox: [RPN_TRAIN_ANCHORS_PER_IMAGE, (dy, dx, log(dh), log(dw))] float32, the
            deltas of the positive anchors in anchor order, divided by RPN_BBOX_STD_DEV; the
            remaining rows are zero.

    Raises:
        ValueError: anchors or gt_boxes not [N, 4], or gt_class_ids and gt_boxes of different
            lengths.
    """
    rng = np.random.default_rng(rng)
    anchors = check_boxes("anchors", anchors)
    gt_class_ids, gt_boxes = _check_gt(gt_class_ids, gt_boxes)
    budget = int(config.RPN_TRAIN_ANCHORS_PER_IMAGE)
    num_anchors = anchors.shape[0]

    rpn_match = np.zeros([num_anchors], dtype=np.int32)
    rpn_bbox = np.zeros([budget, 4], dtype=np.float32)

    crowd = gt_class_ids < 0
    may_be_negative = np.ones([num_anchors], dtype=bool)
    if np.any(crowd):
        _, crowd_anchor, crowd_iou = _intersecting_pairs(anchors, gt_boxes[crowd])
        crowd_max = np.zeros([num_anchors])
        np.maximum.at(crowd_max, crowd_anchor, crowd_iou)
        may_be_negative = crowd_max < CROWD_IOU
        gt_boxes = gt_boxes[~crowd]

    anchor_iou = np.zeros([num_anchors])  # best IoU of each anchor with a (non-crowd) GT
    anchor_gt = np.zeros([num_anchors], dtype=np.int64)
    best_of_gt = np.zeros([0], dtype=np.int64)
    num_gt = gt_boxes.shape[0]
    if num_gt and num_anchors:
        pair_gt, pair_anchor, pair_iou = _intersecting_pairs(anchors, gt_boxes)
        np.maximum.at(anchor_iou, pair_anchor, pair_iou)
        # Each anchor's GT is its first GT of highest IoU (np.argmax's choice on ties).
        at_max = pair_iou == anchor_iou[pair_anchor]
        anchor_gt[:] = num_gt
        np.minimum.at(anchor_gt, pair_anchor[at_max], pair_gt[at_max])
        # Each GT box's best anchor(s), ties included. Pairs all have IoU > 0, so a GT box
        # that touches no anchor contributes none.
        gt_best = np.zeros([num_gt])
        np.maximum.at(gt_best, pair_gt, pair_iou)
        best_of_gt = pair_anchor[pair_iou == gt_best[pair_gt]]
    rpn_match[(anchor_iou < RPN_NEGATIVE_IOU) & may_be_negative] = -1
    rpn_match[best_of_gt] = 1
    rpn_match[anchor_iou >= RPN_POSITIVE_IOU] = 1

    # Balance: at most half positives, negatives fill the rest of the budget.
    positive = np.flatnonzero(rpn_match == 1)
    max_positive = budget // 2
    if positive.shape[0] > max_positive:
        rpn_match[positive] = 0
        positive = np.sort(rng.choice(positive, max_positive, replace=False))
        rpn_match[positive] = 1
    negative = np.flatnonzero(rpn_match == -1)
    max_negative = budget - positive.shape[0]
    if negative.shape[0] > max_negative:
        rpn_match[negative] = 0
        rpn_match[rng.choice(negative, max_negative, replace=False)] = -1

    if positive.shape[0]:
        deltas = box_refinement(anchors[positive].astype(np.float32),
                                gt_boxes[anchor_gt[positive]].astype(np.float32))
        std = np.asarray(config.RPN_BBOX_STD_DEV, dtype=np.float32)
        rpn_bbox[:positive.shape[0]] = np.asarray(deltas, dtype=np.float32) / std
    return rpn_match, rpn_bbox


def _pick_pairs(low: np.ndarray, high: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Draw, per row, two distinct integers in [low, high) and return them sorted: [n, 2]."""
    pairs = rng.integers(low[:, None], high[:, None], size=(low.shape[0], 2))
    equal = pairs[:, 0] == pairs[:, 1]
    while np.any(equal):
        pairs[equal] = rng.integers(low[equal, None], high[equal, None],
                                    size=(int(equal.sum()), 2))
        equal = pairs[:, 0] == pairs[:, 1]
    return np.sort(pairs, axis=1)


def _widen(low: np.ndarray, high: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Make every [low, high) range hold at least two values, inside [0, size)."""
    short = high - low < 2
    low = np.where(short, np.clip(low, 0, size - 2), low)
    high = np.where(short, low + 2, high)
    return low, high


def generate_random_rois(image_shape: tuple[int, ...] | np.ndarray, count: int,
                         gt_class_ids: np.ndarray, gt_boxes: np.ndarray,
                         rng: RngLike = None) -> np.ndarray:
    """Random ROI proposals, to train the heads without the RPN (matterport's scheme).

    int(0.9 * count / num_gt) ROIs are drawn around each GT box, with corners picked inside the
    box grown by its own height and width on every side (clipped to the image); the remaining
    ROIs are drawn over the whole image. Degenerate ROIs (zero height or width) are redrawn.
    Without GT boxes, all ROIs are drawn over the whole image.

    Args:
        image_shape: [height, width(, channels)] of the image.
        count: number of ROIs to generate.
        gt_class_ids: [num_gt] int class ids (only checked against gt_boxes, as in matterport).
        gt_boxes: [num_gt, (y1, x1, y2, x2)] in pixel coordinates.
        rng: numpy Generator (or seed); None draws fresh entropy.

    Returns:
        [count, (y1, x1, y2, x2)] int32 ROIs in pixel coordinates, with
        0 <= y1 < y2 < height and 0 <= x1 < x2 < width; ROIs around GT boxes come first, in
        GT order.

    Raises:
        ValueError: a negative count, an image smaller than 2x2, or gt_class_ids and gt_boxes
            of different lengths.
    """
    rng = np.random.default_rng(rng)
    _, gt_boxes = _check_gt(gt_class_ids, gt_boxes)
    count = check_int("count", count, minimum=0)
    height, width = int(image_shape[0]), int(image_shape[1])
    if height < 2 or width < 2:
        raise ValueError(f"image_shape {tuple(image_shape)} is too small to hold an ROI")

    num_gt = gt_boxes.shape[0]
    per_box = int(ROIS_AROUND_GT_SHARE * count / num_gt) if num_gt else 0
    boxes = gt_boxes.astype(np.int64)
    h = boxes[:, 2] - boxes[:, 0]
    w = boxes[:, 3] - boxes[:, 1]
    y_low, y_high = _widen(np.maximum(boxes[:, 0] - h, 0), np.minimum(boxes[:, 2] + h, height),
                           height)
    x_low, x_high = _widen(np.maximum(boxes[:, 1] - w, 0), np.minimum(boxes[:, 3] + w, width),
                           width)

    rest = count - per_box * num_gt
    y_low = np.concatenate([np.repeat(y_low, per_box), np.zeros(rest, np.int64)])
    y_high = np.concatenate([np.repeat(y_high, per_box), np.full(rest, height, np.int64)])
    x_low = np.concatenate([np.repeat(x_low, per_box), np.zeros(rest, np.int64)])
    x_high = np.concatenate([np.repeat(x_high, per_box), np.full(rest, width, np.int64)])

    ys = _pick_pairs(y_low, y_high, rng)
    xs = _pick_pairs(x_low, x_high, rng)
    return np.stack([ys[:, 0], xs[:, 0], ys[:, 1], xs[:, 1]], axis=1).astype(np.int32)


def _sample_counts(num_positive: int, num_rois: int, positive_ratio: float) -> tuple[int, int]:
    """How many positive and negative ROIs the detection targets take (the graph's rule).

    At most int(num_rois * positive_ratio) positives; then negatives to make positives
    `positive_ratio` of the sample, int(positives / positive_ratio) - positives, within the
    remaining room. The product is taken in float32, as `detection_targets_graph` does, so both
    twins truncate to the same count. No positive means no negative either (matterport).

    Returns:
        (positive count, negative count) upper bounds; fewer are taken when fewer exist.
    """
    positives = min(num_positive, int(num_rois * positive_ratio))
    ratio = np.float32(1.0 / positive_ratio)
    negatives = int(ratio * np.float32(positives)) - positives
    return positives, min(negatives, num_rois - positives)


def build_detection_targets(rpn_rois: np.ndarray, gt_class_ids: np.ndarray,
                            gt_boxes: np.ndarray, gt_masks: np.ndarray, config,
                            rng: RngLike = None
                            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Sample ROIs and build the classifier, box and mask targets of the heads (numpy).

    The numpy twin of `mrcnn.modeling.graph_ops.detection_targets_graph` (the training graph's
    DetectionTargetLayer), used for debugging and by `DataGenerator(detection_targets=True)`.
    It samples the way the graph does:

    - all-zero ROIs are padding and are ignored;
    - an ROI is positive when its IoU with a GT box of class id > 0 is >= DETECTION_FG_IOU
      (0.5), negative when it is below that and its IoU with every crowd box (class id < 0)
      is < CROWD_IOU (0.001); an ROI on a crowd box is neither;
    - up to int(TRAIN_ROIS_PER_IMAGE * ROI_POSITIVE_RATIO) positives are drawn at random, then
      int(positives / ROI_POSITIVE_RATIO) - positives negatives (within the budget), so an
      image without a positive ROI gets no ROI at all;
    - positives come first, then negatives, then zero rows up to TRAIN_ROIS_PER_IMAGE.

    What differs from the graph, on purpose: coordinates are pixels (the graph's are
    normalized); box and mask targets have matterport's per-class layout; a mask target is
    the ROI's crop of the full-size GT mask resized bilinearly, with soft values in [0, 1],
    where the graph rounds a `crop_and_resize` sample to 0/1 (the two agree after rounding
    except on the object's edge pixels, as the sampling grids differ by up to half a pixel).

    Args:
        rpn_rois: [N, (y1, x1, y2, x2)] proposals in pixel coordinates, maybe zero padded.
        gt_class_ids: [num_gt] int class ids; negative ids mark crowd boxes.
        gt_boxes: [num_gt, (y1, x1, y2, x2)] in pixel coordinates.
        gt_masks: [height, width, num_gt] bool masks, full-image size or, with
            config.USE_MINI_MASK, [MINI_MASK_SHAPE[0], MINI_MASK_SHAPE[1], num_gt] mini-masks
            inside each GT box.
        config: a Config (TRAIN_ROIS_PER_IMAGE, ROI_POSITIVE_RATIO, NUM_CLASSES, BBOX_STD_DEV,
            MASK_SHAPE, USE_MINI_MASK, IMAGE_SHAPE are read).
        rng: numpy Generator (or seed) for the sampling; None draws fresh entropy.

    Returns:
        rois: [TRAIN_ROIS_PER_IMAGE, (y1, x1, y2, x2)] the sampled ROIs, pixel coordinates,
            dtype of `rpn_rois`; positives first (in ROI order), then negatives, then zeros.
        roi_gt_class_ids: [TRAIN_ROIS_PER_IMAGE] int32, 0 for negative and padding rows.
        bboxes: [TRAIN_ROIS_PER_IMAGE, NUM_CLASSES, (dy, dx, log(dh), log(dw))] float32,
            divided by BBOX_STD_DEV, non-zero only at the GT class of positive ROIs.
        masks: [TRAIN_ROIS_PER_IMAGE, MASK_SHAPE[0], MASK_SHAPE[1], NUM_CLASSES] float32 in
            [0, 1], the GT mask cropped to the ROI and resized, at the GT class of positive
            ROIs.

    Raises:
        ValueError: malformed shapes, mismatched gt lengths, a class id >= NUM_CLASSES, or no
            ROIs.
    """
    rng = np.random.default_rng(rng)
    rpn_rois = check_boxes("rpn_rois", rpn_rois)
    gt_class_ids, gt_boxes = _check_gt(gt_class_ids, gt_boxes)
    gt_masks = np.asarray(gt_masks)
    if gt_masks.ndim != 3 or gt_masks.shape[2] != gt_boxes.shape[0]:
        raise ValueError(f"gt_masks must have shape [height, width, {gt_boxes.shape[0]}] to "
                         f"match gt_boxes, got {gt_masks.shape}")
    if rpn_rois.shape[0] == 0:
        raise ValueError("rpn_rois is empty: there are no ROIs to sample from")
    num_rois = int(config.TRAIN_ROIS_PER_IMAGE)
    num_classes = int(config.NUM_CLASSES)
    if gt_class_ids.size and gt_class_ids.max() >= num_classes:
        raise ValueError(f"gt_class_ids contains class id {int(gt_class_ids.max())}, but "
                         f"config.NUM_CLASSES={num_classes} allows ids up to {num_classes - 1}")

    candidates = trim_zeros(rpn_rois)
    crowd_boxes = gt_boxes[gt_class_ids < 0]
    instances = np.flatnonzero(gt_class_ids > 0)
    gt_class_ids = gt_class_ids[instances].astype(np.int32)
    gt_boxes = gt_boxes[instances]
    gt_masks = gt_masks[:, :, instances]

    roi_gt = np.zeros(candidates.shape[0], dtype=np.int64)
    roi_iou = np.zeros(candidates.shape[0])
    if gt_boxes.shape[0]:
        overlaps = compute_overlaps(candidates, gt_boxes)  # [N, num_gt]
        roi_gt = np.argmax(overlaps, axis=1)
        roi_iou = np.take_along_axis(overlaps, roi_gt[:, None], axis=1)[:, 0]
    no_crowd = np.ones(candidates.shape[0], dtype=bool)
    if crowd_boxes.shape[0]:
        no_crowd = compute_overlaps(candidates, crowd_boxes).max(axis=1) < CROWD_IOU
    fg_ids = np.flatnonzero(roi_iou >= DETECTION_FG_IOU)
    bg_ids = np.flatnonzero((roi_iou < DETECTION_FG_IOU) & no_crowd)

    fg_count, bg_count = _sample_counts(fg_ids.shape[0], num_rois, config.ROI_POSITIVE_RATIO)
    if fg_ids.shape[0] > fg_count:
        fg_ids = np.sort(rng.choice(fg_ids, fg_count, replace=False))
    if bg_ids.shape[0] > bg_count:
        bg_ids = np.sort(rng.choice(bg_ids, bg_count, replace=False))
    keep = np.concatenate([fg_ids, bg_ids]).astype(np.int64)
    pos = np.arange(fg_ids.shape[0])

    rois = np.zeros((num_rois, 4), dtype=rpn_rois.dtype)
    rois[:keep.shape[0]] = candidates[keep]
    roi_gt = roi_gt[fg_ids]
    roi_gt_class_ids = np.zeros(num_rois, dtype=np.int32)
    bboxes = np.zeros((num_rois, num_classes, 4), dtype=np.float32)
    masks = np.zeros((num_rois, config.MASK_SHAPE[0], config.MASK_SHAPE[1], num_classes),
                     dtype=np.float32)
    if not pos.shape[0]:
        return rois, roi_gt_class_ids, bboxes, masks
    roi_gt_class_ids[pos] = gt_class_ids[roi_gt]

    deltas = box_refinement(rois[pos].astype(np.float32), gt_boxes[roi_gt].astype(np.float32))
    bboxes[pos, roi_gt_class_ids[pos]] = (np.asarray(deltas, dtype=np.float32)
                                          / np.asarray(config.BBOX_STD_DEV, dtype=np.float32))

    # Full-image masks of the GT boxes that positive ROIs use (expanded once each).
    used = np.unique(roi_gt)
    if config.USE_MINI_MASK:
        image_hw = tuple(int(d) for d in np.asarray(config.IMAGE_SHAPE)[:2])
        full = expand_mask(gt_boxes[used], gt_masks[:, :, used], image_hw)
    else:
        full = gt_masks[:, :, used]
    column = {int(g): k for k, g in enumerate(used)}
    for i in pos:
        y1, x1, y2, x2 = np.maximum(np.asarray(rois[i]).astype(np.int64), 0)
        crop = full[y1:y2, x1:x2, column[int(roi_gt[i])]].astype(np.float32)
        if crop.size == 0:
            continue  # an ROI outside the mask area has an empty target
        masks[i, :, :, roi_gt_class_ids[i]] = resize(crop, tuple(config.MASK_SHAPE))
    return rois, roi_gt_class_ids, bboxes, masks
