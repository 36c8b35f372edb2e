"""The one place that maps a Config to network arguments: one function per component, the
graph of each mode, and the Keras model built under the config's dtype policy.

Every graph that needs a component takes it from here (the training and inference graphs of
`build_graph`, the mAP callback's inference graph over a training model's layers), so a
Config field is read in one place only. Layers never see the Config: they get plain
arguments (DESIGN.md, "only the builder maps Config to arguments").

    inputs, outputs = build_graph("inference", config)
    model = build_keras_model("inference", config)   # MIXED_PRECISION applied while building
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import keras
import numpy as np

from mrcnn.modeling.backbone import resnet_graph
from mrcnn.modeling.fpn import build_fpn
from mrcnn.modeling.heads import build_fpn_mask_graph, build_rpn_model, fpn_classifier_graph
from mrcnn.modeling.layers.detection import (
    DetectionLayer,
    DetectionRows,
    ScatterDetectionMasks,
)
from mrcnn.modeling.layers.detection_target import DetectionTargetLayer
from mrcnn.modeling.layers.loss import LossLayer
from mrcnn.modeling.layers.misc import (
    AnchorsLayer,
    DetectionBoxes,
    IdentityLayer,
    ImageMetaField,
    NormBoxes,
    TakePositiveRows,
)
from mrcnn.modeling.layers.proposal import ProposalLayer
from mrcnn.modeling.precision import resolve_policy
from mrcnn.structures.anchors import anchors_for_config

logger = logging.getLogger(__name__)

MODES = ("training", "inference")
# The RPN outputs, concatenated over the pyramid levels, in rpn_model's output order.
RPN_OUTPUT_NAMES = ("rpn_class_logits", "rpn_class", "rpn_bbox")
# The inference graph's outputs (matterport's order).
INFERENCE_OUTPUT_NAMES = ("detections", "mrcnn_class", "mrcnn_bbox", "mrcnn_mask", "rpn_rois",
                          "rpn_class", "rpn_bbox")


def _check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"mode must be 'training' or 'inference', got {mode!r}")
    return mode


def _std_dev(value: Any) -> list[float]:
    return np.asarray(value).tolist()


# ------------------------------------------------------------------------- components
def image_input(mode: str, config: Any) -> keras.KerasTensor:
    """`input_image`: [batch, height, width, channels]; the size is fixed only in training
    with a "square" or "crop" IMAGE_RESIZE_MODE (every batch has IMAGE_SHAPE then)."""
    fixed = config.IMAGE_RESIZE_MODE in ("square", "crop") and _check_mode(mode) == "training"
    shape = (tuple(int(v) for v in config.IMAGE_SHAPE) if fixed
             else (None, None, config.IMAGE_CHANNEL_COUNT))
    return keras.Input(shape=shape, name="input_image")


def image_meta_input(config: Any) -> keras.KerasTensor:
    """`input_image_meta`: [batch, IMAGE_META_SIZE] (see compose_image_meta)."""
    return keras.Input(shape=(config.IMAGE_META_SIZE,), name="input_image_meta")


def anchors_input() -> keras.KerasTensor:
    """`input_anchors`: [batch, N, (y1, x1, y2, x2)] normalized anchors (inference)."""
    return keras.Input(shape=(None, 4), name="input_anchors")


def backbone(input_image: keras.KerasTensor, config: Any) -> list[keras.KerasTensor]:
    """[C2, C3, C4, C5] of BACKBONE: "resnet50", "resnet101", or a callable with
    resnet_graph's signature (`fn(input_image, stage5=True, train_bn=...)`)."""
    if callable(config.BACKBONE):
        _, c2, c3, c4, c5 = config.BACKBONE(input_image, stage5=True, train_bn=config.TRAIN_BN)
    else:
        _, c2, c3, c4, c5 = resnet_graph(input_image, config.BACKBONE, stage5=True,
                                         train_bn=config.TRAIN_BN)
    return [c2, c3, c4, c5]


def fpn(backbone_maps: Sequence[keras.KerasTensor], config: Any) -> list[keras.KerasTensor]:
    """[P2, P3, P4, P5, P6] of TOP_DOWN_PYRAMID_SIZE channels from [C2, C3, C4, C5]."""
    return build_fpn(*backbone_maps, config.TOP_DOWN_PYRAMID_SIZE)


def rpn(config: Any) -> keras.Model:
    """The shared RPN model (`rpn_model`), to apply to every pyramid level."""
    return build_rpn_model(config.RPN_ANCHOR_STRIDE, len(config.RPN_ANCHOR_RATIOS),
                           config.TOP_DOWN_PYRAMID_SIZE)


