"""Ground truth of one image for training and evaluation (numpy only, no TensorFlow).

`load_image_gt` loads an image and its masks, checks them against the config, resizes them
for the network, applies augmentation, and returns the image with its meta, class ids, boxes
and (mini-)masks. Both the Keras data generator and evaluation read images through it.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from mrcnn.data.augment import augment as apply_augmentation
from mrcnn.data.dataset import check_pixels
from mrcnn.structures.boxes import extract_bboxes
from mrcnn.structures.image import resize_image
from mrcnn.structures.image_meta import compose_image_meta
from mrcnn.structures.masks import minimize_mask, resize_mask

logger = logging.getLogger(__name__)

_warned_augment_flag = False


def describe_image(dataset: Any, image_id: int) -> str:
    """"image ID (path ...)": how errors name an image."""
    info = dataset.image_info[image_id] if 0 <= image_id < len(dataset.image_info) else {}
    return f"image {image_id} (path {info.get('path')!r})"


def check_mask_values(mask: np.ndarray, where: str) -> np.ndarray:
    """Masks as returned by `load_mask`, when their values are unambiguous.

    bool and integer masks are kept (non-zero is inside, matterport's rule). Float masks must
    hold only 0 and 1: a soft or noisy mask (say 0.01 in the background) would otherwise turn
    every pixel into the instance and its box into the whole image.

    Raises:
        ValueError: naming `where`, for a non-numeric dtype or a float mask with values other
            than 0 and 1 (the message gives the first such value and the instance).
    """
    if mask.dtype == np.bool_ or np.issubdtype(mask.dtype, np.integer):
        return mask
    if not np.issubdtype(mask.dtype, np.floating):
        raise ValueError(f"{where}: load_mask returned masks of dtype {mask.dtype}; expected bool")
    bad = (mask != 0) & (mask != 1)
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        instance = f", instance {index[2]}" if len(index) == 3 else ""
        raise ValueError(f"{where}: load_mask returned {mask.dtype} masks with values other than "
                         f"0 and 1 (e.g. {mask[index]!r} at {index[:2]}{instance}; "
                         f"{int(bad.sum())} such pixels); return bool masks, e.g. mask > 0.5")
    return mask


def _checked_image_and_mask(dataset: Any, config: Any, image_id: int
                            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Load an image and its masks and check that they fit together and the config."""
    image = np.asarray(dataset.load_image(image_id))
    check_pixels(image, f"{describe_image(dataset, image_id)}: load_image")
    if image.ndim == 2 and config.IMAGE_CHANNEL_COUNT == 1:
        image = image[..., np.newaxis]
    if image.ndim != 3 or image.shape[2] != config.IMAGE_CHANNEL_COUNT:
        raise ValueError(f"{describe_image(dataset, image_id)}: load_image returned shape "
                         f"{image.shape}, "
                         f"expected [height, width, {config.IMAGE_CHANNEL_COUNT}] "
                         f"(IMAGE_CHANNEL_COUNT={config.IMAGE_CHANNEL_COUNT})")
    mask, class_ids = dataset.load_mask(image_id)
    if mask is None or class_ids is None:
        raise ValueError(f"{describe_image(dataset, image_id)}: load_mask returned "
                         f"{'masks' if mask is None else 'class_ids'}=None; return "
                         "([height, width, instances] bool masks, [instances] int32 class ids)"
                         " (zero instances: np.zeros([h, w, 0], bool), np.zeros([0], np.int32))")
    mask = check_mask_values(np.asarray(mask), describe_image(dataset, image_id))
    class_ids = np.asarray(class_ids).reshape(-1)
    if mask.ndim == 3 and mask.shape[2] == 0:  # no instances: any empty shape will do
        mask = np.zeros(image.shape[:2] + (0,), dtype=bool)
    if mask.ndim != 3 or mask.shape[:2] != image.shape[:2]:
        raise ValueError(f"{describe_image(dataset, image_id)}: load_mask returned masks of shape "
                         f"{mask.shape}, expected [{image.shape[0]}, {image.shape[1]}, "
                         "instances] (the image's height and width)")
    if class_ids.shape[0] != mask.shape[2]:
        raise ValueError(f"{describe_image(dataset, image_id)}: load_mask returned {mask.shape[2]} "
                         f"masks but {class_ids.shape[0]} class ids")
    if class_ids.size and not np.issubdtype(class_ids.dtype, np.integer):
        if not np.all(np.equal(np.mod(class_ids, 1), 0)):
            raise ValueError(f"{describe_image(dataset, image_id)}: class ids must be integers, "
                             "got "
                             f"{class_ids.tolist()}")
    class_ids = class_ids.astype(np.int32)
    num_classes = getattr(dataset, "num_classes", config.NUM_CLASSES)
    bad = class_ids[(class_ids == 0) | (np.abs(class_ids) >= min(num_classes,
                                                                   config.NUM_CLASSES))]
    if bad.size:
        raise ValueError(f"{describe_image(dataset, image_id)}: class id(s) "
                         f"{sorted(set(bad.tolist()))} "
                         f"not in the dataset (valid: 1..{num_classes - 1}, negative for crowd; "
                         f"config NUM_CLASSES={config.NUM_CLASSES})")
    return image, mask, class_ids


def load_image_gt(dataset: Any, config: Any, image_id: int, augment: bool = False,
                  augmentation: Any = None, use_mini_mask: bool = False,
                  rng: np.random.Generator | int | None = None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Load an image with its ground truth, resized for the network and optionally augmented.

    Order: load, check, `resize_image` (config's IMAGE_RESIZE_MODE), `resize_mask`, the
    legacy random left-right flip, imgaug augmentation (geometric augmenters move the masks;
    it must not change the image size), drop instances whose mask became empty, boxes from the
    masks, mini-masks.

    Args:
        dataset: a prepared `mrcnn.data.dataset.Dataset`.
        config: a `Config`.
        image_id: internal image id.
        augment: (deprecated, use `augmentation`) flip left-right with probability 0.5.
        augmentation: an imgaug augmenter, e.g. `iaa.Sequential([iaa.Fliplr(0.5)])`.
        use_mini_mask: return [MINI_MASK_SHAPE[0], MINI_MASK_SHAPE[1], N] masks cropped to
            the boxes instead of full-image masks.
        rng: numpy Generator (or seed) for the crop, flip and augmentation.

    Returns:
        image: [height, width, IMAGE_CHANNEL_COUNT] resized image, dtype of `load_image`.
        image_meta: [IMAGE_META_SIZE] float64 (see `mrcnn.structures.image_meta`).
        class_ids: [N] int32 class ids (negative: crowd).
        bbox: [N, (y1, x1, y2, x2)] int32 pixel boxes of the masks.
        mask: [height, width, N] bool masks, or [mini_h, mini_w, N] with `use_mini_mask`.

    Raises:
        ValueError: naming the image id and path, when the image has the wrong number of
            channels or NaN/infinite pixels, `load_mask` returned None, float masks with values
            other than 0 and 1, masks not of the image's size, masks and class ids differing
            in number, a class id not in the dataset, or augmentation changed the image size.
    """
    global _warned_augment_flag
    rng = np.random.default_rng(rng)
    image, mask, class_ids = _checked_image_and_mask(dataset, config, image_id)
    original_shape = image.shape
    image, window, scale, padding, crop = resize_image(
        image, min_dim=config.IMAGE_MIN_DIM, min_scale=config.IMAGE_MIN_SCALE,
        max_dim=config.IMAGE_MAX_DIM, mode=config.IMAGE_RESIZE_MODE, rng=rng)
    mask = resize_mask(mask, scale, padding, crop)

    if augment:
        if not _warned_augment_flag:
            logger.warning("'augment' is deprecated. Use 'augmentation' instead.")
            _warned_augment_flag = True
        if rng.random() < 0.5:
            image = np.fliplr(image)
            mask = np.fliplr(mask)
    if augmentation is not None:
        shape = image.shape
        image, mask = apply_augmentation(image, mask, augmentation, rng)
        if image.shape != shape:
            raise ValueError(f"{describe_image(dataset, image_id)}: augmentation changed the image "
                             f"shape from {shape} to {image.shape}; augmenters must keep the "
                             "size (resizing happens before augmentation)")
    mask = np.ascontiguousarray(mask.astype(bool, copy=False))

    # Drop instances whose mask vanished (cropped away, pushed out by augmentation): their
    # box is (0, 0, 0, 0). Reading it off the boxes saves a pass over the full-size masks.
    bbox = extract_bboxes(mask)
    keep = bbox[:, 2] > bbox[:, 0]
    if not keep.all():
        mask = mask[:, :, keep]
        class_ids = class_ids[keep]
        bbox = bbox[keep]

    active_class_ids = np.zeros([config.NUM_CLASSES], dtype=np.int32)
    source = dataset.image_info[image_id]["source"]
    active_class_ids[dataset.source_class_ids[source]] = 1

    if use_mini_mask:
        mask = minimize_mask(bbox, mask, config.MINI_MASK_SHAPE)
    image_meta = compose_image_meta(image_id, original_shape, image.shape, window, scale,
                                    active_class_ids)
    return np.ascontiguousarray(image), image_meta, class_ids, bbox, mask
