"""Bounding-box math in numpy: boxes from masks, IoU, NMS, box deltas, (de)normalization.

Conventions (matterport's):
    * A box is `(y1, x1, y2, x2)`. In pixel coordinates `(y2, x2)` is exclusive: one past the
      last pixel of the object, so `height = y2 - y1`.
    * Normalized coordinates map pixel `0` to `0.0` and pixel `size - 1` to `1.0`; a normalized
      `(y2, x2)` is inclusive (see `norm_boxes`).
    * Box deltas are `(dy, dx, log(dh), log(dw))`, relative to the box's own height and width.

No TensorFlow here; the graph twins live in `mrcnn.modeling.graph_ops`.
"""

from __future__ import annotations

import numpy as np

from mrcnn.structures.checks import check_boxes


def extract_bboxes(mask: np.ndarray) -> np.ndarray:
    """Compute the bounding box of each instance mask.

    Args:
        mask: [height, width, num_instances] bool or 0/1 integer masks.

    Returns:
        [num_instances, (y1, x1, y2, x2)] int32 pixel boxes, `(y2, x2)` exclusive (one past the
        last pixel). An empty mask gives the box `(0, 0, 0, 0)`.

    Raises:
        ValueError: if `mask` is not 3-dimensional.
    """
    mask = np.asarray(mask)
    if mask.ndim != 3:
        raise ValueError(f"mask must have shape [height, width, N], got {mask.shape}")
    mask = mask.astype(bool, copy=False)
    rows = mask.any(axis=1)  # [H, N]: does row y contain instance n?
    cols = mask.any(axis=0)  # [W, N]
    present = rows.any(axis=0)
    height, width = mask.shape[:2]
    y1 = np.argmax(rows, axis=0)
    y2 = height - np.argmax(rows[::-1], axis=0)
    x1 = np.argmax(cols, axis=0)
    x2 = width - np.argmax(cols[::-1], axis=0)
    boxes = np.stack([y1, x1, y2, x2], axis=1).astype(np.int32)
    boxes[~present] = 0
    return boxes


def compute_iou(box: np.ndarray, boxes: np.ndarray, box_area: float,
                boxes_area: np.ndarray) -> np.ndarray:
    """IoU of one box with each box of an array (areas passed in to avoid recomputing them).

    Args:
        box: (y1, x1, y2, x2) pixel box.
        boxes: [N, (y1, x1, y2, x2)] pixel boxes.
        box_area: area of `box`.
        boxes_area: [N] areas of `boxes`.

    Returns:
        [N] float IoU values; 0 where the union is empty.
    """
    box = np.asarray(box)
    boxes = check_boxes("boxes", boxes, extra_columns=True)
    y1 = np.maximum(box[0], boxes[:, 0])
    y2 = np.minimum(box[2], boxes[:, 2])
    x1 = np.maximum(box[1], boxes[:, 1])
    x2 = np.minimum(box[3], boxes[:, 3])
    intersection = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)
    union = box_area + np.asarray(boxes_area) - intersection
    return np.divide(intersection, union, out=np.zeros(len(boxes), dtype=np.float64),
                     where=union > 0)


