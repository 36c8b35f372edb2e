"""DetectionLayer: turns classified, refined ROIs into the final detections (inference)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import tensorflow as tf

from mrcnn.modeling import graph_ops
from mrcnn.modeling.layers.misc import GraphLayer
from mrcnn.structures.checks import check_fraction, check_positive_floats, check_positive_int


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
