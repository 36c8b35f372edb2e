"""Image preparation in numpy: resizing and padding, and molding (mean-pixel normalization).

`resize_image` follows matterport's four modes ("none", "square", "pad64", "crop") and returns
the window, scale, padding and crop needed to map boxes and masks the same way
(`mrcnn.structures.masks.resize_mask`) and back (`mrcnn.engine.predictor`).

Resizing itself goes through `resize_bilinear`, which reproduces what matterport got from
`skimage.transform.resize(order=1, mode="constant", cval=0, clip=True, preserve_range=True)`
but runs OpenCV's `cv2.resize` (about 70x faster on a 1024-pixel image); see its docstring
for the (rounding-level) differences.
"""

from __future__ import annotations

from typing import Any

import numpy as np

try:  # OpenCV is a pinned dependency; the skimage path keeps the module usable without it.
    import cv2
except ImportError:  # pragma: no cover - exercised only where OpenCV is missing
    cv2 = None

# matterport's resize modes (see `resize_image`); Config.IMAGE_RESIZE_MODE is one of them.
RESIZE_MODES = ("none", "square", "pad64", "crop")

# dtypes that cv2.resize interpolates linearly; 512 is OpenCV's channel limit (CV_CN_MAX).
_CV2_DTYPES = (np.uint8, np.uint16, np.int16, np.float32, np.float64)
_CV2_MAX_CHANNELS = 512


def resize(image: np.ndarray, output_shape: tuple[int, ...], order: int = 1,
           mode: str = "constant", cval: float = 0, clip: bool = True,
           preserve_range: bool = False, anti_aliasing: bool = False,
           anti_aliasing_sigma: float | None = None) -> np.ndarray:
    """`skimage.transform.resize` with matterport's defaults (no anti-aliasing).

    Args:
        image: [height, width(, channels)] image.
        output_shape: (height, width) of the result; trailing dimensions are kept.
        order, mode, cval, clip, preserve_range, anti_aliasing, anti_aliasing_sigma: as in
            `skimage.transform.resize`.

    Returns:
        The resized image (float unless `order=0`, see skimage).
    """
    import skimage.transform  # imported on use: Config (which reads RESIZE_MODES) stays light

    return skimage.transform.resize(
        image, output_shape, order=order, mode=mode, cval=cval, clip=clip,
        preserve_range=preserve_range, anti_aliasing=anti_aliasing,
        anti_aliasing_sigma=anti_aliasing_sigma)


