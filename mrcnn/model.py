"""MaskRCNN: the model facade matterport users know, on TensorFlow 2.21 / Keras 3.

    from mrcnn import model as modellib
    model = modellib.MaskRCNN(mode="training", config=config, model_dir="logs")
    model.load_weights("mask_rcnn_coco.h5", by_name=True,
                       exclude=["mrcnn_class_logits", "mrcnn_bbox_fc", "mrcnn_bbox", "mrcnn_mask"])
    model.train(dataset_train, dataset_val, learning_rate=config.LEARNING_RATE,
                epochs=1, layers="heads")

This module is the only one that knows the difference between training and inference: the
graph pieces come from backbone/fpn/heads/layers, the losses from training, the numpy
pre- and post-processing from inference. It also re-exports matterport's module-level names.
"""

from __future__ import annotations

import logging
import os
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from mrcnn.data.generator import DataGenerator, data_generator  # noqa: F401
from mrcnn.data.ground_truth import load_image_gt  # noqa: F401
from mrcnn.data.targets import build_detection_targets, build_rpn_targets  # noqa: F401
from mrcnn.engine import runs as checkpoints
from mrcnn.engine.predictor import detect_images, mold_inputs, predict_molded, unmold_detections
from mrcnn.engine.runs import COCO_WEIGHTS_FILE, IMAGENET_WEIGHTS_FILE  # noqa: F401
from mrcnn.engine.trainer import (
    MatterportCheckpoint,
    NonFiniteLossGuard,
    TrainingModel,
    make_optimizer,
    resolve_layers,
)
from mrcnn.engine.trainer import set_trainable as _set_trainable
from mrcnn.modeling.backbone import resnet_graph
from mrcnn.modeling.fpn import build_fpn
from mrcnn.modeling.graph_ops import (  # noqa: F401
    denorm_boxes_graph,
    norm_boxes_graph,
    parse_image_meta_graph,
)
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
from mrcnn.modeling.losses import (  # noqa: F401
    mrcnn_bbox_loss_graph,
    mrcnn_class_loss_graph,
    mrcnn_mask_loss_graph,
    rpn_bbox_loss_graph,
    rpn_class_loss_graph,
)
from mrcnn.structures.anchors import anchors_for_config, compute_backbone_shapes  # noqa: F401
from mrcnn.structures.image import mold_image, unmold_image  # noqa: F401
from mrcnn.structures.image_meta import compose_image_meta, parse_image_meta  # noqa: F401

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


