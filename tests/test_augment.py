"""data.augment: imgaug on numpy 2, masks moved with their image, reproducibility."""

import numpy as np
import pytest

from mrcnn.data.augment import MASK_AUGMENTERS, augment, import_imgaug

ia = import_imgaug()
iaa = ia.augmenters

H, W = 64, 80
Y1, Y2, X1, X2 = 10, 30, 5, 20  # the white square of the known image


def _square():
    image = np.zeros((H, W, 3), dtype=np.uint8)
    image[Y1:Y2, X1:X2] = 255
    masks = np.zeros((H, W, 2), dtype=bool)
    masks[Y1:Y2, X1:X2, 0] = True
    masks[40:50, 50:70, 1] = True  # a second instance that is not drawn in the image
    return image, masks


def _white(image):
    return image[..., 0] > 127


def test_import_restores_numpy_aliases():
    assert import_imgaug() is ia  # idempotent
    assert np.uint8 in np.sctypes["uint"]
    assert ia.__version__ == "0.4.0"


@pytest.mark.parametrize("augmenter, expected", [
    (iaa.Fliplr(1.0), lambda m: m[:, ::-1]),
    (iaa.Flipud(1.0), lambda m: m[::-1]),
    (iaa.Rot90(1, keep_size=False), lambda m: np.rot90(m, -1)),
    (iaa.Affine(translate_px={"x": 7, "y": -3}), lambda m: np.roll(m, (-3, 7), axis=(0, 1))),
    (iaa.Sequential([iaa.Fliplr(1.0), iaa.Flipud(1.0)]), lambda m: m[::-1, ::-1]),
    (iaa.Sometimes(1.0, iaa.Fliplr(1.0)), lambda m: m[:, ::-1]),
    (iaa.OneOf([iaa.Flipud(1.0)]), lambda m: m[::-1]),
    (iaa.SomeOf(1, [iaa.Fliplr(1.0)]), lambda m: m[:, ::-1]),
])
def test_geometric_augmenters_move_masks(augmenter, expected):
    image, masks = _square()
    image_aug, masks_aug = augment(image, masks, augmenter, np.random.default_rng(0))
    assert masks_aug.dtype == np.bool_
    np.testing.assert_array_equal(masks_aug[..., 0], _white(image_aug))
    np.testing.assert_array_equal(masks_aug, expected(masks))


def test_fliplr_golden_columns():
    image, masks = _square()
    _, masks_aug = augment(image, masks, iaa.Fliplr(1.0), 0)
    ys, xs = np.nonzero(masks_aug[..., 0])
    assert (ys.min(), ys.max(), xs.min(), xs.max()) == (10, 29, W - 20, W - 6)


@pytest.mark.parametrize("augmenter", [
    iaa.Affine(rotate=(-30, 30), scale=(0.8, 1.2)),
    iaa.CropAndPad(percent=(-0.2, 0.2)),
    iaa.Crop(px=(1, 8)),
    iaa.Rot90((1, 3)),
    pytest.param(iaa.PiecewiseAffine(scale=0.03, nb_rows=3, nb_cols=3),
                 marks=pytest.mark.filterwarnings("ignore:`estimate` is deprecated")),
])
def test_interpolating_augmenters_keep_alignment(augmenter):
    image, masks = _square()
    for seed in range(3):
        image_aug, masks_aug = augment(image, masks, augmenter, np.random.default_rng(seed))
        white, mask = _white(image_aug), masks_aug[..., 0]
        iou = (white & mask).sum() / (white | mask).sum()
        assert iou > 0.85, (seed, iou)


def test_padding_colour_does_not_leak_into_masks():
    image, masks = _square()
    shift = iaa.Affine(translate_px={"x": 10}, cval=255)
    image_aug, masks_aug = augment(image, masks, shift, 0)
    assert np.all(image_aug[:, :10] == 255)  # the image is padded with white ...
    expected = np.zeros((H, W), bool)
    expected[Y1:Y2, X1 + 10:X2 + 10] = True
    np.testing.assert_array_equal(masks_aug[..., 0], expected)  # ... the mask is not
    pad = iaa.CropAndPad(px=(6, 0, 0, 0), pad_cval=200, keep_size=False)
    image_aug, masks_aug = augment(image, masks, pad, 0)
    assert image_aug.shape[:2] == masks_aug.shape[:2] == (H + 6, W)
    assert masks_aug[:6].sum() == 0 and masks_aug[..., 0].sum() == (Y2 - Y1) * (X2 - X1)


@pytest.mark.parametrize("augmenter", [
    iaa.Multiply(1.5), iaa.Add(40), iaa.GaussianBlur(sigma=2.0), iaa.LinearContrast(0.5),
    iaa.AdditiveGaussianNoise(scale=20), iaa.Grayscale(1.0),
    iaa.Sequential([iaa.Multiply(0.5), iaa.GaussianBlur(1.0)]),
])
def test_colour_augmenters_leave_masks_alone(augmenter):
    image, masks = _square()
    image = image.copy()
    image[..., 1] = 90  # colour, so that Grayscale changes something
    image_aug, masks_aug = augment(image, masks, augmenter, np.random.default_rng(1))
    assert not np.array_equal(image_aug, image)
    np.testing.assert_array_equal(masks_aug, masks)


def test_same_seed_same_result_and_augmenter_not_advanced():
    image, masks = _square()
    aug = iaa.Sequential([iaa.Affine(rotate=(-45, 45)), iaa.AdditiveGaussianNoise(scale=10)])
    first = augment(image, masks, aug, np.random.default_rng(123))
    augment(image, masks, aug, np.random.default_rng(5))  # would advance a shared state
    again = augment(image, masks, aug, np.random.default_rng(123))
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    others = [augment(image, masks, aug, np.random.default_rng(s))[0] for s in range(4)]
    assert any(not np.array_equal(first[0], o) for o in others)


def test_many_instances_and_no_instances():
    image, _ = _square()
    masks = np.zeros((H, W, 7), dtype=bool)
    for i in range(7):
        masks[5 + 5 * i:9 + 5 * i, 10:20, i] = True
    _, out = augment(image, masks, iaa.Affine(translate_px={"x": 3}), 0)
    assert out.shape == (H, W, 7)
    np.testing.assert_array_equal(out, np.roll(masks, 3, axis=1))
    image_aug, empty = augment(image, masks[..., :0], iaa.Fliplr(1.0), 0)
    assert empty.shape == (H, W, 0) and empty.dtype == np.bool_
    np.testing.assert_array_equal(image_aug, image[:, ::-1])


def test_bad_inputs():
    image, masks = _square()
    with pytest.raises(TypeError, match="imgaug augmenter"):
        augment(image, masks, lambda x: x, 0)
    with pytest.raises(ValueError, match="image must be"):
        augment(image[..., 0], masks, iaa.Fliplr(1.0), 0)
    with pytest.raises(ValueError, match="masks must be"):
        augment(image, masks[..., 0], iaa.Fliplr(1.0), 0)
    with pytest.raises(ValueError, match="differ in height/width"):
        augment(image, masks[:10], iaa.Fliplr(1.0), 0)
    with pytest.raises(TypeError, match="rng"):
        augment(image, masks, iaa.Fliplr(1.0), "seed")
    # An augmenter that changes the size but is not mask-safe leaves the sizes inconsistent.
    with pytest.raises(ValueError, match="different sizes"):
        augment(image, masks, iaa.Resize(0.5), 0)
    assert "Resize" not in MASK_AUGMENTERS
