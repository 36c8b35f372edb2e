"""PyramidROIAlign: ROI pooling over the levels of a feature pyramid."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import tensorflow as tf

from mrcnn.modeling import graph_ops
from mrcnn.modeling.layers.misc import GraphLayer
from mrcnn.structures.checks import check_height_width

# The FPN paper assigns a 224x224 ROI (ImageNet's crop size) to level 4 (k0 = 4).
CANONICAL_SIZE = 224.0
CANONICAL_LEVEL = 4
MIN_LEVEL = 2
MAX_LEVEL = 5


def roi_level_graph(boxes: tf.Tensor, image_shape: tf.Tensor) -> tf.Tensor:
    """Assigns each box to a pyramid level (matterport's formula, FPN paper eq. 1).

    level = clip(4 + round(log2(sqrt(h * w) / (224 / sqrt(image_area)))), 2, 5), with
    `h`, `w` normalized. In a square image that is 4 + round(log2(side / 224)) for a box
    of `side` x `side` pixels: 224 px goes to P4, 112 px to P3, 448 px to P5.

    Args:
        boxes: [..., (y1, x1, y2, x2)] normalized.
        image_shape: [(height, width, ...)] in pixels.

    Returns:
        [...] int32 levels in [2, 5]. Empty (zero padded) boxes get level 2.
    """
    boxes = tf.cast(boxes, tf.float32)
    height = boxes[..., 2] - boxes[..., 0]
    width = boxes[..., 3] - boxes[..., 1]
    image_shape = tf.cast(image_shape, tf.float32)
    image_area = image_shape[0] * image_shape[1]
    size = tf.sqrt(tf.maximum(height * width, 0.0))
    level = graph_ops.log2_graph(size / (CANONICAL_SIZE / tf.sqrt(image_area)))
    # log2(0) = -inf clips to the lowest level; clip before the cast to stay defined.
    level = tf.clip_by_value(CANONICAL_LEVEL + tf.round(level), MIN_LEVEL, MAX_LEVEL)
    return tf.cast(level, tf.int32)


@keras.saving.register_keras_serializable(package="mrcnn")
class PyramidROIAlign(GraphLayer):
    """Crops and resizes each box from the pyramid level that matches its size.

    Args:
        pool_shape: (pool_height, pool_width) of the output, e.g. (7, 7).
        **kwargs: passed to `keras.layers.Layer` (e.g. `name="roi_align_classifier"`).

    Inputs:
        boxes: [batch, num_boxes, (y1, x1, y2, x2)] normalized; zero padding allowed.
        image_meta: [batch, meta length]; the molded image shape is read from the first
            image (all images of a batch share it).
        feature_maps: P2, P3, P4, P5, each [batch, height, width, channels].

    Returns:
        [batch, num_boxes, pool_height, pool_width, channels] in the feature maps' dtype,
        in the order of the input boxes.

    Raises:
        ValueError: when `pool_shape` is not two positive integers, or (at call time)
            when not exactly four feature maps are given.
    """

    def __init__(self, pool_shape: Sequence[int], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pool_shape = check_height_width("pool_shape", pool_shape)

    def _check_inputs(self, inputs: Sequence[Any]) -> None:
        if len(inputs) != 2 + MAX_LEVEL - MIN_LEVEL + 1:
            raise ValueError(
                "PyramidROIAlign expects [boxes, image_meta, P2, P3, P4, P5], got "
                f"{len(inputs)} inputs")

    def call(self, inputs: list[tf.Tensor]) -> tf.Tensor:
        self._check_inputs(inputs)
        boxes = tf.cast(inputs[0], tf.float32)
        image_meta = inputs[1]
        feature_maps = inputs[2:]
        out_dtype = feature_maps[0].dtype

        image_shape = graph_ops.parse_image_meta_graph(image_meta)["image_shape"][0]
        roi_level = roi_level_graph(boxes, image_shape)

        pooled = []
        box_positions = []
        for i, level in enumerate(range(MIN_LEVEL, MAX_LEVEL + 1)):
            ix = tf.where(tf.equal(roi_level, level))
            level_boxes = tf.stop_gradient(tf.gather_nd(boxes, ix))
            box_indices = tf.stop_gradient(tf.cast(ix[:, 0], tf.int32))
            box_positions.append(ix)
            pooled.append(tf.image.crop_and_resize(
                tf.cast(feature_maps[i], tf.float32), level_boxes, box_indices,
                self.pool_shape, method="bilinear"))
        pooled = tf.concat(pooled, axis=0)

        # Every box went to exactly one level, so the flat positions (image * N + box)
        # form a permutation; its inverse puts the crops back in input order.
        box_positions = tf.cast(tf.concat(box_positions, axis=0), tf.int32)
        num_boxes = tf.shape(boxes)[1]
        flat = box_positions[:, 0] * num_boxes + box_positions[:, 1]
        pooled = tf.gather(pooled, tf.math.invert_permutation(flat))

        shape = tf.concat([tf.shape(boxes)[:2], tf.shape(pooled)[1:]], axis=0)
        return tf.cast(tf.reshape(pooled, shape), out_dtype)

    def compute_output_shape(self, input_shape: list[tuple]) -> tuple:
        self._check_inputs(input_shape)
        return (*input_shape[0][:2], *self.pool_shape, input_shape[2][-1])

    def _output_dtypes(self, inputs: Any) -> list[str]:
        return [inputs[2].dtype]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "pool_shape": list(self.pool_shape)}
