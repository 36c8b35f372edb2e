"""Custom Keras layers of Mask R-CNN. Each takes plain arguments and implements get_config."""

from mrcnn.modeling.layers.batch_norm import BatchNorm
from mrcnn.modeling.layers.detection import DetectionLayer
from mrcnn.modeling.layers.detection_target import DetectionTargetLayer
from mrcnn.modeling.layers.misc import (
    AnchorsLayer,
    DetectionBoxes,
    IdentityLayer,
    ImageMetaField,
    NormBoxes,
    SqueezeSpatial,
    TakeFirst,
)
from mrcnn.modeling.layers.proposal import ProposalLayer
from mrcnn.modeling.layers.roi_align import PyramidROIAlign
from mrcnn.modeling.layers.time_distributed import TimeDistributed

__all__ = [
    "AnchorsLayer", "BatchNorm", "DetectionBoxes", "DetectionLayer", "DetectionTargetLayer",
    "IdentityLayer", "ImageMetaField", "NormBoxes", "ProposalLayer", "PyramidROIAlign",
    "SqueezeSpatial", "TakeFirst", "TimeDistributed",
]
