"""A SavedModel for TensorFlow Serving: uint8 images in, detections in image pixels out.

    from mrcnn.export import export_saved_model
    export_saved_model(model.keras_model, config, "export/1", class_names=dataset.class_names)

    # anywhere with TensorFlow only:
    served = tf.saved_model.load("export/1")
    out = served.signatures["serving_default"](images=tf.constant(batch_uint8))
    out["num_detections"], out["boxes"], out["class_ids"], out["scores"], out["masks"]

The `serving_default` signature does what `MaskRCNN.detect` does on the host, inside the graph:
resize and pad each image as `IMAGE_RESIZE_MODE="square"` does (`structures.image.
resize_image`), subtract the mean pixel, add the anchors of the padded size, run the inference
network, then map the boxes back to the input image's pixels, drop zero-area boxes and paste
each mask into a full-size 0/1 mask (`structures.masks.unmold_mask`). The class names and the
config travel with the model as assets (`assets/class_names.txt`, `assets/config.json`).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from mrcnn.export.graph import (
    compose_image_meta_graph,
    paste_masks_graph,
    resize_square_graph,
    unmold_boxes_graph,
)
from mrcnn.structures.anchors import anchors_for_config

logger = logging.getLogger(__name__)

SIGNATURE_KEY = "serving_default"
OUTPUT_KEYS = ("num_detections", "boxes", "class_ids", "scores", "masks")


def check_exportable(config: Any) -> None:
    """Raise ValueError for settings the serving graph does not reproduce.

    The graph reproduces "square" resizing, where every input becomes one fixed
    [IMAGE_MAX_DIM, IMAGE_MAX_DIM] tensor, so the anchors are a constant of the model.
    """
    if config.IMAGE_RESIZE_MODE != "square":
        raise ValueError(
            f"export needs IMAGE_RESIZE_MODE='square' (the molded size, and so the anchors, "
            f"are then fixed); got {config.IMAGE_RESIZE_MODE!r}. Export with a config whose "
            "IMAGE_RESIZE_MODE is 'square'")
    if config.IMAGE_CHANNEL_COUNT != 3:
        raise ValueError(f"export takes RGB images: IMAGE_CHANNEL_COUNT must be 3, got "
                         f"{config.IMAGE_CHANNEL_COUNT}")


class ServingModule(tf.Module):
    """The inference network wrapped with pre- and post-processing.

    Args:
        keras_model: an inference-mode Mask R-CNN graph ([input_image, input_image_meta,
            input_anchors] -> [detections, mrcnn_class, mrcnn_bbox, mrcnn_mask, ...]).
        config: its Config ("square" resizing, 3 channels).
    """

    def __init__(self, keras_model: Any, config: Any) -> None:
        super().__init__(name="mask_rcnn_serving")
        check_exportable(config)
        self.model = keras_model
        self.size = int(config.IMAGE_MAX_DIM)
        self.min_dim = int(config.IMAGE_MIN_DIM or 0)
        self.min_scale = float(config.IMAGE_MIN_SCALE or 0)
        self.num_classes = int(config.NUM_CLASSES)
        self.max_detections = int(config.DETECTION_MAX_INSTANCES)
        self.mean_pixel = tf.constant(np.asarray(config.MEAN_PIXEL, np.float32))
        anchors = anchors_for_config(config, (self.size, self.size), normalized=True)
        self.anchors = tf.constant(np.asarray(anchors, np.float32))

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8,
                                                name="images")])
    def serve(self, images: tf.Tensor) -> dict[str, tf.Tensor]:
        """Detect instances in a batch of same-size RGB images.

        Args:
            images: [batch, height, width, 3] uint8, any height and width.

        Returns:
            num_detections: [batch] int32, the valid rows of each image.
            boxes: [batch, max_detections, (y1, x1, y2, x2)] float32 pixels of the input
                image (y2, x2 exclusive), zero beyond num_detections.
            class_ids: [batch, max_detections] int32. scores: [batch, max_detections] float32.
            masks: [batch, max_detections, height, width] uint8 0/1.
        """
        shape = tf.shape(images)
        batch, height, width = shape[0], shape[1], shape[2]
        resized, window, scale = resize_square_graph(images, self.size, self.min_dim,
                                                     self.min_scale)
        molded = resized - self.mean_pixel
        meta = compose_image_meta_graph(batch, height, width, self.size, window, scale,
                                        self.num_classes)
        anchors = tf.broadcast_to(self.anchors[tf.newaxis],
                                  tf.concat([[batch], tf.shape(self.anchors)], 0))
        outputs = self.model([molded, meta, anchors], training=False)
        detections = tf.cast(outputs[0], tf.float32)
        mrcnn_mask = tf.cast(outputs[3], tf.float32)
        count, boxes, class_ids, scores, order = unmold_boxes_graph(
            detections, window, self.size, height, width)
        # The mask of each detection's own class, in the compacted order of the boxes.
        class_masks = tf.gather(mrcnn_mask, tf.cast(detections[..., 4], tf.int32), axis=4,
                                batch_dims=2)
        class_masks = tf.gather(class_masks, order, axis=1, batch_dims=1)
        masks = paste_masks_graph(class_masks, boxes, count, height, width)
        return {"num_detections": count, "boxes": boxes, "class_ids": class_ids,
                "scores": scores, "masks": masks}


def _write_assets(folder: str, config: Any, class_names: Sequence[str] | None) -> list[str]:
    names = list(class_names) if class_names is not None else (
        ["BG"] + [f"class {i}" for i in range(1, int(config.NUM_CLASSES))])
    if len(names) != int(config.NUM_CLASSES):
        raise ValueError(f"class_names has {len(names)} names but NUM_CLASSES is "
                         f"{config.NUM_CLASSES} (the background counts as one)")
    paths = [os.path.join(folder, "class_names.txt"), os.path.join(folder, "config.json")]
    with open(paths[0], "w", encoding="utf-8") as f:
        f.write("\n".join(str(n) for n in names) + "\n")
    settings = config.to_dict() if hasattr(config, "to_dict") else {}
    with open(paths[1], "w", encoding="utf-8") as f:
        json.dump(settings, f, indent=1, sort_keys=True, default=_plain)
    return paths


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if callable(value):
        return getattr(value, "__name__", repr(value))
    return repr(value)


def export_saved_model(keras_model: Any, config: Any, export_dir: str,
                       class_names: Sequence[str] | None = None) -> str:
    """Write a SavedModel with the `serving_default` signature described in the module doc.

    The directory is written next to its final place and renamed into it, so a serving
    process that watches `export_dir` never sees half a model.

    Args:
        keras_model: an inference-mode Mask R-CNN graph (`MaskRCNN(mode="inference")`'s
            keras_model) with its trained weights.
        config: its Config.
        export_dir: the SavedModel directory to create (must not exist, or be empty).
        class_names: the NUM_CLASSES names, background first (e.g. `dataset.class_names`);
            default "BG", "class 1", ...

    Returns:
        export_dir.

    Raises:
        ValueError: the config is not exportable, the class names do not match NUM_CLASSES,
            or export_dir exists and is not empty.
    """
    export_dir = os.path.abspath(os.fspath(export_dir))
    if os.path.exists(export_dir) and (not os.path.isdir(export_dir) or os.listdir(export_dir)):
        raise ValueError(f"export_dir {export_dir!r} exists and is not empty")
    module = ServingModule(keras_model, config)
    parent = os.path.dirname(export_dir)
    os.makedirs(parent, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=parent, prefix=".export-") as tmp:
        assets = os.path.join(tmp, "assets-src")
        os.makedirs(assets)
        module.assets = [tf.saved_model.Asset(p) for p in
                         _write_assets(assets, config, class_names)]
        staging = os.path.join(tmp, "model")
        tf.saved_model.save(module, staging,
                            signatures={SIGNATURE_KEY: module.serve.get_concrete_function()})
        _apply_umask(staging)
        if os.path.isdir(export_dir):
            os.rmdir(export_dir)
        os.replace(staging, export_dir)
    logger.info("Exported the serving SavedModel to %s", export_dir)
    return export_dir


def _apply_umask(folder: str) -> None:
    """Give the exported files the modes the user's umask asks for (temp dirs are 0700)."""
    umask = os.umask(0)
    os.umask(umask)
    for root, dirs, files in os.walk(folder):
        for d in dirs:
            os.chmod(os.path.join(root, d), 0o777 & ~umask)
        for f in files:
            os.chmod(os.path.join(root, f), 0o666 & ~umask)
    os.chmod(folder, 0o777 & ~umask)


def read_class_names(export_dir: str) -> list[str]:
    """The class names stored with an exported model (background first)."""
    with open(os.path.join(export_dir, "assets", "class_names.txt"), encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f if line.strip()]
