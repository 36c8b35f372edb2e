"""data.augment: imgaug on numpy 2, albumentations, masks moved with their image,
reproducibility."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mrcnn.data.augment import (
    MASK_AUGMENTERS,
    augment,
    check_augmenter,
    import_imgaug,
    restore_numpy_aliases,
)

ROOT = Path(__file__).resolve().parents[1]

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
    with pytest.raises(TypeError, match="or an albumentations transform"):
        augment(image, masks, object(), 0)
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


# ------------------------------------------------------------------ imgaug after `import mrcnn`
def test_plain_imgaug_import_works_after_importing_mrcnn():
    """matterport's samples: `import mrcnn` then `from imgaug import augmenters as iaa`, in a
    fresh interpreter; importing mrcnn imports neither imgaug nor TensorFlow."""
    code = ("import sys\n"
            "import mrcnn\n"
            "print(sorted(m for m in ('imgaug', 'tensorflow', 'keras') if m in sys.modules))\n"
            "import numpy as np\n"
            "from imgaug import augmenters as iaa\n"
            "image = np.arange(12, dtype=np.uint8).reshape(2, 6, 1)\n"
            "print(iaa.Fliplr(1.0)(image=image)[0, :, 0].tolist())\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["[]", "[5, 4, 3, 2, 1, 0]"]


def test_restore_numpy_aliases_only_fills_what_is_missing(monkeypatch):
    mine = {"int": [np.int64]}
    monkeypatch.setattr(np, "sctypes", mine, raising=False)
    restore_numpy_aliases()
    assert np.sctypes is mine  # an existing attribute is never replaced
    monkeypatch.delattr(np, "sctypes")
    monkeypatch.delattr(np, "complex", raising=False)
    restore_numpy_aliases()
    assert np.sctypes["uint"] == [np.uint8, np.uint16, np.uint32, np.uint64]
    assert np.complex is complex


# ------------------------------------------------------------------------------ albumentations
@pytest.fixture(scope="module")
def A():
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # no version check over the network
    return pytest.importorskip("albumentations", reason="requirements-dev.txt installs it")


@pytest.mark.parametrize("make, expected", [
    (lambda A: A.HorizontalFlip(p=1.0), lambda m: m[:, ::-1]),
    (lambda A: A.VerticalFlip(p=1.0), lambda m: m[::-1]),
    (lambda A: A.Compose([A.HorizontalFlip(p=1.0), A.VerticalFlip(p=1.0)]),
     lambda m: m[::-1, ::-1]),
    (lambda A: A.Compose([A.OneOf([A.HorizontalFlip(p=1.0)], p=1.0)]), lambda m: m[:, ::-1]),
    (lambda A: A.Affine(translate_px={"x": 7, "y": -3}, p=1.0),
     lambda m: np.roll(m, (-3, 7), axis=(0, 1))),
])
def test_albumentations_geometric_transforms_move_masks_exactly(A, make, expected):
    image, masks = _square()
    image_aug, masks_aug = augment(image, masks, make(A), np.random.default_rng(0))
    assert image_aug.shape == image.shape and masks_aug.dtype == np.bool_
    np.testing.assert_array_equal(masks_aug[..., 0], _white(image_aug))
    np.testing.assert_array_equal(masks_aug, expected(masks))


def test_albumentations_horizontal_flip_golden_columns(A):
    image, masks = _square()
    _, masks_aug = augment(image, masks, A.HorizontalFlip(p=1.0), 0)
    ys, xs = np.nonzero(masks_aug[..., 0])
    assert (ys.min(), ys.max(), xs.min(), xs.max()) == (10, 29, W - 20, W - 6)


def test_albumentations_masks_stay_nearest_and_unpadded(A):
    """A user pipeline asking for linear mask interpolation and a mask fill of 1 still gets
    binary, aligned masks with empty padding; the user's transforms are not modified."""
    image, masks = _square()
    shift = A.Affine(translate_px={"x": 10}, fill=255, fill_mask=1, p=1.0)
    image_aug, masks_aug = augment(image, masks, shift, 0)
    assert np.all(image_aug[:, :10] == 255)  # the image is padded with white ...
    expected = np.zeros((H, W), bool)
    expected[Y1:Y2, X1 + 10:X2 + 10] = True
    np.testing.assert_array_equal(masks_aug[..., 0], expected)  # ... the masks are not
    assert masks_aug[:, :10].sum() == 0
    rotate = A.Compose([A.Affine(rotate=(-30, 30), scale=(0.7, 1.3), mask_interpolation=1,
                                 p=1.0)])  # cv2.INTER_LINEAR
    nearest = A.Compose([A.Affine(rotate=(-30, 30), scale=(0.7, 1.3), mask_interpolation=0,
                                  p=1.0)])
    for seed in range(3):
        image_aug, masks_aug = augment(image, masks, rotate, np.random.default_rng(seed))
        white, mask = _white(image_aug), masks_aug[..., 0]
        assert (white & mask).sum() / (white | mask).sum() > 0.85, seed
        _, masks_nearest = augment(image, masks, nearest, np.random.default_rng(seed))
        np.testing.assert_array_equal(masks_aug, masks_nearest)
    assert shift.fill_mask == 1 and rotate.transforms[0].mask_interpolation == 1


