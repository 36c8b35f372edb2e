"""structures.masks: nearest-neighbour resize, mini-mask round trip, unmold_mask, errors."""

import numpy as np
import pytest
import scipy.ndimage

from mrcnn.structures import masks as M
from mrcnn.structures.image import resize_image

NO_PADDING = [(0, 0), (0, 0), (0, 0)]


# ----------------------------------------------------------------------------- resize_mask
def test_resize_mask_golden_doubles_each_pixel():
    mask = np.zeros((4, 4, 1), bool)
    mask[0, 1, 0] = mask[2, 3, 0] = mask[3, 0, 0] = True
    out = M.resize_mask(mask, 2, NO_PADDING)
    assert out.dtype == bool and out.shape == (8, 8, 1)
    np.testing.assert_array_equal(out, np.repeat(np.repeat(mask, 2, axis=0), 2, axis=1))


def test_resize_mask_padding_and_crop():
    mask = np.ones((3, 2, 2), bool)
    padded = M.resize_mask(mask, 1, [(1, 2), (0, 3), (0, 0)])
    assert padded.shape == (6, 5, 2)
    assert padded[1:4, :2].all() and padded.sum() == 12
    cropped = M.resize_mask(np.arange(36).reshape(6, 6, 1), 1, NO_PADDING, crop=(2, 3, 4, 2))
    np.testing.assert_array_equal(cropped[..., 0], np.arange(36).reshape(6, 6)[2:6, 3:5])


def test_resize_mask_matches_scipy_zoom_nearest():
    rng = np.random.default_rng(0)
    for _ in range(60):
        h, w = rng.integers(1, 40, 2)
        scale = float(rng.uniform(0.3, 3.5))
        mask = rng.random((h, w, 2)) > 0.5
        out = M.resize_mask(mask, scale, NO_PADDING)
        reference = scipy.ndimage.zoom(mask.astype(np.uint8), [scale, scale, 1], order=0)
        assert out.shape == reference.shape
        # scipy's zoom can zero the last row/column through floating-point round-off in its
        # coordinates (mode "constant"); resize_mask clamps to the last pixel instead.
        np.testing.assert_array_equal(out[:-1, :-1], reference[:-1, :-1].astype(bool))


def test_resize_mask_follows_resize_image():
    # A 30 x 40 image whose bright pixels are the object (rows 10..19, columns 5..24): after
    # each mode the mask must cover the object's pixels of the resized image, golden below.
    mask = np.zeros((30, 40, 1), bool)
    mask[10:20, 5:25] = True
    image = np.where(mask, 200, 0).astype(np.uint8).repeat(3, axis=2)
    cases = {
        # scale 60 / 30 = 2 -> 60 x 80, padded to 128 x 128 by (34, 34) rows, (24, 24) columns:
        # the object's rows 20..39 and columns 10..49 move to 54..73 and 34..73.
        "square": (dict(min_dim=60, max_dim=128), (128, 128), (slice(54, 74), slice(34, 74))),
        # scale 1, padded to 64 x 64 by (17, 17) rows and (12, 12) columns.
        "pad64": (dict(min_dim=None), (64, 64), (slice(27, 37), slice(17, 37))),
        # scale 2 -> 60 x 80, then a 60 x 60 crop at (y, x) = (0, 9) (rng seed 1): object
        # rows 20..39 stay, columns 10..49 -> 1..40.
        "crop": (dict(min_dim=60), (60, 60), (slice(20, 40), slice(1, 41))),
    }
    for mode, (kwargs, shape, (rows, cols)) in cases.items():
        out, window, scale, padding, crop = resize_image(
            image, mode=mode, rng=np.random.default_rng(1), **kwargs)
        resized = M.resize_mask(mask, scale, padding, crop)
        expected = np.zeros(shape + (1,), bool)
        expected[rows, cols] = True
        assert resized.dtype == bool, mode
        np.testing.assert_array_equal(resized, expected, err_msg=mode)
        # The mask and the bright pixels of the resized image coincide.
        np.testing.assert_array_equal(resized[..., 0], out[..., 0] > 100, err_msg=mode)
    assert crop == (0, 9, 60, 60)


def test_resize_mask_bad_inputs():
    with pytest.raises(ValueError, match="height, width, N"):
        M.resize_mask(np.zeros((4, 4), bool), 2, NO_PADDING)
    with pytest.raises(ValueError, match="scale"):
        M.resize_mask(np.zeros((4, 4, 1), bool), 0, NO_PADDING)


