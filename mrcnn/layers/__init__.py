"""Custom Keras layers of Mask R-CNN. Each takes plain arguments and implements get_config."""

from mrcnn.layers.batch_norm import BatchNorm
from mrcnn.layers.detection import DetectionLayer
from mrcnn.layers.detection_target import DetectionTargetLayer
from mrcnn.layers.misc import (
    AnchorsLayer,
    DetectionBoxes,
    IdentityLayer,
    ImageMetaField,
    NormBoxes,
    SqueezeSpatial,
    TakeFirst,
)
from mrcnn.layers.proposal import ProposalLayer
from mrcnn.layers.roi_align import PyramidROIAlign
from mrcnn.layers.time_distributed import TimeDistributed

__all__ = [
    "AnchorsLayer", "BatchNorm", "DetectionBoxes", "DetectionLayer", "DetectionTargetLayer",
    "IdentityLayer", "ImageMetaField", "NormBoxes", "ProposalLayer", "PyramidROIAlign",
    "SqueezeSpatial", "TakeFirst", "TimeDistributed",
]
