"""TimeDistributed: apply a layer to every ROI of a `[batch, rois, ...]` tensor by folding.

Keras 3's own `keras.layers.TimeDistributed` is unsuitable for the Mask R-CNN heads: when the
ROI count is dynamic it maps over the wrong axis in graph mode (predict/fit) and returns
`[batch, batch, ...]`, and with a static count it unrolls one call per ROI, so a BatchNorm
inside sees one ROI at a time. This wrapper instead folds the batch and ROI axes into one,
`[batch * rois, ...]`, applies the inner layer once, and unfolds the result. Any ROI count
works, including zero and counts that change from call to call, and a BatchNorm inside
computes its statistics over all ROIs of all images together.
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf


def _fold_dim(batch: int | None, rois: int | None) -> int | None:
    """Static size of the folded `batch * rois` axis, or None when either is unknown."""
    if batch is None or rois is None:
        return None
    return batch * rois


@keras.saving.register_keras_serializable(package="mrcnn")
class TimeDistributed(keras.layers.Wrapper):
    """Apply `layer` to each ROI of a `[batch, rois, ...]` input, the ROI count may be dynamic.

    The wrapper should carry matterport's layer name (for example `mrcnn_class_conv1`), which is
    the name its weights are saved and loaded under; give the inner layer an explicit name
    too (the builders use `f"{name}_inner"`) so that no global counter name leaks into the
    model. The wrapper's weights are the inner layer's weights, in the inner layer's order.

    Args:
        layer: The `keras.layers.Layer` to apply to every `[...]` slice. It sees inputs of
            shape `[batch * rois, ...]`.
        **kwargs: Passed on to `keras.layers.Wrapper` (`name`, `dtype`, `trainable`).

    Raises:
        ValueError: If `layer` is not a Keras layer, or (when built) the input has fewer than
            3 dimensions.
    """

    def __init__(self, layer: keras.layers.Layer, **kwargs: Any) -> None:
        if not isinstance(layer, keras.layers.Layer):
            raise ValueError(f"TimeDistributed needs a keras Layer to wrap, got {layer!r}")
        super().__init__(layer, **kwargs)
        self.supports_masking = False

    @staticmethod
    def _check_rank(input_shape) -> tuple:
        input_shape = tuple(input_shape)
        if len(input_shape) < 3:
            raise ValueError(
                "TimeDistributed expects an input of shape [batch, rois, ...] with at least "
                f"3 dimensions, got shape {input_shape}"
            )
        return input_shape

    def _folded_shape(self, input_shape) -> tuple:
        input_shape = self._check_rank(input_shape)
        return (_fold_dim(input_shape[0], input_shape[1]),) + input_shape[2:]

    def build(self, input_shape) -> None:
        folded = self._folded_shape(input_shape)
        if not self.layer.built:
            self.layer.build(folded)
        self.built = True

    def compute_output_shape(self, input_shape) -> tuple:
        input_shape = self._check_rank(input_shape)
        inner = tuple(self.layer.compute_output_shape(self._folded_shape(input_shape)))
        return tuple(input_shape[:2]) + inner[1:]

    def call(self, inputs, training=None):
        """Fold `[batch, rois, ...]` to `[batch * rois, ...]`, apply the layer, unfold.

        Args:
            inputs: `[batch, rois, ...]`, any float dtype.
            training: Passed on to the inner layer.

        Returns:
            `[batch, rois, ...]` where `...` is the inner layer's per-item output shape.
        """
        static = inputs.shape
        dynamic = tf.shape(inputs)
        # Keep every static size as a Python int so the inner layer sees static channels.
        inner_dims = [
            static[i] if static[i] is not None else dynamic[i] for i in range(2, len(static))
        ]
        folded = tf.reshape(inputs, [-1] + inner_dims)
        outputs = self._apply(folded, inner_dims, training)

        out_static = outputs.shape
        out_dynamic = tf.shape(outputs)
        out_dims = [
            out_static[i] if out_static[i] is not None else out_dynamic[i]
            for i in range(1, len(out_static))
        ]
        batch = static[0] if static[0] is not None else dynamic[0]
        rois = static[1] if static[1] is not None else dynamic[1]
        return tf.reshape(outputs, [batch, rois] + out_dims)

    def _apply(self, folded: tf.Tensor, inner_dims: list, training) -> tf.Tensor:
        """Apply the inner layer to `[items, ...]`, also when there are no items.

        TF's CPU convolution returns its input unchanged for an empty batch (wrong channel
        count), so an empty input instead runs the layer on one dummy item in inference mode
        (no BatchNorm statistics update) and keeps none of its output. At inference with a
        dynamic count the dummy is appended without a `tf.cond` (see below).
        """
        count = tf.shape(folded)[0]

        def apply():
            return self.layer(folded, training=training)

        def empty():
            dummy = tf.zeros([1] + inner_dims, dtype=folded.dtype)
            # Slice by the (zero) dynamic count, not [:0]: a static 0 would clash with the
            # other branch's static size when gradients are built.
            return self.layer(dummy, training=False)[:count]

        if folded.shape[0] is not None:  # static count, or eager
            return apply() if folded.shape[0] else empty()
        if training is None or training is False:
            # Inference with a dynamic count (detections): append one dummy item only when
            # there is none, run the layer, keep `count` items. No tf.cond: in a graph its
            # optional-typed outputs made TF's type inference log a "type_inference" warning.
            pad = tf.cast(tf.equal(count, 0), tf.int32)
            padded = tf.concat([folded, tf.zeros([pad] + inner_dims, folded.dtype)], axis=0)
            return self.layer(padded, training=training)[:count]
        return tf.cond(count > 0, apply, empty)

    def get_config(self) -> dict[str, Any]:
        # Wrapper.get_config serializes the inner layer under "layer".
        return super().get_config()

    @classmethod
    def from_config(cls, config: dict[str, Any], custom_objects=None) -> TimeDistributed:
        config = dict(config)
        layer = keras.saving.deserialize_keras_object(
            config.pop("layer"), custom_objects=custom_objects
        )
        return cls(layer, **config)
