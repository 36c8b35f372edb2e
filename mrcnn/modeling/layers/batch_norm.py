"""BatchNorm: a BatchNormalization that honours matterport's TRAIN_BN switch.

Mask R-CNN trains with small batches (one or two images per GPU), where batch statistics are
too noisy to help. matterport's `TRAIN_BN = False` therefore freezes every BatchNorm layer of
the network: it always normalizes with its moving statistics, as a fixed affine map, even
while the rest of the network trains. This layer carries that switch as a constructor
argument, so it survives serialization and does not depend on how the layer is called.
"""

from __future__ import annotations

from typing import Any

import keras


@keras.saving.register_keras_serializable(package="mrcnn")
class BatchNorm(keras.layers.BatchNormalization):
    """Batch normalization with a `train_bn` switch.

    Args:
        train_bn: True: behave like `keras.layers.BatchNormalization` (batch statistics in
            training mode, moving statistics in inference mode). False or None
            (matterport's `TRAIN_BN = False` / `None`): always run in inference mode, using
            and never updating the moving mean and variance, whatever `training` says.
            gamma and beta stay trainable unless the layer itself is made non-trainable.
        **kwargs: Passed on to `keras.layers.BatchNormalization` (`name`, `axis`,
            `momentum`, `epsilon`, ...).

    Raises:
        TypeError: If `train_bn` is not a bool or None.
    """

    def __init__(self, train_bn: bool | None = True, **kwargs: Any) -> None:
        if train_bn is not None and not isinstance(train_bn, bool):
            raise TypeError(f"train_bn must be a bool or None, got {train_bn!r}")
        super().__init__(**kwargs)
        self.train_bn = train_bn

    def call(self, inputs, training=None, mask=None):
        """Normalize `inputs`; inference mode regardless of `training` when not train_bn."""
        if not self.train_bn:
            training = False
        return super().call(inputs, training=training, mask=mask)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["train_bn"] = self.train_bn
        return config
