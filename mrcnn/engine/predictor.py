"""The predictor (numpy around the graph): mold the inputs, run the graph, unmold the results.

Images of different sizes can be detected in one call: each is resized and molded on its
own, then all are padded with black (molded: -MEAN_PIXEL, as resize_image's own padding and
the training generator) to the largest height and width in the batch. The image meta records
the padded shape, so normalized coordinates stay consistent with the input tensor.

Input checks (`prepare_images`), consistent with `Dataset.load_image` on the training side:
a list (or a [N, H, W, C] array) of images is required, and a single [H, W, C] array is a
TypeError that says to pass `[image]`. Each image must be [H, W, IMAGE_CHANNEL_COUNT] (or
[H, W] with one channel), at least MIN_IMAGE_SIDE pixels high and wide, numeric, and free of
NaN and infinite values; otherwise a ValueError names the image's index, shape and dtype.
Pixel values are converted as `load_image` converts them, with a warning naming the image:
floats whose values all lie in [0, 1] are scaled by 255; floats outside [0, 255] are clipped;
uint16, bool and other integer images are brought to uint8 by `to_uint8` (uint16 / 257, bool
0/255). uint8 images and floats in [0, 255] (with some value above 1) are used as they are.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np

from mrcnn.data.dataset import check_image_size, check_pixels, to_uint8
from mrcnn.structures.anchors import anchors_for_config
from mrcnn.structures.boxes import denorm_boxes, norm_boxes
from mrcnn.structures.image import mold_image, resize_image
from mrcnn.structures.image_meta import compose_image_meta, parse_image_meta
from mrcnn.structures.masks import unmold_mask

logger = logging.getLogger(__name__)


def check_images(images: Sequence[np.ndarray], channels: int) -> None:
    """Raise a clear error for an empty list or images of the wrong rank, channel count or size.

    Raises:
        TypeError: `images` is one [H, W, C] (or [H, W]) array instead of a list of images.
        ValueError: naming the index and shape of the first bad image.
    """
    if isinstance(images, np.ndarray) and (
            images.ndim == 2 or (images.ndim == 3 and images.shape[-1] == channels)):
        raise TypeError(f"detect() takes a list of images, got one array of shape "
                        f"{images.shape}; pass [image]")
    if images is None or len(images) == 0:
        raise ValueError("detect() needs a non-empty list of images")
    for i, image in enumerate(images):
        image = np.asarray(image)
        if not (image.ndim == 2 and channels == 1) and (
                image.ndim != 3 or image.shape[-1] != channels):
            raise ValueError(f"image {i} has shape {image.shape}; expected [height, width, "
                             f"{channels}] (IMAGE_CHANNEL_COUNT={channels})")
        if image.shape[0] == 0 or image.shape[1] == 0:
            raise ValueError(f"image {i} is empty: shape {image.shape}")
        check_image_size(image, f"image {i}")


def prepare_image(image: np.ndarray, index: int) -> np.ndarray:
    """One image's pixels brought to the network's [0, 255] range (rules in the module doc).

    Args:
        image: [H, W(, C)] array of any numeric dtype.
        index: its position in the list, for messages.

    Returns:
        The image, unchanged when it is uint8 or a float in [0, 255], else converted.

    Raises:
        ValueError: a non-numeric dtype or NaN/infinite pixels, naming the index.
    """
    where = f"image {index} (shape {image.shape}, dtype {image.dtype})"
    image = check_pixels(image, where)
    if image.dtype == np.uint8 or image.size == 0:
        return image
    low, high = float(image.min()), float(image.max())
    if np.issubdtype(image.dtype, np.floating):
        if high <= 1 and low >= 0:
            logger.warning("%s: values in [%g, %g] look like [0, 1]; scaled by 255 (as "
                           "Dataset.load_image does); pass uint8 images to avoid this", where,
                           low, high)
            return image * 255.0
        if low < 0 or high > 255:
            logger.warning("%s: values in [%g, %g] clipped to [0, 255] (as "
                           "Dataset.load_image does)", where, low, high)
            return np.clip(image, 0, 255)
        return image
    converted = to_uint8(image)
    if image.dtype == np.bool_ or high > 255 or low < 0:
        logger.warning("%s: converted to uint8 as Dataset.load_image does (uint16 / 257, bool "
                       "0/255, other integers scaled from their type's range)", where)
    return converted


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

    Raises:
        TypeError, ValueError: bad images, see `check_images` and `prepare_image`.
    """
    check_images(images, config.IMAGE_CHANNEL_COUNT)
    molded, windows, metas = [], [], []
    for i, image in enumerate(images):
        image = prepare_image(np.asarray(image), i)
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