def compute_overlaps(boxes1: np.ndarray, boxes2: np.ndarray) -> np.ndarray:
    """IoU between every pair of boxes of two sets (vectorized).

    Args:
        boxes1: [N1, (y1, x1, y2, x2)] boxes.
        boxes2: [N2, (y1, x1, y2, x2)] boxes, in the same coordinates as `boxes1`.

    Returns:
        [N1, N2] float64 IoU matrix; pairs whose union is empty get 0.
    """
    b1 = check_boxes("boxes1", boxes1, extra_columns=True).astype(np.float64, copy=False)
    b2 = check_boxes("boxes2", boxes2, extra_columns=True).astype(np.float64, copy=False)
    area1 = (b1[:, 2] - b1[:, 0]) * (b1[:, 3] - b1[:, 1])
    area2 = (b2[:, 2] - b2[:, 0]) * (b2[:, 3] - b2[:, 1])
    # In-place steps keep the peak memory near two [N1, N2] arrays (anchors x GT can be large).
    inter = np.minimum(b1[:, None, 2], b2[None, :, 2])
    inter -= np.maximum(b1[:, None, 0], b2[None, :, 0])
    np.maximum(inter, 0, out=inter)
    width = np.minimum(b1[:, None, 3], b2[None, :, 3])
    width -= np.maximum(b1[:, None, 1], b2[None, :, 1])
    np.maximum(width, 0, out=width)
    inter *= width
    union = np.add(area1[:, None], area2[None, :], out=width)
    union -= inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def compute_overlaps_masks(masks1: np.ndarray, masks2: np.ndarray) -> np.ndarray:
    """IoU between every pair of masks of two sets.

    Args:
        masks1: [height, width, N1] masks (bool, or float thresholded at 0.5).
        masks2: [height, width, N2] masks of the same height and width.

    Returns:
        [N1, N2] float IoU matrix; 0 where both masks are empty (or a set is empty).

    Raises:
        ValueError: if the masks are not 3-dimensional or their heights/widths differ.
    """
    masks1 = np.asarray(masks1)
    masks2 = np.asarray(masks2)
    if masks1.ndim != 3 or masks2.ndim != 3:
        raise ValueError("masks must have shape [height, width, N], got "
                         f"{masks1.shape} and {masks2.shape}")
    if masks1.shape[-1] == 0 or masks2.shape[-1] == 0:
        return np.zeros((masks1.shape[-1], masks2.shape[-1]))
    if masks1.shape[:2] != masks2.shape[:2]:
        raise ValueError(f"mask sizes differ: {masks1.shape[:2]} and {masks2.shape[:2]}")
    flat1 = (masks1.reshape(-1, masks1.shape[-1]) > 0.5).astype(np.float32)
    flat2 = (masks2.reshape(-1, masks2.shape[-1]) > 0.5).astype(np.float32)
    area1 = flat1.sum(axis=0, dtype=np.float64)
    area2 = flat2.sum(axis=0, dtype=np.float64)
    # float32 counts are exact up to 2**24 pixels (a 4096x4096 image).
    inter = np.dot(flat1.T, flat2).astype(np.float64)
    union = area1[:, None] + area2[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def non_max_suppression(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression.

    Visits boxes by descending score (ties keep the input order), keeps a box, and drops every
    later box whose IoU with it is above `threshold`.

    Args:
        boxes: [N, (y1, x1, y2, x2)] boxes.
        scores: [N] box scores.
        threshold: IoU above which a lower-scored box is suppressed.

    Returns:
        int32 indices into `boxes` of the kept boxes, highest score first.

    Raises:
        ValueError: if `scores` does not have one value per box.
    """
    boxes = check_boxes("boxes", boxes, extra_columns=True).astype(np.float64, copy=False)
    scores = np.asarray(scores).reshape(-1)
    if len(scores) != len(boxes):
        raise ValueError(f"scores has {len(scores)} values for {len(boxes)} boxes")
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    remaining = np.argsort(-scores, kind="stable")
    keep = []
    while remaining.size:
        best, rest = remaining[0], remaining[1:]
        keep.append(best)
        iou = compute_iou(boxes[best], boxes[rest], areas[best], areas[rest])
        remaining = rest[iou <= threshold]
    return np.array(keep, dtype=np.int32)


def box_refinement(box: np.ndarray, gt_box: np.ndarray) -> np.ndarray:
    """Deltas that turn each box into its ground-truth box (inverse of `apply_box_deltas`).

    Args:
        box: [N, (y1, x1, y2, x2)] boxes; each must have positive height and width.
        gt_box: [N, (y1, x1, y2, x2)] target boxes, same coordinates.

    Returns:
        [N, (dy, dx, log(dh), log(dw))] float32 deltas.

    Raises:
        ValueError: if the two arrays do not have the same number of boxes.
    """
    box = check_boxes("box", box, extra_columns=True).astype(np.float32)
    gt_box = check_boxes("gt_box", gt_box, extra_columns=True).astype(np.float32)
    if len(box) != len(gt_box):
        raise ValueError(f"box has {len(box)} boxes but gt_box has {len(gt_box)}")
    height = box[:, 2] - box[:, 0]
    width = box[:, 3] - box[:, 1]
    center_y = box[:, 0] + 0.5 * height
    center_x = box[:, 1] + 0.5 * width
    gt_height = gt_box[:, 2] - gt_box[:, 0]
    gt_width = gt_box[:, 3] - gt_box[:, 1]
    gt_center_y = gt_box[:, 0] + 0.5 * gt_height
    gt_center_x = gt_box[:, 1] + 0.5 * gt_width
    dy = (gt_center_y - center_y) / height
    dx = (gt_center_x - center_x) / width
    dh = np.log(gt_height / height)
    dw = np.log(gt_width / width)
    return np.stack([dy, dx, dh, dw], axis=1).astype(np.float32)


def apply_box_deltas(boxes: np.ndarray, deltas: np.ndarray) -> np.ndarray:
    """Apply `(dy, dx, log(dh), log(dw))` deltas to boxes (inverse of `box_refinement`).

    Args:
        boxes: [N, (y1, x1, y2, x2)] boxes.
        deltas: [N, (dy, dx, log(dh), log(dw))] refinements.

    Returns:
        [N, (y1, x1, y2, x2)] float32 refined boxes, in the coordinates of `boxes`.

    Raises:
        ValueError: if the shapes do not match.
    """
    boxes = check_boxes("boxes", boxes, extra_columns=True).astype(np.float32)
    deltas = np.asarray(deltas, dtype=np.float32)
    if deltas.shape != (len(boxes), 4):
        raise ValueError(f"deltas must have shape {(len(boxes), 4)} to match boxes, "
                         f"got {deltas.shape}")
    height = boxes[:, 2] - boxes[:, 0]
    width = boxes[:, 3] - boxes[:, 1]
    center_y = boxes[:, 0] + 0.5 * height + deltas[:, 0] * height
    center_x = boxes[:, 1] + 0.5 * width + deltas[:, 1] * width
    height = height * np.exp(deltas[:, 2])
    width = width * np.exp(deltas[:, 3])
    y1 = center_y - 0.5 * height
    x1 = center_x - 0.5 * width
    return np.stack([y1, x1, y1 + height, x1 + width], axis=1).astype(np.float32)


def _norm_scale_shift(shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Scale and shift between pixel and normalized coordinates for an image shape."""
    if len(shape) < 2:
        raise ValueError(f"shape must start with (height, width), got {tuple(shape)}")
    h, w = int(shape[0]), int(shape[1])
    if h < 2 or w < 2:
        raise ValueError(f"shape {(h, w)} is too small to normalize boxes (needs >= 2 pixels)")
    scale = np.array([h - 1, w - 1, h - 1, w - 1], dtype=np.float64)
    shift = np.array([0, 0, 1, 1], dtype=np.float64)
    return scale, shift


def norm_boxes(boxes: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Convert pixel boxes to normalized coordinates.

    Pixel `(y2, x2)` is exclusive, normalized `(y2, x2)` inclusive: a box covering the whole
    image, `(0, 0, h, w)` in pixels, becomes `(0, 0, 1, 1)`.

    Args:
        boxes: [..., (y1, x1, y2, x2)] pixel boxes.
        shape: (height, width) of the image (extra trailing values are ignored).

    Returns:
        [..., (y1, x1, y2, x2)] float32 normalized boxes.
    """
    scale, shift = _norm_scale_shift(shape)
    return ((np.asarray(boxes) - shift) / scale).astype(np.float32)


def denorm_boxes(boxes: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Convert normalized boxes to pixel coordinates (inverse of `norm_boxes`).

    Args:
        boxes: [..., (y1, x1, y2, x2)] normalized boxes.
        shape: (height, width) of the image (extra trailing values are ignored).

    Returns:
        [..., (y1, x1, y2, x2)] int32 pixel boxes (rounded), `(y2, x2)` exclusive.
    """
    scale, shift = _norm_scale_shift(shape)
    return np.around(np.asarray(boxes) * scale + shift).astype(np.int32)


def trim_zeros(x: np.ndarray) -> np.ndarray:
    """Drop the rows that are all zeros (the padding of fixed-size box arrays).

    Args:
        x: [rows, columns] array, e.g. [N, (y1, x1, y2, x2)] boxes.

    Returns:
        The rows of `x` that have at least one non-zero value.

    Raises:
        ValueError: if `x` is not 2-dimensional.
    """
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"trim_zeros expects a 2-D array, got shape {x.shape}")
    return x[~np.all(x == 0, axis=1)]
