"""Training batches: `DataGenerator`, a Keras PyDataset over `load_image_gt`.

`DataGenerator` is a `keras.utils.PyDataset`, so `fit` can run it in worker threads or
processes. Every batch is a pure function of (seed, epoch, batch index): item k of batch `idx`
is the image at position `idx * batch_size + k` of the epoch's permutation (the permutation
wraps around with a fresh shuffle per pass, so `steps` may exceed the dataset), and its
randomness (augmentation, crop, target sampling) comes from
`np.random.default_rng([seed, epoch, idx, k])`. Forked workers therefore never repeat each
other's augmentations, and a run with the same seed gives the same batches.

`data_generator()` is matterport's infinite Python generator, kept for old code.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import Any

import keras
import numpy as np

from mrcnn.data.augment import check_augmenter
from mrcnn.data.ground_truth import describe_image, load_image_gt
from mrcnn.data.targets import build_detection_targets, build_rpn_targets, generate_random_rois
from mrcnn.structures.anchors import anchors_for_config
from mrcnn.structures.checks import check_int
from mrcnn.structures.image import mold_image
from mrcnn.structures.image_meta import SLICES as META_SLICES

# Extra entropy word of the permutation streams, so they never coincide with an item stream
# [seed, epoch, idx, k] (k < batch size).
_PERMUTATION_STREAM = 0x5045524D


class DataGenerator(keras.utils.PyDataset):
    """Batches of images and training targets for `MaskRCNN.train` (a Keras PyDataset).

    Each batch is `(inputs,)` with `inputs` a tuple:
        images: [batch, H, W, C] float32 molded images (config.IMAGE_SHAPE).
        image_meta: [batch, IMAGE_META_SIZE] float32.
        rpn_match: [batch, num_anchors, 1] int32, 1 / -1 / 0 (positive, negative, neutral).
        rpn_bbox: [batch, RPN_TRAIN_ANCHORS_PER_IMAGE, (dy, dx, log(dh), log(dw))] float32.
        gt_class_ids: [batch, MAX_GT_INSTANCES] int32, zero padded.
        gt_boxes: [batch, MAX_GT_INSTANCES, (y1, x1, y2, x2)] int32 pixels, zero padded.
        gt_masks: [batch, h, w, MAX_GT_INSTANCES] bool: MINI_MASK_SHAPE with USE_MINI_MASK,
            else the image size; zero padded.
      with `random_rois`:
        rpn_rois: [batch, random_rois, (y1, x1, y2, x2)] int32 pixels.
      with `detection_targets` (needs `random_rois`):
        rois: [batch, TRAIN_ROIS_PER_IMAGE, (y1, x1, y2, x2)] int32 pixels,
        mrcnn_class_ids: [batch, TRAIN_ROIS_PER_IMAGE, 1] int32,
        mrcnn_bbox: [batch, TRAIN_ROIS_PER_IMAGE, NUM_CLASSES, 4] float32,
        mrcnn_mask: [batch, TRAIN_ROIS_PER_IMAGE, MASK_H, MASK_W, NUM_CLASSES] float32.

    Every image is brought to config.IMAGE_SHAPE so that all batches have the same shapes:
    "square" and "crop" modes do that already; in "none" and "pad64" modes a smaller image is
    zero padded at the bottom and right (its window is unchanged) and a larger one is a
    ValueError naming the image.

    Images without instances (none left after resizing/augmentation, or only crowd ones) are
    skipped, as matterport did: the item takes the next image of the permutation instead
    (so an image can then appear twice in a batch). With config.KEEP_NEGATIVE_IMAGES they are
    kept as negatives. If no image yields an instance, ValueError.
    """

    def __init__(self, dataset: Any, config: Any, shuffle: bool = True, augmentation: Any = None,
                 random_rois: int = 0, detection_targets: bool = False,
                 no_augmentation_sources: Iterable[str] | None = None, seed: int | None = None,
                 steps: int | None = None, workers: int = 1, use_multiprocessing: bool = False,
                 max_queue_size: int = 10, batch_size: int | None = None,
                 augment: bool = False) -> None:
        """Check the arguments and prepare the anchors.

        Args:
            dataset: a prepared `mrcnn.data.dataset.Dataset` with at least one image.
            config: a `Config` (BATCH_SIZE, IMAGE_SHAPE, MAX_GT_INSTANCES, USE_MINI_MASK,
                KEEP_NEGATIVE_IMAGES, RANDOM_SEED and the anchor settings are read).
            shuffle: a new random order each epoch (else the dataset order).
            augmentation: imgaug augmenter applied to every training image.
            random_rois: if > 0, also return that many random ROIs per image.
            detection_targets: also return the heads' targets for those ROIs.
            no_augmentation_sources: dataset sources whose images are never augmented.
            seed: seed of all randomness; None: config.RANDOM_SEED, else drawn once here.
            steps: batches per epoch; None: one pass, ceil(num_images / batch_size).
            workers, use_multiprocessing, max_queue_size: passed to `keras.utils.PyDataset`.
            batch_size: images per batch; None: config.BATCH_SIZE.
            augment: (deprecated, use `augmentation`) random left-right flips.

        Raises:
            ValueError: an empty dataset, more dataset classes than NUM_CLASSES, a bad
                batch_size/random_rois/steps, or detection_targets without random_rois.
            TypeError: `augmentation` is not an imgaug augmenter.
        """
        super().__init__(workers=workers, use_multiprocessing=use_multiprocessing,
                         max_queue_size=max_queue_size)
        image_ids = np.asarray(getattr(dataset, "image_ids", []))
        if image_ids.size == 0:
            raise ValueError("The dataset has no images; add images and call prepare() first")
        if getattr(dataset, "num_classes", 0) > config.NUM_CLASSES:
            raise ValueError(f"The dataset has {dataset.num_classes} classes (with BG) but "
                             f"config NUM_CLASSES={config.NUM_CLASSES}")
        batch_size = config.BATCH_SIZE if batch_size is None else batch_size
        check_int("batch_size", batch_size, minimum=1)
        check_int("random_rois", random_rois, minimum=0)
        if steps is not None:
            check_int("steps", steps, minimum=1)
        if detection_targets and not random_rois:
            raise ValueError("detection_targets=True needs random_rois > 0 (the ROIs the "
                             "targets are built for)")
        if augmentation is not None:
            check_augmenter(augmentation)
        if seed is None:
            seed = getattr(config, "RANDOM_SEED", None)
        if seed is None:
            seed = int(np.random.default_rng().integers(0, 2**31 - 1))
        self.dataset = dataset
        self.config = config
        self.shuffle = bool(shuffle)
        self.augmentation = augmentation
        self.augment = bool(augment)
        self.random_rois = int(random_rois)
        self.detection_targets = bool(detection_targets)
        self.no_augmentation_sources = frozenset(no_augmentation_sources or ())
        self.seed = int(seed)
        self.steps = None if steps is None else int(steps)
        self.batch_size = int(batch_size)
        self.image_ids = image_ids
        self.epoch = 0
        self.image_shape = tuple(int(d) for d in config.IMAGE_SHAPE)
        self.anchors = anchors_for_config(config, np.asarray(config.IMAGE_SHAPE))
        self._permutations: dict[tuple[int, int], np.ndarray] = {}

    def __len__(self) -> int:
        if self.steps is not None:
            return self.steps
        return math.ceil(len(self.image_ids) / self.batch_size)

    def on_epoch_end(self) -> None:
        """Advance the epoch: the next epoch gets new permutations and random streams."""
        self.epoch += 1
        self._permutations = {}

    # ------------------------------------------------------------------ sampling
    def _permutation(self, epoch: int, pass_no: int) -> np.ndarray:
        key = (epoch, pass_no)
        perm = self._permutations.get(key)
        if perm is None:
            if self.shuffle:
                rng = np.random.default_rng([self.seed, epoch, pass_no, _PERMUTATION_STREAM])
                perm = self.image_ids[rng.permutation(len(self.image_ids))]
            else:
                perm = self.image_ids
            if len(self._permutations) > 8:
                self._permutations.clear()
            self._permutations[key] = perm
        return perm

    def image_id_at(self, position: int, epoch: int | None = None) -> int:
        """Image id at `position` of the epoch's sequence (wrapping with a new permutation)."""
        n = len(self.image_ids)
        pass_no, offset = divmod(int(position), n)
        return int(self._permutation(self.epoch if epoch is None else epoch, pass_no)[offset])

    def _load_item(self, position: int, rng: np.random.Generator) -> tuple:
        """Ground truth of the first usable image from `position` on."""
        config = self.config
        keep_negative = getattr(config, "KEEP_NEGATIVE_IMAGES", False)
        tries = 2 * len(self.image_ids)  # covers one whole pass whatever the start offset
        for j in range(tries):
            image_id = self.image_id_at(position + j)
            source = self.dataset.image_info[image_id]["source"]
            augmentation = (None if source in self.no_augmentation_sources
                            else self.augmentation)
            augment = self.augment and source not in self.no_augmentation_sources
            image, meta, class_ids, boxes, masks = load_image_gt(
                self.dataset, config, image_id, augment=augment, augmentation=augmentation,
                use_mini_mask=config.USE_MINI_MASK, rng=rng)
            if keep_negative or np.any(class_ids > 0):
                return self._to_image_shape(image_id, image, meta, masks) + (class_ids, boxes)
        raise ValueError(f"No image of the dataset has an instance (tried {tries} images from "
                         f"position {position}; instances must survive resizing and "
                         "augmentation). Set config.KEEP_NEGATIVE_IMAGES=True to train on "
                         "images without instances.")

    def _to_image_shape(self, image_id: int, image: np.ndarray, meta: np.ndarray,
                        masks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Zero-pad an image (and full-size masks) at the bottom/right to IMAGE_SHAPE."""
        target_h, target_w = self.image_shape[:2]
        h, w = image.shape[:2]
        if (h, w) == (target_h, target_w):
            return image, meta, masks
        if h > target_h or w > target_w:
            raise ValueError(
                f"{describe_image(self.dataset, image_id)}: resized to {(h, w)}, larger than "
                f"config.IMAGE_SHAPE {(target_h, target_w)} (IMAGE_RESIZE_MODE="
                f"{self.config.IMAGE_RESIZE_MODE!r}); raise IMAGE_MAX_DIM or use 'square'")
        pad = ((0, target_h - h), (0, target_w - w), (0, 0))
        image = np.pad(image, pad)
        if not self.config.USE_MINI_MASK:
            masks = np.pad(masks, pad)
        meta = meta.copy()
        meta[META_SLICES["image_shape"]] = self.image_shape
        return image, meta, masks

    def __getitem__(self, idx: int) -> tuple[tuple[np.ndarray, ...]]:
        """Batch `idx` of the current epoch: `(inputs,)`, see the class doc."""
        if idx < 0:
            raise IndexError(f"batch index must be >= 0, got {idx}")
        config = self.config
        items = []
        for k in range(self.batch_size):
            rng = np.random.default_rng([self.seed, self.epoch, int(idx), k])
            image, meta, masks, class_ids, boxes = self._load_item(
                int(idx) * self.batch_size + k, rng)
            rpn_match, rpn_bbox = build_rpn_targets(image.shape, self.anchors, class_ids, boxes,
                                                    config, rng=rng)
            extra = ()
            if self.random_rois:
                rpn_rois = generate_random_rois(image.shape, self.random_rois, class_ids, boxes,
                                                rng=rng)
                extra = (rpn_rois,)
                if self.detection_targets:
                    extra += build_detection_targets(rpn_rois, class_ids, boxes, masks, config,
                                                     rng=rng)
            if boxes.shape[0] > config.MAX_GT_INSTANCES:
                ids = np.sort(rng.choice(boxes.shape[0], config.MAX_GT_INSTANCES, replace=False))
                class_ids, boxes, masks = class_ids[ids], boxes[ids], masks[:, :, ids]
            items.append((image, meta, rpn_match, rpn_bbox, class_ids, boxes, masks, extra))
        return (self._collate(items),)

    def _collate(self, items: list[tuple]) -> tuple[np.ndarray, ...]:
        config = self.config
        batch = len(items)
        max_gt = config.MAX_GT_INSTANCES
        mask_hw = items[0][6].shape[:2]
        images = mold_image(np.stack([it[0] for it in items]), config).astype(np.float32)
        metas = np.stack([it[1] for it in items]).astype(np.float32)
        rpn_match = np.stack([it[2] for it in items]).astype(np.int32)[..., np.newaxis]
        rpn_bbox = np.stack([it[3] for it in items]).astype(np.float32)
        gt_class_ids = np.zeros((batch, max_gt), dtype=np.int32)
        gt_boxes = np.zeros((batch, max_gt, 4), dtype=np.int32)
        gt_masks = np.zeros((batch,) + mask_hw + (max_gt,), dtype=bool)
        for b, it in enumerate(items):
            count = it[4].shape[0]
            gt_class_ids[b, :count] = it[4]
            gt_boxes[b, :count] = it[5]
            gt_masks[b, :, :, :count] = it[6]
        inputs = (images, metas, rpn_match, rpn_bbox, gt_class_ids, gt_boxes, gt_masks)
        if self.random_rois:
            inputs += (np.stack([it[7][0] for it in items]).astype(np.int32),)
            if self.detection_targets:
                inputs += (
                    np.stack([it[7][1] for it in items]).astype(np.int32),
                    np.stack([it[7][2] for it in items]).astype(np.int32)[..., np.newaxis],
                    np.stack([it[7][3] for it in items]).astype(np.float32),
                    np.stack([it[7][4] for it in items]).astype(np.float32),
                )
        return inputs


def data_generator(dataset: Any, config: Any, shuffle: bool = True, augment: bool = False,
                   augmentation: Any = None, random_rois: int = 0, batch_size: int = 1,
                   detection_targets: bool = False,
                   no_augmentation_sources: Iterable[str] | None = None
                   ) -> Iterator[tuple[list[np.ndarray], list[np.ndarray]]]:
    """matterport's infinite generator of `(inputs, outputs)` lists (for old code).

    `inputs` is the 7 arrays of `DataGenerator`, then `rpn_rois` with `random_rois`, then
    `rois` with `detection_targets`; `outputs` is `[mrcnn_class_ids, mrcnn_bbox, mrcnn_mask]`
    with `detection_targets`, else `[]`. `batch_size` overrides config.BATCH_SIZE. A new
    epoch (reshuffle) starts after each pass over the dataset.
    """
    gen = DataGenerator(dataset, config, shuffle=shuffle, augmentation=augmentation,
                        random_rois=random_rois, detection_targets=detection_targets,
                        no_augmentation_sources=no_augmentation_sources, batch_size=batch_size,
                        augment=augment)
    while True:
        for idx in range(len(gen)):
            inputs = list(gen[idx][0])
            outputs: list[np.ndarray] = []
            if detection_targets:
                outputs = inputs[9:]
                inputs = inputs[:9]
            yield inputs, outputs
        gen.on_epoch_end()
