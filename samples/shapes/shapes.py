"""The shapes toy dataset: squares, circles and triangles on a random plain background.

matterport's `ShapesConfig` and `ShapesDataset`, with one change: `load_shapes` takes a
`seed` and draws everything from its own `np.random.Generator`, so a dataset is the same in
every run and process and never touches the global random state. Images and masks are drawn
on demand with OpenCV from the stored specs (a few hundred microseconds at 128 px).
"""

from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np

from mrcnn.config import Config
from mrcnn.data.dataset import Dataset
from mrcnn.structures.boxes import non_max_suppression

SHAPES = ("square", "circle", "triangle")

# Shapes stay this many pixels away from the border and are at least this big (half size).
_BUFFER = 20
# Boxes overlapping more than this IoU are thinned out when an image is generated.
_OVERLAP_IOU = 0.3
# Half base of the triangle relative to its half height s: s / sin(60 degrees).
_TRIANGLE_HALF_BASE = 1.0 / math.sin(math.radians(60))


class ShapesConfig(Config):
    """Configuration for training on the shapes dataset (matterport's values)."""

    NAME = "shapes"
    GPU_COUNT = 1
    IMAGES_PER_GPU = 8
    NUM_CLASSES = 1 + 3  # background + square, circle, triangle
    IMAGE_MIN_DIM = 128
    IMAGE_MAX_DIM = 128
    RPN_ANCHOR_SCALES = (8, 16, 32, 64, 128)  # anchor side in pixels
    TRAIN_ROIS_PER_IMAGE = 32  # few objects per image
    STEPS_PER_EPOCH = 100
    VALIDATION_STEPS = 5


def draw_shape(image: np.ndarray, shape: str, dims: tuple[int, int, int],
               color: Any) -> np.ndarray:
    """Draw one filled shape into `image` (in place) and return it.

    Args:
        image: [height, width] or [height, width, channels] contiguous uint8 array.
        shape: "square", "circle" or "triangle".
        dims: (x, y, s): centre in pixels and half size (square half side, circle radius,
            triangle half height).
        color: a number, or a tuple with one value per channel.

    Raises:
        ValueError: unknown shape.
    """
    x, y, s = (int(v) for v in dims)
    if shape == "square":
        cv2.rectangle(image, (x - s, y - s), (x + s, y + s), color, -1)
    elif shape == "circle":
        cv2.circle(image, (x, y), s, color, -1)
    elif shape == "triangle":
        half_base = s * _TRIANGLE_HALF_BASE
        points = np.array([[(x, y - s), (x - half_base, y + s), (x + half_base, y + s)]],
                          dtype=np.int32)
        cv2.fillPoly(image, points, color)
    else:
        raise ValueError(f"Unknown shape {shape!r}; expected one of {SHAPES}")
    return image


class ShapesDataset(Dataset):
    """Generates the shapes dataset: images are drawn on demand from stored specs."""

    def load_shapes(self, count: int, height: int, width: int, seed: int | None = 0) -> None:
        """Register `count` random images of `height` x `width` pixels.

        Args:
            count: number of images.
            height, width: image size; both must exceed 2 * 20 (the border buffer), and
                height // 4 >= 20 (the smallest shape).
            seed: seed of the dataset's own random generator (None: not reproducible).

        Raises:
            ValueError: a negative count or an image too small for the shapes.
        """
        if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 0:
            raise ValueError(f"count must be a non-negative integer, got {count!r}")
        if height // 4 < _BUFFER or width <= 2 * _BUFFER:
            raise ValueError(f"image size {(height, width)} too small: height // 4 and "
                             f"width / 2 must be at least {_BUFFER}")
        rng = np.random.default_rng(seed)
        for i, name in enumerate(SHAPES, start=1):
            self.add_class("shapes", i, name)
        for i in range(count):
            bg_color, shapes = self.random_image(height, width, rng)
            self.add_image("shapes", image_id=i, path=None, width=width, height=height,
                           bg_color=bg_color, shapes=shapes)

    def load_image(self, image_id: int) -> np.ndarray:
        """Draw the image: [height, width, 3] uint8, shapes painted in list order."""
        info = self.image_info[image_id]
        image = np.empty([info["height"], info["width"], 3], dtype=np.uint8)
        image[:] = np.asarray(info["bg_color"], dtype=np.uint8)
        for shape, color, dims in info["shapes"]:
            draw_shape(image, shape, dims, color)
        return image

    def image_reference(self, image_id: int) -> Any:
        """The shape specs of the image: [(shape, color, (x, y, s)), ...]."""
        info = self.image_info[image_id]
        if info["source"] == "shapes":
            return info["shapes"]
        return super().image_reference(image_id)

    def load_mask(self, image_id: int) -> tuple[np.ndarray, np.ndarray]:
        """Instance masks, with the parts hidden by later (upper) shapes removed.

        Returns:
            masks: [height, width, num_shapes] bool.
            class_ids: [num_shapes] int32 (1 square, 2 circle, 3 triangle, by class name).
        """
        info = self.image_info[image_id]
        shapes = info["shapes"]
        height, width = info["height"], info["width"]
        masks = np.zeros([len(shapes), height, width], dtype=np.uint8)
        for i, (shape, _, dims) in enumerate(shapes):
            draw_shape(masks[i], shape, dims, 1)
        masks = masks.astype(bool)
        # Occlusion: a shape hides what lies under it; the last one drawn is on top.
        covered = np.zeros([height, width], dtype=bool)
        for i in range(len(shapes) - 1, -1, -1):
            masks[i] &= ~covered
            covered |= masks[i]
        class_ids = np.array([self.class_names.index(s[0]) for s in shapes], dtype=np.int32)
        return np.ascontiguousarray(masks.transpose(1, 2, 0)), class_ids

    @staticmethod
    def random_shape(height: int, width: int, rng: np.random.Generator
                     ) -> tuple[str, tuple[int, int, int], tuple[int, int, int]]:
        """A random shape spec: (name, (r, g, b) colour, (x, y, s) centre and half size)."""
        shape = SHAPES[int(rng.integers(len(SHAPES)))]
        color = tuple(int(c) for c in rng.integers(0, 256, size=3))
        y = int(rng.integers(_BUFFER, height - _BUFFER))
        x = int(rng.integers(_BUFFER, width - _BUFFER))
        s = int(rng.integers(_BUFFER, height // 4 + 1))
        return shape, color, (x, y, s)

    def random_image(self, height: int, width: int, rng: np.random.Generator
                     ) -> tuple[tuple[int, int, int], list]:
        """A random background colour and 1 to 4 shapes, thinned by box overlap (NMS, later
        shapes win) so that no shape hides another one completely."""
        bg_color = tuple(int(c) for c in rng.integers(0, 256, size=3))
        count = int(rng.integers(1, 5))
        shapes = [self.random_shape(height, width, rng) for _ in range(count)]
        boxes = np.array([[y - s, x - s, y + s, x + s] for _, _, (x, y, s) in shapes])
        keep = set(non_max_suppression(boxes, np.arange(count), _OVERLAP_IOU).tolist())
        return bg_color, [s for i, s in enumerate(shapes) if i in keep]