def build_graph(mode: str, config: Any) -> tuple[list, list]:
    """Build Mask R-CNN's inputs and outputs for `mode` ("training" or "inference").

    Training outputs follow `mrcnn.engine.trainer.TRAIN_OUTPUT_KEYS` (matterport's, loss layers
    last); inference outputs are
    matterport's [detections, mrcnn_class, mrcnn_bbox, mrcnn_mask, rpn_rois, rpn_class,
    rpn_bbox].
    """
    c = config
    fixed = c.IMAGE_RESIZE_MODE in ("square", "crop") and mode == "training"
    image_shape = tuple(int(v) for v in c.IMAGE_SHAPE) if fixed else (
        None, None, c.IMAGE_CHANNEL_COUNT)
    input_image = keras.Input(shape=image_shape, name="input_image")
    input_image_meta = keras.Input(shape=(c.IMAGE_META_SIZE,), name="input_image_meta")

    if callable(c.BACKBONE):
        _, C2, C3, C4, C5 = c.BACKBONE(input_image, stage5=True, train_bn=c.TRAIN_BN)
    else:
        _, C2, C3, C4, C5 = resnet_graph(input_image, c.BACKBONE, stage5=True,
                                         train_bn=c.TRAIN_BN)
    P2, P3, P4, P5, P6 = build_fpn(C2, C3, C4, C5, c.TOP_DOWN_PYRAMID_SIZE)
    rpn_feature_maps = [P2, P3, P4, P5, P6]
    mrcnn_feature_maps = [P2, P3, P4, P5]

    if mode == "training":
        anchors = anchors_for_config(c, tuple(c.IMAGE_SHAPE), normalized=True)
        anchors = AnchorsLayer(anchors, name="anchors")(input_image)
    else:
        input_anchors = keras.Input(shape=(None, 4), name="input_anchors")
        anchors = input_anchors

    rpn = build_rpn_model(c.RPN_ANCHOR_STRIDE, len(c.RPN_ANCHOR_RATIOS), c.TOP_DOWN_PYRAMID_SIZE)
    per_level = [rpn(p) for p in rpn_feature_maps]
    rpn_class_logits, rpn_class, rpn_bbox = [
        keras.layers.Concatenate(axis=1, name=n)([level[i] for level in per_level])
        for i, n in enumerate(["rpn_class_logits", "rpn_class", "rpn_bbox"])]

    proposal_count = c.POST_NMS_ROIS_TRAINING if mode == "training" else c.POST_NMS_ROIS_INFERENCE
    rpn_rois = ProposalLayer(proposal_count=proposal_count, nms_threshold=c.RPN_NMS_THRESHOLD,
                             pre_nms_limit=c.PRE_NMS_LIMIT,
                             rpn_bbox_std_dev=np.asarray(c.RPN_BBOX_STD_DEV).tolist(),
                             name="ROI")([rpn_class, rpn_bbox, anchors])

    if mode == "training":
        input_rpn_match = keras.Input(shape=(None, 1), name="input_rpn_match", dtype="int32")
        input_rpn_bbox = keras.Input(shape=(None, 4), name="input_rpn_bbox", dtype="float32")
        input_gt_class_ids = keras.Input(shape=(None,), name="input_gt_class_ids", dtype="int32")
        input_gt_boxes = keras.Input(shape=(None, 4), name="input_gt_boxes", dtype="float32")
        mask_hw = tuple(c.MINI_MASK_SHAPE) if c.USE_MINI_MASK else tuple(c.IMAGE_SHAPE[:2])
        input_gt_masks = keras.Input(shape=mask_hw + (None,), name="input_gt_masks", dtype="bool")
        gt_boxes = NormBoxes(name="norm_gt_boxes")([input_gt_boxes, input_image])
        active_class_ids = ImageMetaField("active_class_ids", name="active_class_ids")(
            input_image_meta)
        inputs = [input_image, input_image_meta, input_rpn_match, input_rpn_bbox,
                  input_gt_class_ids, input_gt_boxes, input_gt_masks]
        if c.USE_RPN_ROIS:
            target_rois = rpn_rois
        else:
            input_rois = keras.Input(shape=(c.POST_NMS_ROIS_TRAINING, 4), name="input_roi",
                                     dtype="int32")
            inputs.append(input_rois)
            target_rois = NormBoxes(name="input_roi_norm")([input_rois, input_image])
        rois, target_class_ids, target_bbox, target_mask = DetectionTargetLayer(
            train_rois_per_image=c.TRAIN_ROIS_PER_IMAGE, roi_positive_ratio=c.ROI_POSITIVE_RATIO,
            mask_shape=list(c.MASK_SHAPE), use_mini_mask=c.USE_MINI_MASK,
            bbox_std_dev=np.asarray(c.BBOX_STD_DEV).tolist(), name="proposal_targets")(
            [target_rois, input_gt_class_ids, gt_boxes, input_gt_masks])
        mrcnn_class_logits, mrcnn_class, mrcnn_bbox = fpn_classifier_graph(
            rois, mrcnn_feature_maps, input_image_meta, c.POOL_SIZE, c.NUM_CLASSES,
            train_bn=c.TRAIN_BN, fc_layers_size=c.FPN_CLASSIF_FC_LAYERS_SIZE)
        mask_rois, mask_targets, mask_class_ids = rois, target_mask, target_class_ids
        if c.MASK_ON_POSITIVE_ROIS:
            # Positive ROIs come first; the mask loss ignores the others anyway.
            positives = int(c.TRAIN_ROIS_PER_IMAGE * c.ROI_POSITIVE_RATIO)
            mask_rois = TakeFirst(positives, name="mask_rois")(rois)
            mask_targets = TakeFirst(positives, name="mask_targets")(target_mask)
            mask_class_ids = TakeFirst(positives, name="mask_class_ids")(target_class_ids)
        mrcnn_mask = build_fpn_mask_graph(mask_rois, mrcnn_feature_maps, input_image_meta,
                                          c.MASK_POOL_SIZE, c.NUM_CLASSES, train_bn=c.TRAIN_BN)
        output_rois = IdentityLayer(name="output_rois")(rois)
        loss_outputs = [
            LossLayer("rpn_class_loss")([input_rpn_match, rpn_class_logits]),
            LossLayer("rpn_bbox_loss")([input_rpn_bbox, input_rpn_match, rpn_bbox]),
            LossLayer("mrcnn_class_loss")([target_class_ids, mrcnn_class_logits,
                                           active_class_ids]),
            LossLayer("mrcnn_bbox_loss")([target_bbox, target_class_ids, mrcnn_bbox]),
            LossLayer("mrcnn_mask_loss")([mask_targets, mask_class_ids, mrcnn_mask]),
        ]
        outputs = [rpn_class_logits, rpn_class, rpn_bbox, mrcnn_class_logits, mrcnn_class,
                   mrcnn_bbox, mrcnn_mask, rpn_rois, output_rois] + loss_outputs
        return inputs, outputs

    mrcnn_class_logits, mrcnn_class, mrcnn_bbox = fpn_classifier_graph(
        rpn_rois, mrcnn_feature_maps, input_image_meta, c.POOL_SIZE, c.NUM_CLASSES,
        train_bn=c.TRAIN_BN, fc_layers_size=c.FPN_CLASSIF_FC_LAYERS_SIZE)
    detections = DetectionLayer(
        detection_max_instances=c.DETECTION_MAX_INSTANCES,
        detection_min_confidence=c.DETECTION_MIN_CONFIDENCE,
        detection_nms_threshold=c.DETECTION_NMS_THRESHOLD,
        bbox_std_dev=np.asarray(c.BBOX_STD_DEV).tolist(), name="mrcnn_detection")(
        [rpn_rois, mrcnn_class, mrcnn_bbox, input_image_meta])
    detection_boxes = DetectionBoxes(name="detection_boxes")(detections)
    mrcnn_mask = build_fpn_mask_graph(detection_boxes, mrcnn_feature_maps, input_image_meta,
                                      c.MASK_POOL_SIZE, c.NUM_CLASSES, train_bn=c.TRAIN_BN)
    return ([input_image, input_image_meta, input_anchors],
            [detections, mrcnn_class, mrcnn_bbox, mrcnn_mask, rpn_rois, rpn_class, rpn_bbox])


