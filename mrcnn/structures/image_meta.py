"""The image meta vector: the one owner of its layout (numpy only).

Each image fed to the network carries a float vector `input_image_meta` that describes how it
was molded, in matterport's layout:

    [image_id, original_image_shape (3), image_shape (3), window (4), scale,
     active_class_ids (NUM_CLASSES)]

`FIELDS` lists the fields in order with their widths; `SLICES` gives the columns of each
field; `meta_size` the vector length for a class count. Everything else (the config's
`IMAGE_META_SIZE`, the TF `parse_image_meta_graph`, the `ImageMetaField` layer, the data
generator) reads the layout from here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mrcnn.structures.checks import check_positive_int

# (name, width) in column order. The width of `active_class_ids` is the class count (None).
FIELDS: tuple[tuple[str, int | None], ...] = (
    ("image_id", 1),
    ("original_image_shape", 3),  # (height, width, channels) before resizing
    ("image_shape", 3),           # (height, width, channels) after resizing and padding
    ("window", 4),                # (y1, x1, y2, x2) pixels of the image inside the padding
    ("scale", 1),
    ("active_class_ids", None),   # 1 for the classes of the image's dataset
)
FIELD_NAMES: tuple[str, ...] = tuple(name for name, _ in FIELDS)
# Fields of width 1 that parse to one value per image ([batch], not [batch, 1]).
SCALAR_FIELDS: tuple[str, ...] = ("image_id", "scale")
# Columns before `active_class_ids`: 1 + 3 + 3 + 4 + 1.
FIXED_SIZE: int = sum(width for _, width in FIELDS if width is not None)


def _slices() -> dict[str, slice]:
    out, start = {}, 0
    for name, width in FIELDS:
        out[name] = slice(start, None if width is None else start + width)
        start += width or 0
    return out


# Columns of each field: meta[..., SLICES["window"]] is [..., (y1, x1, y2, x2)].
SLICES: dict[str, slice] = _slices()


def meta_size(num_classes: int) -> int:
    """Length of the meta vector for `num_classes` classes (background included).

    Raises:
        ValueError: if `num_classes` is not a positive integer.
    """
    return FIXED_SIZE + check_positive_int("num_classes", num_classes)


def field_width(name: str, size: int | None = None) -> int | None:
    """Number of columns of field `name` in a meta vector of length `size`.

    Args:
        name: one of `FIELD_NAMES`.
        size: the meta length; only needed for `active_class_ids` (None: unknown).

    Returns:
        The width (1 for the scalar fields), or None for `active_class_ids` when `size` is
        None.

    Raises:
        ValueError: for an unknown field name.
    """
    if name not in SLICES:
        raise ValueError(f"field={name!r}: must be one of {FIELD_NAMES}")
    width = dict(FIELDS)[name]
    if width is None:
        return None if size is None else size - FIXED_SIZE
    return width


def compose_image_meta(image_id: int, original_image_shape: Sequence[int],
                       image_shape: Sequence[int], window: Sequence[int],
                       scale: float, active_class_ids: np.ndarray | Sequence[int]) -> np.ndarray:
    """Pack the attributes of an image into one vector (the `input_image_meta` input).

    Args:
        image_id: integer id of the image (in its dataset).
        original_image_shape: (height, width, channels) before resizing/padding.
        image_shape: (height, width, channels) after resizing/padding.
        window: (y1, x1, y2, x2) pixel box of the real image inside the padded one.
        scale: scale factor applied to the original image.
        active_class_ids: [NUM_CLASSES] 1 for the classes of the image's dataset, else 0.

    Returns:
        [FIXED_SIZE + NUM_CLASSES] float64 vector in the order of `FIELDS`.

    Raises:
        ValueError: if a shape does not have 3 values, the window does not have 4, or there
            are no class ids.
    """
    active = np.asarray(active_class_ids).reshape(-1)
    if len(original_image_shape) != 3 or len(image_shape) != 3:
        raise ValueError("image shapes must be (height, width, channels), got "
                         f"{tuple(original_image_shape)} and {tuple(image_shape)}")
    if len(window) != 4:
        raise ValueError(f"window must be (y1, x1, y2, x2), got {tuple(window)}")
    if active.size == 0:
        raise ValueError("active_class_ids must hold one value per class, got none")
    return np.array([image_id, *original_image_shape, *image_shape, *window, scale, *active],
                    dtype=np.float64)


def parse_image_meta(meta: np.ndarray) -> dict[str, np.ndarray]:
    """Unpack a batch of image meta vectors (inverse of `compose_image_meta`).

    Args:
        meta: [batch, FIXED_SIZE + NUM_CLASSES] image meta.

    Returns:
        dict of arrays: `image_id` [batch] int32, `original_image_shape` [batch, 3] int32,
        `image_shape` [batch, 3] int32, `window` [batch, (y1, x1, y2, x2)] int32 pixels,
        `scale` [batch] float32, `active_class_ids` [batch, NUM_CLASSES] int32.

    Raises:
        ValueError: if `meta` is not [batch, FIXED_SIZE + NUM_CLASSES] with NUM_CLASSES >= 1.
    """
    meta = np.asarray(meta)
    if meta.ndim != 2 or meta.shape[1] <= FIXED_SIZE:
        raise ValueError(f"meta must have shape [batch, {FIXED_SIZE} + NUM_CLASSES], "
                         f"got {meta.shape}")
    out = {}
    for name in FIELD_NAMES:
        column = SLICES[name].start if name in SCALAR_FIELDS else SLICES[name]
        out[name] = meta[:, column].astype(np.float32 if name == "scale" else np.int32)
    return out
