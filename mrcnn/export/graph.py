"""TF twins of the host-side pre- and post-processing, for the serving graph.

Each function mirrors a numpy function of `mrcnn.structures` / `mrcnn.engine.predictor` so that
an exported model gives what `MaskRCNN.detect` gives:

- `resize_square_graph`: `structures.image.resize_image(mode="square")` (bilinear with
  half-pixel centres, zero outside the image on upsampled borders, rounded, zero padding).
- `compose_image_meta_graph`: `structures.image_meta.compose_image_meta` for a batch.
- `unmold_boxes_graph`: the box part of `engine.predictor.unmold_detections` (window
  coordinates back to the input image's pixels, zero-area boxes dropped).
- `paste_masks_graph`: `structures.masks.unmold_mask` (bilinear resize to the box with the
  edge repeated, threshold 0.5, paste into a full-size mask).
"""

from __future__ import annotations

import tensorflow as tf

from mrcnn.structures.image_meta import FIELD_NAMES


def _border_weights(n_in: tf.Tensor, n_out: tf.Tensor) -> tf.Tensor:
    """[n_out] weight an upsampled row/column keeps when the outside of the input is zero
    (skimage's "constant" border); 1 everywhere when downsampling."""
    n_in_f, n_out_f = tf.cast(n_in, tf.float32), tf.cast(n_out, tf.float32)
    src = (tf.range(n_out_f) + 0.5) * (n_in_f / n_out_f) - 0.5
    weight = 1.0 - tf.maximum(0.0, -src) - tf.maximum(0.0, src - (n_in_f - 1.0))
    return tf.where(n_out > n_in, weight, tf.ones_like(weight))


