"""Small layers that replace matterport's `Lambda` layers, and the float32 base of the graph layers.

matterport wrapped several graph steps in `keras.layers.Lambda`; Keras 3 cannot serialize
those safely and cannot run TF ops on symbolic tensors outside a layer. Each step is a named
layer here:

- `AnchorsLayer` (matterport's `anchors` Lambda holding a `tf.Variable`): a constant anchor
  array broadcast to the batch, without weights.
- `NormBoxes`: pixel boxes to normalized ones using the image tensor's dynamic shape
  (the Lambda on `input_gt_boxes` / `input_rois`).
- `ImageMetaField`: one field of `parse_image_meta_graph` (`active_class_ids`).
- `IdentityLayer`: a named identity (matterport's `output_rois`).
- `DetectionBoxes`: the box columns of the detections (`detections[..., :4]`).
- `TakeFirst`: the first rows of axis 1 (the positive ROIs, for the mask head in training).

Every layer here (and in the sibling modules) is registered for serialization as
`mrcnn>ClassName`, so a saved `.keras` model reloads without `custom_objects`.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from mrcnn.modeling import graph_ops
from mrcnn.structures import image_meta
from mrcnn.structures.checks import check_boxes, check_positive_int


@keras.saving.register_keras_serializable(package="mrcnn")
class GraphLayer(keras.layers.Layer):
    """Base of the weightless graph layers: no autocasting of inputs.

    Geometry (boxes, NMS, ROI pooling) must stay float32 under a mixed-precision policy,
    so inputs are passed through untouched and each layer casts what it needs.
    """

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)

    def compute_output_spec(self, *args: Any, **kwargs: Any) -> Any:
        shapes = keras.tree.map_structure(lambda x: tuple(x.shape), args[0])
        dtypes = self._output_dtypes(args[0])
        output_shape = self.compute_output_shape(shapes)
        if isinstance(output_shape, list):
            return [keras.KerasTensor(s, dtype=d)
                    for s, d in zip(output_shape, dtypes, strict=True)]
        return keras.KerasTensor(output_shape, dtype=dtypes[0])

    def _output_dtypes(self, inputs: Any) -> list[str]:
        """The dtypes of the outputs (float32 unless a layer says otherwise)."""
        return ["float32"] * 4


@keras.saving.register_keras_serializable(package="mrcnn")
class AnchorsLayer(GraphLayer):
    """Broadcasts a constant anchor array to the batch of its input.

    Holds no weights: the anchors are a constant of the graph and are serialized in
    `get_config` as a nested list.

    Args:
        anchors: [num_anchors, (y1, x1, y2, x2)] normalized anchors.
        **kwargs: passed to `keras.layers.Layer` (e.g. `name="anchors"`).

    Raises:
        ValueError: when `anchors` is not a [N, 4] array.
    """

    def __init__(self, anchors: np.ndarray | list, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.anchors = check_boxes("anchors", np.asarray(anchors, dtype=np.float32))

    def call(self, image: tf.Tensor) -> tf.Tensor:
        """Returns [batch, num_anchors, (y1, x1, y2, x2)] for `image` [batch, ...]."""
        batch = tf.shape(image)[0]
        anchors = tf.constant(self.anchors)
        return tf.broadcast_to(anchors[tf.newaxis], tf.stack([batch, *self.anchors.shape]))

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return (input_shape[0], *self.anchors.shape)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "anchors": self.anchors.tolist()}


@keras.saving.register_keras_serializable(package="mrcnn")
class NormBoxes(GraphLayer):
    """Converts pixel boxes to normalized ones using the image's dynamic shape.

    Inputs: [boxes [batch, N, (y1, x1, y2, x2)] pixel, image [batch, height, width, C]].
    Output: [batch, N, (y1, x1, y2, x2)] normalized, float32.
    """

    def call(self, inputs: list[tf.Tensor]) -> tf.Tensor:
        boxes, image = inputs
        return graph_ops.norm_boxes_graph(boxes, tf.shape(image)[1:3])

    def compute_output_shape(self, input_shape: list[tuple]) -> tuple:
        return tuple(input_shape[0])


@keras.saving.register_keras_serializable(package="mrcnn")
class ImageMetaField(GraphLayer):
    """Extracts one field of the image meta (see `parse_image_meta_graph`).

    Args:
        field: one of `mrcnn.structures.image_meta.FIELD_NAMES` ("image_id",
            "original_image_shape", "image_shape", "window", "scale", "active_class_ids").
        **kwargs: passed to `keras.layers.Layer`.

    Raises:
        ValueError: for an unknown field.
    """

    def __init__(self, field: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        image_meta.field_width(field)  # raises ValueError for an unknown field
        self.field = field

    def call(self, meta: tf.Tensor) -> tf.Tensor:
        return graph_ops.parse_image_meta_graph(meta)[self.field]

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        if self.field in image_meta.SCALAR_FIELDS:
            return (input_shape[0],)
        return (input_shape[0], image_meta.field_width(self.field, input_shape[1]))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "field": self.field}


@keras.saving.register_keras_serializable(package="mrcnn")
class IdentityLayer(GraphLayer):
    """Returns its input unchanged, under its own name (matterport's `output_rois`)."""

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        return tf.identity(inputs)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return tuple(input_shape)

    def _output_dtypes(self, inputs: Any) -> list[str]:
        return [inputs.dtype]


@keras.saving.register_keras_serializable(package="mrcnn")
class DetectionBoxes(GraphLayer):
    """Takes the box columns of detections.

    Input: [batch, N, (y1, x1, y2, x2, class_id, score)]. Output: [batch, N, 4].
    """

    def call(self, detections: tf.Tensor) -> tf.Tensor:
        return detections[..., :4]

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return (*input_shape[:-1], 4)

    def _output_dtypes(self, inputs: Any) -> list[str]:
        return [inputs.dtype]


@keras.saving.register_keras_serializable(package="mrcnn")
class TakeFirst(GraphLayer):
    """Keeps the first `count` rows of axis 1: [batch, N, ...] -> [batch, count, ...].

    Used to run the mask head on positive ROIs only: DetectionTargetLayer puts positive
    ROIs first and never has more than int(TRAIN_ROIS_PER_IMAGE * ROI_POSITIVE_RATIO).
    """

    def __init__(self, count: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.count = check_positive_int("count", count)

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        return inputs[:, :self.count]

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        n = input_shape[1]
        return (input_shape[0], self.count if n is None else min(n, self.count),
                *input_shape[2:])

    def _output_dtypes(self, inputs: Any) -> list[str]:
        return [inputs.dtype]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "count": self.count}


@keras.saving.register_keras_serializable(package="mrcnn")
class TakePositiveRows(GraphLayer):
    """Keeps the leading positive ROIs of a batch: [batch, N, ...] -> [batch, k, ...].

    k is the largest number of positive ROIs (class id > 0) of any image of the batch,
    at most `count`. DetectionTargetLayer puts positive ROIs first, so the first k rows hold
    every positive of every image; the mask head then runs on the real positives and on
    as little padding as the batch allows, instead of on a fixed `count` rows per image
    that early in training (few positives) are mostly zero padding. k may be 0.

    Args:
        count: the most rows kept (int(TRAIN_ROIS_PER_IMAGE * ROI_POSITIVE_RATIO)).

    Inputs:
        rows: [batch, N, ...] any tensor aligned with the ROIs.
        class_ids: [batch, N] the ROIs' target class ids (0: negative or padding).

    Returns:
        [batch, k, ...] the first k rows of `rows`, k dynamic.
    """

    def __init__(self, count: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.count = check_positive_int("count", count)

    def call(self, inputs: list[tf.Tensor]) -> tf.Tensor:
        rows, class_ids = inputs
        positives = tf.reduce_sum(tf.cast(class_ids > 0, tf.int32), axis=1)
        k = tf.minimum(tf.reduce_max(tf.concat([positives, [0]], axis=0)), self.count)
        return rows[:, :k]

    def compute_output_shape(self, input_shape: list[tuple]) -> tuple:
        rows = tuple(input_shape[0])
        return (rows[0], None, *rows[2:])

    def _output_dtypes(self, inputs: Any) -> list[str]:
        return [inputs[0].dtype]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "count": self.count}
