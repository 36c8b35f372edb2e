"""Inference pre- and post-processing (numpy): mold_inputs and unmold_detections.

Images of different sizes can be detected in one call: each is resized and molded on its
own, then all are padded with black (molded: -MEAN_PIXEL, as resize_image's own padding and
the training generator) to the largest height and width in the batch. The image meta records
the padded shape, so normalized coordinates stay consistent with the input tensor.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from mrcnn.structures.anchors import anchors_for_config
from mrcnn.structures.boxes import denorm_boxes, norm_boxes
from mrcnn.structures.image import mold_image, resize_image
from mrcnn.structures.image_meta import compose_image_meta
from mrcnn.structures.masks import unmold_mask

logger = logging.getLogger(__name__)


def check_images(images: Sequence[np.ndarray], channels: int) -> None:
    """Raise a clear error for an empty list or images of the wrong rank or channel count.

    Raises:
        ValueError: naming the index and shape of the first bad image.
    """
    if images is None or len(images) == 0:
        raise ValueError("detect() needs a non-empty list of images")
    for i, image in enumerate(images):
        image = np.asarray(image)
        if image.ndim == 2 and channels == 1:
            continue
        if image.ndim != 3 or image.shape[-1] != channels:
            raise ValueError(f"image {i} has shape {image.shape}; expected [height, width, "
                             f"{channels}] (IMAGE_CHANNEL_COUNT={channels})")
        if image.shape[0] == 0 or image.shape[1] == 0:
            raise ValueError(f"image {i} is empty: shape {image.shape}")


def mold_inputs(images: Sequence[np.ndarray], config: Any
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Resize, mold and batch images for the network.

    Args:
        images: list of [H, W, C] images (H, W may differ between images).
        config: the model's Config.

    Returns:
        molded_images: [N, h, w, C] float32, mean-subtracted, padded to a common size.
        image_metas: [N, IMAGE_META_SIZE] float32.
        windows: [N, (y1, x1, y2, x2)] int32, the image inside each padded input (pixels).
    """
    check_images(images, config.IMAGE_CHANNEL_COUNT)
    molded, windows, metas = [], [], []
    for image in images:
        image = np.asarray(image)
        if image.ndim == 2:
            image = image[..., np.newaxis]
        resized, window, scale, _, _ = resize_image(
            image, min_dim=config.IMAGE_MIN_DIM, max_dim=config.IMAGE_MAX_DIM,
            min_scale=config.IMAGE_MIN_SCALE, mode=config.IMAGE_RESIZE_MODE)
        molded.append(mold_image(resized, config))
        windows.append(window)
        metas.append((image.shape, scale))
    height = max(m.shape[0] for m in molded)
    width = max(m.shape[1] for m in molded)
    # Pad with molded black, as resize_image's own padding and the training generator do.
    batch = np.empty((len(molded), height, width, config.IMAGE_CHANNEL_COUNT), np.float32)
    batch[:] = mold_image(np.zeros(config.IMAGE_CHANNEL_COUNT, np.float32), config)
    image_metas = []
    for i, (m, (original_shape, scale)) in enumerate(zip(molded, metas)):
        batch[i, :m.shape[0], :m.shape[1]] = m
        image_metas.append(compose_image_meta(
            0, original_shape, (height, width, config.IMAGE_CHANNEL_COUNT), windows[i], scale,
            np.zeros([config.NUM_CLASSES], dtype=np.int32)))
    return batch, np.stack(image_metas).astype(np.float32), np.array(windows, np.int32)


def unmold_detections(detections: np.ndarray, mrcnn_mask: np.ndarray,
                      original_image_shape: Sequence[int], image_shape: Sequence[int],
                      window: Sequence[int]
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Turn one image's raw detections into boxes, class ids, scores and full-size masks.

    Args:
        detections: [N, (y1, x1, y2, x2, class_id, score)] in normalized coordinates of the
            input tensor, zero-padded.
        mrcnn_mask: [N, height, width, num_classes] mask probabilities.
        original_image_shape: [H, W, C] before resizing.
        image_shape: [H, W, C] of the (padded) network input.
        window: [y1, x1, y2, x2] pixel window of the real image inside the input.

    Returns:
        boxes: [N', (y1, x1, y2, x2)] int32 pixel boxes in the original image.
        class_ids: [N'] int32. scores: [N'] float32. masks: [H, W, N'] bool.
    """
    zero_ix = np.where(detections[:, 4] == 0)[0]
    n = zero_ix[0] if zero_ix.shape[0] > 0 else detections.shape[0]
    boxes = detections[:n, :4]
    class_ids = detections[:n, 4].astype(np.int32)
    scores = detections[:n, 5].astype(np.float32)
    masks = mrcnn_mask[np.arange(n), :, :, class_ids]

    # Normalized input-tensor coordinates -> normalized window coordinates -> original pixels.
    window = norm_boxes(np.asarray(window), image_shape[:2])
    wy1, wx1, wy2, wx2 = window
    shift = np.array([wy1, wx1, wy1, wx1])
    scale = np.array([wy2 - wy1, wx2 - wx1, wy2 - wy1, wx2 - wx1])
    boxes = np.divide(boxes - shift, scale)
    boxes = denorm_boxes(boxes, original_image_shape[:2])

    # Drop boxes with zero area (can happen early in training).
    keep = np.where((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) > 0)[0]
    boxes, class_ids, scores, masks = boxes[keep], class_ids[keep], scores[keep], masks[keep]
    n = boxes.shape[0]
    full = [unmold_mask(masks[i], boxes[i], original_image_shape) for i in range(n)]
    full_masks = (np.stack(full, axis=-1) if full
                  else np.zeros(tuple(original_image_shape[:2]) + (0,), dtype=bool))
    return boxes.astype(np.int32), class_ids, scores, full_masks


def predict_molded(keras_model: Any, config: Any, molded_images: np.ndarray,
                   image_metas: np.ndarray) -> list:
    """Run an inference graph on molded images, adding the anchors for their shape.

    Returns:
        The graph's outputs: [detections, mrcnn_class, mrcnn_bbox, mrcnn_mask, rpn_rois,
        rpn_class, rpn_bbox], each with the batch axis first.
    """
    anchors = anchors_for_config(config, tuple(molded_images.shape[1:3]), normalized=True)
    anchors = np.broadcast_to(anchors, (len(molded_images),) + anchors.shape)
    return keras_model.predict_on_batch([molded_images, image_metas, anchors])


def detect_images(keras_model: Any, config: Any, images: Sequence[np.ndarray]) -> list[dict]:
    """matterport's detect(): mold, run `keras_model` (an inference graph), unmold.

    Returns:
        One dict per image: rois [N, (y1, x1, y2, x2)] pixels, class_ids [N], scores [N],
        masks [H, W, N] bool, in the coordinates of each original image.
    """
    molded, metas, windows = mold_inputs(images, config)
    detections, _, _, mrcnn_mask, _, _, _ = predict_molded(keras_model, config, molded, metas)
    results = []
    for i, image in enumerate(images):
        rois, class_ids, scores, masks = unmold_detections(
            np.asarray(detections[i]), np.asarray(mrcnn_mask[i]), np.asarray(image).shape,
            molded[i].shape, windows[i])
        results.append({"rois": rois, "class_ids": class_ids, "scores": scores,
                        "masks": masks})
    return results
