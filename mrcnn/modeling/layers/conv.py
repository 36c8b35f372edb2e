"""WholeMapConv2D: the classifier head's "fully connected" convolution, computed as a matmul.

matterport's classifier head starts with a `Conv2D(fc_size, (pool, pool), padding="valid")`
on each pooled ROI: the kernel covers the whole `pool x pool` map, so the convolution is a
dense layer over the flattened map. oneDNN runs that shape as a convolution at about half the
speed of the equivalent matrix product (forward plus backward, 7x7x256 -> 1024 on 256 ROIs,
measured on a 2-core AVX-512 CPU), and it is one of the largest single costs of a training
step and of `detect()` (the classifier sees POST_NMS_ROIS_INFERENCE ROIs there).

This layer keeps Conv2D's weights exactly (`kernel` [pool, pool, in, out] and `bias`, in that
order, under the same layer name), so checkpoints load both ways, and computes
`reshape(x, [n, pool*pool*in]) @ reshape(kernel, [pool*pool*in, out]) + bias`. Inputs whose
spatial size is not the kernel's fall back to the convolution.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="mrcnn")
class WholeMapConv2D(keras.layers.Conv2D):
    """A stride-1 "valid" Conv2D whose kernel covers its whole input map, run as a matmul.

    Args:
        filters: output channels.
        kernel_size: (height, width) of the kernel, equal to the input map's.
        **kwargs: passed on to `keras.layers.Conv2D` (name, activation, use_bias, ...);
            `strides`, `padding`, `dilation_rate` and `groups` keep their defaults.

    Input: [N, height, width, in]; output: [N, 1, 1, filters], as Conv2D's.

    Raises:
        ValueError: `padding` other than "valid", strides, dilation or groups other than 1, or
            a channels_first data format (the flattening assumes channels last).
    """

    def __init__(self, filters: int, kernel_size: Any, **kwargs: Any) -> None:
        super().__init__(filters, kernel_size, **kwargs)
        if (self.padding != "valid" or tuple(self.strides) != (1, 1)
                or tuple(self.dilation_rate) != (1, 1) or self.groups != 1):
            raise ValueError(
                "WholeMapConv2D is a valid, stride-1, undilated, ungrouped convolution; got "
                f"padding={self.padding!r}, strides={self.strides}, "
                f"dilation_rate={self.dilation_rate}, groups={self.groups}")
        if self.data_format != "channels_last":
            raise ValueError(f"WholeMapConv2D needs channels_last, got {self.data_format!r}")

    def call(self, inputs):
        height, width = inputs.shape[1], inputs.shape[2]
        if (height, width) != tuple(self.kernel_size):
            return super().call(inputs)
        kernel = self.kernel
        flat = ops.reshape(inputs, (-1, height * width * int(inputs.shape[3])))
        outputs = ops.matmul(flat, ops.reshape(kernel, (-1, self.filters)))
        if self.use_bias:
            outputs = outputs + self.bias
        outputs = ops.reshape(outputs, (-1, 1, 1, self.filters))
        return self.activation(outputs) if self.activation is not None else outputs