def rpn_outputs(rpn_model: keras.Model, feature_maps: Sequence[keras.KerasTensor]
                ) -> list[keras.KerasTensor]:
    """Apply `rpn_model` to every level and concatenate over the anchors.

    Returns:
        rpn_class_logits [batch, anchors, 2], rpn_class [batch, anchors, 2] and rpn_bbox
        [batch, anchors, (dy, dx, log(dh), log(dw))], anchors of all levels in order.
    """
    per_level = [rpn_model(p) for p in feature_maps]
    return [keras.layers.Concatenate(axis=1, name=name)([level[i] for level in per_level])
            for i, name in enumerate(RPN_OUTPUT_NAMES)]


def training_anchors(input_image: keras.KerasTensor, config: Any) -> keras.KerasTensor:
    """The anchors of IMAGE_SHAPE, normalized, broadcast to the batch: [batch, N, 4]."""
    anchors = anchors_for_config(config, tuple(config.IMAGE_SHAPE), normalized=True)
    return AnchorsLayer(anchors, name="anchors")(input_image)


def proposal(config: Any, mode: str) -> ProposalLayer:
    """The `ROI` layer: POST_NMS_ROIS_TRAINING or POST_NMS_ROIS_INFERENCE proposals."""
    count = (config.POST_NMS_ROIS_TRAINING if _check_mode(mode) == "training"
             else config.POST_NMS_ROIS_INFERENCE)
    return ProposalLayer(proposal_count=count, nms_threshold=config.RPN_NMS_THRESHOLD,
                         pre_nms_limit=config.PRE_NMS_LIMIT,
                         rpn_bbox_std_dev=_std_dev(config.RPN_BBOX_STD_DEV), name="ROI")


def detection_targets(config: Any) -> DetectionTargetLayer:
    """The `proposal_targets` layer: samples ROIs and builds their class, box, mask targets."""
    return DetectionTargetLayer(
        train_rois_per_image=config.TRAIN_ROIS_PER_IMAGE,
        roi_positive_ratio=config.ROI_POSITIVE_RATIO, mask_shape=list(config.MASK_SHAPE),
        use_mini_mask=config.USE_MINI_MASK, bbox_std_dev=_std_dev(config.BBOX_STD_DEV),
        seed=config.RANDOM_SEED, name="proposal_targets")


def classifier(rois: keras.KerasTensor, feature_maps: Sequence[keras.KerasTensor],
               image_meta: keras.KerasTensor, config: Any) -> list[keras.KerasTensor]:
    """The box head on [P2..P5]: mrcnn_class_logits, mrcnn_class [batch, rois, NUM_CLASSES]
    and mrcnn_bbox [batch, rois, NUM_CLASSES, (dy, dx, log(dh), log(dw))]."""
    return list(fpn_classifier_graph(rois, feature_maps, image_meta, config.POOL_SIZE,
                                     config.NUM_CLASSES, train_bn=config.TRAIN_BN,
                                     fc_layers_size=config.FPN_CLASSIF_FC_LAYERS_SIZE))


def mask_head(rois: keras.KerasTensor, feature_maps: Sequence[keras.KerasTensor],
              image_meta: keras.KerasTensor, config: Any) -> keras.KerasTensor:
    """The mask head on [P2..P5]: [batch, rois, MASK_SHAPE..., NUM_CLASSES] probabilities."""
    return build_fpn_mask_graph(rois, feature_maps, image_meta, config.MASK_POOL_SIZE,
                                config.NUM_CLASSES, train_bn=config.TRAIN_BN)


def detection(config: Any) -> DetectionLayer:
    """The `mrcnn_detection` layer: [batch, DETECTION_MAX_INSTANCES, (y1, x1, y2, x2,
    class_id, score)] in normalized coordinates, zero padded."""
    return DetectionLayer(detection_max_instances=config.DETECTION_MAX_INSTANCES,
                          detection_min_confidence=config.DETECTION_MIN_CONFIDENCE,
                          detection_nms_threshold=config.DETECTION_NMS_THRESHOLD,
                          bbox_std_dev=_std_dev(config.BBOX_STD_DEV), name="mrcnn_detection")