def resize_square_graph(images: tf.Tensor, size: int, min_dim: int, min_scale: float
                        ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Resize and pad a batch of same-size images as `resize_image(mode="square")` does.

    Args:
        images: [batch, height, width, channels] uint8.
        size: IMAGE_MAX_DIM, the side of the square result.
        min_dim: IMAGE_MIN_DIM (0: none). min_scale: IMAGE_MIN_SCALE (0: none).

    Returns:
        resized: [batch, size, size, channels] float32 pixel values (integers, 0 padding).
        window: [(y1, x1, y2, x2)] int32 pixels of the image inside the square.
        scale: float32 scalar, the factor applied.
    """
    shape = tf.shape(images)
    h, w = shape[1], shape[2]
    hf, wf = tf.cast(h, tf.float64), tf.cast(w, tf.float64)
    scale = tf.constant(1.0, tf.float64)
    if min_dim:
        scale = tf.maximum(scale, min_dim / tf.minimum(hf, wf))
    if min_scale:
        scale = tf.maximum(scale, tf.constant(min_scale, tf.float64))
    image_max = tf.maximum(hf, wf)
    scale = tf.where(tf.round(image_max * scale) > size, size / image_max, scale)
    new_h = tf.cast(tf.round(hf * scale), tf.int32)
    new_w = tf.cast(tf.round(wf * scale), tf.int32)

    pixels = tf.cast(images, tf.float32)

    def resample() -> tf.Tensor:
        out = tf.image.resize(pixels, tf.stack([new_h, new_w]), method="bilinear",
                              antialias=False)
        out *= _border_weights(h, new_h)[tf.newaxis, :, tf.newaxis, tf.newaxis]
        out *= _border_weights(w, new_w)[tf.newaxis, tf.newaxis, :, tf.newaxis]
        axes = [1, 2, 3]
        low = tf.reduce_min(pixels, axis=axes, keepdims=True)
        high = tf.reduce_max(pixels, axis=axes, keepdims=True)
        return tf.clip_by_value(tf.round(out), low, high)

    resized = tf.cond(tf.logical_and(tf.equal(new_h, h), tf.equal(new_w, w)),
                      lambda: pixels, resample)
    top = (size - new_h) // 2
    left = (size - new_w) // 2
    resized = tf.image.pad_to_bounding_box(resized, top, left, size, size)
    window = tf.stack([top, left, top + new_h, left + new_w])
    return resized, window, tf.cast(scale, tf.float32)


def compose_image_meta_graph(batch: tf.Tensor, height: tf.Tensor, width: tf.Tensor, size: int,
                             window: tf.Tensor, scale: tf.Tensor,
                             num_classes: int) -> tf.Tensor:
    """[batch, meta size] float32 metas of same-size images, as `mold_inputs` builds them
    (image id 0, every class inactive)."""
    values = {
        "image_id": tf.zeros([1]),
        "original_image_shape": tf.cast(tf.stack([height, width, 3]), tf.float32),
        "image_shape": tf.constant([size, size, 3], tf.float32),
        "window": tf.cast(window, tf.float32),
        "scale": tf.reshape(scale, [1]),
        "active_class_ids": tf.zeros([num_classes]),
    }
    meta = tf.concat([values[name] for name in FIELD_NAMES], axis=0)
    return tf.tile(meta[tf.newaxis], tf.stack([batch, 1]))


def unmold_boxes_graph(detections: tf.Tensor, window: tf.Tensor, size: int,
                       height: tf.Tensor, width: tf.Tensor
                       ) -> tuple[tf.Tensor, ...]:
    """Map detections back to the input image, keeping valid, non-empty boxes first.

    Args:
        detections: [batch, N, (y1, x1, y2, x2, class_id, score)] normalized coordinates of
            the molded square, zero padded.
        window: [(y1, x1, y2, x2)] int32 pixels of the image inside the square.
        size: side of the square. height, width: the input image's size.

    Returns:
        count: [batch] int32 valid detections. boxes: [batch, N, 4] float32 rounded pixels
        (y2, x2 exclusive). class_ids: [batch, N] int32. scores: [batch, N] float32 (all
        zero past `count`). order: [batch, N] int32, the detection row of each output row.
    """
    n = tf.shape(detections)[1]
    class_ids = tf.cast(detections[..., 4], tf.int32)
    # matterport stops at the first zero class id (the padding).
    first_pad = tf.reduce_min(tf.where(tf.equal(class_ids, 0), tf.range(n)[tf.newaxis], n),
                              axis=1)
    win = tf.cast(window, tf.float32)
    win_norm = (win - tf.constant([0.0, 0.0, 1.0, 1.0])) / float(size - 1)
    shift = tf.stack([win_norm[0], win_norm[1], win_norm[0], win_norm[1]])
    extent = tf.stack([win_norm[2] - win_norm[0], win_norm[3] - win_norm[1]] * 2)
    boxes = (detections[..., :4] - shift) / extent
    hw = tf.cast(tf.stack([height - 1, width - 1, height - 1, width - 1]), tf.float32)
    boxes = tf.round(boxes * hw + tf.constant([0.0, 0.0, 1.0, 1.0]))
    area = (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])
    keep = tf.logical_and(tf.range(n)[tf.newaxis] < first_pad[:, tf.newaxis], area > 0)
    # Valid rows first, each group in its original (score) order.
    rank = tf.where(keep, tf.range(n)[tf.newaxis], n + tf.range(n)[tf.newaxis])
    order = tf.argsort(rank, axis=1, stable=True)
    keep = tf.gather(keep, order, axis=1, batch_dims=1)
    valid = tf.cast(keep, tf.float32)
    boxes = tf.gather(boxes, order, axis=1, batch_dims=1) * valid[..., tf.newaxis]
    class_ids = tf.gather(class_ids, order, axis=1, batch_dims=1) * tf.cast(keep, tf.int32)
    scores = tf.gather(detections[..., 5], order, axis=1, batch_dims=1) * valid
    count = tf.reduce_sum(tf.cast(keep, tf.int32), axis=1)
    return count, boxes, class_ids, scores, order


def _interpolation(start: tf.Tensor, length: tf.Tensor, n_out: tf.Tensor,
                   n_mask: int) -> tuple[tf.Tensor, tf.Tensor]:
    """[batch, N, n_out, n_mask] bilinear weights from output pixels to mask cells for boxes
    starting at `start` with `length` pixels (edge repeated), and the in-box indicator."""
    pixel = tf.cast(tf.range(n_out), tf.float32)[tf.newaxis, tf.newaxis]
    start, length = start[..., tf.newaxis], tf.maximum(length, 1.0)[..., tf.newaxis]
    src = (pixel - start + 0.5) * (n_mask / length) - 0.5
    src = tf.clip_by_value(src, 0.0, n_mask - 1.0)
    low = tf.floor(src)
    frac = src - low
    low_i = tf.cast(low, tf.int32)
    high_i = tf.minimum(low_i + 1, n_mask - 1)
    weights = (tf.one_hot(low_i, n_mask) * (1.0 - frac)[..., tf.newaxis]
               + tf.one_hot(high_i, n_mask) * frac[..., tf.newaxis])
    inside = tf.logical_and(pixel >= start, pixel < start + length)
    return weights, inside


def paste_masks_graph(masks: tf.Tensor, boxes: tf.Tensor, count: tf.Tensor,
                      height: tf.Tensor, width: tf.Tensor) -> tf.Tensor:
    """Paste soft masks into full-size binary masks.

    Args:
        masks: [batch, N, mask_height, mask_width] float32 mask probabilities.
        boxes: [batch, N, (y1, x1, y2, x2)] float32 integer pixel boxes.
        count: [batch] valid rows. height, width: the image size.

    Returns:
        [batch, N, height, width] uint8: 1 where the mask resized to its box is >= 0.5.
    """
    mask_h, mask_w = int(masks.shape[2]), int(masks.shape[3])
    rows, in_rows = _interpolation(boxes[..., 0], boxes[..., 2] - boxes[..., 0], height, mask_h)
    cols, in_cols = _interpolation(boxes[..., 1], boxes[..., 3] - boxes[..., 1], width, mask_w)
    partial = tf.einsum("bnhi,bnij->bnhj", rows, masks)
    full = tf.einsum("bnhj,bnwj->bnhw", partial, cols)
    inside = tf.logical_and(in_rows[..., :, tf.newaxis], in_cols[..., tf.newaxis, :])
    n = tf.shape(masks)[1]
    valid = (tf.range(n)[tf.newaxis] < count[:, tf.newaxis])[..., tf.newaxis, tf.newaxis]
    return tf.cast(tf.logical_and(tf.logical_and(full >= 0.5, inside), valid), tf.uint8)