# ----------------------------------------------------------------------------- mini-masks
def test_minimize_mask_golden():
    mask = np.zeros((6, 6, 2), bool)
    mask[1:3, 2:4, 0] = True  # fills its box
    mask[0:4, 0:4, 1] = np.eye(4, dtype=bool)  # diagonal: only the diagonal survives
    bbox = np.array([[1, 2, 3, 4], [0, 0, 4, 4]])
    mini = M.minimize_mask(bbox, mask, (4, 4))
    assert mini.dtype == bool and mini.shape == (4, 4, 2)
    assert mini[..., 0].all()
    np.testing.assert_array_equal(mini[..., 1], np.eye(4, dtype=bool))


def test_minimize_expand_round_trip_for_box_shaped_masks():
    mask = np.zeros((40, 50, 2), bool)
    mask[5:17, 8:30, 0] = True
    mask[20:39, 1:49, 1] = True
    bbox = np.array([[5, 8, 17, 30], [20, 1, 39, 49]])
    mini = M.minimize_mask(bbox, mask, (7, 9))
    np.testing.assert_array_equal(M.expand_mask(bbox, mini, (40, 50, 3)), mask)


def test_expand_mask_large_upscale_keeps_corners():
    # A zero border (matterport's skimage call) would give the corners 0.525**2 < 0.5.
    full = M.expand_mask(np.array([[0, 0, 60, 60]]), np.ones((3, 3, 1), bool), (60, 60))
    assert full.all()


def test_minimize_expand_round_trip_keeps_a_disk():
    yy, xx = np.mgrid[:60, :60]
    mask = (((yy - 30) ** 2 + (xx - 25) ** 2) < 18 ** 2)[..., None]
    bbox = np.array([[12, 7, 48, 43]])
    restored = M.expand_mask(bbox, M.minimize_mask(bbox, mask, (28, 28)), (60, 60))
    iou = (restored & mask).sum() / (restored | mask).sum()
    assert iou > 0.95
    assert not restored[:12].any() and not restored[48:].any()  # nothing outside the box


def test_mini_mask_zero_size_box_names_the_instance():
    mask = np.ones((10, 10, 2), bool)
    bbox = np.array([[0, 0, 5, 5], [3, 3, 3, 8]])  # instance 1 has zero height
    with pytest.raises(ValueError, match="instance 1"):
        M.minimize_mask(bbox, mask, (4, 4))
    with pytest.raises(ValueError, match="instance 1"):
        M.expand_mask(bbox, np.ones((4, 4, 2), bool), (10, 10))


def test_mini_mask_box_count_mismatch():
    with pytest.raises(ValueError, match="one box per mask"):
        M.minimize_mask(np.array([[0, 0, 2, 2]]), np.ones((4, 4, 2), bool), (2, 2))
    with pytest.raises(ValueError, match="one box per mask"):
        M.expand_mask(np.array([[0, 0, 2, 2]]), np.ones((2, 2, 3), bool), (4, 4))


# ----------------------------------------------------------------------------- unmold_mask
def test_unmold_mask_golden():
    # 1 x 2 -> 1 x 4 samples x = -0.25, 0.25, 0.75, 1.25; edge pixels repeat outside:
    # 0.2, 0.31, 0.53, 0.64 (matterport's zero border gave 0.48 for the last one).
    soft = np.array([[0.2, 0.64]], dtype=np.float32)
    full = M.unmold_mask(soft, (2, 1, 3, 5), (4, 6, 3))
    assert full.dtype == bool and full.shape == (4, 6)
    expected = np.zeros((4, 6), bool)
    expected[2, 3:5] = True
    np.testing.assert_array_equal(full, expected)


def test_unmold_mask_fills_box_only():
    full = M.unmold_mask(np.full((28, 28), 0.9), np.array([3, 4, 13, 24]), (20, 30))
    assert full[3:13, 4:24].all() and full.sum() == 10 * 20


def test_unmold_mask_bad_inputs():
    with pytest.raises(ValueError, match="zero area"):
        M.unmold_mask(np.ones((28, 28)), (5, 5, 5, 9), (20, 20))
    with pytest.raises(ValueError, match="height, width"):
        M.unmold_mask(np.ones((28, 28, 1)), (0, 0, 5, 5), (20, 20))