def inference_outputs(config: Any, rpn_outs: Sequence[keras.KerasTensor],
                      anchors: keras.KerasTensor, image_meta: keras.KerasTensor,
                      classify: Callable[[keras.KerasTensor], Sequence[keras.KerasTensor]],
                      segment: Callable[[keras.KerasTensor], keras.KerasTensor]
                      ) -> list[keras.KerasTensor]:
    """The inference tail: proposals, box head, detections, then masks of the detections.

    With MASK_ON_DETECTIONS the mask head runs on the real detections only (`DetectionRows`,
    then `ScatterDetectionMasks` back to DETECTION_MAX_INSTANCES rows, padding rows zero);
    otherwise on every row, as matterport's graph does. The real rows' masks are the same.

    Args:
        config: the Config (proposal and detection settings).
        rpn_outs: [rpn_class_logits, rpn_class, rpn_bbox] from `rpn_outputs`.
        anchors: [batch, N, (y1, x1, y2, x2)] normalized anchors.
        image_meta: [batch, IMAGE_META_SIZE].
        classify: rois -> [mrcnn_class_logits, mrcnn_class, mrcnn_bbox] (the box head).
        segment: boxes -> mrcnn_mask (the mask head).

    Returns:
        matterport's inference outputs, in INFERENCE_OUTPUT_NAMES order.
    """
    _, rpn_class, rpn_bbox = rpn_outs
    rpn_rois = proposal(config, "inference")([rpn_class, rpn_bbox, anchors])
    _, mrcnn_class, mrcnn_bbox = classify(rpn_rois)
    detections = detection(config)([rpn_rois, mrcnn_class, mrcnn_bbox, image_meta])
    if config.MASK_ON_DETECTIONS:
        masks = segment(DetectionRows(name="detection_boxes")(detections))
        mrcnn_mask = ScatterDetectionMasks(name="detection_masks")([masks, detections])
    else:
        mrcnn_mask = segment(DetectionBoxes(name="detection_boxes")(detections))
    return [detections, mrcnn_class, mrcnn_bbox, mrcnn_mask, rpn_rois, rpn_class, rpn_bbox]


def _training_tail(config: Any, input_image: keras.KerasTensor, image_meta: keras.KerasTensor,
                   feature_maps: Sequence[keras.KerasTensor],
                   rpn_outs: Sequence[keras.KerasTensor], rpn_rois: keras.KerasTensor
                   ) -> tuple[list, list]:
    """The training inputs after image and meta, and the outputs after the RPN's."""
    c = config
    input_rpn_match = keras.Input(shape=(None, 1), name="input_rpn_match", dtype="int32")
    input_rpn_bbox = keras.Input(shape=(None, 4), name="input_rpn_bbox", dtype="float32")
    input_gt_class_ids = keras.Input(shape=(None,), name="input_gt_class_ids", dtype="int32")
    input_gt_boxes = keras.Input(shape=(None, 4), name="input_gt_boxes", dtype="float32")
    mask_hw = tuple(c.MINI_MASK_SHAPE) if c.USE_MINI_MASK else tuple(c.IMAGE_SHAPE[:2])
    input_gt_masks = keras.Input(shape=mask_hw + (None,), name="input_gt_masks", dtype="bool")
    gt_boxes = NormBoxes(name="norm_gt_boxes")([input_gt_boxes, input_image])
    active_class_ids = ImageMetaField("active_class_ids", name="active_class_ids")(image_meta)
    inputs = [input_rpn_match, input_rpn_bbox, input_gt_class_ids, input_gt_boxes,
              input_gt_masks]
    if c.USE_RPN_ROIS:
        target_rois = rpn_rois
    else:
        input_rois = keras.Input(shape=(c.POST_NMS_ROIS_TRAINING, 4), name="input_roi",
                                 dtype="int32")
        inputs.append(input_rois)
        target_rois = NormBoxes(name="input_roi_norm")([input_rois, input_image])
    rois, target_class_ids, target_bbox, target_mask = detection_targets(c)(
        [target_rois, input_gt_class_ids, gt_boxes, input_gt_masks])
    mrcnn_class_logits, mrcnn_class, mrcnn_bbox = classifier(rois, feature_maps, image_meta, c)
    mask_rois, mask_targets, mask_class_ids = rois, target_mask, target_class_ids
    if c.MASK_ON_POSITIVE_ROIS:
        # Positive ROIs come first and the mask loss ignores the others: keep the rows up to
        # the batch's largest positive count (no work on rows that are padding everywhere).
        positives = int(c.TRAIN_ROIS_PER_IMAGE * c.ROI_POSITIVE_RATIO)
        mask_rois = TakePositiveRows(positives, name="mask_rois")([rois, target_class_ids])
        mask_targets = TakePositiveRows(positives, name="mask_targets")(
            [target_mask, target_class_ids])
        mask_class_ids = TakePositiveRows(positives, name="mask_class_ids")(
            [target_class_ids, target_class_ids])
    mrcnn_mask = mask_head(mask_rois, feature_maps, image_meta, c)
    output_rois = IdentityLayer(name="output_rois")(rois)
    rpn_class_logits, rpn_class, rpn_bbox = rpn_outs
    loss_outputs = [
        LossLayer("rpn_class_loss")([input_rpn_match, rpn_class_logits]),
        LossLayer("rpn_bbox_loss")([input_rpn_bbox, input_rpn_match, rpn_bbox]),
        LossLayer("mrcnn_class_loss")([target_class_ids, mrcnn_class_logits, active_class_ids]),
        LossLayer("mrcnn_bbox_loss")([target_bbox, target_class_ids, mrcnn_bbox]),
        LossLayer("mrcnn_mask_loss")([mask_targets, mask_class_ids, mrcnn_mask]),
    ]
    outputs = [rpn_class_logits, rpn_class, rpn_bbox, mrcnn_class_logits, mrcnn_class,
               mrcnn_bbox, mrcnn_mask, rpn_rois, output_rois] + loss_outputs
    return inputs, outputs


