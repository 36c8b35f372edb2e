"""Augmentation that moves instance masks with their image: imgaug (on numpy 2) or albumentations.

imgaug 0.4.0 (unmaintained) reads names that numpy 2 removed (`np.sctypes`, `np.complex`).
`restore_numpy_aliases()` puts them back, only where missing; `import mrcnn` calls it, so that a
user script doing `import mrcnn` then `from imgaug import augmenters as iaa` (as matterport's
samples do) works on numpy 2. It imports neither imgaug nor anything else. `import_imgaug()`
calls it too, then imports imgaug; every module of mrcnn imports imgaug through it.

`augment()` applies one user-given augmenter to an image and its instance masks. With an imgaug
augmenter it works the way matterport did: the augmenter is made deterministic, run on the image,
then run again on the masks with a hooks activator that lets only mask-safe (geometric and
container) augmenters through, so colour, blur and noise augmenters change the image alone. With
an albumentations transform (`A.Compose([...])` or a single transform) the masks go in as its
`mask` target: albumentations moves them with the geometric transforms and its image-only
(colour) transforms leave them alone. Boxes are not augmented: mrcnn derives them from the
augmented masks (`load_image_gt`), so they move with the image too. The same rules hold for both:

- Masks are warped with nearest-neighbour interpolation and zero padding, whatever
  interpolation or fill value the image gets, so a random `cval=(0, 255)` (imgaug) or a
  `fill_mask=1` (albumentations) cannot paint the padding into every mask.
- The augmenter is copied and seeded from `rng` for each call: the caller's augmenter is never
  advanced, and identical `rng` seeds give identical augmentations in any process or thread.
- An albumentations transform must keep the image size (resizing to the network input happens
  before augmentation); imgaug's `keep_size=False` crops and pads still move the masks with the
  image here, and `load_image_gt` rejects any size change.
"""

from __future__ import annotations

import copy
import logging
import warnings
from collections.abc import Iterable
from types import ModuleType
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

# Augmenters applied to masks as well as images (class names, as matterport's MASK_AUGMENTERS).
# Containers must be listed, or their children never run on the masks. Anything not listed
# (Multiply, Add, GaussianBlur, LinearContrast, AdditiveGaussianNoise, Grayscale, ...) changes
# the image only.
MASK_AUGMENTERS: tuple[str, ...] = (
    # containers
    "Sequential", "SomeOf", "OneOf", "Sometimes", "Identity", "Noop",
    # flips and 90-degree rotations
    "Fliplr", "Flipud", "Rot90",
    # affine family
    "Affine", "ScaleX", "ScaleY", "TranslateX", "TranslateY", "Rotate", "ShearX", "ShearY",
    # crop / pad
    "CropAndPad", "Crop", "Pad", "CropToFixedSize", "PadToFixedSize",
    "CenterCropToFixedSize", "CenterPadToFixedSize",
    # non-rigid warps
    "PiecewiseAffine", "PerspectiveTransform", "ElasticTransformation",
)

# Names of the fill parameters that imgaug's geometric augmenters draw per image, paired with the
# private attribute where imgaug keeps the value it uses for segmentation maps.
_FILL_PARAMETERS = ("order", "cval", "mode", "pad_mode", "pad_cval")

_IMGAUG: ModuleType | None = None


def restore_numpy_aliases() -> None:
    """Put back the numpy 1 names that imgaug 0.4.0 reads, where numpy 2 removed them.

    Restores `np.sctypes` (read by `imgaug.imgaug` at import) and `np.complex` (read by
    `imgaug.parameters` frequency noise), each only when numpy lacks it; both are plain aliases
    of what numpy 1 had. Imports nothing. `import mrcnn` calls this, so that a plain
    `import imgaug` works after it.
    """
    if not hasattr(np, "sctypes"):
        np.sctypes = {
            "int": [np.int8, np.int16, np.int32, np.int64],
            "uint": [np.uint8, np.uint16, np.uint32, np.uint64],
            "float": [np.float16, np.float32, np.float64, np.longdouble],
            "complex": [np.complex64, np.complex128, np.clongdouble],
            "others": [bool, object, bytes, str, np.void],
        }
    if not hasattr(np, "complex"):
        np.complex = complex


