"""structures.image: resize geometry for every mode, skimage parity, molding, image meta."""

from types import SimpleNamespace

import numpy as np
import pytest

from mrcnn.structures import image as I


def _image(h, w, dtype=np.uint8, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(1, 255, (h, w, 3)).astype(dtype)


# ----------------------------------------------------------------------------- resize_bilinear
def test_resize_bilinear_golden_constant_border():
    # Output x samples input x = -0.25, 0.25, 0.75, 1.25; outside the image is 0 (skimage's
    # mode="constant"), so the last column is 0.75 * 8, not 8.
    out = I.resize_bilinear(np.array([[0.0, 8.0]], dtype=np.float32), (1, 4))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[0, 2, 6, 6]], atol=1e-5)


def test_resize_bilinear_golden_edge_border():
    out = I.resize_bilinear(np.array([[0.0, 8.0]], dtype=np.float32), (1, 4), border="edge")
    np.testing.assert_allclose(out, [[0, 2, 6, 8]], atol=1e-5)


def test_resize_bilinear_golden_clips_border_to_input_range():
    # 0.75 * 4 = 3 is below the input minimum 4, so it is clipped to 4 (skimage clip=True).
    out = I.resize_bilinear(np.array([[4.0, 8.0]]), (1, 4))
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, [[4, 5, 7, 6]], atol=1e-5)


@pytest.mark.parametrize("border", ["constant", "edge"])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.int32, np.float32])
@pytest.mark.parametrize("in_hw,out_hw,channels", [((7, 9), (20, 13), 3), ((30, 25), (11, 40), 0),
                                                    ((5, 6), (5, 6), 1), ((1, 4), (3, 9), 4),
                                                    ((12, 10), (31, 29), 6)])
def test_resize_bilinear_matches_skimage(dtype, in_hw, out_hw, channels, border):
    rng = np.random.default_rng(3)
    shape = in_hw + ((channels,) if channels else ())
    if np.issubdtype(dtype, np.integer):
        image = rng.integers(10, 250, shape).astype(dtype)
    else:
        image = rng.uniform(1.0, 5.0, shape).astype(dtype)
    reference = I.resize(image, out_hw, mode=border, preserve_range=True)
    out = I.resize_bilinear(image, out_hw, border=border)
    assert out.dtype == dtype and out.shape == reference.shape
    atol = 1.5 if np.issubdtype(dtype, np.integer) else 1e-4
    np.testing.assert_allclose(out.astype(np.float64), reference, atol=atol)


def test_resize_bilinear_bad_inputs():
    with pytest.raises(ValueError, match="output_shape"):
        I.resize_bilinear(np.zeros((4, 4)), (0, 3))
    with pytest.raises(ValueError, match="image must be"):
        I.resize_bilinear(np.zeros((2, 2, 2, 2)), (3, 3))
    with pytest.raises(ValueError, match="border"):
        I.resize_bilinear(np.zeros((4, 4)), (3, 3), border="wrap")


def test_resize_wrapper_no_antialiasing_by_default():
    # 8 -> 2 samples the input at 1.5 and 5.5: the centre of the bright 2x2 block gives exactly
    # 1 without anti-aliasing (skimage's own default would blur it first).
    image = np.zeros((8, 8))
    image[1:3, 1:3] = 1.0
    out = I.resize(image, (2, 2))
    np.testing.assert_allclose(out, [[1.0, 0.0], [0.0, 0.0]])


# ----------------------------------------------------------------------------- resize_image
def test_resize_image_none_mode_returns_input():
    image = _image(30, 40)
    out, window, scale, padding, crop = I.resize_image(image, 64, 128, mode="none")
    assert out is image
    assert window == (0, 0, 30, 40) and scale == 1 and crop is None
    assert padding == [(0, 0), (0, 0), (0, 0)]


def test_resize_image_square_downscale_by_max_dim():
    image = _image(100, 200)
    out, window, scale, padding, crop = I.resize_image(image, min_dim=50, max_dim=128)
    assert out.shape == (128, 128, 3) and out.dtype == np.uint8
    assert scale == pytest.approx(0.64)  # 128 / 200
    assert padding == [(32, 32), (0, 0), (0, 0)]  # resized to 64 x 128
    assert window == (32, 0, 96, 128) and crop is None
    assert not out[:32].any() and not out[96:].any()  # zero padding
    assert out[32:96].min() > 0


def test_resize_image_square_upscale_by_min_dim():
    image = _image(30, 40)
    out, window, scale, padding, _ = I.resize_image(image, min_dim=64, max_dim=128)
    assert scale == pytest.approx(64 / 30)
    # resized to round(64.0) x round(85.33) = 64 x 85
    assert padding == [(32, 32), (21, 22), (0, 0)]
    assert window == (32, 21, 96, 106)
    assert out.shape == (128, 128, 3)


