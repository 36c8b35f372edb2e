"""Instance masks in numpy: resizing with the image, mini-masks, and pasting a predicted mask.

Masks are stacked on the last axis: [height, width, num_instances]. A mini-mask is an
instance's mask cropped to its box and resized to a small fixed shape (`MINI_MASK_SHAPE`),
which saves memory during training; `expand_mask` pastes it back at full size.

Bilinear mask resizing repeats the edge pixels (`resize_bilinear(..., border="edge")`) where
matterport's skimage call blended them with a zero outside the box; that zero dropped the
corner pixels of every mask pasted into a box much larger than the mask (a full mini-mask did
not come back as a full box). Away from the box edges the results are the same.
"""

from __future__ import annotations

import numpy as np

from mrcnn.structures.image import resize_bilinear


def _zoom_indices(n_in: int, n_out: int) -> np.ndarray:
    """Source index of each output index for an order-0 `scipy.ndimage.zoom` of one axis
    (corner-aligned, as zoom does without grid_mode: output 0 -> input 0, last -> last)."""
    if n_out <= 1:
        return np.zeros(max(n_out, 0), dtype=np.intp)
    step = (n_in - 1) / (n_out - 1)
    index = np.floor(np.arange(n_out) * step + 0.5).astype(np.intp)
    return np.minimum(index, n_in - 1)


def resize_mask(mask: np.ndarray, scale: float, padding: list[tuple[int, int]],
                crop: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """Resize masks the way `mrcnn.structures.image.resize_image` resized their image.

    Nearest-neighbour scaling by `scale` (the same sampling as matterport's
    `scipy.ndimage.zoom(mask, [scale, scale, 1], order=0)`, output size
    `round(size * scale)`), then the crop if given, else the padding.

    Args:
        mask: [height, width, num_instances] masks (any dtype; kept, so bool stays bool).
        scale: scale factor returned by `resize_image`.
        padding: [(top, bottom), (left, right), (0, 0)] returned by `resize_image`.
        crop: (y, x, height, width) returned by `resize_image`, or None.

    Returns:
        [new_height, new_width, num_instances] masks of the input dtype.

    Raises:
        ValueError: if `mask` is not 3-D or `scale` is not positive.
    """
    mask = np.asarray(mask)
    if mask.ndim != 3:
        raise ValueError(f"mask must have shape [height, width, N], got {mask.shape}")
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale!r}")
    h, w = mask.shape[:2]
    out_h, out_w = int(round(h * scale)), int(round(w * scale))
    if (out_h, out_w) != (h, w):
        mask = mask[_zoom_indices(h, out_h)][:, _zoom_indices(w, out_w)]
    if crop is not None:
        y, x, ch, cw = crop
        return mask[y:y + ch, x:x + cw]
    pad = [tuple(p) for p in padding[:2]] + [(0, 0)]
    return np.pad(mask, pad, mode="constant", constant_values=0)


def _box_of(bbox: np.ndarray, i: int) -> tuple[int, int, int, int]:
    """The i-th (y1, x1, y2, x2) box as ints; ValueError naming the instance if it is empty."""
    y1, x1, y2, x2 = (int(v) for v in bbox[i][:4])
    if y2 <= y1 or x2 <= x1:
        raise ValueError(f"Invalid bounding box with zero area for instance {i}: "
                         f"(y1, x1, y2, x2) = {(y1, x1, y2, x2)}")
    return y1, x1, y2, x2


