"""Tests for mrcnn.data.dataset: registration, id maps, image loading and conversion rules."""

import logging

import numpy as np
import pytest
import skimage.io

from mrcnn.data.dataset import Dataset, UnknownClassError, convert_channels, to_uint8


def _two_source_dataset():
    ds = Dataset()
    ds.add_class("coco", 1, "person, human")
    ds.add_class("coco", 3, "car")
    ds.add_class("coco", 1, "duplicate ignored")
    ds.add_class("balloon", 1, "balloon")
    ds.add_image("coco", image_id=42, path="/x/a.jpg", width=10)
    ds.add_image("balloon", image_id="b7", path="/x/b.jpg")
    ds.prepare()
    return ds


def test_prepare_builds_maps():
    ds = _two_source_dataset()
    assert ds.num_classes == 4
    assert ds.class_names == ["BG", "person", "car", "balloon"]
    np.testing.assert_array_equal(ds.class_ids, [0, 1, 2, 3])
    assert ds.num_images == 2
    np.testing.assert_array_equal(ds.image_ids, [0, 1])
    assert ds.class_from_source_map == {".0": 0, "coco.1": 1, "coco.3": 2, "balloon.1": 3}
    assert ds.image_from_source_map == {"coco.42": 0, "balloon.b7": 1}
    assert ds.sources == ["", "balloon", "coco"]
    assert ds.source_class_ids == {"": [0], "balloon": [0, 3], "coco": [0, 1, 2]}
    assert ds.image_info[0]["width"] == 10
    assert ds.source_image_link(1) == "/x/b.jpg"
    assert ds.image_reference(0) == ""


def test_map_and_get_source_class_id():
    ds = _two_source_dataset()
    assert ds.map_source_class_id("coco.3") == 2
    assert ds.get_source_class_id(2, "coco") == 3
    with pytest.raises(ValueError, match="coco.7"):
        ds.map_source_class_id("coco.7")
    with pytest.raises(KeyError):  # matterport's exception type still works
        ds.map_source_class_id("coco.7")
    assert issubclass(UnknownClassError, ValueError)
    with pytest.raises(ValueError, match="belongs to source 'balloon'"):
        ds.get_source_class_id(3, "coco")
    with pytest.raises(ValueError, match="not registered"):
        ds.get_source_class_id(9, "coco")


def test_bad_registration_arguments():
    ds = Dataset()
    with pytest.raises(ValueError, match="a.b"):
        ds.add_class("a.b", 1, "x")
    with pytest.raises(ValueError, match="channels"):
        Dataset(channels=5)
    assert len(Dataset().image_ids) == 0  # before prepare(): empty, as matterport


def _file_dataset(tmp_path, array, channels=3, name="img.png"):
    path = tmp_path / name
    skimage.io.imsave(path, array, check_contrast=False)
    ds = Dataset(channels=channels)
    ds.add_image("files", image_id="f0", path=str(path))
    ds.prepare()
    return ds, str(path)


def test_load_rgb_roundtrip(tmp_path):
    rgb = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    ds, _ = _file_dataset(tmp_path, rgb)
    out = ds.load_image(0)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, rgb)


def test_grayscale_becomes_rgb(tmp_path):
    gray = np.array([[0, 10], [200, 255]], dtype=np.uint8)
    ds, _ = _file_dataset(tmp_path, gray)
    out = ds.load_image(0)
    assert out.shape == (2, 2, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], gray)


def test_grayscale_kept_with_one_channel(tmp_path):
    gray = np.array([[0, 10], [200, 255]], dtype=np.uint8)
    ds, _ = _file_dataset(tmp_path, gray, channels=1)
    out = ds.load_image(0)
    assert out.shape == (2, 2, 1)
    np.testing.assert_array_equal(out[..., 0], gray)


