"""DetectionLayer: turns classified, refined ROIs into the final detections (inference), and
the pair of layers that runs the mask head on the real detections only.

The mask head at inference used to run on all DETECTION_MAX_INSTANCES rows (100 by default,
~100 GFLOP at matterport's head sizes), most of them zero padding when a trained model finds a
handful of objects. `DetectionRows` moves the real rows (class_id > 0) of each image to the
front and keeps only as many rows as the fullest image of the batch has; `ScatterDetectionMasks`
puts the masks computed on those rows back in place, zeros for the padding rows. A batch of one
image (detect() on one image) thus runs the mask head on exactly its detections.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import tensorflow as tf

from mrcnn.modeling import graph_ops
from mrcnn.modeling.layers.misc import GraphLayer
from mrcnn.structures.checks import check_fraction, check_positive_floats, check_positive_int

# Column of the class id in a detection row (y1, x1, y2, x2, class_id, score).
CLASS_ID_COLUMN = 4


@keras.saving.register_keras_serializable(package="mrcnn")
class DetectionLayer(GraphLayer):
    """Picks each ROI's best class, refines and clips its box, and runs per-class NMS.

    matterport's "mrcnn_detection". Per image see `graph_ops.refine_detections_graph`; the
    window (image area without padding) comes from the image meta.

    Args:
        detection_max_instances: detections returned per image.
        detection_min_confidence: minimum class score, in [0, 1] (0 keeps all).
        detection_nms_threshold: IoU threshold of the per-class NMS, in (0, 1].
        bbox_std_dev: [4] the predicted deltas are multiplied by it.
        **kwargs: passed to `keras.layers.Layer` (e.g. `name="mrcnn_detection"`).

    Inputs:
        rois: [batch, N, (y1, x1, y2, x2)] normalized.
        mrcnn_class: [batch, N, num_classes] class probabilities.
        mrcnn_bbox: [batch, N, num_classes, (dy, dx, log(dh), log(dw))].
        image_meta: [batch, meta length].

    Returns:
        [batch, detection_max_instances, (y1, x1, y2, x2, class_id, score)] float32,
        normalized coordinates, sorted by score, zero padded.

    Raises:
        ValueError: for a bad count, confidence, threshold or std dev.
    """

    def __init__(self, detection_max_instances: int = 100,
                 detection_min_confidence: float = 0.7,
                 detection_nms_threshold: float = 0.3,
                 bbox_std_dev: Sequence[float] = (0.1, 0.1, 0.2, 0.2), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.detection_max_instances = check_positive_int(
            "detection_max_instances", detection_max_instances)
        self.detection_min_confidence = check_fraction(
            "detection_min_confidence", detection_min_confidence, allow_zero=True)
        self.detection_nms_threshold = check_fraction(
            "detection_nms_threshold", detection_nms_threshold)
        self.bbox_std_dev = check_positive_floats("bbox_std_dev", bbox_std_dev, 4)

    def call(self, inputs: list[tf.Tensor]) -> tf.Tensor:
        rois, mrcnn_class, mrcnn_bbox, image_meta = inputs
        meta = graph_ops.parse_image_meta_graph(image_meta)
        image_shape = meta["image_shape"][0]
        windows = graph_ops.norm_boxes_graph(meta["window"], image_shape[:2])

        def refine(args: tuple[tf.Tensor, ...]) -> tf.Tensor:
            return graph_ops.refine_detections_graph(
                *args, detection_max_instances=self.detection_max_instances,
                detection_min_confidence=self.detection_min_confidence,
                detection_nms_threshold=self.detection_nms_threshold,
                bbox_std_dev=self.bbox_std_dev)

        detections = tf.map_fn(
            refine,
            (tf.cast(rois, tf.float32), tf.cast(mrcnn_class, tf.float32),
             tf.cast(mrcnn_bbox, tf.float32), windows),
            fn_output_signature=tf.TensorSpec([self.detection_max_instances, 6], tf.float32))
        return tf.ensure_shape(detections, [None, self.detection_max_instances, 6])

    def compute_output_shape(self, input_shape: list[tuple]) -> tuple:
        return (input_shape[0][0], self.detection_max_instances, 6)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "detection_max_instances": self.detection_max_instances,
            "detection_min_confidence": self.detection_min_confidence,
            "detection_nms_threshold": self.detection_nms_threshold,
            "bbox_std_dev": self.bbox_std_dev,
        }


def detection_order_graph(detections: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """The order that puts the real detections of each image first.

    Args:
        detections: [batch, N, (y1, x1, y2, x2, class_id, score)]; rows with class_id 0 are
            padding, wherever they are.

    Returns:
        order: [batch, N] int32, a stable permutation of each image's rows, real rows first.
        valid: [batch, N] bool, class_id > 0 (in the input order).
        count: scalar int32, the most real rows of any image of the batch (0 if none).
    """
    valid = detections[..., CLASS_ID_COLUMN] > 0
    order = tf.argsort(tf.cast(valid, tf.int32), axis=1, direction="DESCENDING", stable=True)
    count = tf.reduce_max(tf.reduce_sum(tf.cast(valid, tf.int32), axis=1))
    # reduce_max of an empty batch is the lowest int; no batch means no rows.
    return order, valid, tf.maximum(count, 0)


@keras.saving.register_keras_serializable(package="mrcnn")
class DetectionRows(GraphLayer):
    """The boxes of the real detections, each image's first, trimmed to the fullest image.

    Input: detections [batch, N, (y1, x1, y2, x2, class_id, score)], zero padded.
    Output: [batch, K, (y1, x1, y2, x2)] in the detections' dtype, where K (dynamic) is the
    largest number of real rows (class_id > 0) of any image of the batch; an image with
    fewer has zero-box padding rows after its own. K is 0 when nothing was detected.
    """

    def call(self, detections: tf.Tensor) -> tf.Tensor:
        order, _, count = detection_order_graph(detections)
        return tf.gather(detections[..., :4], order[:, :count], axis=1, batch_dims=1)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return (input_shape[0], None, 4)

    def _output_dtypes(self, inputs: Any) -> list[str]:
        return [inputs.dtype]


@keras.saving.register_keras_serializable(package="mrcnn")
class ScatterDetectionMasks(GraphLayer):
    """Puts masks computed on `DetectionRows`' boxes back in the detections' row order.

    Inputs:
        masks: [batch, K, height, width, num_classes], one per row of `DetectionRows`.
        detections: [batch, N, (y1, x1, y2, x2, class_id, score)], the same detections.

    Returns:
        [batch, N, height, width, num_classes] in the masks' dtype: row i holds the mask of
        detection i, and every padding row (class_id 0) is zero.
    """

    def call(self, inputs: list[tf.Tensor]) -> tf.Tensor:
        masks, detections = inputs
        order, valid, count = detection_order_graph(detections)
        rows = tf.shape(detections)[1]
        padded = tf.pad(masks, [[0, 0], [0, rows - count], [0, 0], [0, 0], [0, 0]])
        # order[b, j] is the input row of compact row j, so its inverse gathers them back.
        inverse = tf.argsort(order, axis=1, stable=True)
        scattered = tf.gather(padded, inverse, axis=1, batch_dims=1)
        keep = tf.cast(valid, masks.dtype)[:, :, tf.newaxis, tf.newaxis, tf.newaxis]
        return scattered * keep

    def compute_output_shape(self, input_shape: list[tuple]) -> tuple:
        masks, detections = input_shape
        return (masks[0], detections[1], *masks[2:])

    def _output_dtypes(self, inputs: Any) -> list[str]:
        return [inputs[0].dtype]
