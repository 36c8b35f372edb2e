"""Compatibility facade: matterport's `mrcnn.utils` names, re-exported from their modules.

Old code keeps working with `from mrcnn import utils`; new code can import from the
modules that own each function. Importing this module does not import TensorFlow.
"""

from __future__ import annotations

from mrcnn.data.dataset import Dataset
from mrcnn.evaluation.metrics import compute_ap, compute_ap_range, compute_matches, compute_recall
from mrcnn.structures.anchors import generate_anchors, generate_pyramid_anchors
from mrcnn.structures.boxes import (
    apply_box_deltas,
    box_refinement,
    compute_iou,
    compute_overlaps,
    compute_overlaps_masks,
    denorm_boxes,
    extract_bboxes,
    non_max_suppression,
    norm_boxes,
    trim_zeros,
)
from mrcnn.structures.image import resize, resize_image
from mrcnn.structures.image_meta import compose_image_meta, parse_image_meta
from mrcnn.structures.masks import expand_mask, minimize_mask, resize_mask, unmold_mask

COCO_MODEL_URL = "https://github.com/matterport/Mask_RCNN/releases/download/v2.0/mask_rcnn_coco.h5"

__all__ = [
    "Dataset", "extract_bboxes", "compute_iou", "compute_overlaps", "compute_overlaps_masks",
    "non_max_suppression", "box_refinement", "apply_box_deltas", "resize_image", "resize_mask",
    "minimize_mask", "expand_mask", "unmold_mask", "generate_anchors",
    "generate_pyramid_anchors", "trim_zeros", "compute_matches", "compute_ap",
    "compute_ap_range", "compute_recall", "norm_boxes", "denorm_boxes", "resize",
    "batch_slice", "download_trained_weights", "COCO_MODEL_URL", "compose_image_meta",
    "parse_image_meta", "parse_image_meta_graph",
]


def batch_slice(inputs, graph_fn, batch_size, names=None):
    """matterport's batch_slice (TensorFlow); see mrcnn.modeling.graph_ops.batch_slice."""
    from mrcnn.modeling.graph_ops import batch_slice as _batch_slice

    return _batch_slice(inputs, graph_fn, batch_size, names=names)


def parse_image_meta_graph(meta):
    """matterport's parse_image_meta_graph (TensorFlow); see
    mrcnn.modeling.graph_ops.parse_image_meta_graph."""
    from mrcnn.modeling.graph_ops import parse_image_meta_graph as _parse_image_meta_graph

    return _parse_image_meta_graph(meta)


def download_trained_weights(coco_model_path, verbose=1):
    """Kept for old code. This project never downloads at run time.

    Raises:
        FileNotFoundError: always when the file is missing, saying where to get it.
    """
    import os

    if os.path.isfile(coco_model_path):
        return
    raise FileNotFoundError(
        f"{coco_model_path!r} is missing. mrcnn does not download weights: fetch "
        f"mask_rcnn_coco.h5 yourself (matterport's release: {COCO_MODEL_URL}) and put it there.")