# ------------------------------------------------------------------------- graphs and models
def build_graph(mode: str, config: Any) -> tuple[list, list]:
    """Build Mask R-CNN's inputs and outputs for `mode` ("training" or "inference").

    Training inputs: input_image, input_image_meta, input_rpn_match, input_rpn_bbox,
    input_gt_class_ids, input_gt_boxes, input_gt_masks (and input_roi without
    USE_RPN_ROIS); outputs: rpn_class_logits, rpn_class, rpn_bbox, mrcnn_class_logits,
    mrcnn_class, mrcnn_bbox, mrcnn_mask, rpn_rois, output_rois, then the five loss layers
    (`mrcnn.engine.trainer.TRAIN_OUTPUT_KEYS`). Inference inputs: input_image,
    input_image_meta, input_anchors; outputs: INFERENCE_OUTPUT_NAMES.

    Raises:
        ValueError: `mode` is neither "training" nor "inference".
    """
    _check_mode(mode)
    input_image = image_input(mode, config)
    input_image_meta = image_meta_input(config)
    p2, p3, p4, p5, p6 = fpn(backbone(input_image, config), config)
    rpn_feature_maps = [p2, p3, p4, p5, p6]
    mrcnn_feature_maps = [p2, p3, p4, p5]

    if mode == "training":
        anchors = training_anchors(input_image, config)
    else:
        input_anchors = anchors_input()
        anchors = input_anchors
    rpn_outs = rpn_outputs(rpn(config), rpn_feature_maps)

    if mode == "training":
        _, rpn_class, rpn_bbox = rpn_outs
        rpn_rois = proposal(config, mode)([rpn_class, rpn_bbox, anchors])
        inputs, outputs = _training_tail(config, input_image, input_image_meta,
                                         mrcnn_feature_maps, rpn_outs, rpn_rois)
        return [input_image, input_image_meta] + inputs, outputs

    outputs = inference_outputs(
        config, rpn_outs, anchors, input_image_meta,
        classify=lambda rois: classifier(rois, mrcnn_feature_maps, input_image_meta, config),
        segment=lambda boxes: mask_head(boxes, mrcnn_feature_maps, input_image_meta, config))
    return [input_image, input_image_meta, input_anchors], outputs


@contextlib.contextmanager
def dtype_policy(policy: str | None) -> Iterator[None]:
    """Make `policy` (e.g. "mixed_bfloat16") Keras' global dtype policy inside the block,
    then restore the previous one; None leaves the policy as it is."""
    previous = keras.config.dtype_policy()
    if policy:
        keras.config.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def build_keras_model(mode: str, config: Any, model_class: type = keras.Model,
                      **model_kwargs: Any) -> keras.Model:
    """The Keras model of `mode`, named "mask_rcnn".

    The layers are made under MIXED_PRECISION's policy ("auto" resolved for this machine by
    `mrcnn.modeling.precision.resolve_policy`); the global policy is restored before the
    model object itself is created (its metrics and optimizer stay float32).

    Args:
        mode: "training" or "inference".
        config: the Config.
        model_class: the functional model class, called as
            `model_class(inputs, outputs, name="mask_rcnn", **model_kwargs)` (the training
            model, `mrcnn.engine.trainer.TrainingModel`, computes the losses).
    """
    with dtype_policy(resolve_policy(config.MIXED_PRECISION)):
        inputs, outputs = build_graph(mode, config)
    return model_class(inputs, outputs, name="mask_rcnn", **model_kwargs)