class MaskRCNN:
    """Mask R-CNN in training or inference mode.

    Args:
        mode: "training" or "inference".
        config: a `mrcnn.config.Config` (subclass) instance.
        model_dir: the directory of training runs (logs and checkpoints).

    Attributes (matterport's): keras_model, config, mode, model_dir, log_dir,
    checkpoint_path, epoch.
    """

    def __init__(self, mode: str, config: Any, model_dir: str):
        if mode not in ("training", "inference"):
            raise ValueError(f"mode must be 'training' or 'inference', got {mode!r}")
        if not hasattr(config, "validate"):
            raise TypeError(f"config must be a mrcnn.config.Config, got {type(config).__name__}")
        config.validate()
        if not config.NAME:
            raise ValueError("Config NAME=None: set NAME (it names log dirs and checkpoints)")
        self.mode = mode
        self.config = config
        self.model_dir = model_dir
        self._optimizer_state_path: str | None = None
        self.last_load_report = None
        self.set_log_dir()
        self.keras_model = self.build(mode, config)

    # ------------------------------------------------------------------ graph
    def build(self, mode: str, config: Any) -> keras.Model:
        """Build the Keras model of `mode` (matterport's method; called by the constructor)."""
        # The policy applies to the layers made while building, then the global one returns.
        previous = keras.config.dtype_policy()
        if config.MIXED_PRECISION:
            keras.config.set_dtype_policy(config.MIXED_PRECISION)
        try:
            inputs, outputs = build_graph(mode, config)
        finally:
            keras.config.set_dtype_policy(previous)
        if mode == "training":
            return TrainingModel(inputs, outputs, loss_weights=config.LOSS_WEIGHTS,
                                 weight_decay=config.WEIGHT_DECAY, name="mask_rcnn")
        return keras.Model(inputs, outputs, name="mask_rcnn")

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
        """Turn "last", "coco", "imagenet" or a path into a file path (no downloads)."""
        if weights == "last":
            return self.find_last()
        return checkpoints.resolve_weights_file(weights, self.model_dir)

    def get_imagenet_weights(self) -> str:
        """Path of Keras' ResNet-50 ImageNet weights on disk (see
        checkpoints.resolve_weights_file)."""
        return checkpoints.resolve_weights_file("imagenet", self.model_dir)

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
        from mrcnn.checkpoint import load_weights_h5, read_h5_extras

        filepath = self.resolve_weights(filepath)
        if exclude:
            by_name = True
        report = load_weights_h5(self.keras_model, filepath, by_name=by_name,
                                 exclude=list(exclude or []), **kwargs)
        self.last_load_report = report
        self.set_log_dir(filepath)
        extras = read_h5_extras(filepath)
        self._optimizer_state_path = filepath if extras.get("has_optimizer") else None
        return report

    # ------------------------------------------------------------------ training
    def set_trainable(self, layer_regex: str, keras_model: keras.Model | None = None,
                      indent: int = 0, verbose: int = 1) -> list[str]:
        """Make the layers matching `layer_regex` (or a preset) trainable (see
        mrcnn.engine.trainer.set_trainable); `indent` is accepted for matterport compatibility."""
        return _set_trainable(keras_model or self.keras_model, layer_regex, verbose=verbose)

    def compile(self, learning_rate: float, momentum: float) -> None:
        """Compile with a new SGD optimizer (needed after every change of `trainable`)."""
        if self.mode != "training":
            raise ValueError("compile() needs a model created in training mode")
        optimizer = make_optimizer(learning_rate, momentum, self.config.GRADIENT_CLIP_NORM)
        # XLA was slower than plain tf.function on CPU here; keep it explicit (DESIGN.md).
        self.keras_model.compile(optimizer=optimizer, jit_compile=False)
        optimizer.build(self.keras_model.trainable_variables)
        if self._optimizer_state_path:
            from mrcnn.checkpoint import load_optimizer_state
            if load_optimizer_state(optimizer, self._optimizer_state_path):
                # The state includes the old learning rate; the caller's rate wins.
                optimizer.learning_rate = learning_rate
                logger.info("Restored optimizer state (momentum, iterations) from %s",
                            self._optimizer_state_path)
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
            custom_callbacks: extra Keras callbacks.
            no_augmentation_sources: dataset sources whose images are never augmented.
            workers: data-loading workers (threads unless use_multiprocessing); default:
                one per CPU core, at most 4.

        Returns:
            The Keras History.

        Raises:
            FloatingPointError: the loss became NaN or infinite (no checkpoint of that epoch
                is written).
        """
        if self.mode != "training":
            raise ValueError("train() needs a model created in training mode")
        regex = resolve_layers(layers)
        if workers is None:
            workers = max(1, min(4, os.cpu_count() or 1))
        c = self.config
        seed = c.RANDOM_SEED
        train_gen = DataGenerator(train_dataset, c, shuffle=True, augmentation=augmentation,
                                  no_augmentation_sources=no_augmentation_sources, seed=seed,
                                  steps=c.STEPS_PER_EPOCH, workers=workers,
                                  use_multiprocessing=use_multiprocessing)
        train_gen.epoch = self.epoch  # a resumed run continues the shuffling sequence
        val_gen = None
        if val_dataset is not None and c.VALIDATION_STEPS:
            val_gen = DataGenerator(val_dataset, c, shuffle=True, seed=seed,
                                    steps=c.VALIDATION_STEPS, workers=workers,
                                    use_multiprocessing=use_multiprocessing)
        os.makedirs(self.log_dir, exist_ok=True)
        guard = NonFiniteLossGuard()
        # Callbacks that add values to the epoch logs (e.g. MeanAPCallback's mAP) run first,
        # so TensorBoard, the checkpoint writer and the user's callbacks all see them.
        custom = list(custom_callbacks or [])
        producers = [cb for cb in custom if getattr(cb, "adds_logs", False)]
        callbacks = [guard] + producers + [
            keras.callbacks.TensorBoard(log_dir=self.log_dir, histogram_freq=0,
                                        write_graph=False),
            MatterportCheckpoint(self.checkpoint_path, config=c.to_dict()),
        ] + [cb for cb in custom if cb not in producers]

        logger.info("Starting at epoch %d, LR=%s, checkpoints %s", self.epoch, learning_rate,
                    self.checkpoint_path)
        self.set_trainable(regex)
        self.compile(learning_rate, c.LEARNING_MOMENTUM)
        history = self.keras_model.fit(
            train_gen, initial_epoch=self.epoch, epochs=epochs,
            steps_per_epoch=c.STEPS_PER_EPOCH, callbacks=callbacks, validation_data=val_gen,
            validation_steps=c.VALIDATION_STEPS if val_gen is not None else None,
            verbose=verbose)
        if guard.failure:
            raise FloatingPointError(
                f"Training stopped: non-finite loss at epoch {guard.failure['epoch']}, batch "
                f"{guard.failure['batch']} ({guard.failure['logs']}); no checkpoint was written "
                "for that epoch. Lower the learning rate or check the data.")
        self.epoch = max(self.epoch, epochs)
        return history

    # ------------------------------------------------------------------ inference
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

    def _check_inference(self) -> None:
        if self.mode != "inference":
            raise ValueError("detect() needs a model created in inference mode")

    def detect(self, images: Sequence[np.ndarray], verbose: int = 0) -> list[dict]:
        """Detect instances in a list of images (any count, any sizes).

        Returns:
            One dict per image: rois [N, (y1, x1, y2, x2)] pixels, class_ids [N],
            scores [N], masks [H, W, N] bool.
        """
        self._check_inference()
        return detect_images(self.keras_model, self.config, images)

    def detect_molded(self, molded_images: np.ndarray, image_metas: np.ndarray,
                      verbose: int = 0) -> list[dict]:
        """Detect on images that are already molded (e.g. from load_image_gt + mold_image);
        results are in the molded images' coordinates."""
        self._check_inference()
        molded_images = np.asarray(molded_images, np.float32)
        detections, _, _, mrcnn_mask, _, _, _ = predict_molded(
            self.keras_model, self.config, molded_images, image_metas)
        results = []
        for i in range(len(molded_images)):
            window = parse_image_meta(image_metas[i:i + 1])["window"][0]
            shape = molded_images[i].shape
            rois, class_ids, scores, masks = self.unmold_detections(
                detections[i], mrcnn_mask[i], shape, shape, window)
            results.append({"rois": rois, "class_ids": class_ids, "scores": scores,
                            "masks": masks})
        return results

    def run_graph(self, images: Sequence[np.ndarray], outputs: Sequence,
                  image_metas: np.ndarray | None = None) -> OrderedDict:
        """Run the model up to named intermediate outputs (matterport's inspection helper).

        Args:
            images: images to mold (or molded images when `image_metas` is given).
            outputs: [(name, tensor)] pairs, e.g. ("proposals",
                model.keras_model.get_layer("ROI").output), or plain layer names.
        """
        pairs = [(o, self.keras_model.get_layer(o).output) if isinstance(o, str) else tuple(o)
                 for o in outputs]
        sub = keras.Model(self.keras_model.inputs, [t for _, t in pairs])
        if image_metas is None:
            molded, image_metas, _ = self.mold_inputs(images)
        else:
            molded = np.asarray(images, np.float32)
        inputs = [molded, image_metas]
        if self.mode == "inference":
            anchors = self.get_anchors(molded.shape[1:3])
            inputs.append(np.broadcast_to(anchors, (len(molded),) + anchors.shape))
        values = sub.predict_on_batch(inputs)
        if len(pairs) == 1:
            values = [values]
        return OrderedDict((name, np.asarray(v)) for (name, _), v in zip(pairs, values))
