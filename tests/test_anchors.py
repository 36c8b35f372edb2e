"""structures.anchors: hand-computed anchors, backbone shapes, the per-config cache."""

from types import SimpleNamespace

import numpy as np
import pytest

from mrcnn.config import Config
from mrcnn.structures import anchors as A


def test_generate_anchors_golden_2x2_grid():
    # scale 4: ratio 1 -> 4 x 4; ratio 4 (w/h) -> h = 4 / 2 = 2, w = 4 * 2 = 8.
    # Centres at cell * stride: (0, 0), (0, 4), (4, 0), (4, 4), rows first.
    anchors = A.generate_anchors(4, [1, 4], (2, 2), 4, 1)
    expected = [[-2, -2, 2, 2], [-1, -4, 1, 4],
                [-2, 2, 2, 6], [-1, 0, 1, 8],
                [2, -2, 6, 2], [3, -4, 5, 4],
                [2, 2, 6, 6], [3, 0, 5, 8]]
    np.testing.assert_allclose(anchors, expected)


def test_generate_anchors_anchor_stride_skips_cells():
    anchors = A.generate_anchors(2, [1], (3, 3), 4, 2)  # cells 0 and 2 -> centres 0 and 8
    np.testing.assert_allclose(anchors, [[-1, -1, 1, 1], [-1, 7, 1, 9],
                                         [7, -1, 9, 1], [7, 7, 9, 9]])


def test_generate_anchors_several_scales_are_ratio_major():
    anchors = A.generate_anchors([2, 4], [1, 4], (1, 1), 8, 1)
    np.testing.assert_allclose(anchors, [[-1, -1, 1, 1], [-2, -2, 2, 2],
                                         [-0.5, -2, 0.5, 2], [-1, -4, 1, 4]])


def test_generate_anchors_bad_inputs():
    with pytest.raises(ValueError, match="positive"):
        A.generate_anchors(0, [1], (2, 2), 4, 1)
    with pytest.raises(ValueError, match="positive"):
        A.generate_anchors(4, [-1], (2, 2), 4, 1)
    with pytest.raises(ValueError, match="anchor_stride"):
        A.generate_anchors(4, [1], (2, 2), 4, 0)


def test_generate_pyramid_anchors_golden_level_order():
    anchors = A.generate_pyramid_anchors((4, 8), [1], [(2, 2), (1, 1)], (4, 8), 1)
    np.testing.assert_allclose(anchors, [[-2, -2, 2, 2], [-2, 2, 2, 6],
                                         [2, -2, 6, 2], [2, 2, 6, 6],
                                         [-4, -4, 4, 4]])


def test_generate_pyramid_anchors_mismatched_levels():
    with pytest.raises(ValueError, match="one scale, feature shape and stride per level"):
        A.generate_pyramid_anchors((4, 8), [1], [(2, 2)], (4, 8), 1)


def test_compute_backbone_shapes_resnet_golden():
    shapes = A.compute_backbone_shapes(Config(), (100, 130, 3))
    np.testing.assert_array_equal(shapes, [[25, 33], [13, 17], [7, 9], [4, 5], [2, 3]])


def test_compute_backbone_shapes_callable_backbone_and_unknown_name():
    config = SimpleNamespace(BACKBONE=lambda x: x,
                             COMPUTE_BACKBONE_SHAPE=lambda shape: [[shape[0] // 2, 3]])
    np.testing.assert_array_equal(A.compute_backbone_shapes(config, (64, 64, 3)), [[32, 3]])
    bad = SimpleNamespace(BACKBONE="vgg16", BACKBONE_STRIDES=[4])
    with pytest.raises(ValueError, match="vgg16"):
        A.compute_backbone_shapes(bad, (64, 64, 3))


class TinyConfig(Config):
    NAME = "tiny"
    BACKBONE_STRIDES = [4, 8]
    RPN_ANCHOR_SCALES = (8, 16)
    RPN_ANCHOR_RATIOS = [1]


def test_anchors_for_config_golden_pixels_and_normalized():
    config = TinyConfig()
    pixels = A.anchors_for_config(config, (8, 8, 3))
    assert pixels.dtype == np.float32
    # level 1: 2 x 2 cells of 8-pixel anchors; level 2: one 16-pixel anchor at (0, 0)
    expected = np.array([[-4, -4, 4, 4], [-4, 0, 4, 8], [0, -4, 8, 4], [0, 0, 8, 8],
                         [-8, -8, 8, 8]], dtype=np.float64)
    np.testing.assert_allclose(pixels, expected)
    normalized = A.anchors_for_config(config, (8, 8, 3), normalized=True)
    # norm_boxes: (box - (0, 0, 1, 1)) / (h - 1 = 7)
    np.testing.assert_allclose(normalized, (expected - [0, 0, 1, 1]) / 7, rtol=1e-6)


def test_anchors_for_config_is_cached_and_read_only():
    config = TinyConfig()
    first = A.anchors_for_config(config, (16, 16, 3))
    hits = A._cached_anchors.cache_info().hits
    second = A.anchors_for_config(TinyConfig(), (16, 16, 3))
    assert second is first
    assert A._cached_anchors.cache_info().hits == hits + 1
    assert not first.flags.writeable
    other = A.anchors_for_config(config, (32, 16, 3))
    assert other is not first and len(other) == 2 * len(first)
