"""Weights I/O: matterport's Keras-2 HDF5 layout, TF checkpoints, whole models.

    from mrcnn.checkpoint import load_weights_h5, save_weights_h5
    report = load_weights_h5(model, "mask_rcnn_coco.h5", by_name=True,
                             exclude=["mrcnn_class_logits", "mrcnn_bbox_fc",
                                      "mrcnn_bbox", "mrcnn_mask"])
    print(report)
"""

from mrcnn.checkpoint.full_model import load_model, save_model
from mrcnn.checkpoint.h5_format import read_h5_extras, save_weights_h5
from mrcnn.checkpoint.loading import load_weights_h5
from mrcnn.checkpoint.optimizer_state import load_optimizer_state
from mrcnn.checkpoint.report import LoadReport
from mrcnn.checkpoint.tf_checkpoint import (
    list_checkpoint_variables,
    load_tf_checkpoint,
    read_checkpoint_variable,
)

__all__ = [
    "LoadReport",
    "list_checkpoint_variables",
    "load_model",
    "load_optimizer_state",
    "load_tf_checkpoint",
    "load_weights_h5",
    "read_checkpoint_variable",
    "read_h5_extras",
    "save_model",
    "save_weights_h5",
]
