"""ProposalLayer: turns RPN scores and deltas into a fixed number of proposals per image."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import tensorflow as tf

from mrcnn.modeling import graph_ops
from mrcnn.modeling.layers.misc import GraphLayer
from mrcnn.structures.checks import check_fraction, check_positive_floats, check_positive_int


@keras.saving.register_keras_serializable(package="mrcnn")
class ProposalLayer(GraphLayer):
    """Selects the best anchors, refines them and suppresses overlaps (matterport's "ROI").

    Per image: keeps the `pre_nms_limit` anchors with the highest foreground score, applies
    the RPN deltas (scaled by `rpn_bbox_std_dev`), clips to the image [0, 1], runs NMS and
    keeps `proposal_count` boxes, zero padded. Everything but the NMS is vectorized over
    the batch; the batch and anchor counts may be dynamic.

    Args:
        proposal_count: number of proposals returned per image.
        nms_threshold: IoU threshold of the NMS, in (0, 1].
        pre_nms_limit: anchors kept before NMS.
        rpn_bbox_std_dev: [4] the RPN deltas are multiplied by it.
        **kwargs: passed to `keras.layers.Layer` (e.g. `name="ROI"`).

    Inputs:
        rpn_probs: [batch, num_anchors, (bg prob, fg prob)].
        rpn_bbox: [batch, num_anchors, (dy, dx, log(dh), log(dw))].
        anchors: [batch, num_anchors, (y1, x1, y2, x2)] normalized.

    Returns:
        [batch, proposal_count, (y1, x1, y2, x2)] normalized float32, sorted by score,
        zero padded.

    Raises:
        ValueError: for a non-positive count, a threshold outside (0, 1] or a std dev
            that is not 4 positive numbers.
    """

    def __init__(self, proposal_count: int, nms_threshold: float, pre_nms_limit: int = 6000,
                 rpn_bbox_std_dev: Sequence[float] = (0.1, 0.1, 0.2, 0.2),
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.proposal_count = check_positive_int("proposal_count", proposal_count)
        self.pre_nms_limit = check_positive_int("pre_nms_limit", pre_nms_limit)
        self.nms_threshold = check_fraction("nms_threshold", nms_threshold)
        self.rpn_bbox_std_dev = check_positive_floats("rpn_bbox_std_dev", rpn_bbox_std_dev, 4)

    def call(self, inputs: list[tf.Tensor]) -> tf.Tensor:
        rpn_probs, rpn_bbox, anchors = inputs
        scores = tf.cast(rpn_probs[:, :, 1], tf.float32)
        deltas = tf.cast(rpn_bbox, tf.float32) * tf.constant(self.rpn_bbox_std_dev)
        anchors = tf.cast(anchors, tf.float32)

        limit = tf.minimum(self.pre_nms_limit, tf.shape(anchors)[1])
        scores, ix = tf.math.top_k(scores, k=limit, sorted=True, name="top_anchors")
        deltas = tf.gather(deltas, ix, batch_dims=1)
        pre_nms_anchors = tf.gather(anchors, ix, batch_dims=1)
        boxes = graph_ops.apply_box_deltas_graph(pre_nms_anchors, deltas)
        boxes = graph_ops.clip_boxes_graph(boxes, tf.constant([0.0, 0.0, 1.0, 1.0]))

        def nms(args: tuple[tf.Tensor, tf.Tensor]) -> tf.Tensor:
            image_boxes, image_scores = args
            indices = tf.image.non_max_suppression(
                image_boxes, image_scores, self.proposal_count, self.nms_threshold,
                name="rpn_non_max_suppression")
            proposals = tf.gather(image_boxes, indices)
            padding = tf.maximum(self.proposal_count - tf.shape(proposals)[0], 0)
            return tf.pad(proposals, [(0, padding), (0, 0)])

        proposals = tf.map_fn(
            nms, (boxes, scores),
            fn_output_signature=tf.TensorSpec([self.proposal_count, 4], tf.float32))
        return tf.ensure_shape(proposals, [None, self.proposal_count, 4])

    def compute_output_shape(self, input_shape: list[tuple]) -> tuple:
        return (input_shape[0][0], self.proposal_count, 4)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "proposal_count": self.proposal_count,
            "nms_threshold": self.nms_threshold,
            "pre_nms_limit": self.pre_nms_limit,
            "rpn_bbox_std_dev": self.rpn_bbox_std_dev,
        }
