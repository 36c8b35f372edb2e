"""MaskRCNN: the model facade matterport users know, on TensorFlow 2.21 / Keras 3.

    from mrcnn import model as modellib
    model = modellib.MaskRCNN(mode="training", config=config, model_dir="logs")
    model.load_weights("mask_rcnn_coco.h5", by_name=True,
                       exclude=["mrcnn_class_logits", "mrcnn_bbox_fc", "mrcnn_bbox", "mrcnn_mask"])
    model.train(dataset_train, dataset_val, learning_rate=config.LEARNING_RATE,
                epochs=1, layers="heads")

The facade only wires: the graph comes from `mrcnn.modeling.builder`, the training model and
run from `mrcnn.engine.trainer` and `mrcnn.engine.train_loop`, run directories from
`mrcnn.engine.runs`, weights from `mrcnn.engine.weights`, and pre- and post-processing from
`mrcnn.engine.predictor`. The module also re-exports matterport's
module-level names (and those it exported before the package was split).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from mrcnn.data.generator import DataGenerator, data_generator
from mrcnn.data.ground_truth import load_image_gt
from mrcnn.data.targets import build_detection_targets, build_rpn_targets
from mrcnn.engine import predictor, train_loop
from mrcnn.engine import runs as checkpoints
from mrcnn.engine.callbacks import MatterportCheckpoint, NonFiniteLossGuard
from mrcnn.engine.host_allocator import tune_host_allocator
from mrcnn.engine.predictor import detect_images, mold_inputs, predict_molded, unmold_detections
from mrcnn.engine.runs import COCO_WEIGHTS_FILE, IMAGENET_WEIGHTS_FILE
from mrcnn.engine.trainer import (
    TrainingModel,
    build_training_model,
    make_optimizer,
    resolve_layers,
)
from mrcnn.engine.trainer import set_trainable as _set_trainable
from mrcnn.engine.weights import load_model_weights, weights_file
from mrcnn.modeling.backbone import resnet_graph
from mrcnn.modeling.builder import build_graph, build_keras_model
from mrcnn.modeling.fpn import build_fpn
from mrcnn.modeling.graph_ops import denorm_boxes_graph, norm_boxes_graph, parse_image_meta_graph
from mrcnn.modeling.heads import build_fpn_mask_graph, build_rpn_model, fpn_classifier_graph
from mrcnn.modeling.layers.detection import DetectionLayer
from mrcnn.modeling.layers.detection_target import DetectionTargetLayer
from mrcnn.modeling.layers.loss import LossLayer
from mrcnn.modeling.layers.misc import (
    AnchorsLayer,
    DetectionBoxes,
    IdentityLayer,
    ImageMetaField,
    NormBoxes,
    TakeFirst,
)
from mrcnn.modeling.layers.proposal import ProposalLayer
from mrcnn.modeling.losses import (
    mrcnn_bbox_loss_graph,
    mrcnn_class_loss_graph,
    mrcnn_mask_loss_graph,
    rpn_bbox_loss_graph,
    rpn_class_loss_graph,
)
from mrcnn.structures.anchors import anchors_for_config, compute_backbone_shapes
from mrcnn.structures.image import mold_image, unmold_image
from mrcnn.structures.image_meta import compose_image_meta, parse_image_meta

__all__ = [  # matterport's names, then those this module exported before the package split
    "MaskRCNN", "log", "load_image_gt", "data_generator", "build_rpn_targets",
    "build_detection_targets", "mold_image", "unmold_image", "compose_image_meta",
    "parse_image_meta", "parse_image_meta_graph", "norm_boxes_graph", "denorm_boxes_graph",
    "resnet_graph", "compute_backbone_shapes", "rpn_class_loss_graph", "rpn_bbox_loss_graph",
    "mrcnn_class_loss_graph", "mrcnn_bbox_loss_graph", "mrcnn_mask_loss_graph",
    "fpn_classifier_graph", "build_fpn_mask_graph", "build_rpn_model", "ProposalLayer",
    "DetectionLayer", "DetectionTargetLayer", "AnchorsLayer", "COCO_WEIGHTS_FILE",
    "DataGenerator", "DetectionBoxes", "IMAGENET_WEIGHTS_FILE", "IdentityLayer",
    "ImageMetaField", "LossLayer", "MatterportCheckpoint", "NonFiniteLossGuard", "NormBoxes",
    "TakeFirst", "TrainingModel", "anchors_for_config", "build_fpn", "build_graph",
    "checkpoints", "detect_images", "make_optimizer", "mold_inputs", "predict_molded",
    "resolve_layers", "unmold_detections",
]

logger = logging.getLogger(__name__)


def log(text: str, array: np.ndarray | None = None) -> None:
    """matterport's debugging printer: a text and, optionally, an array's shape, range and
    dtype."""
    if array is not None:
        text = text.ljust(25)
        text += f"shape: {str(array.shape):20}  "
        if array.size:
            text += f"min: {array.min():10.5f}  max: {array.max():10.5f}"
        else:
            text += f"min: {'':10}  max: {'':10}"
        text += f"  {array.dtype}"
    print(text)


class MaskRCNN:
    """Mask R-CNN in training or inference mode.

    Args:
        mode: "training" or "inference".
        config: a `mrcnn.config.Config` (subclass) instance.
        model_dir: the directory of training runs (logs and checkpoints).
        strategy: a `tf.distribute.Strategy` to build and train under; default: the one
            config.DISTRIBUTION names (None: no strategy). With a strategy, the model and
            its optimizer are created in its scope, GPU_COUNT and BATCH_SIZE are set to
            its replicas, and train() runs `mrcnn.distribute.train_distributed`.

    Attributes (matterport's): keras_model, config, mode, model_dir, log_dir,
    checkpoint_path, epoch. Also last_load_report (the LoadReport of the last load_weights).
    """

    def __init__(self, mode: str, config: Any, model_dir: str, strategy: Any = None):
        if mode not in ("training", "inference"):
            raise ValueError(f"mode must be 'training' or 'inference', got {mode!r}")
        if not hasattr(config, "validate"):
            raise TypeError(f"config must be a mrcnn.config.Config, got {type(config).__name__}")
        config.validate()
        if not config.NAME:
            raise ValueError("Config NAME=None: set NAME (it names log dirs and checkpoints)")
        if config.TUNE_HOST_ALLOCATOR:
            tune_host_allocator()
        self.mode = mode
        self.config = config
        self.model_dir = model_dir
        # A loaded checkpoint's optimizer state, restored by the next compile().
        self._optimizer_state_path: str | None = None
        self.last_load_report = None
        self.strategy = None
        if mode == "training" and (strategy is not None or config.DISTRIBUTION is not None):
            from mrcnn.distribute import resolve_strategy

            self.strategy = resolve_strategy(strategy, config.DISTRIBUTION)
            replicas = self.strategy.num_replicas_in_sync
            if config.GPU_COUNT != replicas:
                logger.info("GPU_COUNT %d -> %d replicas of %s", config.GPU_COUNT, replicas,
                            type(self.strategy).__name__)
            config.GPU_COUNT = replicas
            config.BATCH_SIZE = config.IMAGES_PER_GPU * replicas
        self.set_log_dir()
        if self.strategy is None:
            self.keras_model = self.build(mode, config)
        else:
            with self.strategy.scope():
                self.keras_model = self.build(mode, config)

    def build(self, mode: str, config: Any) -> keras.Model:
        """Build the Keras model of `mode` (matterport's method; called by the constructor)."""
        return build_training_model(config) if mode == "training" else build_keras_model(
            mode, config)

    # ------------------------------------------------------------------ runs and weights
    def set_log_dir(self, model_path: str | None = None) -> None:
        """Start a new run directory, or continue the run `model_path` belongs to."""
        info = checkpoints.run_info(self.model_dir, self.config.NAME, model_path)
        self.log_dir, self.checkpoint_path, self.epoch = (
            info.log_dir, info.checkpoint_path, info.epoch)

    def find_last(self) -> str:
        """The newest checkpoint of the newest run of this config's NAME."""
        return checkpoints.find_last(self.model_dir, self.config.NAME)

    def resolve_weights(self, weights: str) -> str:
        """The file of "last", "coco", "imagenet" or a path (mrcnn.engine.weights)."""
        return weights_file(weights, self.model_dir, self.config.NAME)

    def get_imagenet_weights(self) -> str:
        """Path of Keras' ResNet-50 ImageNet weights on disk (no downloads)."""
        return self.resolve_weights("imagenet")

    def load_weights(self, filepath: str, by_name: bool = False,
                     exclude: Sequence[str] | None = None, **kwargs: Any):
        """Load weights from a matterport/Keras-2 HDF5 file (or "last", "coco", "imagenet").

        `exclude` (layer names or regexes) implies by-name loading. A shape mismatch on a
        layer that is not excluded raises an error listing the layers to exclude; pass
        `skip_mismatch=True` to skip them instead. Loading a checkpoint of a run continues
        that run (same log dir, next epoch) and restores the optimizer state at the next
        `train()` when the file carries it.

        Returns:
            The `mrcnn.checkpoint.LoadReport` of the load.
        """
        loaded = load_model_weights(self.keras_model, filepath, model_dir=self.model_dir,
                                    name=self.config.NAME, by_name=by_name, exclude=exclude,
                                    **kwargs)
        self.last_load_report = loaded.report
        self.set_log_dir(loaded.path)
        self._optimizer_state_path = loaded.optimizer_state_path
        return loaded.report

    # ------------------------------------------------------------------ training
    def _require(self, mode: str, what: str) -> None:
        if self.mode != mode:
            raise ValueError(f"{what} needs a model created in {mode} mode")

    def set_trainable(self, layer_regex: str, keras_model: keras.Model | None = None,
                      indent: int = 0, verbose: int = 1) -> list[str]:
        """Make the layers matching `layer_regex` (or a preset) trainable (see
        mrcnn.engine.trainer.set_trainable); `indent` is accepted for matterport compatibility."""
        return _set_trainable(keras_model or self.keras_model, layer_regex, verbose=verbose)

    def compile(self, learning_rate: float, momentum: float) -> None:
        """Compile with a new SGD optimizer (needed after every change of `trainable`); the
        first compile after loading a checkpoint restores its optimizer state."""
        self._require("training", "compile()")
        train_loop.compile_model(self.keras_model, learning_rate, momentum,
                                 self.config.GRADIENT_CLIP_NORM, self._optimizer_state_path)
        self._optimizer_state_path = None

    def train(self, train_dataset, val_dataset, learning_rate: float, epochs: int, layers: str,
              augmentation=None, custom_callbacks: Sequence[keras.callbacks.Callback] | None = None,
              no_augmentation_sources: Sequence[str] | None = None, workers: int | None = None,
              use_multiprocessing: bool = False, verbose: int | str = "auto"):
        """Train the layers selected by `layers` up to epoch `epochs` (cumulative, as matterport).

        Args:
            train_dataset, val_dataset: prepared `mrcnn.data.dataset.Dataset` objects.
            learning_rate: the SGD learning rate.
            epochs: the epoch number to train up to (training starts at `self.epoch`).
            layers: "heads", "3+", "4+", "5+", "all" or a regex of layer names.
            augmentation: an imgaug augmenter applied to training images and masks.
            custom_callbacks: extra Keras callbacks (their order: mrcnn.engine.train_loop).
            no_augmentation_sources: dataset sources whose images are never augmented.
            workers: data-loading workers (default: one per CPU core, at most 4).

        Returns:
            The Keras History.

        Raises:
            FloatingPointError: the loss became NaN or infinite (no checkpoint of that epoch
                is written).
        """
        self._require("training", "train()")
        run = train_loop.train
        if self.strategy is not None:
            from mrcnn.distribute import train_distributed

            def run(model, config, *args, **kwargs):
                return train_distributed(model, config, self.strategy, *args, **kwargs)
        history = run(
            self.keras_model, self.config, train_dataset, val_dataset, learning_rate, epochs,
            layers, initial_epoch=self.epoch, log_dir=self.log_dir,
            checkpoint_path=self.checkpoint_path, compile_fn=self.compile,
            augmentation=augmentation, custom_callbacks=custom_callbacks,
            no_augmentation_sources=no_augmentation_sources, workers=workers,
            use_multiprocessing=use_multiprocessing, verbose=verbose)
        self.epoch = max(self.epoch, epochs)
        return history

    # ------------------------------------------------------------------ inference
    def export(self, export_dir: str, class_names: Sequence[str] | None = None) -> str:
        """Write a serving SavedModel (uint8 images in, detections in pixels out) of this
        inference model with its current weights; see mrcnn.export.export_saved_model.

        Returns:
            The SavedModel directory.
        """
        self._require("inference", "export()")
        from mrcnn.export import export_saved_model

        return export_saved_model(self.keras_model, self.config, export_dir,
                                  class_names=class_names)

    def mold_inputs(self, images: Sequence[np.ndarray]):
        """matterport's mold_inputs: (molded_images, image_metas, windows)."""
        return mold_inputs(images, self.config)

    def unmold_detections(self, detections, mrcnn_mask, original_image_shape, image_shape,
                          window):
        """matterport's unmold_detections: (boxes, class_ids, scores, masks)."""
        return unmold_detections(detections, mrcnn_mask, original_image_shape, image_shape,
                                 window)

    def get_anchors(self, image_shape: Sequence[int]) -> np.ndarray:
        """Anchors for an input of `image_shape`, normalized [N, (y1, x1, y2, x2)] (cached)."""
        return anchors_for_config(self.config, tuple(int(v) for v in image_shape[:2]),
                                  normalized=True)

    def detect(self, images: Sequence[np.ndarray], verbose: int = 0) -> list[dict]:
        """Detect instances in a list of images (any count, any sizes).

        Returns:
            One dict per image: rois [N, (y1, x1, y2, x2)] pixels, class_ids [N],
            scores [N], masks [H, W, N] bool.
        """
        self._require("inference", "detect()")
        return detect_images(self.keras_model, self.config, images)

    def detect_molded(self, molded_images: np.ndarray, image_metas: np.ndarray,
                      verbose: int = 0) -> list[dict]:
        """Detect on images that are already molded (e.g. from load_image_gt + mold_image);
        results are in the molded images' coordinates."""
        self._require("inference", "detect_molded()")
        return predictor.detect_molded(self.keras_model, self.config, molded_images,
                                       image_metas)

    def run_graph(self, images: Sequence[np.ndarray], outputs: Sequence,
                  image_metas: np.ndarray | None = None) -> OrderedDict:
        """Run the model up to named outputs: [(name, tensor)] pairs or layer names
        (matterport's inspection helper; see mrcnn.engine.predictor.run_graph)."""
        return predictor.run_graph(self.keras_model, self.config, images, outputs,
                                   image_metas=image_metas,
                                   with_anchors=self.mode == "inference")