def _outside_weights(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows (or columns) of an upsampled axis that sample outside the input, with the weight
    the input keeps there when the outside is zero (skimage's "constant" border)."""
    if n_out <= n_in:
        return np.zeros(0, dtype=np.intp), np.zeros(0)
    src = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5  # half-pixel centres
    weight = 1.0 - np.maximum(0.0, -src) - np.maximum(0.0, src - (n_in - 1))
    index = np.nonzero(weight < 1.0)[0]
    return index, weight[index]


def resize_bilinear(image: np.ndarray, output_shape: tuple[int, int],
                    border: str = "constant") -> np.ndarray:
    """Bilinear resize that keeps the dtype, matching matterport's skimage call.

    The result matches `resize(image, output_shape, order=1, mode=border, cval=0,
    clip=True, preserve_range=True)` cast back to `image.dtype`. With `border="constant"`
    (matterport's setting) the outermost rows/columns of an upsampled image blend with the
    zero outside the image (then are clipped to the input's range, as skimage does); with
    `border="edge"` the edge pixels are repeated instead, so a constant image stays constant
    (used for masks, where the zero border would eat the corners of a pasted box).

    uint8, uint16, int16, float32 and float64 images go through `cv2.resize` (INTER_LINEAR,
    same half-pixel geometry); integer results are rounded where matterport truncated, and
    OpenCV's fixed-point uint8 arithmetic adds at most one more level (measured: within 1 of
    matterport's output on a 480x640 -> 1024 "square" resize, mean 0.28, about 70x faster).
    Float results agree with skimage to ~1e-5. Other dtypes use skimage.

    Args:
        image: [height, width] or [height, width, channels] image.
        output_shape: (height, width) of the result, both positive.
        border: "constant" (zero outside the image) or "edge".

    Returns:
        [out_height, out_width(, channels)] image of `image.dtype`.

    Raises:
        ValueError: if `image` is not 2-D/3-D, `output_shape` is not positive or `border` is
            unknown.
    """
    image = np.asarray(image)
    out_h, out_w = (int(v) for v in output_shape[:2])
    if image.ndim not in (2, 3) or min(image.shape[:2]) < 1:
        raise ValueError(f"image must be [height, width(, channels)], got shape {image.shape}")
    if out_h < 1 or out_w < 1:
        raise ValueError(f"output_shape must be positive, got {tuple(output_shape)}")
    if border not in ("constant", "edge"):
        raise ValueError(f"border must be 'constant' or 'edge', got {border!r}")
    dtype = image.dtype
    channels = image.shape[2] if image.ndim == 3 else 1
    if cv2 is None or dtype.type not in _CV2_DTYPES or channels > _CV2_MAX_CHANNELS:
        out = resize(image, (out_h, out_w), mode=border, preserve_range=True)
        if np.issubdtype(dtype, np.integer):
            out = np.rint(out)
        return out.astype(dtype)

    if (out_h, out_w) == image.shape[:2]:
        return image.copy()
    out = cv2.resize(np.ascontiguousarray(image), (out_w, out_h),
                     interpolation=cv2.INTER_LINEAR)
    out = out.reshape((out_h, out_w) + image.shape[2:])
    if border == "edge":  # OpenCV's own border: the edge pixels are repeated
        return out
    rows, row_w = _outside_weights(image.shape[0], out_h)
    cols, col_w = _outside_weights(image.shape[1], out_w)
    if rows.size or cols.size:
        lo, hi = image.min(), image.max()
        integer = np.issubdtype(dtype, np.integer)
        for index, weight, axis in ((rows, row_w, 0), (cols, col_w, 1)):
            if not index.size:
                continue
            part = np.take(out, index, axis=axis).astype(np.float64)
            shape = [1] * out.ndim
            shape[axis] = -1
            part *= weight.reshape(shape)
            part = np.clip(np.rint(part) if integer else part, lo, hi)
            if axis == 0:
                out[index] = part
            else:
                out[:, index] = part
    return out


def resize_image(image: np.ndarray, min_dim: int | None = None, max_dim: int | None = None,
                 min_scale: float | None = None, mode: str = "square",
                 rng: np.random.Generator | None = None
                 ) -> tuple[np.ndarray, tuple[int, int, int, int], float,
                            list[tuple[int, int]], tuple[int, int, int, int] | None]:
    """Resize an image keeping its aspect ratio, then pad or crop it (matterport's modes).

    Modes:
        "none": return the image unchanged.
        "square": scale so the short side is at least `min_dim` and the long side at most
            `max_dim`, then pad with zeros to [max_dim, max_dim].
        "pad64": scale up so the short side is at least `min_dim` (no max_dim), then pad each
            side to a multiple of 64.
        "crop": scale up so the short side is at least `min_dim`, then take a random
            [min_dim, min_dim] crop (training only).

    `min_scale` forces at least that scale (applied after `min_dim`; in "square" mode
    `max_dim` still wins).

    Args:
        image: [height, width, channels] image (any dtype; kept).
        min_dim: minimum length of the short side (and the crop size in "crop" mode).
        max_dim: maximum length of the long side and output size ("square" mode).
        min_scale: minimum scale factor.
        mode: one of "none", "square", "pad64", "crop".
        rng: numpy Generator for the random crop; default `np.random.default_rng()`.

    Returns:
        image: the resized image, same dtype as the input.
        window: (y1, x1, y2, x2) pixel box of the image inside the padded result.
        scale: the scale factor applied.
        padding: [(top, bottom), (left, right), (0, 0)] pixels added.
        crop: (y, x, height, width) of the crop in the scaled image, or None.

    Raises:
        ValueError: unknown `mode`, a missing/invalid `min_dim` or `max_dim` for the mode, or a
            bad image shape.
    """
    if mode not in RESIZE_MODES:
        raise ValueError(f"Unknown resize mode {mode!r}; expected one of {RESIZE_MODES}")
    image = np.asarray(image)
    if image.ndim not in (2, 3) or min(image.shape[:2]) < 1:
        raise ValueError(f"image must be [height, width, channels], got shape {image.shape}")
    image_dtype = image.dtype
    h, w = image.shape[:2]
    window = (0, 0, h, w)
    scale = 1
    padding = [(0, 0), (0, 0), (0, 0)]
    crop = None
    if mode == "none":
        return image, window, scale, padding, crop

    if mode == "square" and not max_dim:
        raise ValueError(f"'square' mode needs a positive max_dim, got {max_dim!r}")
    if mode == "crop" and not min_dim:
        raise ValueError(f"'crop' mode needs a positive min_dim (the crop size), got {min_dim!r}")
    if mode == "pad64" and min_dim and min_dim % 64:
        raise ValueError(f"'pad64' mode needs min_dim to be a multiple of 64, got {min_dim}")

    if min_dim:
        scale = max(1, min_dim / min(h, w))  # scale up only
    if min_scale and scale < min_scale:
        scale = min_scale
    if mode == "square":
        image_max = max(h, w)
        if round(image_max * scale) > max_dim:
            scale = max_dim / image_max
    if scale != 1:
        image = resize_bilinear(image, (round(h * scale), round(w * scale)))

    h, w = image.shape[:2]
    if mode == "square":
        top = (max_dim - h) // 2
        left = (max_dim - w) // 2
        padding = [(top, max_dim - h - top), (left, max_dim - w - left), (0, 0)]
        window = (top, left, h + top, w + left)
    elif mode == "pad64":
        pad_h = (64 - h % 64) % 64
        pad_w = (64 - w % 64) % 64
        top, left = pad_h // 2, pad_w // 2
        padding = [(top, pad_h - top), (left, pad_w - left), (0, 0)]
        window = (top, left, h + top, w + left)
    else:  # crop
        if h < min_dim or w < min_dim:
            raise ValueError(f"scaled image {(h, w)} is smaller than the crop size {min_dim}")
        rng = np.random.default_rng() if rng is None else rng
        y = int(rng.integers(0, h - min_dim + 1))
        x = int(rng.integers(0, w - min_dim + 1))
        crop = (y, x, min_dim, min_dim)
        image = image[y:y + min_dim, x:x + min_dim]
        window = (0, 0, min_dim, min_dim)
    if mode != "crop":
        image = np.pad(image, padding[:image.ndim], mode="constant", constant_values=0)
    return image.astype(image_dtype, copy=False), window, scale, padding, crop


def mold_image(images: np.ndarray, config: Any) -> np.ndarray:
    """Subtract the mean pixel: the network's input normalization.

    Args:
        images: [..., channels] image(s) (any dtype).
        config: a `Config`; uses `MEAN_PIXEL`.

    Returns:
        float32 array of the same shape.
    """
    return np.asarray(images).astype(np.float32) - np.asarray(config.MEAN_PIXEL, np.float32)


def unmold_image(normalized_images: np.ndarray, config: Any) -> np.ndarray:
    """Add the mean pixel back (inverse of `mold_image`).

    Args:
        normalized_images: [..., channels] molded image(s).
        config: a `Config`; uses `MEAN_PIXEL`.

    Returns:
        uint8 array of the same shape, rounded and clipped to [0, 255] (matterport truncated,
        which could turn 25 into 24 after a float32 round trip).
    """
    image = np.asarray(normalized_images, np.float64) + np.asarray(config.MEAN_PIXEL)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)
