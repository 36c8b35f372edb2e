"""Custom Keras layers of Mask R-CNN. Each takes plain arguments, implements get_config and is
registered as `mrcnn>ClassName`: importing this package is enough for `keras.saving.load_model`
to rebuild a saved model without `custom_objects`."""

from mrcnn.modeling.layers.batch_norm import BatchNorm
from mrcnn.modeling.layers.conv import WholeMapConv2D
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
    TakeFirst,
    TakePositiveRows,
)
from mrcnn.modeling.layers.proposal import ProposalLayer
from mrcnn.modeling.layers.roi_align import PyramidROIAlign
from mrcnn.modeling.layers.time_distributed import TimeDistributed

__all__ = [
    "AnchorsLayer", "BatchNorm", "DetectionBoxes", "DetectionLayer", "DetectionRows",
    "DetectionTargetLayer", "IdentityLayer", "ImageMetaField", "LossLayer", "NormBoxes",
    "ProposalLayer", "PyramidROIAlign", "ScatterDetectionMasks", "TakeFirst", "TakePositiveRows",
    "TimeDistributed",
    "WholeMapConv2D",
]
