"""Anchor boxes in numpy: one grid of anchors per feature-pyramid level, and a cached set per
(config, image shape).

Anchors are centred on `cell * feature_stride` (matterport's convention: the top-left corner of
each feature-map cell in image pixels, not its centre), one per (scale, ratio) pair per cell,
ordered cell by cell (rows, then columns) and, inside a cell, by ratio. Levels are concatenated
in the order given (P2 first for the ResNet FPN).
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from mrcnn.structures.boxes import norm_boxes
from mrcnn.structures.checks import check_positive_int

logger = logging.getLogger(__name__)


def generate_anchors(scales: float | Sequence[float], ratios: Sequence[float],
                     shape: Sequence[int], feature_stride: int,
                     anchor_stride: int) -> np.ndarray:
    """Anchors of one pyramid level.

    Args:
        scales: anchor side length(s) in pixels, e.g. 32 (a square anchor has area scale**2).
        ratios: width/height ratios, e.g. [0.5, 1, 2].
        shape: (height, width) of the feature map.
        feature_stride: image pixels per feature-map cell.
        anchor_stride: place anchors on every `anchor_stride`-th cell.

    Returns:
        [N, (y1, x1, y2, x2)] float64 pixel anchors, N = cells * len(scales) * len(ratios).

    Raises:
        ValueError: if a scale or ratio is not positive or a stride is not a positive integer.
    """
    scales = np.atleast_1d(np.asarray(scales, dtype=np.float64))
    ratios = np.atleast_1d(np.asarray(ratios, dtype=np.float64))
    if scales.size == 0 or ratios.size == 0 or np.any(scales <= 0) or np.any(ratios <= 0):
        raise ValueError(f"scales and ratios must be positive, got {scales.tolist()} and "
                         f"{ratios.tolist()}")
    feature_stride = check_positive_int("feature_stride", feature_stride)
    anchor_stride = check_positive_int("anchor_stride", anchor_stride)
    # Every (ratio, scale) pair, ratio-major (matterport's meshgrid order).
    ratio_grid, scale_grid = np.meshgrid(ratios, scales, indexing="ij")
    heights = (scale_grid / np.sqrt(ratio_grid)).reshape(-1)
    widths = (scale_grid * np.sqrt(ratio_grid)).reshape(-1)

    centers_y = np.arange(0, int(shape[0]), anchor_stride) * feature_stride
    centers_x = np.arange(0, int(shape[1]), anchor_stride) * feature_stride
    grid_y, grid_x = np.meshgrid(centers_y, centers_x, indexing="ij")
    centers = np.stack([grid_y.reshape(-1), grid_x.reshape(-1)], axis=1)  # [cells, 2]
    sizes = np.stack([heights, widths], axis=1)  # [anchors per cell, 2]
    half = 0.5 * sizes[None, :, :]
    boxes = np.concatenate([centers[:, None, :] - half, centers[:, None, :] + half], axis=2)
    return boxes.reshape(-1, 4)


def generate_pyramid_anchors(scales: Sequence[float], ratios: Sequence[float],
                             feature_shapes: Sequence[Sequence[int]] | np.ndarray,
                             feature_strides: Sequence[int], anchor_stride: int) -> np.ndarray:
    """Anchors of every pyramid level, concatenated in level order.

    Args:
        scales: one anchor size per level, in pixels, e.g. (32, 64, 128, 256, 512).
        ratios: width/height ratios used at every level.
        feature_shapes: [levels, (height, width)] feature-map shapes.
        feature_strides: one stride per level, in image pixels.
        anchor_stride: anchor stride in feature-map cells.

    Returns:
        [N, (y1, x1, y2, x2)] float64 pixel anchors.

    Raises:
        ValueError: if the per-level arguments do not have the same length.
    """
    if not len(scales) == len(feature_shapes) == len(feature_strides):
        raise ValueError(f"need one scale, feature shape and stride per level, got "
                         f"{len(scales)} scales, {len(feature_shapes)} shapes and "
                         f"{len(feature_strides)} strides")
    return np.concatenate([
        generate_anchors(scale, ratios, shape, stride, anchor_stride)
        for scale, shape, stride in zip(scales, feature_shapes, feature_strides, strict=True)
    ], axis=0)


def compute_backbone_shapes(config: Any, image_shape: Sequence[int]) -> np.ndarray:
    """Height and width of each backbone feature map for an input image shape.

    Args:
        config: a `Config`; uses `BACKBONE`, `COMPUTE_BACKBONE_SHAPE`, `BACKBONE_STRIDES`.
        image_shape: (height, width, ...) of the (molded) input image.

    Returns:
        [levels, (height, width)] int array. With a callable `BACKBONE`, whatever
        `config.COMPUTE_BACKBONE_SHAPE(image_shape)` returns; otherwise
        `ceil(image_shape / stride)` for each of `BACKBONE_STRIDES`.

    Raises:
        ValueError: if `BACKBONE` is neither a known ResNet name nor a callable.
    """
    if callable(config.BACKBONE):
        return np.asarray(config.COMPUTE_BACKBONE_SHAPE(image_shape))
    if config.BACKBONE not in ("resnet50", "resnet101"):
        raise ValueError(f"Unknown BACKBONE {config.BACKBONE!r}: expected 'resnet50', "
                         "'resnet101' or a callable")
    return np.array([[int(math.ceil(image_shape[0] / stride)),
                      int(math.ceil(image_shape[1] / stride))]
                     for stride in config.BACKBONE_STRIDES])


@functools.lru_cache(maxsize=32)
def _cached_anchors(scales: tuple[float, ...], ratios: tuple[float, ...],
                    feature_shapes: tuple[tuple[int, int], ...], strides: tuple[int, ...],
                    anchor_stride: int, image_hw: tuple[int, int],
                    normalized: bool) -> np.ndarray:
    """Pyramid anchors for hashable arguments, float32 and read-only (shared by callers)."""
    anchors = generate_pyramid_anchors(scales, ratios, feature_shapes, strides, anchor_stride)
    if normalized:
        anchors = norm_boxes(anchors, image_hw)
    anchors = anchors.astype(np.float32)
    anchors.flags.writeable = False
    logger.debug("Generated %d anchors for image shape %s", len(anchors), image_hw)
    return anchors


def anchors_for_config(config: Any, image_shape: Sequence[int],
                       normalized: bool = False) -> np.ndarray:
    """The pyramid anchors a model with `config` uses for images of `image_shape` (cached).

    Repeated calls with the same anchor settings and image shape return the same array, so
    the result is read-only: copy it before changing it.

    Args:
        config: a `Config`; uses `RPN_ANCHOR_SCALES`, `RPN_ANCHOR_RATIOS`, `BACKBONE_STRIDES`,
            `RPN_ANCHOR_STRIDE` and the backbone settings (see `compute_backbone_shapes`).
        image_shape: (height, width, ...) of the (molded) input image.
        normalized: return normalized coordinates (see `boxes.norm_boxes`) instead of
            pixels.

    Returns:
        [N, (y1, x1, y2, x2)] float32 anchors, pixel or normalized coordinates.
    """
    backbone_shapes = compute_backbone_shapes(config, image_shape)
    return _cached_anchors(
        tuple(float(s) for s in config.RPN_ANCHOR_SCALES),
        tuple(float(r) for r in config.RPN_ANCHOR_RATIOS),
        tuple((int(h), int(w)) for h, w in np.asarray(backbone_shapes)[:, :2]),
        tuple(int(s) for s in config.BACKBONE_STRIDES),
        int(config.RPN_ANCHOR_STRIDE),
        (int(image_shape[0]), int(image_shape[1])),
        bool(normalized),
    )
