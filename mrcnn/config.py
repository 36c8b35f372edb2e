"""Mask R-CNN configuration: matterport's fields and defaults, derived values and validation.

Subclass `Config` and override the class attributes you need, exactly as with
matterport's Mask_RCNN:

    class ShapesConfig(Config):
        NAME = "shapes"
        NUM_CLASSES = 1 + 3

Derived values (`BATCH_SIZE`, `IMAGE_SHAPE`, `IMAGE_META_SIZE`) are computed by `validate()`,
which runs at construction and again when a model is built (`MaskRCNN.__init__`): a value set
on an instance after construction is checked, and the derived values follow it. Derived values
are not settings: assigning one directly is a ValueError at the next `validate()` (set the
settings they come from instead). A string where a number belongs (`NUM_CLASSES = '4'`) is a
ValueError naming the setting.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from mrcnn.structures import checks
from mrcnn.structures.image import RESIZE_MODES
from mrcnn.structures.image_meta import meta_size

BACKBONES = ("resnet50", "resnet101")
MIXED_PRECISION_POLICIES = (None, "auto", "mixed_bfloat16", "mixed_float16")
# Settings that derive from others (see `Config.derived_values`), and where they come from.
DERIVED = {"BATCH_SIZE": "IMAGES_PER_GPU * GPU_COUNT",
           "IMAGE_SHAPE": "IMAGE_MAX_DIM (IMAGE_MIN_DIM in 'crop' mode) and IMAGE_CHANNEL_COUNT",
           "IMAGE_META_SIZE": "NUM_CLASSES"}
# The base settings whose values are strings; every other base setting holds no string.
STRING_SETTINGS = ("NAME", "BACKBONE", "IMAGE_RESIZE_MODE", "MIXED_PRECISION", "DISTRIBUTION")
DISTRIBUTIONS = (None, "mirrored", "multi_worker")
LOSS_NAMES = ("rpn_class_loss", "rpn_bbox_loss", "mrcnn_class_loss",
              "mrcnn_bbox_loss", "mrcnn_mask_loss")


class Config:
    """Base configuration class. Subclass it and override what differs.

    The attributes and defaults are matterport's; the few additions are marked "(mrcnn)".
    """

    # Name the configurations. Used in log-dir and checkpoint names.
    NAME: str | None = None

    # Replicas and images per replica. BATCH_SIZE = IMAGES_PER_GPU * GPU_COUNT.
    GPU_COUNT = 1
    IMAGES_PER_GPU = 2

    # Training steps per epoch and validation steps at the end of each epoch.
    STEPS_PER_EPOCH = 1000
    VALIDATION_STEPS = 50

    # Backbone: "resnet50", "resnet101", or a callable building the feature maps
    # (then COMPUTE_BACKBONE_SHAPE must be given too).
    BACKBONE: str | Callable = "resnet101"
    COMPUTE_BACKBONE_SHAPE: Callable | None = None

    # Strides of each level of the FPN pyramid, for ResNet.
    BACKBONE_STRIDES = [4, 8, 16, 32, 64]

    # Size of the fully-connected layers in the classification graph.
    FPN_CLASSIF_FC_LAYERS_SIZE = 1024

    # Size of the top-down layers used to build the feature pyramid.
    TOP_DOWN_PYRAMID_SIZE = 256

    # Number of classes, including background.
    NUM_CLASSES = 1

    # Length of a square anchor side in pixels, one per pyramid level.
    RPN_ANCHOR_SCALES = (32, 64, 128, 256, 512)

    # Width/height ratios of anchors at each cell.
    RPN_ANCHOR_RATIOS = [0.5, 1, 2]

    # Anchor stride in feature-map cells (1: an anchor set at every cell).
    RPN_ANCHOR_STRIDE = 1

    # Non-max suppression threshold to filter RPN proposals.
    RPN_NMS_THRESHOLD = 0.7

    # How many anchors per image to use for RPN training.
    RPN_TRAIN_ANCHORS_PER_IMAGE = 256

    # ROIs kept after tf.nn.top_k and before non-maximum suppression.
    PRE_NMS_LIMIT = 6000

    # ROIs kept after non-maximum suppression (training and inference).
    POST_NMS_ROIS_TRAINING = 2000
    POST_NMS_ROIS_INFERENCE = 1000

    # Store instance masks resized to MINI_MASK_SHAPE inside their box to save memory.
    USE_MINI_MASK = True
    MINI_MASK_SHAPE = (56, 56)  # (height, width)

    # Input image resizing: "none", "square", "pad64" or "crop" (see
    # mrcnn.structures.image.resize_image).
    IMAGE_RESIZE_MODE = "square"
    IMAGE_MIN_DIM = 800
    IMAGE_MAX_DIM = 1024
    # Minimum scaling ratio, checked after IMAGE_MIN_DIM (0: no minimum).
    IMAGE_MIN_SCALE = 0
    # Number of color channels per image. RGB = 3, grayscale = 1, RGB-D = 4.
    IMAGE_CHANNEL_COUNT = 3

    # Image mean (RGB), subtracted by mold_image.
    MEAN_PIXEL = np.array([123.7, 116.8, 103.9])

    # ROIs per image fed to the classifier/mask heads during training.
    TRAIN_ROIS_PER_IMAGE = 200

    # Fraction of positive ROIs used to train the classifier/mask heads.
    ROI_POSITIVE_RATIO = 0.33

    # Pooled ROI sizes.
    POOL_SIZE = 7
    MASK_POOL_SIZE = 14

    # Shape of the output mask. The mask head upsamples MASK_POOL_SIZE by 2.
    MASK_SHAPE = [28, 28]

    # Maximum number of ground-truth instances used in one image.
    MAX_GT_INSTANCES = 100

    # Bounding box refinement standard deviation for RPN and final detections.
    RPN_BBOX_STD_DEV = np.array([0.1, 0.1, 0.2, 0.2])
    BBOX_STD_DEV = np.array([0.1, 0.1, 0.2, 0.2])

    # Max number of final detections.
    DETECTION_MAX_INSTANCES = 100

    # Minimum probability to accept a detected instance.
    DETECTION_MIN_CONFIDENCE = 0.7

    # Non-maximum suppression threshold for detection.
    DETECTION_NMS_THRESHOLD = 0.3

    # Learning rate and momentum. matterport's paper setting is 0.02; lower is more stable.
    LEARNING_RATE = 0.001
    LEARNING_MOMENTUM = 0.9

    # Weight decay regularization (matterport's per-weight mean-of-squares formula).
    WEIGHT_DECAY = 0.0001

    # Loss weights for more precise optimization.
    LOSS_WEIGHTS = {
        "rpn_class_loss": 1.,
        "rpn_bbox_loss": 1.,
        "mrcnn_class_loss": 1.,
        "mrcnn_bbox_loss": 1.,
        "mrcnn_mask_loss": 1.,
    }

    # Use RPN ROIs or externally generated ROIs for training.
    USE_RPN_ROIS = True

    # Train or freeze batch normalization layers. None/False: frozen (inference mode).
    TRAIN_BN: bool | None = False

    # Gradient norm clipping (global norm, as matterport's Keras 2 clipnorm did).
    GRADIENT_CLIP_NORM = 5.0

    # (mrcnn) Keep training images that have no instances, as negatives. False is
    # matterport's behaviour: such images are skipped by the data generator.
    KEEP_NEGATIVE_IMAGES = False

    # (mrcnn) Training runs the mask head on the positive ROIs only (at most
    # int(TRAIN_ROIS_PER_IMAGE * ROI_POSITIVE_RATIO) per image, which come first) instead of
    # all TRAIN_ROIS_PER_IMAGE. The mask loss only counts positives, so it is unchanged; the
    # mask head's cost drops about 3x. False: matterport's graph (masks for every ROI).
    MASK_ON_POSITIVE_ROIS = True

    # (mrcnn) Inference runs the mask head on the real detections only (class_id > 0; per batch
    # as many rows as the image with the most detections), not on all DETECTION_MAX_INSTANCES
    # rows. Outputs are the same (padding rows of mrcnn_mask are zero). False: matterport's graph.
    MASK_ON_DETECTIONS = True

    # (mrcnn) Mixed precision: None (float32), "mixed_bfloat16" (fast on CPUs with AMX/AVX512-BF16)
    # or "mixed_float16" (GPUs; the optimizer then scales the loss), or "auto": the one the
    # hardware runs fastest (mrcnn.modeling.precision; bf16 where the CPU flags show amx_bf16 or
    # avx512_bf16, float16 on GPUs of compute capability >= 7.0, float32 otherwise). Geometry
    # layers (proposals, ROIAlign boxes, targets, detections) and the losses run in float32.
    MIXED_PRECISION: str | None = None

    # (mrcnn) On glibc (Linux), set malloc to reuse the large blocks of freed tensors instead of
    # mapping and unmapping them each step (mrcnn.engine.host_allocator: about 17% off the demo's
    # CPU step). Process-wide, applied once when a MaskRCNN is built; glibc's own MALLOC_*
    # environment variables take precedence. False leaves malloc alone.
    TUNE_HOST_ALLOCATOR = True

    # (mrcnn) Distributed training: None (one device), "mirrored" (tf.distribute.MirroredStrategy
    # over the local GPUs) or "multi_worker" (MultiWorkerMirroredStrategy; cluster from
    # TF_CONFIG). BATCH_SIZE becomes IMAGES_PER_GPU * replicas (see mrcnn.distribute).
    DISTRIBUTION: str | None = None

    # (mrcnn) Seed for the data pipeline's randomness (shuffling, augmentation). None: random.
    RANDOM_SEED: int | None = None

    def __init__(self) -> None:
        """Validate and compute the derived values."""
        self.validate()

    def derived_values(self) -> dict[str, Any]:
        """{name: value} of BATCH_SIZE, IMAGE_SHAPE and IMAGE_META_SIZE from the settings."""
        side = self.IMAGE_MIN_DIM if self.IMAGE_RESIZE_MODE == "crop" else self.IMAGE_MAX_DIM
        return {"BATCH_SIZE": self.IMAGES_PER_GPU * self.GPU_COUNT,
                "IMAGE_SHAPE": np.array([side, side, self.IMAGE_CHANNEL_COUNT]),
                "IMAGE_META_SIZE": meta_size(self.NUM_CLASSES)}

    def _update_derived(self) -> None:
        """Recompute the derived values; refuse one that was assigned directly.

        Raises:
            ValueError: a derived value differs from the one the last `validate()` computed.
        """
        last = self.__dict__.get("_derived", {})
        for name, value in self.derived_values().items():
            if name in last and name in self.__dict__ \
                    and not np.array_equal(self.__dict__[name], last[name]) \
                    and not np.array_equal(self.__dict__[name], value):
                checks.fail(f"Config {name}", self.__dict__[name],
                            f"is derived from {DERIVED[name]} and cannot be set; change those "
                            "settings instead")
        self._derived = self.derived_values()
        for name, value in self._derived.items():
            setattr(self, name, value)

    def _check_no_strings(self) -> None:
        """Raise a ValueError naming a base setting that holds a string where none belongs."""
        for name in dir(Config):
            if not name.isupper() or name in STRING_SETTINGS or name in DERIVED:
                continue
            value = getattr(self, name)
            items = value.values() if isinstance(value, dict) else (
                value if isinstance(value, (list, tuple, np.ndarray)) else [value])
            if any(isinstance(v, (str, np.str_)) for v in items):
                checks.fail(f"Config {name}", value, "must hold numbers, not strings (write "
                            f"{name} = 4, not {name} = '4')")

    # ------------------------------------------------------------------ introspection
    def to_dict(self) -> dict[str, Any]:
        """All upper-case settings as a dict of plain Python values (JSON-serializable
        except for callables, which are kept as they are)."""
        out = {}
        for name in sorted(dir(self)):
            if not name.isupper() or name.startswith("_"):
                continue
            value = getattr(self, name)
            if isinstance(value, np.ndarray):
                value = value.tolist()
            elif isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, np.generic):
                value = value.item()
            out[name] = value
        return out

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Config:
        """Make a config of this class with `values` overriding its class attributes.

        Raises:
            ValueError: a key that is not a known setting, or a value that does not validate.
        """
        derived = {"BATCH_SIZE", "IMAGE_SHAPE", "IMAGE_META_SIZE"}
        unknown = [k for k in values if k not in derived and not hasattr(cls, k)]
        if unknown:
            raise ValueError(f"Unknown config setting(s): {', '.join(sorted(unknown))}")
        overrides = {k: v for k, v in values.items() if k not in derived}
        for key in ("MEAN_PIXEL", "RPN_BBOX_STD_DEV", "BBOX_STD_DEV"):
            if key in overrides:
                overrides[key] = np.array(overrides[key], dtype=np.float64)
        config = cls.__new__(cls)
        for k, v in overrides.items():
            setattr(config, k, v)  # instance attributes shadow the class defaults
        config.__init__()
        return config

    def display(self) -> None:
        """Print the configuration values (matterport's format)."""
        print("\nConfigurations:")
        for name, value in self.to_dict().items():
            print(f"{name:30} {value}")
        print("\n")

    # ------------------------------------------------------------------ validation
    def validate(self) -> None:
        """Check that the settings can work together, then recompute the derived values.

        Raises:
            ValueError: naming the first setting that cannot work and its value (a string
                where a number belongs, a derived value assigned directly, ...).
        """
        def fail(field: str, value: Any, why: str) -> None:
            checks.fail(f"Config {field}", value, why)

        def setting(field: str) -> tuple[str, Any]:
            return f"Config {field}", getattr(self, field)

        self._check_no_strings()

        positive = ("GPU_COUNT", "IMAGES_PER_GPU", "STEPS_PER_EPOCH", "NUM_CLASSES",
                    "FPN_CLASSIF_FC_LAYERS_SIZE", "TOP_DOWN_PYRAMID_SIZE", "RPN_ANCHOR_STRIDE",
                    "RPN_TRAIN_ANCHORS_PER_IMAGE", "PRE_NMS_LIMIT", "POST_NMS_ROIS_TRAINING",
                    "POST_NMS_ROIS_INFERENCE", "IMAGE_MAX_DIM", "IMAGE_CHANNEL_COUNT",
                    "TRAIN_ROIS_PER_IMAGE", "POOL_SIZE", "MASK_POOL_SIZE", "MAX_GT_INSTANCES",
                    "DETECTION_MAX_INSTANCES")
        for field in positive:
            checks.check_positive_int(*setting(field))
        checks.check_int(*setting("VALIDATION_STEPS"), minimum=0)
        checks.check_one_of(*setting("IMAGE_RESIZE_MODE"), RESIZE_MODES)
        if self.IMAGE_MIN_DIM is not None:
            checks.check_int(*setting("IMAGE_MIN_DIM"), minimum=0)
        if self.IMAGE_RESIZE_MODE == "square" and self.IMAGE_MAX_DIM % 64:
            lower = self.IMAGE_MAX_DIM // 64 * 64
            advice = f"{lower} or {lower + 64}" if lower else "64"
            fail("IMAGE_MAX_DIM", self.IMAGE_MAX_DIM,
                 "must be divisible by 64 (2**6) in 'square' mode (it is the input's side), so "
                 f"the feature maps up and down the pyramid line up; try {advice}")
        if self.IMAGE_RESIZE_MODE == "pad64" and self.IMAGE_MIN_DIM and self.IMAGE_MIN_DIM % 64:
            lower = self.IMAGE_MIN_DIM // 64 * 64
            advice = f"{lower} or {lower + 64}" if lower else "64"
            fail("IMAGE_MIN_DIM", self.IMAGE_MIN_DIM,
                 "must be a multiple of 64 in 'pad64' mode (IMAGE_MAX_DIM is not used there); "
                 f"try {advice}, or 0/None for no upscaling")
        if self.IMAGE_RESIZE_MODE == "crop" and (not self.IMAGE_MIN_DIM or self.IMAGE_MIN_DIM % 64):
            fail("IMAGE_MIN_DIM", self.IMAGE_MIN_DIM,
                 "must be a positive multiple of 64 in 'crop' mode (it is the crop size)")
        if self.IMAGE_MIN_SCALE is not None and self.IMAGE_MIN_SCALE < 0:
            fail("IMAGE_MIN_SCALE", self.IMAGE_MIN_SCALE, "must be >= 0")
        if isinstance(self.BACKBONE, str):
            if self.BACKBONE not in BACKBONES:
                fail("BACKBONE", self.BACKBONE, f"must be one of {BACKBONES} or a callable")
        elif callable(self.BACKBONE):
            if not callable(self.COMPUTE_BACKBONE_SHAPE):
                fail("COMPUTE_BACKBONE_SHAPE", self.COMPUTE_BACKBONE_SHAPE,
                     "must be a callable when BACKBONE is a callable")
        else:
            fail("BACKBONE", self.BACKBONE, f"must be one of {BACKBONES} or a callable")
        if len(self.RPN_ANCHOR_SCALES) != len(self.BACKBONE_STRIDES):
            fail("RPN_ANCHOR_SCALES", tuple(self.RPN_ANCHOR_SCALES),
                 f"needs one scale per pyramid level: {len(self.BACKBONE_STRIDES)} "
                 f"(BACKBONE_STRIDES={list(self.BACKBONE_STRIDES)})")
        if any(s <= 0 for s in self.RPN_ANCHOR_SCALES):
            fail("RPN_ANCHOR_SCALES", tuple(self.RPN_ANCHOR_SCALES), "scales must be positive")
        if not len(self.RPN_ANCHOR_RATIOS) or any(r <= 0 for r in self.RPN_ANCHOR_RATIOS):
            fail("RPN_ANCHOR_RATIOS", list(self.RPN_ANCHOR_RATIOS),
                 "must be a non-empty list of positive width/height ratios")
        if len(np.atleast_1d(self.MEAN_PIXEL)) != self.IMAGE_CHANNEL_COUNT:
            fail("MEAN_PIXEL", np.atleast_1d(self.MEAN_PIXEL).tolist(),
                 f"needs one value per channel: IMAGE_CHANNEL_COUNT={self.IMAGE_CHANNEL_COUNT}")
        for field in ("ROI_POSITIVE_RATIO", "RPN_NMS_THRESHOLD", "DETECTION_NMS_THRESHOLD"):
            checks.check_fraction(*setting(field))
        checks.check_fraction(*setting("DETECTION_MIN_CONFIDENCE"), allow_zero=True)
        checks.check_one_of(*setting("MIXED_PRECISION"), MIXED_PRECISION_POLICIES)
        checks.check_one_of(*setting("DISTRIBUTION"), DISTRIBUTIONS)
        if self.MASK_ON_POSITIVE_ROIS and int(self.TRAIN_ROIS_PER_IMAGE
                                               * self.ROI_POSITIVE_RATIO) < 1:
            fail("ROI_POSITIVE_RATIO", self.ROI_POSITIVE_RATIO,
                 f"with TRAIN_ROIS_PER_IMAGE={self.TRAIN_ROIS_PER_IMAGE} it allows no positive "
                 "ROI per image; raise one of them")
        if list(self.MASK_SHAPE) != [2 * self.MASK_POOL_SIZE] * 2:
            fail("MASK_SHAPE", list(self.MASK_SHAPE),
                 f"the mask head upsamples MASK_POOL_SIZE={self.MASK_POOL_SIZE} by 2, so it must "
                 f"be {[2 * self.MASK_POOL_SIZE] * 2}")
        checks.check_height_width(*setting("MINI_MASK_SHAPE"))
        for field in ("RPN_BBOX_STD_DEV", "BBOX_STD_DEV"):
            checks.check_positive_floats(*setting(field), length=4)
        unknown = set(self.LOSS_WEIGHTS) - set(LOSS_NAMES)
        if unknown:
            fail("LOSS_WEIGHTS", dict(self.LOSS_WEIGHTS),
                 f"unknown loss name(s) {sorted(unknown)}; known: {list(LOSS_NAMES)}")
        if any(w < 0 for w in self.LOSS_WEIGHTS.values()):
            fail("LOSS_WEIGHTS", dict(self.LOSS_WEIGHTS), "weights must be >= 0")
        if self.GRADIENT_CLIP_NORM is not None and self.GRADIENT_CLIP_NORM <= 0:
            fail("GRADIENT_CLIP_NORM", self.GRADIENT_CLIP_NORM, "must be > 0 or None")
        if self.LEARNING_RATE <= 0:
            fail("LEARNING_RATE", self.LEARNING_RATE, "must be > 0")
        if self.WEIGHT_DECAY < 0:
            fail("WEIGHT_DECAY", self.WEIGHT_DECAY, "must be >= 0")
        self._update_derived()