def import_imgaug() -> ModuleType:
    """Import imgaug 0.4.0 under numpy 2 and return the `imgaug` module.

    Calls `restore_numpy_aliases()` first. Idempotent and cheap after the first call.

    Raises:
        ImportError: imgaug is not installed.
    """
    global _IMGAUG
    if _IMGAUG is not None:
        return _IMGAUG
    restore_numpy_aliases()
    # imgaug's PiecewiseAffine calls skimage's deprecated `estimate`; the message is noise to
    # mrcnn users (the call works in scikit-image < 2.2).
    warnings.filterwarnings("ignore", message="`estimate` is deprecated",
                            category=FutureWarning, module=r"imgaug\.")
    try:
        import imgaug
        import imgaug.augmenters  # noqa: F401  (registers the augmenters submodule)
    except ImportError as err:
        raise ImportError("Augmentation with imgaug needs imgaug (pip install --no-deps "
                          f"imgaug==0.4.0): {err}") from err
    _IMGAUG = imgaug
    return imgaug


def _from_albumentations(augmentation: Any) -> bool:
    return any(cls.__module__.partition(".")[0] == "albumentations"
               for cls in type(augmentation).__mro__)


def is_albumentations(augmentation: Any) -> bool:
    """True when `augmentation` is an albumentations (>= 2.0) transform or composition, or a
    subclass of one. Decided from the class hierarchy: albumentations is never imported here.
    """
    return _from_albumentations(augmentation) and hasattr(augmentation, "set_random_seed")


def check_augmenter(augmentation: Any) -> None:
    """Raise TypeError unless `augmentation` looks like an imgaug augmenter or an
    albumentations transform."""
    if is_albumentations(augmentation):
        return
    if _from_albumentations(augmentation):
        raise TypeError(f"{type(augmentation).__name__} comes from an albumentations without "
                        "per-call seeding (set_random_seed); mrcnn needs albumentations >= 2.0.8 "
                        "(pip install \"mrcnn[augment]\")")
    if not (hasattr(augmentation, "to_deterministic") and hasattr(augmentation, "deepcopy")):
        raise TypeError("augmentation must be an imgaug augmenter (imgaug.augmenters.Augmenter) "
                        "or an albumentations transform (albumentations.Compose, ...), "
                        f"got {type(augmentation).__name__}: {augmentation!r}")


def _seed_from(rng: np.random.Generator | int | None) -> int:
    if rng is None:
        rng = np.random.default_rng()
    elif isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return int(rng)
    elif not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy Generator, an int seed or None, got {rng!r}")
    return int(rng.integers(0, 2**31 - 1))


def _with_mask_fill(det: Any) -> Any:
    """A copy of the deterministic augmenter `det` whose geometric children fill like imgaug
    fills segmentation maps (order 0, constant mode, zero cval). The random states are copied
    too, so the geometric samples (angles, offsets, crops) stay those of `det`."""
    iap = import_imgaug().parameters
    mask_det = det.deepcopy()
    for aug in [mask_det, *mask_det.get_all_children(flat=True)]:
        for name in _FILL_PARAMETERS:
            segmap_value = getattr(aug, f"_{name}_segmentation_maps", None)
            if segmap_value is not None and isinstance(getattr(aug, name, None),
                                                       iap.StochasticParameter):
                setattr(aug, name, iap.Deterministic(segmap_value))
    return mask_det


def _with_nearest_masks(transform: Any) -> Any:
    """A copy of the albumentations `transform` whose every transform warps masks with
    nearest-neighbour interpolation and pads them with zeros (where it pads them at all)."""
    nearest = 0  # cv2.INTER_NEAREST, without importing cv2 for one constant
    transform = copy.deepcopy(transform)
    stack = [transform]
    while stack:
        t = stack.pop()
        stack.extend(getattr(t, "transforms", ()))
        if hasattr(t, "mask_interpolation"):
            t.mask_interpolation = nearest
        # None means "leave the masks alone" (CoarseDropout and friends): kept.
        if getattr(t, "fill_mask", None) is not None:
            t.fill_mask = 0
    return transform


