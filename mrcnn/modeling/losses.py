"""The five Mask R-CNN losses and L2 weight decay, as pure functions (matterport's semantics).

Each loss takes tensors and returns a float32 scalar tensor. Inputs are cast to float32
so the losses are safe under a mixed-precision policy. When there is nothing to average
(no positive anchors, no positive ROIs, no ground truth) a loss is exactly 0.0, never NaN,
and its gradient is finite (zero): means are taken as sum / max(count, 1) rather than
through a conditional.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import tensorflow as tf

from mrcnn.modeling.graph_ops import f32

# Keras' binary cross-entropy clips probabilities to [eps, 1 - eps]; matterport's mask
# loss inherits that (Keras' default epsilon).
_BCE_EPSILON = 1e-7


def _safe_mean(values: tf.Tensor) -> tf.Tensor:
    """Mean of all elements; 0.0 for an empty tensor."""
    count = tf.cast(tf.size(values), tf.float32)
    return tf.reduce_sum(values) / tf.maximum(count, 1.0)


def smooth_l1_loss(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
    """Elementwise smooth-L1 (Huber with delta 1): 0.5 d^2 if |d| < 1 else |d| - 0.5.

    Args:
        y_true: [...] targets.
        y_pred: [...] predictions, same shape.

    Returns:
        [...] float32 elementwise loss.
    """
    diff = tf.abs(f32(y_true) - f32(y_pred))
    less_than_one = tf.cast(diff < 1.0, tf.float32)
    return less_than_one * 0.5 * diff ** 2 + (1.0 - less_than_one) * (diff - 0.5)


def rpn_class_loss_graph(rpn_match: tf.Tensor, rpn_class_logits: tf.Tensor) -> tf.Tensor:
    """RPN anchor classifier loss: softmax cross-entropy over non-neutral anchors.

    Args:
        rpn_match: [batch, anchors, 1] anchor match type: 1 positive, -1 negative,
            0 neutral (ignored).
        rpn_class_logits: [batch, anchors, 2] logits for (background, foreground).

    Returns:
        Scalar float32: the mean over positive and negative anchors (0.0 if none).
    """
    rpn_match = tf.squeeze(tf.cast(rpn_match, tf.int32), -1)
    anchor_class = tf.cast(tf.equal(rpn_match, 1), tf.int32)
    indices = tf.where(tf.not_equal(rpn_match, 0))
    logits = tf.gather_nd(f32(rpn_class_logits), indices)
    anchor_class = tf.gather_nd(anchor_class, indices)
    loss = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=anchor_class, logits=logits)
    return _safe_mean(loss)


def rpn_bbox_loss_graph(config: Any, target_bbox: tf.Tensor, rpn_match: tf.Tensor,
                        rpn_bbox: tf.Tensor) -> tf.Tensor:
    """RPN box regression loss: smooth-L1 over positive anchors.

    The targets of each image are packed at the front of `target_bbox` in the order of
    the image's positive anchors; they are paired with the predictions of those anchors
    for the whole batch at once (no per-image loop).

    Args:
        config: unused; kept first for matterport compatibility (may be None).
        target_bbox: [batch, max positive anchors, (dy, dx, log(dh), log(dw))], zero
            padded after each image's positives.
        rpn_match: [batch, anchors, 1] 1 positive, -1 negative, 0 neutral.
        rpn_bbox: [batch, anchors, (dy, dx, log(dh), log(dw))] predictions.

    Returns:
        Scalar float32: the mean over positive anchors and the 4 coordinates (0.0 if none).
    """
    del config
    positive = tf.equal(tf.squeeze(tf.cast(rpn_match, tf.int32), -1), 1)
    # Rank of each positive anchor among its image's positives = its row in target_bbox.
    rank = tf.cumsum(tf.cast(positive, tf.int32), axis=1, exclusive=True)
    positive = tf.logical_and(positive, rank < tf.shape(target_bbox)[1])
    indices = tf.where(positive)
    pred = tf.gather_nd(f32(rpn_bbox), indices)
    target_rows = tf.stack([tf.cast(indices[:, 0], tf.int32), tf.gather_nd(rank, indices)],
                           axis=1)
    target = tf.gather_nd(f32(target_bbox), target_rows)
    return _safe_mean(smooth_l1_loss(target, pred))


def mrcnn_class_loss_graph(target_class_ids: tf.Tensor, pred_class_logits: tf.Tensor,
                           active_class_ids: tf.Tensor) -> tf.Tensor:
    """Classifier head loss: softmax cross-entropy, ignoring predictions of inactive classes.

    An ROI whose predicted (argmax) class is not active in its image's dataset does not
    count (matterport's rule; here each image uses its own `active_class_ids`, which is
    matterport's result when, as it assumes, they are the same across the batch).

    Args:
        target_class_ids: [batch, num_rois] integer class ids (0 for padding, included
            as background as in matterport).
        pred_class_logits: [batch, num_rois, num_classes] logits.
        active_class_ids: [batch, num_classes] 1 for classes of the image's dataset, else 0.

    Returns:
        Scalar float32: sum of the counted losses / number of counted ROIs (0.0 if none).
    """
    target_class_ids = tf.cast(target_class_ids, tf.int32)
    logits = f32(pred_class_logits)
    pred_class_ids = tf.argmax(logits, axis=2, output_type=tf.int32)
    pred_active = tf.gather(f32(active_class_ids), pred_class_ids, axis=1, batch_dims=1)
    loss = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=target_class_ids,
                                                          logits=logits)
    return tf.reduce_sum(loss * pred_active) / tf.maximum(tf.reduce_sum(pred_active), 1.0)


def _positive_rois(target_class_ids: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Flat indices and class ids of the positive ROIs of a [batch, num_rois] id array."""
    class_ids = tf.reshape(tf.cast(target_class_ids, tf.int32), [-1])
    positive_ix = tf.where(class_ids > 0)[:, 0]
    return positive_ix, tf.gather(class_ids, positive_ix)


def mrcnn_bbox_loss_graph(target_bbox: tf.Tensor, target_class_ids: tf.Tensor,
                          pred_bbox: tf.Tensor) -> tf.Tensor:
    """Box head loss: smooth-L1 on the deltas predicted for each positive ROI's true class.

    Args:
        target_bbox: [batch, num_rois, (dy, dx, log(dh), log(dw))].
        target_class_ids: [batch, num_rois] integer class ids (0: negative or padding).
        pred_bbox: [batch, num_rois, num_classes, (dy, dx, log(dh), log(dw))].

    Returns:
        Scalar float32: the mean over positive ROIs and the 4 coordinates (0.0 if none).
    """
    positive_ix, class_ids = _positive_rois(target_class_ids)
    target = tf.gather(tf.reshape(f32(target_bbox), [-1, 4]), positive_ix)
    pred = tf.reshape(f32(pred_bbox), [-1, tf.shape(pred_bbox)[2], 4])
    pred = tf.gather(tf.gather(pred, positive_ix), class_ids, axis=1, batch_dims=1)
    return _safe_mean(smooth_l1_loss(target, pred))


def mrcnn_mask_loss_graph(target_masks: tf.Tensor, target_class_ids: tf.Tensor,
                          pred_masks: tf.Tensor) -> tf.Tensor:
    """Mask head loss: binary cross-entropy of each positive ROI's mask of its true class.

    Args:
        target_masks: [batch, num_rois, height, width] of 0/1.
        target_class_ids: [batch, num_rois] integer class ids (0: negative or padding).
        pred_masks: [batch, num_rois, height, width, num_classes] probabilities (sigmoid
            outputs), clipped to [1e-7, 1 - 1e-7] as Keras' binary cross-entropy does.

    Returns:
        Scalar float32: the mean over positive ROIs and pixels (0.0 if none).
    """
    positive_ix, class_ids = _positive_rois(target_class_ids)
    mask_shape = tf.shape(target_masks)
    y_true = tf.reshape(f32(target_masks), [-1, mask_shape[2], mask_shape[3]])
    y_true = tf.gather(y_true, positive_ix)
    pred_shape = tf.shape(pred_masks)
    y_pred = tf.reshape(f32(pred_masks), [-1, pred_shape[2], pred_shape[3], pred_shape[4]])
    y_pred = tf.gather(tf.gather(y_pred, positive_ix), class_ids, axis=3, batch_dims=1)
    y_pred = tf.clip_by_value(y_pred, _BCE_EPSILON, 1.0 - _BCE_EPSILON)
    loss = -(y_true * tf.math.log(y_pred) + (1.0 - y_true) * tf.math.log(1.0 - y_pred))
    return _safe_mean(loss)


def l2_weight_decay(weights: Iterable[Any], weight_decay: float) -> tf.Tensor:
    """matterport's weight decay: weight_decay * sum over weights of sum(w^2) / size(w).

    Dividing each weight's squared sum by its element count (matterport's formula, kept so
    its WEIGHT_DECAY values transfer) makes this much weaker than the textbook L2 term.
    The caller chooses the weights (matterport skips BatchNorm gamma and beta).

    Args:
        weights: variables or tensors.
        weight_decay: the coefficient (Config.WEIGHT_DECAY).

    Returns:
        Scalar float32 (0.0 for no weights).

    Raises:
        ValueError: for a negative or non-finite `weight_decay`.
    """
    try:
        decay = float(weight_decay)
    except (TypeError, ValueError):
        decay = float("nan")
    if not decay >= 0 or decay == float("inf"):
        raise ValueError(f"weight_decay must be a finite number >= 0, got {weight_decay!r}")
    terms = []
    for weight in weights:
        w = f32(weight)
        terms.append(tf.reduce_sum(tf.square(w)) / tf.cast(tf.size(w), tf.float32))
    if not terms:
        return tf.constant(0.0)
    return decay * tf.add_n(terms)