def minimize_mask(bbox: np.ndarray, mask: np.ndarray,
                  mini_shape: tuple[int, int]) -> np.ndarray:
    """Crop each instance mask to its box and resize it to `mini_shape`.

    Bilinear resize (edge pixels repeated) of the 0/1 crop, then a pixel is kept where the
    value is above 0.5 (matterport rounded the resized mask).

    Args:
        bbox: [num_instances, (y1, x1, y2, x2)] int pixel boxes, `(y2, x2)` exclusive.
        mask: [height, width, num_instances] full-size masks.
        mini_shape: (mini_height, mini_width).

    Returns:
        [mini_height, mini_width, num_instances] bool mini-masks.

    Raises:
        ValueError: if a box has zero area (the message names the instance index) or the
            number of boxes and masks differ.
    """
    mask = np.asarray(mask)
    bbox = np.asarray(bbox)
    if mask.ndim != 3 or len(bbox) != mask.shape[-1]:
        raise ValueError(f"need one box per mask: bbox {bbox.shape}, mask {mask.shape}")
    mini_h, mini_w = (int(v) for v in mini_shape[:2])
    mini_mask = np.zeros((mini_h, mini_w, mask.shape[-1]), dtype=bool)
    for i in range(mask.shape[-1]):
        y1, x1, y2, x2 = _box_of(bbox, i)
        crop = mask[y1:y2, x1:x2, i].astype(np.float32)
        if crop.size == 0:
            raise ValueError(f"Bounding box of instance {i} {(y1, x1, y2, x2)} lies outside "
                             f"the mask of shape {mask.shape[:2]}")
        mini_mask[:, :, i] = resize_bilinear(crop, (mini_h, mini_w), border="edge") > 0.5
    return mini_mask


def expand_mask(bbox: np.ndarray, mini_mask: np.ndarray,
                image_shape: tuple[int, ...]) -> np.ndarray:
    """Paste mini-masks back at full image size (inverse of `minimize_mask`, up to resampling).

    Each mini-mask is resized bilinearly (edge pixels repeated) to its box and thresholded
    above 0.5, so a mask that fills its box comes back filling it exactly.

    Args:
        bbox: [num_instances, (y1, x1, y2, x2)] int pixel boxes, `(y2, x2)` exclusive.
        mini_mask: [mini_height, mini_width, num_instances] mini-masks.
        image_shape: (height, width, ...) of the image.

    Returns:
        [height, width, num_instances] bool masks.

    Raises:
        ValueError: if a box has zero area (the message names the instance index) or the
            number of boxes and masks differ.
    """
    mini_mask = np.asarray(mini_mask)
    bbox = np.asarray(bbox)
    if mini_mask.ndim != 3 or len(bbox) != mini_mask.shape[-1]:
        raise ValueError(f"need one box per mask: bbox {bbox.shape}, mini_mask {mini_mask.shape}")
    height, width = (int(v) for v in image_shape[:2])
    mask = np.zeros((height, width, mini_mask.shape[-1]), dtype=bool)
    for i in range(mini_mask.shape[-1]):
        y1, x1, y2, x2 = _box_of(bbox, i)
        m = resize_bilinear(mini_mask[:, :, i].astype(np.float32), (y2 - y1, x2 - x1),
                            border="edge")
        mask[y1:y2, x1:x2, i] = m > 0.5
    return mask


def unmold_mask(mask: np.ndarray, bbox: tuple[int, int, int, int] | np.ndarray,
                image_shape: tuple[int, ...]) -> np.ndarray:
    """Paste a predicted (soft) mask into its box on a full-size binary mask.

    Args:
        mask: [mask_height, mask_width] float mask from the mask head (values in [0, 1]).
        bbox: (y1, x1, y2, x2) int pixel box in the image, `(y2, x2)` exclusive.
        image_shape: (height, width, ...) of the image.

    Returns:
        [height, width] bool mask: True where the mask, resized bilinearly to the box (edge
        pixels repeated), is >= 0.5.

    Raises:
        ValueError: if the box has zero area or `mask` is not 2-D.
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must have shape [height, width], got {mask.shape}")
    y1, x1, y2, x2 = (int(v) for v in np.asarray(bbox).reshape(-1)[:4])
    if y2 <= y1 or x2 <= x1:
        raise ValueError(f"Invalid bounding box with zero area: (y1, x1, y2, x2) = "
                         f"{(y1, x1, y2, x2)}")
    resized = resize_bilinear(mask.astype(np.float32), (y2 - y1, x2 - x1), border="edge")
    full_mask = np.zeros(tuple(int(v) for v in image_shape[:2]), dtype=bool)
    full_mask[y1:y2, x1:x2] = resized >= 0.5
    return full_mask
