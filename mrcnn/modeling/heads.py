"""The Mask R-CNN heads: the shared RPN model, the box classifier head and the mask head.

Layer names are matterport's (`rpn_model` with `rpn_conv_shared`, `rpn_class_raw`,
`rpn_bbox_pred`; `mrcnn_class_*`, `mrcnn_bbox*`, `mrcnn_mask*`), since weights load by name.
Per-ROI layers are wrapped in our own `TimeDistributed` (modeling/layers), which folds the
batch and ROI axes, so the heads accept any ROI count, fixed or dynamic, and a BatchNorm in a
head normalizes over all ROIs of the batch. Inner layers are named `f"{wrapper_name}_inner"`.

Nothing here casts to float32: the heads follow the Keras dtype policy (mixed precision).
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import layers as KL

from mrcnn.modeling.layers.batch_norm import BatchNorm
from mrcnn.modeling.layers.conv import WholeMapConv2D
from mrcnn.modeling.layers.roi_align import PyramidROIAlign
from mrcnn.modeling.layers.time_distributed import TimeDistributed
from mrcnn.structures.checks import check_positive_int

# Channels of the RPN's shared 3x3 convolution (matterport: 512).
RPN_SHARED_CHANNELS = 512
# Channels of the mask head's convolutions (matterport: 256).
MASK_HEAD_CHANNELS = 256


def _check_feature_maps(feature_maps: Sequence) -> list:
    if len(feature_maps) != 4:
        raise ValueError(
            f"feature_maps must be the four pyramid levels [P2, P3, P4, P5], got "
            f"{len(feature_maps)} tensors"
        )
    return list(feature_maps)


def _distributed(layer: keras.layers.Layer, name: str) -> TimeDistributed:
    """Wrap `layer` (already named `f"{name}_inner"`) in a folding TimeDistributed `name`."""
    return TimeDistributed(layer, name=name)


###########################################################################################
# Region Proposal Network
###########################################################################################

def rpn_graph(
    feature_map: keras.KerasTensor, anchors_per_location: int, anchor_stride: int
) -> list[keras.KerasTensor]:
    """The RPN's layers on one feature map (build once; share through `build_rpn_model`).

    Args:
        feature_map: `[batch, height, width, depth]`, a pyramid level.
        anchors_per_location: Anchors per feature-map cell (the number of anchor ratios).
        anchor_stride: Anchor stride in feature-map cells (1: anchors at every cell).

    Returns:
        `[rpn_class_logits, rpn_probs, rpn_bbox]`:
            rpn_class_logits: `[batch, anchors, 2]`, background/foreground logits.
            rpn_probs: `[batch, anchors, 2]`, their softmax.
            rpn_bbox: `[batch, anchors, (dy, dx, log(dh), log(dw))]`, box deltas.
        Anchors are ordered by row, column, then anchor ratio, as the anchor generator is.

    Raises:
        ValueError: If `anchors_per_location` or `anchor_stride` is not a positive int.
    """
    check_positive_int("anchors_per_location", anchors_per_location)
    check_positive_int("anchor_stride", anchor_stride)

    shared = KL.Conv2D(RPN_SHARED_CHANNELS, (3, 3), padding="same", activation="relu",
                       strides=anchor_stride, name="rpn_conv_shared")(feature_map)

    x = KL.Conv2D(2 * anchors_per_location, (1, 1), padding="valid", activation="linear",
                  name="rpn_class_raw")(shared)
    # [batch, height, width, anchors_per_location * 2] -> [batch, anchors, 2]
    rpn_class_logits = KL.Reshape((-1, 2), name="rpn_class_logits_reshape")(x)
    rpn_probs = KL.Activation("softmax", name="rpn_class_xxx")(rpn_class_logits)

    x = KL.Conv2D(4 * anchors_per_location, (1, 1), padding="valid", activation="linear",
                  name="rpn_bbox_pred")(shared)
    # [batch, height, width, anchors_per_location * 4] -> [batch, anchors, 4]
    rpn_bbox = KL.Reshape((-1, 4), name="rpn_bbox_reshape")(x)
    return [rpn_class_logits, rpn_probs, rpn_bbox]


def build_rpn_model(anchor_stride: int, anchors_per_location: int, depth: int) -> keras.Model:
    """The RPN as a `keras.Model` named "rpn_model", applied to every pyramid level.

    Args:
        anchor_stride: Anchor stride in feature-map cells.
        anchors_per_location: Anchors per feature-map cell.
        depth: Channels of the feature maps (`TOP_DOWN_PYRAMID_SIZE`).

    Returns:
        A model from `input_rpn_feature_map` `[batch, height, width, depth]` to
        `[rpn_class_logits, rpn_probs, rpn_bbox]` as in `rpn_graph`.

    Raises:
        ValueError: If an argument is not a positive int.
    """
    check_positive_int("depth", depth)
    feature_map = keras.Input(shape=(None, None, depth), name="input_rpn_feature_map")
    outputs = rpn_graph(feature_map, anchors_per_location, anchor_stride)
    return keras.Model(feature_map, outputs, name="rpn_model")


###########################################################################################
# Feature Pyramid Network heads
###########################################################################################

def fpn_classifier_graph(
    rois: keras.KerasTensor,
    feature_maps: Sequence[keras.KerasTensor],
    image_meta: keras.KerasTensor,
    pool_size: int,
    num_classes: int,
    train_bn: bool | None = True,
    fc_layers_size: int = 1024,
) -> tuple[keras.KerasTensor, keras.KerasTensor, keras.KerasTensor]:
    """The box classifier and regressor head on the feature pyramid.

    Args:
        rois: `[batch, num_rois, (y1, x1, y2, x2)]` proposal boxes in normalized coordinates;
            `num_rois` may be dynamic.
        feature_maps: `[P2, P3, P4, P5]`, each `[batch, height, width, channels]`.
        image_meta: `[batch, META]` image details (see `compose_image_meta`).
        pool_size: Side of the square ROIAlign output (matterport's `POOL_SIZE`, 7).
        num_classes: Number of classes, background included.
        train_bn: `BatchNorm.train_bn` of the head's BatchNorm layers.
        fc_layers_size: Width of the two fully connected layers (implemented as a
            `pool_size` x `pool_size` valid convolution and a 1x1 convolution).

    Returns:
        `(mrcnn_class_logits, mrcnn_probs, mrcnn_bbox)`:
            mrcnn_class_logits: `[batch, num_rois, num_classes]` classifier logits.
            mrcnn_probs: `[batch, num_rois, num_classes]` class probabilities.
            mrcnn_bbox: `[batch, num_rois, num_classes, (dy, dx, log(dh), log(dw))]` class
                specific box refinements.

    Raises:
        ValueError: If a size is not a positive int or `feature_maps` is not four tensors.
    """
    check_positive_int("pool_size", pool_size)
    check_positive_int("num_classes", num_classes)
    check_positive_int("fc_layers_size", fc_layers_size)
    feature_maps = _check_feature_maps(feature_maps)

    # [batch, num_rois, pool_size, pool_size, channels]
    x = PyramidROIAlign((pool_size, pool_size), name="roi_align_classifier")(
        [rois, image_meta] + feature_maps)

    # Two "fully connected" layers as convolutions: the first covers the whole pooled ROI.
    x = _distributed(WholeMapConv2D(fc_layers_size, (pool_size, pool_size), padding="valid",
                                    name="mrcnn_class_conv1_inner"), "mrcnn_class_conv1")(x)
    x = _distributed(BatchNorm(train_bn=train_bn, name="mrcnn_class_bn1_inner"),
                     "mrcnn_class_bn1")(x)
    x = KL.Activation("relu")(x)
    x = _distributed(KL.Conv2D(fc_layers_size, (1, 1), name="mrcnn_class_conv2_inner"),
                     "mrcnn_class_conv2")(x)
    x = _distributed(BatchNorm(train_bn=train_bn, name="mrcnn_class_bn2_inner"),
                     "mrcnn_class_bn2")(x)
    x = KL.Activation("relu")(x)

    # [batch, num_rois, 1, 1, fc_layers_size] -> [batch, num_rois, fc_layers_size]
    shared = KL.Reshape((-1, fc_layers_size), name="pool_squeeze")(x)

    mrcnn_class_logits = _distributed(KL.Dense(num_classes, name="mrcnn_class_logits_inner"),
                                      "mrcnn_class_logits")(shared)
    mrcnn_probs = _distributed(KL.Activation("softmax", name="mrcnn_class_inner"),
                               "mrcnn_class")(mrcnn_class_logits)

    x = _distributed(KL.Dense(num_classes * 4, activation="linear",
                              name="mrcnn_bbox_fc_inner"), "mrcnn_bbox_fc")(shared)
    # [batch, num_rois, num_classes * 4] -> [batch, num_rois, num_classes, 4]
    mrcnn_bbox = KL.Reshape((-1, num_classes, 4), name="mrcnn_bbox")(x)
    return mrcnn_class_logits, mrcnn_probs, mrcnn_bbox


def build_fpn_mask_graph(
    rois: keras.KerasTensor,
    feature_maps: Sequence[keras.KerasTensor],
    image_meta: keras.KerasTensor,
    pool_size: int,
    num_classes: int,
    train_bn: bool | None = True,
) -> keras.KerasTensor:
    """The mask head on the feature pyramid.

    Args:
        rois: `[batch, num_rois, (y1, x1, y2, x2)]` boxes in normalized coordinates; any
            `num_rois`, dynamic included (detections at inference, positive ROIs in training).
        feature_maps: `[P2, P3, P4, P5]`, each `[batch, height, width, channels]`.
        image_meta: `[batch, META]` image details (see `compose_image_meta`).
        pool_size: Side of the square ROIAlign output (matterport's `MASK_POOL_SIZE`, 14).
        num_classes: Number of classes, background included.
        train_bn: `BatchNorm.train_bn` of the head's BatchNorm layers.

    Returns:
        `[batch, num_rois, 2 * pool_size, 2 * pool_size, num_classes]` per-class mask
        probabilities (sigmoid).

    Raises:
        ValueError: If a size is not a positive int or `feature_maps` is not four tensors.
    """
    check_positive_int("pool_size", pool_size)
    check_positive_int("num_classes", num_classes)
    feature_maps = _check_feature_maps(feature_maps)

    # [batch, num_rois, pool_size, pool_size, channels]
    x = PyramidROIAlign((pool_size, pool_size), name="roi_align_mask")(
        [rois, image_meta] + feature_maps)

    for i in range(1, 5):
        x = _distributed(KL.Conv2D(MASK_HEAD_CHANNELS, (3, 3), padding="same",
                                   name=f"mrcnn_mask_conv{i}_inner"), f"mrcnn_mask_conv{i}")(x)
        x = _distributed(BatchNorm(train_bn=train_bn, name=f"mrcnn_mask_bn{i}_inner"),
                         f"mrcnn_mask_bn{i}")(x)
        x = KL.Activation("relu")(x)

    x = _distributed(KL.Conv2DTranspose(MASK_HEAD_CHANNELS, (2, 2), strides=2, activation="relu",
                                        name="mrcnn_mask_deconv_inner"), "mrcnn_mask_deconv")(x)
    return _distributed(KL.Conv2D(num_classes, (1, 1), strides=1, activation="sigmoid",
                                  name="mrcnn_mask_inner"), "mrcnn_mask")(x)
