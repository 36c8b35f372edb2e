"""DetectionTargetLayer: samples training ROIs and builds the head targets (training only)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import tensorflow as tf

from mrcnn.modeling import graph_ops
from mrcnn.modeling.layers.misc import GraphLayer
from mrcnn.structures.checks import (
    check_fraction,
    check_height_width,
    check_positive_floats,
    check_positive_int,
)


@keras.saving.register_keras_serializable(package="mrcnn")
class DetectionTargetLayer(GraphLayer):
    """Subsamples proposals and generates class, box and mask targets for each.

    matterport's "proposal_targets". Per image (see `graph_ops.detection_targets_graph`):
    ROIs with IoU >= 0.5 against a ground-truth box are positive, the rest negative unless
    they touch a crowd box (negative class id); positives are capped at
    `int(train_rois_per_image * roi_positive_ratio)` and negatives keep the ratio.

    Args:
        train_rois_per_image: ROIs returned per image.
        roi_positive_ratio: fraction of positive ROIs, in (0, 1].
        mask_shape: (height, width) of the mask targets.
        use_mini_mask: whether `gt_masks` are mini masks (cropped to their boxes).
        bbox_std_dev: [4] the box targets are divided by it.
        seed: None: training draws with TF's stateful `tf.random.shuffle` (matterport's).
            An int: training draws stateless shuffles from a `keras.random.SeedGenerator`
            seeded by it, whose state (`sampling_seed.state`, a variable outside `weights`)
            advances by one per batch and is set per (seed, epoch) by
            `mrcnn.engine.train_loop`, so that a resumed run samples the ROIs the
            uninterrupted one did. Calls with `training` false (validation, eager loss
            evaluation) keep `tf.random.shuffle`.
        **kwargs: passed to `keras.layers.Layer` (e.g. `name="proposal_targets"`).

    Inputs:
        proposals: [batch, N, (y1, x1, y2, x2)] normalized, maybe zero padded.
        gt_class_ids: [batch, MAX_GT_INSTANCES] integer class ids (negative: crowd).
        gt_boxes: [batch, MAX_GT_INSTANCES, (y1, x1, y2, x2)] normalized.
        gt_masks: [batch, height, width, MAX_GT_INSTANCES] bool or numeric.

    Returns:
        rois: [batch, train_rois_per_image, (y1, x1, y2, x2)] normalized, float32.
        target_class_ids: [batch, train_rois_per_image] int32.
        target_bbox: [batch, train_rois_per_image, (dy, dx, log(dh), log(dw))] float32.
        target_mask: [batch, train_rois_per_image, height, width] float32 of 0/1.
        Rows: positives, then negatives, then zero padding. The outputs carry no
        gradient (the inputs pass through `tf.stop_gradient`).

    Raises:
        ValueError: for a bad count, ratio, mask shape or std dev.
    """

    def __init__(self, train_rois_per_image: int, roi_positive_ratio: float,
                 mask_shape: Sequence[int], use_mini_mask: bool,
                 bbox_std_dev: Sequence[float] = (0.1, 0.1, 0.2, 0.2), seed: int | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.train_rois_per_image = check_positive_int(
            "train_rois_per_image", train_rois_per_image)
        self.roi_positive_ratio = check_fraction("roi_positive_ratio", roi_positive_ratio)
        self.mask_shape = check_height_width("mask_shape", mask_shape)
        self.use_mini_mask = bool(use_mini_mask)
        self.bbox_std_dev = check_positive_floats("bbox_std_dev", bbox_std_dev, 4)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise TypeError(f"seed must be an int or None, got {seed!r}")
        self.seed = seed
        self.sampling_seed = (None if seed is None else
                              keras.random.SeedGenerator(seed, name="sampling_seed"))

    def call(self, inputs: list[tf.Tensor], training: bool | None = None) -> list[tf.Tensor]:
        # Targets are constants of the loss: no gradient flows back into the proposals
        # (and through them into the RPN) from the box targets.
        proposals, gt_class_ids, gt_boxes, gt_masks = [tf.stop_gradient(x) for x in inputs]
        rois_count = self.train_rois_per_image

        base_seed = None
        if training and self.sampling_seed is not None:
            base_seed = tf.cast(self.sampling_seed.next(), tf.int64)
        batch = tf.shape(proposals)[0]

        def targets(args: tuple[tf.Tensor, ...]) -> tuple[tf.Tensor, ...]:
            *tensors, index = args
            seed = None if base_seed is None else tf.random.experimental.stateless_fold_in(
                base_seed, index)
            return graph_ops.detection_targets_graph(
                *tensors, train_rois_per_image=rois_count,
                roi_positive_ratio=self.roi_positive_ratio, mask_shape=self.mask_shape,
                use_mini_mask=self.use_mini_mask, bbox_std_dev=self.bbox_std_dev, seed=seed)

        signature = (
            tf.TensorSpec([rois_count, 4], tf.float32),
            tf.TensorSpec([rois_count], tf.int32),
            tf.TensorSpec([rois_count, 4], tf.float32),
            tf.TensorSpec([rois_count, *self.mask_shape], tf.float32),
        )
        outputs = tf.map_fn(
            targets,
            (tf.cast(proposals, tf.float32), tf.cast(gt_class_ids, tf.int32),
             tf.cast(gt_boxes, tf.float32), tf.cast(gt_masks, tf.float32),
             tf.range(batch, dtype=tf.int32)),
            fn_output_signature=signature)
        return [tf.ensure_shape(o, [None, *s.shape]) for o, s in zip(outputs, signature,
                                                                      strict=True)]

    def compute_output_shape(self, input_shape: list[tuple]) -> list[tuple]:
        batch = input_shape[0][0]
        count = self.train_rois_per_image
        return [(batch, count, 4), (batch, count), (batch, count, 4),
                (batch, count, *self.mask_shape)]

    def _output_dtypes(self, inputs: Any) -> list[str]:
        return ["float32", "int32", "float32", "float32"]

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "train_rois_per_image": self.train_rois_per_image,
            "roi_positive_ratio": self.roi_positive_ratio,
            "mask_shape": list(self.mask_shape),
            "use_mini_mask": self.use_mini_mask,
            "bbox_std_dev": self.bbox_std_dev,
            "seed": self.seed,
        }