def test_resize_image_square_without_scaling_keeps_pixels():
    image = _image(64, 32, dtype=np.float32)
    out, window, scale, padding, _ = I.resize_image(image, max_dim=64)
    assert scale == 1 and out.dtype == np.float32
    assert window == (0, 16, 64, 48) and padding == [(0, 0), (16, 16), (0, 0)]
    np.testing.assert_array_equal(out[:, 16:48], image)


def test_resize_image_min_scale():
    image = _image(100, 200)
    out, window, scale, padding, _ = I.resize_image(image, 50, 512, min_scale=2)
    assert scale == 2  # min_dim asks for 1, min_scale raises it
    assert padding == [(156, 156), (56, 56), (0, 0)]  # resized to 200 x 400
    assert window == (156, 56, 356, 456) and out.shape == (512, 512, 3)


def test_resize_image_max_dim_wins_over_min_scale():
    _, window, scale, padding, _ = I.resize_image(_image(100, 200), 50, 256, min_scale=3)
    assert scale == pytest.approx(1.28)  # 256 / 200
    assert padding == [(64, 64), (0, 0), (0, 0)] and window == (64, 0, 192, 256)


def test_resize_image_pad64_without_scaling():
    out, window, scale, padding, crop = I.resize_image(_image(100, 150), 64, mode="pad64")
    assert scale == 1 and crop is None
    assert out.shape == (128, 192, 3)
    assert padding == [(14, 14), (21, 21), (0, 0)]
    assert window == (14, 21, 114, 171)


def test_resize_image_pad64_with_upscaling():
    out, window, scale, padding, _ = I.resize_image(_image(40, 70), 64, mode="pad64")
    assert scale == pytest.approx(1.6)  # resized to 64 x 112
    assert padding == [(0, 0), (8, 8), (0, 0)]
    assert window == (0, 8, 64, 120) and out.shape == (64, 128, 3)


def test_resize_image_crop_draws_from_rng():
    image = _image(100, 150)
    out, window, scale, padding, crop = I.resize_image(
        image, min_dim=64, mode="crop", rng=np.random.default_rng(42))
    expected_rng = np.random.default_rng(42)
    y, x = int(expected_rng.integers(0, 37)), int(expected_rng.integers(0, 87))
    assert crop == (y, x, 64, 64) and scale == 1
    assert window == (0, 0, 64, 64) and padding == [(0, 0), (0, 0), (0, 0)]
    np.testing.assert_array_equal(out, image[y:y + 64, x:x + 64])


def test_resize_image_crop_after_upscaling():
    out, window, scale, _, crop = I.resize_image(_image(32, 48), min_dim=64, mode="crop",
                                                 rng=np.random.default_rng(0))
    assert scale == 2 and out.shape == (64, 64, 3) and window == (0, 0, 64, 64)
    assert crop[0] == 0 and 0 <= crop[1] <= 32 and crop[2:] == (64, 64)


def test_resize_image_bad_inputs():
    image = _image(20, 20)
    with pytest.raises(ValueError, match="Unknown resize mode 'bogus'"):
        I.resize_image(image, 64, 128, mode="bogus")
    with pytest.raises(ValueError, match="max_dim"):
        I.resize_image(image, 64, None, mode="square")
    with pytest.raises(ValueError, match="min_dim"):
        I.resize_image(image, None, 128, mode="crop")
    with pytest.raises(ValueError, match="multiple of 64"):
        I.resize_image(image, 100, mode="pad64")
    with pytest.raises(ValueError, match="image must be"):
        I.resize_image(np.zeros((0, 5, 3)), 64, 128)


# ----------------------------------------------------------------------------- molding
CONFIG = SimpleNamespace(MEAN_PIXEL=np.array([10.0, 20.0, 30.0]))
MATTERPORT_MEAN = SimpleNamespace(MEAN_PIXEL=np.array([123.7, 116.8, 103.9]))


def test_mold_image_golden_and_unmold_round_trip():
    image = np.array([[[10, 20, 30], [11, 25, 0]]], dtype=np.uint8)
    molded = I.mold_image(image, CONFIG)
    assert molded.dtype == np.float32
    np.testing.assert_array_equal(molded, [[[0, 0, 0], [1, 5, -30]]])
    restored = I.unmold_image(molded, CONFIG)
    assert restored.dtype == np.uint8
    np.testing.assert_array_equal(restored, image)


def test_unmold_image_round_trip_every_value_and_clips():
    image = np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1)[None]
    np.testing.assert_array_equal(
        I.unmold_image(I.mold_image(image, MATTERPORT_MEAN), MATTERPORT_MEAN), image)
    out_of_range = np.array([[[-200.0, 200.0, 0.0]]])
    np.testing.assert_array_equal(I.unmold_image(out_of_range, CONFIG), [[[0, 220, 30]]])