def unmold_batch(detections: np.ndarray, mrcnn_mask: np.ndarray,
                 original_shapes: Sequence[Sequence[int]], image_shapes: Sequence[Sequence[int]],
                 windows: Sequence[Sequence[int]]) -> list[dict]:
    """`unmold_detections` for every image of a batch, as matterport's result dicts.

    Args:
        detections: [batch, N, (y1, x1, y2, x2, class_id, score)], the graph's output.
        mrcnn_mask: [batch, N, height, width, num_classes].
        original_shapes: per image, the [H, W, C] to map the results to.
        image_shapes: per image, the [H, W, C] of the (padded) network input.
        windows: per image, the [y1, x1, y2, x2] pixel window of the image in the input.

    Returns:
        One dict per image: rois [N, (y1, x1, y2, x2)] pixels, class_ids [N], scores [N],
        masks [H, W, N] bool.
    """
    results = []
    for i in range(len(original_shapes)):
        rois, class_ids, scores, masks = unmold_detections(
            np.asarray(detections[i]), np.asarray(mrcnn_mask[i]), original_shapes[i],
            image_shapes[i], windows[i])
        results.append({"rois": rois, "class_ids": class_ids, "scores": scores,
                        "masks": masks})
    return results


def detect_images(keras_model: Any, config: Any, images: Sequence[np.ndarray]) -> list[dict]:
    """matterport's detect(): mold, run `keras_model` (an inference graph), unmold.

    Returns:
        One dict per image: rois [N, (y1, x1, y2, x2)] pixels, class_ids [N], scores [N],
        masks [H, W, N] bool, in the coordinates of each original image.
    """
    molded, metas, windows = mold_inputs(images, config)
    detections, _, _, mrcnn_mask, _, _, _ = predict_molded(keras_model, config, molded, metas)
    return unmold_batch(detections, mrcnn_mask, [np.asarray(image).shape for image in images],
                        [m.shape for m in molded], windows)


def detect_molded(keras_model: Any, config: Any, molded_images: np.ndarray,
                  image_metas: np.ndarray) -> list[dict]:
    """matterport's detect_molded(): run on images already molded (e.g. by load_image_gt and
    mold_image) and unmold with the windows of their metas.

    Args:
        molded_images: [batch, H, W, C] molded images.
        image_metas: [batch, IMAGE_META_SIZE], their metas.

    Returns:
        One result dict per image (see `detect_images`), in the molded images' coordinates.
    """
    molded_images = np.asarray(molded_images, np.float32)
    detections, _, _, mrcnn_mask, _, _, _ = predict_molded(keras_model, config, molded_images,
                                                           image_metas)
    windows = parse_image_meta(np.asarray(image_metas))["window"]
    shapes = [image.shape for image in molded_images]
    return unmold_batch(detections, mrcnn_mask, shapes, shapes, windows)


def run_graph(keras_model: Any, config: Any, images: Sequence[np.ndarray], outputs: Sequence,
              image_metas: np.ndarray | None = None, with_anchors: bool = True
              ) -> OrderedDict:
    """Run `keras_model` up to named intermediate outputs (matterport's run_graph).

    Args:
        keras_model: a Mask R-CNN graph.
        config: its Config.
        images: images to mold, or molded images when `image_metas` is given.
        outputs: [(name, tensor)] pairs, e.g. ("proposals",
            keras_model.get_layer("ROI").output), or plain layer names.
        image_metas: [batch, IMAGE_META_SIZE] metas of already molded `images`.
        with_anchors: feed the anchors of the molded shape as the third input (the
            inference graph has an `input_anchors` input; the training graph does not).

    Returns:
        {name: array} in the order of `outputs`.
    """
    import keras

    pairs = [(o, keras_model.get_layer(o).output) if isinstance(o, str) else tuple(o)
             for o in outputs]
    sub = keras.Model(keras_model.inputs, [t for _, t in pairs])
    if image_metas is None:
        molded, image_metas, _ = mold_inputs(images, config)
    else:
        molded = np.asarray(images, np.float32)
    inputs = [molded, image_metas]
    if with_anchors:
        anchors = anchors_for_config(config, tuple(molded.shape[1:3]), normalized=True)
        inputs.append(np.broadcast_to(anchors, (len(molded),) + anchors.shape))
    values = sub.predict_on_batch(inputs)
    if len(pairs) == 1:
        values = [values]
    return OrderedDict((name, np.asarray(v)) for (name, _), v in zip(pairs, values))
