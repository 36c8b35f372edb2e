"""TensorFlow twins (`*_graph`) of the numpy box helpers, and the per-image graph functions.

Every function here takes and returns `tf.Tensor`s and is meant to run inside a
`keras.layers.Layer.call` (never on symbolic `KerasTensor`s). Geometry runs in float32:
inputs are cast on the way in, so the functions are safe under a mixed-precision policy.
Boxes are `(y1, x1, y2, x2)`; the coordinate convention (pixel or normalized) is the
caller's and is stated in each docstring. The numpy twins live in `mrcnn.structures.boxes` and the
two are tested for parity.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import tensorflow as tf

from mrcnn.data.targets import CROWD_IOU, DETECTION_FG_IOU
from mrcnn.structures import image_meta


def f32(x: Any) -> tf.Tensor:
    """`x` cast to a float32 tensor (the dtype of all geometry and losses)."""
    return tf.cast(x, tf.float32)


def apply_box_deltas_graph(boxes: tf.Tensor, deltas: tf.Tensor) -> tf.Tensor:
    """Applies refinement deltas to boxes.

    Args:
        boxes: [..., (y1, x1, y2, x2)] boxes to update (any convention).
        deltas: [..., (dy, dx, log(dh), log(dw))] refinements, same leading shape.

    Returns:
        [..., (y1, x1, y2, x2)] float32 refined boxes.
    """
    y1, x1, y2, x2 = tf.unstack(f32(boxes), axis=-1)
    dy, dx, dh, dw = tf.unstack(f32(deltas), axis=-1)
    height = y2 - y1
    width = x2 - x1
    center_y = y1 + 0.5 * height + dy * height
    center_x = x1 + 0.5 * width + dx * width
    height = height * tf.exp(dh)
    width = width * tf.exp(dw)
    y1 = center_y - 0.5 * height
    x1 = center_x - 0.5 * width
    return tf.stack([y1, x1, y1 + height, x1 + width], axis=-1, name="apply_box_deltas_out")


def clip_boxes_graph(boxes: tf.Tensor, window: tf.Tensor) -> tf.Tensor:
    """Clips boxes to lie inside a window.

    Args:
        boxes: [..., (y1, x1, y2, x2)] boxes.
        window: [(y1, x1, y2, x2)], or a shape that broadcasts against `boxes`, in the
            same convention as `boxes`.

    Returns:
        [..., (y1, x1, y2, x2)] float32 clipped boxes.
    """
    wy1, wx1, wy2, wx2 = tf.unstack(f32(window), axis=-1)
    y1, x1, y2, x2 = tf.unstack(f32(boxes), axis=-1)
    y1 = tf.maximum(tf.minimum(y1, wy2), wy1)
    x1 = tf.maximum(tf.minimum(x1, wx2), wx1)
    y2 = tf.maximum(tf.minimum(y2, wy2), wy1)
    x2 = tf.maximum(tf.minimum(x2, wx2), wx1)
    return tf.stack([y1, x1, y2, x2], axis=-1, name="clipped_boxes")


def overlaps_graph(boxes1: tf.Tensor, boxes2: tf.Tensor) -> tf.Tensor:
    """Computes the IoU overlaps between two sets of boxes.

    Args:
        boxes1: [N1, (y1, x1, y2, x2)].
        boxes2: [N2, (y1, x1, y2, x2)], same convention.

    Returns:
        [N1, N2] float32 IoU. A pair whose union is empty gets 0 (not NaN).
    """
    b1 = f32(boxes1)[:, tf.newaxis, :]
    b2 = f32(boxes2)[tf.newaxis, :, :]
    y1 = tf.maximum(b1[..., 0], b2[..., 0])
    x1 = tf.maximum(b1[..., 1], b2[..., 1])
    y2 = tf.minimum(b1[..., 2], b2[..., 2])
    x2 = tf.minimum(b1[..., 3], b2[..., 3])
    intersection = tf.maximum(y2 - y1, 0.0) * tf.maximum(x2 - x1, 0.0)
    area1 = (b1[..., 2] - b1[..., 0]) * (b1[..., 3] - b1[..., 1])
    area2 = (b2[..., 2] - b2[..., 0]) * (b2[..., 3] - b2[..., 1])
    union = area1 + area2 - intersection
    return tf.math.divide_no_nan(intersection, union)


def box_refinement_graph(box: tf.Tensor, gt_box: tf.Tensor) -> tf.Tensor:
    """Computes the refinement needed to transform `box` into `gt_box`.

    Args:
        box: [..., (y1, x1, y2, x2)].
        gt_box: [..., (y1, x1, y2, x2)], same shape and convention.

    Returns:
        [..., (dy, dx, log(dh), log(dw))] float32 deltas.
    """
    y1, x1, y2, x2 = tf.unstack(f32(box), axis=-1)
    gy1, gx1, gy2, gx2 = tf.unstack(f32(gt_box), axis=-1)
    height = y2 - y1
    width = x2 - x1
    gt_height = gy2 - gy1
    gt_width = gx2 - gx1
    dy = (gy1 + 0.5 * gt_height - (y1 + 0.5 * height)) / height
    dx = (gx1 + 0.5 * gt_width - (x1 + 0.5 * width)) / width
    dh = tf.math.log(gt_height / height)
    dw = tf.math.log(gt_width / width)
    return tf.stack([dy, dx, dh, dw], axis=-1)


def _scale_and_shift(shape: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    h, w = tf.unstack(f32(shape)[..., :2], axis=-1)
    scale = tf.stack([h, w, h, w], axis=-1) - 1.0
    shift = tf.constant([0.0, 0.0, 1.0, 1.0])
    return scale, shift


def norm_boxes_graph(boxes: tf.Tensor, shape: tf.Tensor) -> tf.Tensor:
    """Converts boxes from pixel to normalized coordinates.

    In pixel coordinates (y2, x2) lies just outside the box; in normalized ones it lies
    inside, hence the shift of 1 on the second corner (matterport's convention).

    Args:
        boxes: [..., (y1, x1, y2, x2)] in pixel coordinates.
        shape: [(height, width)] of the image in pixels (extra trailing entries, such as
            channels, are ignored).

    Returns:
        [..., (y1, x1, y2, x2)] float32 normalized boxes.
    """
    scale, shift = _scale_and_shift(shape)
    return tf.math.divide(f32(boxes) - shift, scale)


def denorm_boxes_graph(boxes: tf.Tensor, shape: tf.Tensor) -> tf.Tensor:
    """Converts boxes from normalized to pixel coordinates.

    Args:
        boxes: [..., (y1, x1, y2, x2)] in normalized coordinates.
        shape: [(height, width)] of the image in pixels.

    Returns:
        [..., (y1, x1, y2, x2)] int32 boxes in pixel coordinates.
    """
    scale, shift = _scale_and_shift(shape)
    return tf.cast(tf.round(tf.multiply(f32(boxes), scale) + shift), tf.int32)


def parse_image_meta_graph(meta: tf.Tensor) -> dict[str, tf.Tensor]:
    """Splits a batch of image meta vectors into their components (layout:
    `mrcnn.structures.image_meta`).

    Args:
        meta: [batch, meta length] as written by `compose_image_meta`.

    Returns:
        A dict of float32 tensors: `image_id` [batch], `original_image_shape` [batch, 3],
        `image_shape` [batch, 3], `window` [batch, (y1, x1, y2, x2)] in pixels of the
        molded image, `scale` [batch], `active_class_ids` [batch, num_classes].
    """
    meta = f32(meta)
    out = {}
    for name in image_meta.FIELD_NAMES:
        columns = image_meta.SLICES[name]
        out[name] = (meta[:, columns.start] if name in image_meta.SCALAR_FIELDS
                     else meta[:, columns])
    return out


def trim_zeros_graph(boxes: tf.Tensor, name: str = "trim_zeros") -> tuple[tf.Tensor, tf.Tensor]:
    """Removes the all-zero rows (padding) of a box array.

    Args:
        boxes: [N, 4] boxes.
        name: name of the output op.

    Returns:
        (boxes [M, 4] without the zero rows, non_zeros [N] bool mask of the kept rows).
    """
    non_zeros = tf.reduce_any(tf.not_equal(boxes, 0), axis=1)
    return tf.boolean_mask(boxes, non_zeros, name=name), non_zeros


def log2_graph(x: tf.Tensor) -> tf.Tensor:
    """Base-2 logarithm (float32)."""
    return tf.math.log(f32(x)) / tf.math.log(2.0)


def batch_slice(
    inputs: Sequence[tf.Tensor] | tf.Tensor,
    graph_fn: Callable[..., Any],
    batch_size: int,
    names: Sequence[str] | None = None,
) -> tf.Tensor | list[tf.Tensor]:
    """Runs `graph_fn` on each image of a batch and stacks the results (matterport's helper).

    Needs a static `batch_size`; the layers of this package use `tf.map_fn` instead so
    that they work with a dynamic batch.

    Args:
        inputs: a tensor or a list of tensors, each [batch, ...].
        graph_fn: called with one slice of each input; returns a tensor or a list of them.
        batch_size: number of images to slice.
        names: optional names for the stacked outputs.

    Returns:
        The stacked output, or a list of them when `graph_fn` returns several.
    """
    if not isinstance(inputs, (list, tuple)):
        inputs = [inputs]
    outputs = []
    for i in range(batch_size):
        output_slice = graph_fn(*[x[i] for x in inputs])
        if not isinstance(output_slice, (list, tuple)):
            output_slice = [output_slice]
        outputs.append(output_slice)
    outputs = list(zip(*outputs, strict=True))
    if names is None:
        names = [None] * len(outputs)
    result = [tf.stack(o, axis=0, name=n) for o, n in zip(outputs, names, strict=True)]
    return result[0] if len(result) == 1 else result


def _shuffle(values: tf.Tensor, seed: tf.Tensor | None, stream: int) -> tf.Tensor:
    """`tf.random.shuffle`, or a stateless shuffle of stream `stream` of `seed`."""
    if seed is None:
        return tf.random.shuffle(values)
    seed = tf.random.experimental.stateless_fold_in(tf.cast(seed, tf.int64), stream)
    return tf.random.experimental.stateless_shuffle(values, seed)


def detection_targets_graph(
    proposals: tf.Tensor,
    gt_class_ids: tf.Tensor,
    gt_boxes: tf.Tensor,
    gt_masks: tf.Tensor,
    train_rois_per_image: int,
    roi_positive_ratio: float,
    mask_shape: Sequence[int],
    use_mini_mask: bool,
    bbox_std_dev: Sequence[float],
    seed: tf.Tensor | None = None,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
    """Samples ROIs of one image and builds their classifier, box and mask targets.

    ROIs with IoU >= DETECTION_FG_IOU (0.5) with a non-crowd ground-truth box are positive;
    those below it that do not touch a crowd box (IoU < CROWD_IOU, 0.001) are negative. The
    numpy twin is `mrcnn.data.targets.build_detection_targets` (same thresholds and counts). At most
    `int(train_rois_per_image * roi_positive_ratio)` positives are drawn at random, and
    enough negatives to keep that ratio. Crowd boxes have a negative class id.

    Args:
        proposals: [N, (y1, x1, y2, x2)] normalized, possibly zero padded.
        gt_class_ids: [MAX_GT_INSTANCES] integer class ids (negative: crowd), zero padded.
        gt_boxes: [MAX_GT_INSTANCES, (y1, x1, y2, x2)] normalized, zero padded.
        gt_masks: [height, width, MAX_GT_INSTANCES] masks (mini masks when
            `use_mini_mask`), any numeric or bool dtype.
        train_rois_per_image: number of ROIs returned.
        roi_positive_ratio: fraction of positive ROIs.
        mask_shape: (height, width) of the mask targets.
        use_mini_mask: whether `gt_masks` are mini masks cropped to their boxes.
        bbox_std_dev: [4] the deltas are divided by it.
        seed: None (TF's stateful `tf.random.shuffle`, matterport's) or a [2] integer
            tensor: the draws are then `stateless_shuffle`s, a pure function of the seed.

    Returns:
        rois: [train_rois_per_image, (y1, x1, y2, x2)] normalized, float32.
        class_ids: [train_rois_per_image] int32 (0 for negative and padding rows).
        deltas: [train_rois_per_image, (dy, dx, log(dh), log(dw))] float32.
        masks: [train_rois_per_image, mask height, mask width] float32 of 0/1.
        Positive ROIs come first, then negatives, then zero padding.
    """
    proposals, _ = trim_zeros_graph(f32(proposals), name="trim_proposals")
    gt_boxes, non_zeros = trim_zeros_graph(f32(gt_boxes), name="trim_gt_boxes")
    gt_class_ids = tf.boolean_mask(tf.cast(gt_class_ids, tf.int32), non_zeros)
    gt_masks = tf.gather(f32(gt_masks), tf.where(non_zeros)[:, 0], axis=2)

    crowd_boxes = tf.boolean_mask(gt_boxes, gt_class_ids < 0)
    non_crowd = gt_class_ids > 0
    gt_class_ids = tf.boolean_mask(gt_class_ids, non_crowd)
    gt_boxes = tf.boolean_mask(gt_boxes, non_crowd)
    gt_masks = tf.gather(gt_masks, tf.where(non_crowd)[:, 0], axis=2)

    overlaps = overlaps_graph(proposals, gt_boxes)
    # A max over an empty axis is -inf: no ground truth makes every ROI negative.
    roi_iou_max = tf.reduce_max(overlaps, axis=1)
    no_crowd = tf.reduce_max(overlaps_graph(proposals, crowd_boxes), axis=1) < CROWD_IOU
    positive_indices = tf.where(roi_iou_max >= DETECTION_FG_IOU)[:, 0]
    negative_indices = tf.where(tf.logical_and(roi_iou_max < DETECTION_FG_IOU, no_crowd))[:, 0]

    positive_count = int(train_rois_per_image * roi_positive_ratio)
    positive_indices = _shuffle(positive_indices, seed, 0)[:positive_count]
    positive_count = tf.shape(positive_indices)[0]
    ratio = 1.0 / roi_positive_ratio
    negative_count = tf.cast(ratio * tf.cast(positive_count, tf.float32), tf.int32)
    negative_count = tf.minimum(negative_count - positive_count,
                                train_rois_per_image - positive_count)
    negative_indices = _shuffle(negative_indices, seed, 1)[:negative_count]
    positive_rois = tf.gather(proposals, positive_indices)
    negative_rois = tf.gather(proposals, negative_indices)

    # Each positive ROI is assigned to the ground-truth box it overlaps most.
    # (A column of -1 keeps the argmax defined when there is no ground truth, hence no
    # positive row; it never wins for a positive ROI, whose best IoU is >= DETECTION_FG_IOU.)
    positive_overlaps = tf.pad(tf.gather(overlaps, positive_indices), [(0, 0), (0, 1)],
                               constant_values=-1.0)
    assignment = tf.argmax(positive_overlaps, axis=1, output_type=tf.int32)
    roi_gt_boxes = tf.gather(gt_boxes, assignment)
    roi_gt_class_ids = tf.gather(gt_class_ids, assignment)
    deltas = box_refinement_graph(positive_rois, roi_gt_boxes)
    deltas = tf.reshape(deltas, [-1, 4]) / tf.constant(bbox_std_dev, tf.float32)

    roi_masks = tf.gather(tf.transpose(gt_masks, [2, 0, 1])[..., tf.newaxis], assignment)
    boxes = positive_rois
    if use_mini_mask:
        # Express the ROI in the frame of its ground-truth box, where the mini mask lives.
        y1, x1, y2, x2 = tf.unstack(positive_rois, axis=-1)
        gy1, gx1, gy2, gx2 = tf.unstack(roi_gt_boxes, axis=-1)
        gh = gy2 - gy1
        gw = gx2 - gx1
        boxes = tf.stack([(y1 - gy1) / gh, (x1 - gx1) / gw, (y2 - gy1) / gh, (x2 - gx1) / gw],
                         axis=-1)
    boxes = tf.reshape(boxes, [-1, 4])
    box_ids = tf.range(tf.shape(roi_masks)[0])
    masks = tf.image.crop_and_resize(roi_masks, boxes, box_ids, list(mask_shape))
    masks = tf.round(tf.squeeze(masks, axis=3))

    rois = tf.concat([positive_rois, negative_rois], axis=0)
    negatives = tf.shape(negative_rois)[0]
    padding = tf.maximum(train_rois_per_image - tf.shape(rois)[0], 0)
    rois = tf.pad(rois, [(0, padding), (0, 0)])
    roi_gt_class_ids = tf.pad(roi_gt_class_ids, [(0, negatives + padding)])
    deltas = tf.pad(deltas, [(0, negatives + padding), (0, 0)])
    masks = tf.pad(masks, [(0, negatives + padding), (0, 0), (0, 0)])
    return rois, roi_gt_class_ids, deltas, masks


def refine_detections_graph(
    rois: tf.Tensor,
    probs: tf.Tensor,
    deltas: tf.Tensor,
    window: tf.Tensor,
    detection_max_instances: int,
    detection_min_confidence: float,
    detection_nms_threshold: float,
    bbox_std_dev: Sequence[float],
) -> tf.Tensor:
    """Turns the classified ROIs of one image into final detections.

    Each ROI takes its most probable class; background ROIs and those scoring below
    `detection_min_confidence` are dropped; boxes are refined with that class's deltas,
    clipped to the window, suppressed per class (NMS), and the best
    `detection_max_instances` by score are kept.

    Args:
        rois: [N, (y1, x1, y2, x2)] normalized proposals.
        probs: [N, num_classes] class probabilities.
        deltas: [N, num_classes, (dy, dx, log(dh), log(dw))] class-specific refinements.
        window: [(y1, x1, y2, x2)] normalized image area without padding.
        detection_max_instances: number of output rows.
        detection_min_confidence: minimum class score (0 disables the filter).
        detection_nms_threshold: IoU threshold of the per-class NMS.
        bbox_std_dev: [4] the deltas are multiplied by it.

    Returns:
        [detection_max_instances, (y1, x1, y2, x2, class_id, score)] float32, normalized
        coordinates, sorted by score, zero padded.
    """
    probs = f32(probs)
    class_ids = tf.argmax(probs, axis=1, output_type=tf.int32)
    class_scores = tf.gather(probs, class_ids, axis=1, batch_dims=1)
    deltas_specific = tf.gather(f32(deltas), class_ids, axis=1, batch_dims=1)
    refined_rois = apply_box_deltas_graph(
        rois, deltas_specific * tf.constant(bbox_std_dev, tf.float32))
    refined_rois = clip_boxes_graph(refined_rois, window)

    keep_mask = class_ids > 0
    if detection_min_confidence:
        keep_mask = tf.logical_and(keep_mask, class_scores >= detection_min_confidence)
    keep = tf.where(keep_mask)[:, 0]
    pre_nms_class_ids = tf.gather(class_ids, keep)
    pre_nms_scores = tf.gather(class_scores, keep)
    pre_nms_rois = tf.gather(refined_rois, keep)

    def nms_one_class(class_id: tf.Tensor) -> tf.Tensor:
        ixs = tf.where(tf.equal(pre_nms_class_ids, class_id))[:, 0]
        class_keep = tf.image.non_max_suppression(
            tf.gather(pre_nms_rois, ixs), tf.gather(pre_nms_scores, ixs),
            max_output_size=detection_max_instances, iou_threshold=detection_nms_threshold)
        class_keep = tf.gather(keep, tf.gather(ixs, class_keep))
        gap = detection_max_instances - tf.shape(class_keep)[0]
        return tf.pad(class_keep, [(0, gap)], constant_values=-1)

    unique_class_ids = tf.unique(pre_nms_class_ids)[0]
    nms_keep = tf.map_fn(
        nms_one_class, unique_class_ids,
        fn_output_signature=tf.TensorSpec([detection_max_instances], tf.int64))
    nms_keep = tf.reshape(nms_keep, [-1])
    # Ascending ROI order first, so that ties in score break as in matterport.
    nms_keep = tf.sort(tf.boolean_mask(nms_keep, nms_keep > -1))

    scores_keep = tf.gather(class_scores, nms_keep)
    num_keep = tf.minimum(tf.shape(scores_keep)[0], detection_max_instances)
    top_ids = tf.math.top_k(scores_keep, k=num_keep, sorted=True).indices
    nms_keep = tf.gather(nms_keep, top_ids)

    detections = tf.concat([
        tf.gather(refined_rois, nms_keep),
        tf.cast(tf.gather(class_ids, nms_keep), tf.float32)[:, tf.newaxis],
        tf.gather(class_scores, nms_keep)[:, tf.newaxis],
    ], axis=1)
    gap = detection_max_instances - tf.shape(detections)[0]
    detections = tf.pad(detections, [(0, gap), (0, 0)])
    return tf.ensure_shape(detections, [detection_max_instances, 6])
