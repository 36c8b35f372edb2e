"""The Dataset base class: classes and images from one or more sources, and image loading.

Subclass `Dataset`, register classes with `add_class` and images with `add_image` in a loader
method, override `load_mask` (and `load_image` when images are not plain files), then call
`prepare()`. The interface is matterport's `utils.Dataset`; additions are marked "(mrcnn)".

Internal class ids are contiguous integers (0 is the background "BG"); each source (a dataset
such as "coco" or "shapes") keeps its own ids, mapped through `class_from_source_map`.

Image conversion rules of the base `load_image` (mrcnn), applied in this order:

1. Depth: uint8 is kept; uint16 (16-bit PNG/TIFF) is scaled linearly from [0, 65535] to
   [0, 255] (`round(v / 257)`, so 65535 -> 255 and 257 -> 1); other integer types with values
   above 255 are scaled from [0, max of the type] likewise; bool becomes 0/255; floats in
   [0, 1] are multiplied by 255, other floats are clipped to [0, 255]. The result is uint8.
2. Channels, to `self.channels` (3 by default; None keeps what the file has): grayscale is
   repeated to RGB; an alpha channel is dropped; RGB becomes grayscale with skimage's
   luminance weights (0.2125 R + 0.7154 G + 0.0721 B) when `channels == 1`. Anything else
   (say RGB to 4 channels) is a ValueError: override `load_image` for RGB-D and the like.

Checks shared with `detect()` (mrcnn, see `check_pixels` and `check_image_size`): NaN or
infinite pixels, non-numeric dtypes, images with a side under MIN_IMAGE_SIDE pixels, empty
(zero-byte) files and animated images (more than one frame) are ValueErrors naming the image.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

# skimage.color.rgb2gray's luminance weights (ITU-R BT.709).
_LUMINANCE = np.array([0.2125, 0.7154, 0.0721])

# Smallest accepted image side in pixels. A 1-pixel side has nothing to interpolate: a 1x400
# image would be stretched to a 3-pixel strip of a 1024x1024 input (scale 2.56), a 1x1 image
# to an 800x800 flat square (scale 800).
MIN_IMAGE_SIDE = 2


class UnknownClassError(ValueError, KeyError):
    """A (source, class id) pair that was never registered with `add_class`.

    A ValueError as the project's bad-input errors are, and a KeyError for code written against
    matterport, whose `map_source_class_id` raised one.
    """

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


def check_pixels(image: np.ndarray, where: str = "image") -> np.ndarray:
    """`image` as an array, when its dtype is numeric (or bool) and every pixel is finite.

    Raises:
        ValueError: a non-numeric dtype (object, string, complex), or NaN or infinite pixels,
            naming `where`, the dtype, the shape and the count of bad values.
    """
    image = np.asarray(image)
    if not (image.dtype == np.bool_ or np.issubdtype(image.dtype, np.integer)
            or np.issubdtype(image.dtype, np.floating)):
        raise ValueError(f"{where}: pixels must be numbers (uint8, uint16, float or bool), got "
                        f"dtype {image.dtype}")
    if np.issubdtype(image.dtype, np.floating):
        bad = int(np.count_nonzero(~np.isfinite(image)))
        if bad:
            raise ValueError(f"{where}: {bad} of {image.size} pixel values are NaN or infinite "
                             f"(shape {image.shape}, dtype {image.dtype}); replace them "
                             "(e.g. np.nan_to_num) before use")
    return image


def check_image_size(image: np.ndarray, where: str = "image") -> None:
    """Raise a ValueError naming `where` when the image's height or width is under
    MIN_IMAGE_SIDE pixels."""
    if image.ndim < 2 or min(image.shape[:2]) < MIN_IMAGE_SIDE:
        raise ValueError(f"{where}: shape {image.shape} is too small: height and width must be "
                         f"at least {MIN_IMAGE_SIDE} pixels")


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Convert an image of any numeric dtype to uint8 with the depth rule in the module doc.

    Raises:
        ValueError: see `check_pixels`.
    """
    image = check_pixels(image)
    if image.dtype == np.uint8:
        return image
    if image.dtype == np.bool_:
        return image.astype(np.uint8) * 255
    if image.dtype == np.uint16:
        return ((image.astype(np.uint32) + 128) // 257).astype(np.uint8)
    if np.issubdtype(image.dtype, np.integer):
        if image.size == 0 or (image.min() >= 0 and image.max() <= 255):
            return image.astype(np.uint8)
        top = float(np.iinfo(image.dtype).max)
        return np.clip(np.rint(image.astype(np.float64) * (255.0 / top)), 0, 255).astype(np.uint8)
    if np.issubdtype(image.dtype, np.floating):
        if image.size and np.nanmin(image) >= 0 and np.nanmax(image) <= 1:
            image = image * 255.0
        return np.clip(np.rint(image), 0, 255).astype(np.uint8)
    raise ValueError(f"cannot convert an image of dtype {image.dtype} to uint8")


def convert_channels(image: np.ndarray, channels: int | None) -> np.ndarray:
    """Bring a [H, W] or [H, W, C] uint8 image to [H, W, channels] (rules in the module doc).

    Raises:
        ValueError: the image is not 2-D or 3-D, or it cannot be brought to `channels`.
    """
    if image.ndim == 2:
        image = image[..., np.newaxis]
    if image.ndim != 3:
        raise ValueError(f"expected a [height, width(, channels)] image, got shape {image.shape}")
    have = image.shape[2]
    if channels is None or have == channels:
        return image
    if have in (2, 4):  # drop alpha
        image = image[..., : have - 1]
        have -= 1
        if have == channels:
            return image
    if have == 1 and channels == 3:
        return np.repeat(image, 3, axis=2)
    if have == 3 and channels == 1:
        gray = np.rint(image.astype(np.float64) @ _LUMINANCE)
        return np.clip(gray, 0, 255).astype(np.uint8)[..., np.newaxis]
    raise ValueError(f"cannot convert an image with {image.shape[2]} channels to {channels} "
                     "channels; override Dataset.load_image to build the extra channels")


class Dataset:
    """Base class for dataset classes (matterport's interface).

    Attributes:
        class_info: list of {"source", "id", "name"} dicts; entry 0 is the background.
        image_info: list of {"id", "source", "path", **extra} dicts, in insertion order.
        channels: (mrcnn) number of channels `load_image` returns; None keeps the file's.
        After `prepare()`: num_classes, class_ids, class_names, num_images, image_ids,
        class_from_source_map, image_from_source_map, sources, source_class_ids.
    """

    def __init__(self, class_map: dict | None = None, channels: int | None = 3) -> None:
        """Make an empty dataset.

        Args:
            class_map: unused, kept for matterport's signature.
            channels: (mrcnn) channels of the images `load_image` returns (1, 3 or 4; None:
                as stored). Match it to `config.IMAGE_CHANNEL_COUNT`.
        """
        if channels is not None and (isinstance(channels, bool) or channels not in (1, 2, 3, 4)):
            raise ValueError(f"channels must be 1, 2, 3, 4 or None, got {channels!r}")
        self._image_ids: np.ndarray = np.zeros([0], dtype=np.int64)
        self.image_info: list[dict[str, Any]] = []
        # Background is always the first class.
        self.class_info: list[dict[str, Any]] = [{"source": "", "id": 0, "name": "BG"}]
        self.source_class_ids: dict[str, list[int]] = {}
        self.channels = channels

    # ------------------------------------------------------------------ registration
    def add_class(self, source: str, class_id: int, class_name: str) -> None:
        """Register a class of `source`; a second registration of the same pair is ignored.

        Raises:
            ValueError: `source` contains a dot (it separates source and id in map keys).
        """
        if "." in source:
            raise ValueError(f"Source name cannot contain a dot: {source!r}")
        for info in self.class_info:
            if info["source"] == source and info["id"] == class_id:
                return
        self.class_info.append({"source": source, "id": class_id, "name": class_name})

    def add_image(self, source: str, image_id: Any, path: str | None, **kwargs: Any) -> None:
        """Register an image: `image_id` is the source's own id; kwargs are kept in its info."""
        image_info = {"id": image_id, "source": source, "path": path}
        image_info.update(kwargs)
        self.image_info.append(image_info)

    def image_reference(self, image_id: int) -> str:
        """A link to the image in its source (a URL or path); "" unless overridden."""
        return ""

    def prepare(self, class_map: dict | None = None) -> None:
        """Build the id tables. Call after all add_class/add_image calls, before use."""

        def clean_name(name: str) -> str:
            """Keep the first part of a comma-separated name ("person, human" -> "person")."""
            return ",".join(name.split(",")[:1])

        self.num_classes = len(self.class_info)
        self.class_ids = np.arange(self.num_classes)
        self.class_names = [clean_name(c["name"]) for c in self.class_info]
        self.num_images = len(self.image_info)
        self._image_ids = np.arange(self.num_images)
        self.class_from_source_map = {f"{info['source']}.{info['id']}": i
                                      for i, info in enumerate(self.class_info)}
        self.image_from_source_map = {f"{info['source']}.{info['id']}": i
                                      for i, info in enumerate(self.image_info)}
        # Sorted (matterport used a set) so the order is the same in every run.
        self.sources = sorted({info["source"] for info in self.class_info})
        self.source_class_ids = {
            source: [i for i, info in enumerate(self.class_info)
                     if i == 0 or info["source"] == source]
            for source in self.sources
        }

    # ------------------------------------------------------------------ id mapping
    def map_source_class_id(self, source_class_id: str) -> int:
        """Internal class id of a "source.class_id" key, e.g. "coco.12" -> 23.

        Raises:
            UnknownClassError (a ValueError and a KeyError): the key is not registered.
        """
        try:
            return self.class_from_source_map[source_class_id]
        except AttributeError:
            raise RuntimeError("Call Dataset.prepare() before mapping class ids") from None
        except KeyError:
            raise UnknownClassError(
                f"Class {source_class_id!r} is not registered; known: "
                f"{sorted(self.class_from_source_map)[:20]}") from None

    def get_source_class_id(self, class_id: int, source: str) -> int:
        """The source's own id of internal class `class_id`, which must belong to `source`.

        Raises:
            ValueError: `class_id` is out of range or belongs to another source.
        """
        if not 0 <= int(class_id) < len(self.class_info):
            raise ValueError(f"class_id {class_id} is not registered "
                             f"({len(self.class_info)} classes)")
        info = self.class_info[int(class_id)]
        if info["source"] != source:
            raise ValueError(f"class_id {class_id} belongs to source {info['source']!r}, "
                             f"not {source!r}")
        return info["id"]

    @property
    def image_ids(self) -> np.ndarray:
        """[num_images] internal image ids (empty before `prepare()`)."""
        return self._image_ids

    def source_image_link(self, image_id: int) -> str | None:
        """The path or URL of the image in its source."""
        return self.image_info[image_id]["path"]

    # ------------------------------------------------------------------ loading
    def _describe(self, image_id: int) -> str:
        info = self.image_info[image_id] if 0 <= image_id < len(self.image_info) else {}
        return f"image {image_id} (source id {info.get('id')!r}, path {info.get('path')!r})"

    def load_image(self, image_id: int) -> np.ndarray:
        """Read the image file of `image_id` and convert it (rules in the module doc).

        Returns:
            [height, width, channels] uint8 image (channels = `self.channels`, or as stored).

        Raises:
            FileNotFoundError: the file does not exist.
            ValueError: no path is registered, the file is empty (0 bytes), cannot be decoded,
                is animated, is smaller than MIN_IMAGE_SIDE, has NaN or infinite pixels, or
                its shape or channels cannot be converted; the message names the image id
                and path.
        """
        import skimage.io  # deferred: skimage.io pulls in imageio and plugins

        path = self.image_info[image_id].get("path")
        if not path:
            raise ValueError(f"{self._describe(image_id)}: no path to read; override "
                             "load_image for images that are not files")
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{self._describe(image_id)}: file not found")
        if os.path.getsize(path) == 0:
            raise ValueError(f"{self._describe(image_id)}: the file is empty (0 bytes)")
        try:
            image = skimage.io.imread(path)
        except Exception as err:  # decoders raise OSError, ValueError, SyntaxError, ...
            raise ValueError(f"{self._describe(image_id)}: cannot decode the image file "
                             f"({type(err).__name__}: {err})") from err
        image = np.asarray(image)
        if image.ndim == 4 and image.shape[0] == 1:  # a single-frame GIF reads as [1, H, W, C]
            image = image[0]
        if image.ndim == 4:
            raise ValueError(f"{self._describe(image_id)}: the file is animated "
                             f"({image.shape[0]} frames of {image.shape[1:]}); save the frame "
                             "to use as a still image")
        if image.ndim not in (2, 3) or image.size == 0:
            raise ValueError(f"{self._describe(image_id)}: expected a single 2-D image, got "
                             f"an array of shape {image.shape}")
        try:
            check_image_size(image, "the decoded image")
            return convert_channels(to_uint8(image), getattr(self, "channels", 3))
        except ValueError as err:
            raise ValueError(f"{self._describe(image_id)}: {err}") from err

    def load_mask(self, image_id: int) -> tuple[np.ndarray, np.ndarray]:
        """Instance masks of an image. Override it: the base returns no instances.

        Returns:
            masks: [height, width, instances] bool, one mask per instance.
            class_ids: [instances] int32 internal class ids.
        """
        logger.warning("You are using the default load_mask(), maybe you need to define "
                       "your own one.")
        return np.empty([0, 0, 0], dtype=bool), np.empty([0], np.int32)
