"""Tests for samples.shapes.shapes: config values, drawing, occlusion, determinism."""

import random

import numpy as np
import pytest

from mrcnn.structures.boxes import compute_overlaps
from samples.shapes.shapes import ShapesConfig, ShapesDataset, draw_shape


def test_config_is_matterports():
    config = ShapesConfig()
    assert config.NAME == "shapes" and config.BATCH_SIZE == 8 and config.NUM_CLASSES == 4
    assert list(config.IMAGE_SHAPE) == [128, 128, 3]
    assert config.RPN_ANCHOR_SCALES == (8, 16, 32, 64, 128)
    assert (config.TRAIN_ROIS_PER_IMAGE, config.STEPS_PER_EPOCH,
            config.VALIDATION_STEPS) == (32, 100, 5)


def _one_image(shapes, bg=(10, 20, 30), size=128):
    ds = ShapesDataset()
    ds.load_shapes(0, size, size)
    ds.add_image("shapes", image_id=0, path=None, width=size, height=size, bg_color=bg,
                 shapes=shapes)
    ds.prepare()
    return ds


def test_square_and_circle_pixels():
    ds = _one_image([("square", (200, 0, 0), (40, 50, 20)),
                     ("circle", (0, 255, 0), (100, 100, 10))])
    image = ds.load_image(0)
    assert image.shape == (128, 128, 3) and image.dtype == np.uint8
    # square covers x in [20, 60], y in [30, 70], both ends included
    assert tuple(image[50, 40]) == (200, 0, 0)
    assert tuple(image[30, 20]) == (200, 0, 0) and tuple(image[70, 60]) == (200, 0, 0)
    assert tuple(image[29, 40]) == (10, 20, 30) and tuple(image[50, 61]) == (10, 20, 30)
    assert tuple(image[100, 100]) == (0, 255, 0) and tuple(image[100, 110]) == (0, 255, 0)
    assert tuple(image[100, 112]) == (10, 20, 30)
    masks, class_ids = ds.load_mask(0)
    assert masks.shape == (128, 128, 2) and masks.dtype == np.bool_
    assert masks[..., 0].sum() == 41 * 41
    np.testing.assert_array_equal(class_ids, [1, 2])


def test_occlusion_removes_hidden_parts():
    ds = _one_image([("square", (1, 1, 1), (40, 40, 20)), ("square", (2, 2, 2), (60, 40, 20)),
                     ("triangle", (3, 3, 3), (100, 100, 20))])
    masks, class_ids = ds.load_mask(0)
    # the second square (on top) hides columns 40..60 (21 of 41) of the first one
    assert masks[..., 1].sum() == 41 * 41
    assert masks[..., 0].sum() == 41 * 41 - 21 * 41
    assert not (masks[..., 0] & masks[..., 1]).any()
    np.testing.assert_array_equal(class_ids, [1, 1, 3])
    image = ds.load_image(0)
    np.testing.assert_array_equal(masks[..., 0], (image == 1).all(axis=2))
    assert masks[80, 100, 2] and not masks[79, 100, 2]  # triangle apex at (x, y - s)


def test_deterministic_per_seed_without_global_state():
    np_state, py_state = np.random.get_state()[1].copy(), random.getstate()
    a, b, c = ShapesDataset(), ShapesDataset(), ShapesDataset()
    a.load_shapes(20, 128, 128, seed=7)
    b.load_shapes(20, 128, 128, seed=7)
    c.load_shapes(20, 128, 128, seed=8)
    for ds in (a, b, c):
        ds.prepare()
    assert a.image_info == b.image_info
    assert a.image_info != c.image_info
    np.testing.assert_array_equal(a.load_image(3), b.load_image(3))
    np.testing.assert_array_equal(a.load_mask(3)[0], b.load_mask(3)[0])
    np.testing.assert_array_equal(np.random.get_state()[1], np_state)
    assert random.getstate() == py_state


def test_random_images_follow_the_rules():
    ds = ShapesDataset()
    ds.load_shapes(200, 128, 128, seed=0)
    ds.prepare()
    counts = set()
    for info in ds.image_info:
        shapes = info["shapes"]
        counts.add(len(shapes))
        boxes = np.array([[y - s, x - s, y + s, x + s] for _, _, (x, y, s) in shapes])
        for name, color, (x, y, s) in shapes:
            assert name in ds.class_names and len(color) == 3
            assert 20 <= x <= 107 and 20 <= y <= 107 and 20 <= s <= 32
        overlaps = compute_overlaps(boxes, boxes)
        np.fill_diagonal(overlaps, 0)
        assert overlaps.max() <= 0.3
    assert counts == {1, 2, 3, 4}
    assert ds.image_reference(5) == ds.image_info[5]["shapes"]


def test_bad_arguments():
    with pytest.raises(ValueError, match="count"):
        ShapesDataset().load_shapes(-1, 128, 128)
    with pytest.raises(ValueError, match="too small"):
        ShapesDataset().load_shapes(3, 64, 64)
    with pytest.raises(ValueError, match="hexagon"):
        draw_shape(np.zeros((8, 8), np.uint8), "hexagon", (4, 4, 2), 1)
