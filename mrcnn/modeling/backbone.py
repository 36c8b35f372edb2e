"""ResNet-50/101 backbone of Mask R-CNN with matterport's layer names.

The layer names (`conv1`, `bn_conv1`, `res{stage}{block}_branch{2a,2b,2c,1}`,
`bn{stage}{block}_branch...`, `res{stage}{block}_out`) are part of the API: weights are loaded
by name from matterport's checkpoints and from Keras' ImageNet ResNet files, and the training
presets (`3+`, `4+`, `5+`) select layers by these names.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import layers as KL

from mrcnn.modeling.layers.batch_norm import BatchNorm
from mrcnn.structures.checks import check_positive_ints

# Identity blocks in stage 4 after its conv block: ResNet-50 has 6 blocks in stage 4
# (a..f), ResNet-101 has 23 (a..w).
STAGE4_IDENTITY_BLOCKS = {"resnet50": 5, "resnet101": 22}


def _names(stage: int, block: str) -> tuple[str, str]:
    if not isinstance(block, str) or not block:
        raise ValueError(f"block must be a non-empty string such as 'a', got {block!r}")
    return f"res{stage}{block}_branch", f"bn{stage}{block}_branch"


def identity_block(
    input_tensor: keras.KerasTensor,
    kernel_size: int,
    filters: Sequence[int],
    stage: int,
    block: str,
    use_bias: bool = True,
    train_bn: bool | None = True,
) -> keras.KerasTensor:
    """A bottleneck residual block whose shortcut is the identity.

    Args:
        input_tensor: `[batch, height, width, filters[2]]`.
        kernel_size: Kernel size of the middle convolution.
        filters: The three convolutions' filter counts `(f1, f2, f3)`; `f3` must equal the
            input's channel count.
        stage: Stage number (2..5), used in the layer names.
        block: Block letter ('a', 'b', ...), used in the layer names.
        use_bias: Whether the convolutions have a bias (matterport: True).
        train_bn: `BatchNorm.train_bn` of the block's BatchNorm layers.

    Returns:
        `[batch, height, width, f3]`, the output of the `res{stage}{block}_out` activation.

    Raises:
        ValueError: On malformed `filters` or `block`.
    """
    f1, f2, f3 = check_positive_ints("filters", filters, 3)
    conv_name, bn_name = _names(stage, block)

    x = KL.Conv2D(f1, (1, 1), name=conv_name + "2a", use_bias=use_bias)(input_tensor)
    x = BatchNorm(train_bn=train_bn, name=bn_name + "2a")(x)
    x = KL.Activation("relu")(x)
    x = KL.Conv2D(f2, (kernel_size, kernel_size), padding="same", name=conv_name + "2b",
                  use_bias=use_bias)(x)
    x = BatchNorm(train_bn=train_bn, name=bn_name + "2b")(x)
    x = KL.Activation("relu")(x)
    x = KL.Conv2D(f3, (1, 1), name=conv_name + "2c", use_bias=use_bias)(x)
    x = BatchNorm(train_bn=train_bn, name=bn_name + "2c")(x)

    x = KL.Add()([x, input_tensor])
    return KL.Activation("relu", name=f"res{stage}{block}_out")(x)


def conv_block(
    input_tensor: keras.KerasTensor,
    kernel_size: int,
    filters: Sequence[int],
    stage: int,
    block: str,
    strides: tuple[int, int] = (2, 2),
    use_bias: bool = True,
    train_bn: bool | None = True,
) -> keras.KerasTensor:
    """A bottleneck residual block with a 1x1 convolution (and BatchNorm) on the shortcut.

    Args:
        input_tensor: `[batch, height, width, channels]`.
        kernel_size: Kernel size of the middle convolution.
        filters: The three convolutions' filter counts `(f1, f2, f3)`.
        stage: Stage number (2..5), used in the layer names.
        block: Block letter (matterport always uses 'a'), used in the layer names.
        strides: Strides of the first convolution and of the shortcut (stage 2 uses (1, 1)).
        use_bias: Whether the convolutions have a bias (matterport: True).
        train_bn: `BatchNorm.train_bn` of the block's BatchNorm layers.

    Returns:
        `[batch, height / strides[0], width / strides[1], f3]`, the output of the
        `res{stage}{block}_out` activation.

    Raises:
        ValueError: On malformed `filters` or `block`.
    """
    f1, f2, f3 = check_positive_ints("filters", filters, 3)
    conv_name, bn_name = _names(stage, block)

    x = KL.Conv2D(f1, (1, 1), strides=strides, name=conv_name + "2a",
                  use_bias=use_bias)(input_tensor)
    x = BatchNorm(train_bn=train_bn, name=bn_name + "2a")(x)
    x = KL.Activation("relu")(x)
    x = KL.Conv2D(f2, (kernel_size, kernel_size), padding="same", name=conv_name + "2b",
                  use_bias=use_bias)(x)
    x = BatchNorm(train_bn=train_bn, name=bn_name + "2b")(x)
    x = KL.Activation("relu")(x)
    x = KL.Conv2D(f3, (1, 1), name=conv_name + "2c", use_bias=use_bias)(x)
    x = BatchNorm(train_bn=train_bn, name=bn_name + "2c")(x)

    shortcut = KL.Conv2D(f3, (1, 1), strides=strides, name=conv_name + "1",
                         use_bias=use_bias)(input_tensor)
    shortcut = BatchNorm(train_bn=train_bn, name=bn_name + "1")(shortcut)

    x = KL.Add()([x, shortcut])
    return KL.Activation("relu", name=f"res{stage}{block}_out")(x)


def resnet_graph(
    input_image: keras.KerasTensor,
    architecture: str,
    stage5: bool = False,
    train_bn: bool | None = True,
) -> list[keras.KerasTensor | None]:
    """Build the ResNet-50 or ResNet-101 feature extractor of Mask R-CNN.

    Args:
        input_image: `[batch, height, width, 3]`, the molded image (mean pixel subtracted).
            Height and width should be multiples of 64 (so that every stage halves them
            exactly).
        architecture: "resnet50" or "resnet101".
        stage5: Whether to build stage 5 (Mask R-CNN always does; matterport's default is
            False).
        train_bn: `BatchNorm.train_bn` of every BatchNorm layer (matterport's `TRAIN_BN`).

    Returns:
        `[C1, C2, C3, C4, C5]`: the outputs of the stem and of stages 2-5, with strides 4, 4, 8,
        16 and 32 and 64, 256, 512, 1024 and 2048 channels. C5 is None when `stage5` is False.

    Raises:
        ValueError: If `architecture` is not "resnet50" or "resnet101".
    """
    if architecture not in STAGE4_IDENTITY_BLOCKS:
        raise ValueError(
            f"architecture must be one of {sorted(STAGE4_IDENTITY_BLOCKS)}, got {architecture!r}"
        )

    def block_args(stage_filters):
        return {"kernel_size": 3, "filters": stage_filters, "train_bn": train_bn}

    # Stem: 7x7/2 convolution on the image padded by 3, then a 3x3/2 max pool.
    x = KL.ZeroPadding2D((3, 3))(input_image)
    x = KL.Conv2D(64, (7, 7), strides=(2, 2), name="conv1", use_bias=True)(x)
    x = BatchNorm(train_bn=train_bn, name="bn_conv1")(x)
    x = KL.Activation("relu")(x)
    c1 = x = KL.MaxPooling2D((3, 3), strides=(2, 2), padding="same")(x)

    # Stage 2 keeps the resolution of the stem.
    args = block_args([64, 64, 256])
    x = conv_block(x, stage=2, block="a", strides=(1, 1), **args)
    x = identity_block(x, stage=2, block="b", **args)
    c2 = x = identity_block(x, stage=2, block="c", **args)

    args = block_args([128, 128, 512])
    x = conv_block(x, stage=3, block="a", **args)
    for block in "bcd":
        x = identity_block(x, stage=3, block=block, **args)
    c3 = x

    args = block_args([256, 256, 1024])
    x = conv_block(x, stage=4, block="a", **args)
    for i in range(STAGE4_IDENTITY_BLOCKS[architecture]):
        x = identity_block(x, stage=4, block=chr(ord("b") + i), **args)
    c4 = x

    c5 = None
    if stage5:
        args = block_args([512, 512, 2048])
        x = conv_block(x, stage=5, block="a", **args)
        x = identity_block(x, stage=5, block="b", **args)
        c5 = identity_block(x, stage=5, block="c", **args)
    return [c1, c2, c3, c4, c5]