def _augment_imgaug(image: np.ndarray, masks: np.ndarray, augmentation: Any, seed: int,
                    mask_augmenters: Iterable[str]) -> tuple[np.ndarray, np.ndarray]:
    ia = import_imgaug()
    allowed = frozenset(mask_augmenters)

    det = augmentation.deepcopy()
    det.seed_(seed)
    det = det.to_deterministic()
    image_aug = det.augment_image(image)

    if masks.shape[2] == 0:
        masks_aug = np.zeros(image_aug.shape[:2] + (0,), dtype=bool)
    else:
        def activator(images: Any, augmenter: Any, parents: Any, default: bool) -> bool:
            return type(augmenter).__name__ in allowed

        mask_det = _with_mask_fill(det)
        masks_u8 = mask_det.augment_image(masks.astype(np.uint8),
                                          hooks=ia.HooksImages(activator=activator))
        masks_aug = np.asarray(masks_u8) > 0
        if masks_aug.ndim == 2:  # some cv2 paths drop a single channel
            masks_aug = masks_aug[..., np.newaxis]
    if image_aug.shape[:2] != masks_aug.shape[:2]:
        raise ValueError(
            f"augmentation left the image {image_aug.shape} and the masks {masks_aug.shape} with "
            f"different sizes: an augmenter changes the image geometry but is not listed in "
            f"mask_augmenters ({type(augmentation).__name__} pipeline)")
    return image_aug, masks_aug


def _augment_albumentations(image: np.ndarray, masks: np.ndarray, transform: Any,
                            seed: int) -> tuple[np.ndarray, np.ndarray]:
    transform = _with_nearest_masks(transform)
    transform.set_random_seed(seed)
    if masks.shape[2] == 0:  # OpenCV refuses arrays with no channels
        out = transform(image=image)
        masks_aug = np.zeros(out["image"].shape[:2] + (0,), dtype=bool)
    else:
        out = transform(image=image, mask=masks.astype(np.uint8))
        masks_aug = np.asarray(out["mask"]) > 0
        if masks_aug.ndim == 2:
            masks_aug = masks_aug[..., np.newaxis]
    image_aug = np.asarray(out["image"])
    if image_aug.shape[:2] != image.shape[:2]:
        raise ValueError(
            f"albumentations transform changed the image size from {image.shape[:2]} to "
            f"{image_aug.shape[:2]} ({type(transform).__name__}: {transform!r}); images are "
            "resized to the network input before augmentation, so transforms must keep the size "
            "(e.g. RandomSizedCrop with size=(height, width), or pad and crop back)")
    if masks_aug.shape[:2] != image_aug.shape[:2]:
        raise ValueError(f"albumentations left the image {image_aug.shape} and the masks "
                         f"{masks_aug.shape} with different sizes")
    return image_aug, masks_aug


def augment(image: np.ndarray, masks: np.ndarray, augmentation: Any,
            rng: np.random.Generator | int | None = None,
            mask_augmenters: Iterable[str] = MASK_AUGMENTERS) -> tuple[np.ndarray, np.ndarray]:
    """Apply an augmenter to an image and, where geometric, to its instance masks.

    Args:
        image: [height, width, channels] image (uint8 in the usual case).
        masks: [height, width, num_instances] instance masks (bool, or 0/1 integers).
        augmentation: an imgaug augmenter, e.g. `iaa.Sequential([iaa.Fliplr(0.5), ...])`, or
            an albumentations transform, e.g. `A.Compose([A.HorizontalFlip(), ...])`. It is
            copied, never advanced.
        rng: numpy Generator (or int seed) the augmentation seed is drawn from. None: fresh
            entropy (not reproducible).
        mask_augmenters: class names of the imgaug augmenters also applied to the masks
            (albumentations knows by itself which of its transforms move masks).

    Returns:
        image: the augmented image, same dtype; [height', width', channels].
        masks: [height', width', num_instances] bool masks aligned with the image. With
            albumentations, height' and width' are always the input's.

    Raises:
        TypeError: `augmentation` is neither an imgaug augmenter nor an albumentations
            transform, or `rng` is of the wrong type.
        ValueError: the image or masks are not 3-D, their heights and widths differ, the
            augmenter left the image and the masks with different heights and widths, or an
            albumentations transform changed the image size.
    """
    check_augmenter(augmentation)
    image = np.asarray(image)
    masks = np.asarray(masks)
    if image.ndim != 3:
        raise ValueError(f"image must be [height, width, channels], got shape {image.shape}")
    if masks.ndim != 3:
        raise ValueError(f"masks must be [height, width, instances], got shape {masks.shape}")
    if image.shape[:2] != masks.shape[:2]:
        raise ValueError(f"image {image.shape} and masks {masks.shape} differ in height/width")
    seed = _seed_from(rng)
    if is_albumentations(augmentation):
        return _augment_albumentations(image, masks, augmentation, seed)
    return _augment_imgaug(image, masks, augmentation, seed, mask_augmenters)
