"""LossLayer: one Mask R-CNN loss as a weightless graph layer (replaces matterport's Lambdas).

The loss math lives in `mrcnn.modeling.losses` as pure functions; this layer only wires a function
into the training graph, so the graph has matterport's structure (loss layers named
`rpn_class_loss`, ... as outputs) and `TrainingModel.train_step` just reads the values.
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from mrcnn.modeling import losses

# loss name -> (pure function, whether it takes matterport's leading `config` argument)
LOSS_FUNCTIONS = {
    "rpn_class_loss": (losses.rpn_class_loss_graph, False),
    "rpn_bbox_loss": (losses.rpn_bbox_loss_graph, True),
    "mrcnn_class_loss": (losses.mrcnn_class_loss_graph, False),
    "mrcnn_bbox_loss": (losses.mrcnn_bbox_loss_graph, False),
    "mrcnn_mask_loss": (losses.mrcnn_mask_loss_graph, False),
}


@keras.saving.register_keras_serializable(package="mrcnn")
class LossLayer(keras.layers.Layer):
    """Computes one named loss from its input tensors; outputs a float32 scalar.

    Args:
        loss: one of LOSS_FUNCTIONS' names. The inputs are that function's tensor
            arguments in order, e.g. [rpn_match, rpn_class_logits] for "rpn_class_loss".
    """

    def __init__(self, loss: str, **kwargs: Any) -> None:
        if loss not in LOSS_FUNCTIONS:
            raise ValueError(f"loss must be one of {sorted(LOSS_FUNCTIONS)}, got {loss!r}")
        kwargs.setdefault("autocast", False)
        kwargs.setdefault("name", loss)
        super().__init__(**kwargs)
        self.loss = loss

    def call(self, inputs: list) -> tf.Tensor:
        fn, takes_config = LOSS_FUNCTIONS[self.loss]
        inputs = [tf.cast(x, tf.float32) if x.dtype.is_floating else x for x in inputs]
        return fn(None, *inputs) if takes_config else fn(*inputs)

    def compute_output_spec(self, inputs: list) -> keras.KerasTensor:
        return keras.KerasTensor((), dtype="float32")

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "loss": self.loss}
