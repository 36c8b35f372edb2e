"""structures.image_meta: the one owner of the meta layout; compose/parse golden values."""

import numpy as np
import pytest

from mrcnn.structures import image_meta as M


def test_layout_golden():
    # matterport's layout: id, original shape (3), shape (3), window (4), scale, class ids.
    assert M.FIELD_NAMES == ("image_id", "original_image_shape", "image_shape", "window",
                             "scale", "active_class_ids")
    assert M.FIXED_SIZE == 12
    assert M.SLICES == {"image_id": slice(0, 1), "original_image_shape": slice(1, 4),
                        "image_shape": slice(4, 7), "window": slice(7, 11),
                        "scale": slice(11, 12), "active_class_ids": slice(12, None)}
    assert M.meta_size(1) == 13 and M.meta_size(81) == 93
    assert [M.field_width(n, 16) for n in M.FIELD_NAMES] == [1, 3, 3, 4, 1, 4]
    assert M.field_width("active_class_ids") is None


def test_meta_size_and_field_width_reject_bad_values():
    with pytest.raises(ValueError, match="num_classes=0"):
        M.meta_size(0)
    with pytest.raises(ValueError, match="field='windows'"):
        M.field_width("windows")


def test_compose_image_meta_golden():
    meta = M.compose_image_meta(7, (100, 200, 3), (128, 128, 3), (32, 0, 96, 128), 0.64,
                                np.array([1, 1, 0]))
    assert meta.shape == (M.meta_size(3),) and meta.dtype == np.float64
    np.testing.assert_allclose(meta, [7, 100, 200, 3, 128, 128, 3, 32, 0, 96, 128, 0.64,
                                      1, 1, 0])
    # Every field lands in its slice.
    np.testing.assert_array_equal(meta[M.SLICES["window"]], [32, 0, 96, 128])
    np.testing.assert_array_equal(meta[M.SLICES["active_class_ids"]], [1, 1, 0])


def test_compose_parse_image_meta_round_trip():
    metas = np.stack([
        M.compose_image_meta(7, (100, 200, 3), (128, 128, 3), (32, 0, 96, 128), 0.64, [1, 1, 0]),
        M.compose_image_meta(123456789, (50, 60, 3), (64, 64, 3), (0, 5, 64, 59), 1.0,
                             [1, 0, 1]),
    ])
    parsed = M.parse_image_meta(metas)
    assert set(parsed) == set(M.FIELD_NAMES)
    np.testing.assert_array_equal(parsed["image_id"], [7, 123456789])
    np.testing.assert_array_equal(parsed["original_image_shape"], [[100, 200, 3], [50, 60, 3]])
    np.testing.assert_array_equal(parsed["image_shape"], [[128, 128, 3], [64, 64, 3]])
    np.testing.assert_array_equal(parsed["window"], [[32, 0, 96, 128], [0, 5, 64, 59]])
    np.testing.assert_allclose(parsed["scale"], [0.64, 1.0], rtol=1e-6)
    np.testing.assert_array_equal(parsed["active_class_ids"], [[1, 1, 0], [1, 0, 1]])
    for key in ("image_id", "original_image_shape", "image_shape", "window",
                "active_class_ids"):
        assert parsed[key].dtype == np.int32
    assert parsed["scale"].dtype == np.float32


def test_image_meta_bad_inputs():
    with pytest.raises(ValueError, match="window"):
        M.compose_image_meta(1, (10, 10, 3), (10, 10, 3), (0, 0, 10), 1.0, [1])
    with pytest.raises(ValueError, match="image shapes"):
        M.compose_image_meta(1, (10, 10), (10, 10, 3), (0, 0, 10, 10), 1.0, [1])
    with pytest.raises(ValueError, match="active_class_ids"):
        M.compose_image_meta(1, (10, 10, 3), (10, 10, 3), (0, 0, 10, 10), 1.0, [])
    with pytest.raises(ValueError, match="batch"):
        M.parse_image_meta(np.zeros(13))
    with pytest.raises(ValueError, match="batch"):
        M.parse_image_meta(np.zeros((2, 12)))  # no class column


def test_compat_modules_export_the_owner():
    from mrcnn import utils

    assert utils.compose_image_meta is M.compose_image_meta
    assert utils.parse_image_meta is M.parse_image_meta


def test_config_meta_size_comes_from_the_layout():
    from mrcnn.config import Config

    class C(Config):
        NAME = "c"
        NUM_CLASSES = 7

    assert C().IMAGE_META_SIZE == M.meta_size(7) == 19