def test_rgba_alpha_dropped_or_kept(tmp_path):
    rgba = np.zeros((3, 3, 4), dtype=np.uint8)
    rgba[..., 0], rgba[..., 1], rgba[..., 2], rgba[..., 3] = 10, 20, 30, 128
    ds, path = _file_dataset(tmp_path, rgba)
    out = ds.load_image(0)
    assert out.shape == (3, 3, 3)
    np.testing.assert_array_equal(out[0, 0], [10, 20, 30])
    ds.channels = 4
    np.testing.assert_array_equal(ds.load_image(0)[1, 1], [10, 20, 30, 128])


def test_rgb_to_one_channel_uses_luminance(tmp_path):
    rgb = np.zeros((2, 2, 3), dtype=np.uint8)
    rgb[...] = (100, 200, 50)
    ds, _ = _file_dataset(tmp_path, rgb, channels=1)
    out = ds.load_image(0)
    # 0.2125 * 100 + 0.7154 * 200 + 0.0721 * 50 = 167.935 -> 168
    assert out.shape == (2, 2, 1)
    assert np.all(out == 168)


def test_rgb_to_four_channels_is_an_error(tmp_path):
    ds, path = _file_dataset(tmp_path, np.zeros((2, 2, 3), np.uint8), channels=4)
    with pytest.raises(ValueError, match="image 0.*img.png.*3 channels to 4"):
        ds.load_image(0)


def test_16bit_png_scaled_to_uint8(tmp_path):
    deep = np.array([[0, 257, 32896], [65535, 128, 129]], dtype=np.uint16)
    ds, path = _file_dataset(tmp_path, deep, channels=1)
    assert skimage.io.imread(path).dtype == np.uint16  # really a 16-bit file
    out = ds.load_image(0)[..., 0]
    assert out.dtype == np.uint8
    # round(v / 257): 0, 1, 128, 255, round(0.498) = 0, round(0.502) = 1
    np.testing.assert_array_equal(out, [[0, 1, 128], [255, 0, 1]])


def test_missing_file(tmp_path):
    ds = Dataset()
    ds.add_image("files", image_id="m1", path=str(tmp_path / "nope.png"))
    ds.prepare()
    with pytest.raises(FileNotFoundError, match=r"image 0 .*'m1'.*nope\.png.*not found"):
        ds.load_image(0)


def test_corrupt_file(tmp_path):
    path = tmp_path / "broken.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    ds = Dataset()
    ds.add_image("files", image_id=3, path=str(path))
    ds.prepare()
    with pytest.raises(ValueError, match=r"image 0 .*broken\.png.*cannot decode"):
        ds.load_image(0)


def test_no_path(tmp_path):
    ds = Dataset()
    ds.add_image("synthetic", image_id=0, path=None)
    ds.prepare()
    with pytest.raises(ValueError, match="no path"):
        ds.load_image(0)


def test_default_load_mask_warns_and_is_empty(caplog):
    ds = _two_source_dataset()
    with caplog.at_level(logging.WARNING, logger="mrcnn.data.dataset"):
        mask, class_ids = ds.load_mask(0)
    assert "default load_mask" in caplog.text
    assert mask.shape == (0, 0, 0) and class_ids.shape == (0,)
    assert class_ids.dtype == np.int32


def test_depth_conversion_rules():
    np.testing.assert_array_equal(to_uint8(np.array([True, False])), [255, 0])
    np.testing.assert_array_equal(to_uint8(np.array([0.0, 0.5, 1.0])), [0, 128, 255])
    np.testing.assert_array_equal(to_uint8(np.array([-3.0, 7.4, 300.0])), [0, 7, 255])
    np.testing.assert_array_equal(to_uint8(np.array([3, 250], np.int32)), [3, 250])
    with pytest.raises(ValueError, match="complex"):
        to_uint8(np.array([1j]))


def test_convert_channels_shapes():
    assert convert_channels(np.zeros((2, 3), np.uint8), 3).shape == (2, 3, 3)
    assert convert_channels(np.zeros((2, 3, 2), np.uint8), 3).shape == (2, 3, 3)
    assert convert_channels(np.zeros((2, 3, 5), np.uint8), None).shape == (2, 3, 5)
    with pytest.raises(ValueError, match="shape"):
        convert_channels(np.zeros((2, 3, 3, 1), np.uint8), 3)
