"""mAP during training: an inference graph that shares the training model's layers.

`shared_inference_model` wires the training graph's own backbone, FPN, RPN and heads (the same
layer objects, so the same variables) into an inference graph with matterport's inference
outputs, wired by the same `mrcnn.modeling.builder` functions as the inference graph. Nothing
is copied and nothing is rebuilt per evaluation; `MeanAPCallback` builds it once and
evaluates mask mAP on a validation subset every N epochs, adding `mAP` to the epoch logs
(History, TensorBoard, BestCheckpoint, EarlyStopping see it).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from mrcnn.engine.callbacks.base import EpochMetricCallback
from mrcnn.engine.predictor import detect_images
from mrcnn.evaluation.evaluator import evaluate_dataset
from mrcnn.modeling import builder

logger = logging.getLogger(__name__)

FEATURE_LAYERS = ("fpn_p2", "fpn_p3", "fpn_p4", "fpn_p5", "fpn_p6")


def _output(model: keras.Model, name: str, index: int | None = None):
    layer = model.get_layer(name)
    out = layer.output
    return out[index] if index is not None else out


def _submodel(inputs: list, outputs, name: str) -> keras.Model:
    """A model over part of another model's graph that accepts any ROI count: its input
    spec keeps only the ranks (the heads fold ROIs into the batch axis)."""
    model = keras.Model(inputs, outputs, name=name)
    model.input_spec = [keras.layers.InputSpec(ndim=len(t.shape)) for t in inputs]
    return model


def shared_inference_model(train_model: keras.Model, config: Any) -> keras.Model:
    """An inference graph over the layers of a Mask R-CNN training model.

    Args:
        train_model: the `keras_model` of a MaskRCNN in training mode.
        config: its Config (inference settings: POST_NMS_ROIS_INFERENCE, DETECTION_*).

    Returns:
        A model from [input_image, input_image_meta, input_anchors] to [detections,
        mrcnn_class, mrcnn_bbox, mrcnn_mask, rpn_rois, rpn_class, rpn_bbox], as the inference
        MaskRCNN's keras_model, whose weighted layers are the training model's.
    """
    image_meta_t = _output(train_model, "input_image_meta")
    features_t = [_output(train_model, n) for n in FEATURE_LAYERS]
    features = keras.Model(_output(train_model, "input_image"), features_t,
                           name="shared_features")
    rois_t = _output(train_model, "proposal_targets", 0)
    classifier = _submodel(
        [rois_t, image_meta_t] + features_t[:4],
        [_output(train_model, n) for n in ("mrcnn_class_logits", "mrcnn_class", "mrcnn_bbox")],
        name="shared_classifier")
    mask_rois_t = (_output(train_model, "mask_rois") if config.MASK_ON_POSITIVE_ROIS else rois_t)
    mask_head = _submodel([mask_rois_t, image_meta_t] + features_t[:4],
                          _output(train_model, "mrcnn_mask"), name="shared_mask_head")
    rpn = train_model.get_layer("rpn_model")

    input_image = keras.Input(shape=tuple(_output(train_model, "input_image").shape[1:]),
                              name="input_image")
    input_meta = builder.image_meta_input(config)
    input_anchors = builder.anchors_input()
    maps = features(input_image)
    outputs = builder.inference_outputs(
        config, builder.rpn_outputs(rpn, maps), input_anchors, input_meta,
        classify=lambda rois: classifier([rois, input_meta] + maps[:4]),
        segment=lambda boxes: mask_head([boxes, input_meta] + maps[:4]))
    return keras.Model([input_image, input_meta, input_anchors], outputs,
                       name="shared_inference")


class MeanAPCallback(EpochMetricCallback):
    """Adds mask `mAP` (at `iou_threshold`) on a validation subset to the logs every N epochs.

    Args:
        dataset: a prepared Dataset to evaluate on.
        config: the training Config.
        image_ids: the images to use (default: the first `limit` of the dataset).
        limit: how many images when `image_ids` is not given.
        every: evaluate after every `every` epochs (and the final epoch of fit).
        name: the log key.

    As an `EpochMetricCallback`, MaskRCNN.train runs it before TensorBoard, the checkpoint
    writer and the other custom callbacks, so they see the value
    (`mrcnn.engine.train_loop`).
    """

    def __init__(self, dataset, config: Any, image_ids: Sequence[int] | None = None,
                 limit: int = 20, every: int = 1, iou_threshold: float = 0.5,
                 name: str = "mAP"):
        super().__init__()
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every!r}")
        self.dataset = dataset
        self.config = config
        self.image_ids = list(image_ids) if image_ids is not None else list(
            dataset.image_ids[:limit])
        if not self.image_ids:
            raise ValueError("MeanAPCallback needs at least one validation image")
        self.every = every
        self.iou_threshold = iou_threshold
        self.name = name
        self.history: list[tuple[int, float]] = []
        self._inference: keras.Model | None = None

    @property
    def metric_names(self) -> tuple[str, ...]:
        return (self.name,)

    def on_train_begin(self, logs=None):
        if self._inference is None:
            self._inference = shared_inference_model(self.model, self.config)

    def detect(self, images: Sequence[np.ndarray], verbose: int = 0) -> list[dict]:
        """detect() with the current training weights, e.g. as TensorBoardDetections'
        detect_fn."""
        if self._inference is None:
            self._inference = shared_inference_model(self.model, self.config)
        return detect_images(self._inference, self.config, images)

    def evaluate(self) -> float:
        """Mask mAP at `iou_threshold` of the current weights on the callback's images
        (mrcnn.evaluation.evaluator.evaluate_dataset, with this callback as the model)."""
        result = evaluate_dataset(self, self.dataset, self.config, image_ids=self.image_ids,
                                  iou_thresholds=(self.iou_threshold,))
        return result.map

    def on_epoch_end(self, epoch, logs=None):
        last = self.params.get("epochs") == epoch + 1 if self.params else False
        if (epoch + 1) % self.every and not last:
            return
        start = time.time()
        value = self.evaluate()
        self.history.append((epoch + 1, value))
        if logs is not None:
            logs[self.name] = value
        logger.info("Epoch %d: %s@%.2f = %.4f on %d images (%.1f s)", epoch + 1, self.name,
                    self.iou_threshold, value, len(self.image_ids), time.time() - start)