@pytest.mark.parametrize("make", [
    lambda A: A.RandomBrightnessContrast(brightness_limit=(0.3, 0.3), p=1.0),
    lambda A: A.GaussianBlur(blur_limit=(5, 5), p=1.0),
    lambda A: A.GaussNoise(std_range=(0.1, 0.2), p=1.0),
    lambda A: A.ToGray(p=1.0),
    lambda A: A.Compose([A.HueSaturationValue(p=1.0), A.RandomGamma(gamma_limit=(50, 50), p=1)]),
])
def test_albumentations_colour_transforms_leave_masks_alone(A, make):
    image, masks = _square()
    image = image.copy()
    image[..., 1] = 90  # colour, so that ToGray changes something
    image_aug, masks_aug = augment(image, masks, make(A), np.random.default_rng(1))
    assert image_aug.shape == image.shape and not np.array_equal(image_aug, image)
    np.testing.assert_array_equal(masks_aug, masks)


def test_albumentations_same_seed_same_result_and_transform_not_advanced(A):
    image, masks = _square()
    pipeline = A.Compose([A.Affine(rotate=(-45, 45), p=1.0), A.GaussNoise(p=1.0)])
    first = augment(image, masks, pipeline, np.random.default_rng(123))
    augment(image, masks, pipeline, np.random.default_rng(5))  # would advance a shared state
    pipeline(image=image)  # the caller using it directly changes nothing either
    again = augment(image, masks, pipeline, np.random.default_rng(123))
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    others = [augment(image, masks, pipeline, np.random.default_rng(s))[1] for s in range(4)]
    assert any(not np.array_equal(first[1], o) for o in others)


def test_albumentations_size_change_is_a_clear_error(A):
    image, masks = _square()
    for transform in (A.Resize(32, 40), A.RandomCrop(32, 32, p=1.0),
                      A.Compose([A.HorizontalFlip(p=1.0), A.RandomRotate90(p=1.0)])):
        with pytest.raises(ValueError, match=r"changed the image size from \(64, 80\)"):
            augment(image, masks, transform, 0)
    with pytest.raises(ValueError, match="must keep the size"):
        augment(image, masks[..., :0], A.Resize(32, 40), 0)


def test_albumentations_many_and_no_instances(A):
    image, _ = _square()
    masks = np.zeros((H, W, 7), dtype=bool)
    for i in range(7):
        masks[5 + 5 * i:9 + 5 * i, 10:20, i] = True
    _, out = augment(image, masks, A.HorizontalFlip(p=1.0), 0)
    np.testing.assert_array_equal(out, masks[:, ::-1])
    image_aug, empty = augment(image, masks[..., :0], A.HorizontalFlip(p=1.0), 0)
    assert empty.shape == (H, W, 0) and empty.dtype == np.bool_
    np.testing.assert_array_equal(image_aug, image[:, ::-1])


def test_albumentations_boxes_follow_through_load_image_gt(A):
    """Boxes are derived from the augmented masks: a flip moves them with the image."""
    from mrcnn.config import Config
    from mrcnn.data.dataset import Dataset
    from mrcnn.data.ground_truth import load_image_gt

    class OneSquare(Dataset):
        def load_image(self, image_id):
            return _square()[0][:, :H]  # 64 x 64

        def load_mask(self, image_id):
            return _square()[1][:, :H, :1], np.array([1], np.int32)

    class Square64(Config):
        NAME, NUM_CLASSES, IMAGE_MIN_DIM, IMAGE_MAX_DIM = "sq", 2, 64, 64

    ds = OneSquare()
    ds.add_class("sq", 1, "square")
    ds.add_image("sq", image_id=0, path=None)
    ds.prepare()
    flip = A.Compose([A.HorizontalFlip(p=1.0), A.RandomBrightnessContrast(p=1.0)])
    image, _, _, bbox, mask = load_image_gt(ds, Square64(), 0, augmentation=flip, rng=0)
    np.testing.assert_array_equal(bbox, [[Y1, 64 - X2, Y2, 64 - X1]])
    np.testing.assert_array_equal(mask[..., 0], _white(image))
    check_augmenter(flip)  # DataGenerator's check accepts albumentations


def test_old_albumentations_without_seeding_is_named():
    # albumentations 1.x transforms have no set_random_seed.
    old = type("HorizontalFlip", (), {"__module__": "albumentations.augmentations.transforms"})
    with pytest.raises(TypeError, match=r"albumentations >= 2\.0\.8"):
        check_augmenter(old())
