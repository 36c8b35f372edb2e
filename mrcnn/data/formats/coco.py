"""COCO-format instance datasets: load any instances JSON with its images.

`CocoDataset.load_coco(annotation_json, image_dir)` reads a COCO-style instances file (the
`images`, `annotations` and `categories` lists), checks every annotation before anything is
trained on it, and registers the images. Masks are decoded on demand by `load_mask` from
polygons, compressed RLE (`counts` a string) or uncompressed RLE (`counts` a list of run
lengths, column-major as COCO defines it). Crowd instances (`iscrowd=1`) get a negative class
id, as in matterport's sample: the training code uses them only to discard anchors and ROIs.

Bad input is a ValueError (FileNotFoundError for a missing file) naming the file, the image id
and the annotation id, unless `skip_invalid=True`: then the item is skipped, logged, and counted
in `dataset.skipped` (a Counter keyed by reason). Polygons that stick out of the image are
clipped to it when rasterized (counted in `dataset.clipped`). Checked at load time: image
files (empty, unreadable, animated, or a width/height other than the JSON's, read from the
file header), `bbox` (4 finite numbers, positive width and height, touching the image),
`area`, and annotation ids (a repeated id is skipped after its first use: pycocotools indexes
annotations by id, so a second one would replace the first on its image). Repeated image ids
or ids mixing integers and strings are always a ValueError.

Scoring detections with COCOeval lives in `mrcnn.evaluation.coco`.
"""

from __future__ import annotations

import logging
import math
import os
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from mrcnn.data.dataset import Dataset
from mrcnn.data.formats.common import InvalidAnnotation, quiet, read_json, skip_or_raise

logger = logging.getLogger(__name__)

def read_annotation_file(path: str) -> dict:
    """Read and check the top level of a COCO instances JSON file.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is empty, not JSON, not an object, or has no images or categories.
    """
    data = read_json(path, "COCO annotation file")
    if not isinstance(data, dict):
        raise ValueError(f"COCO annotation file {path!r}: expected a JSON object with 'images', "
                         f"'annotations' and 'categories', got a {type(data).__name__}")
    for key in ("images", "categories"):
        if not isinstance(data.get(key), list) or not data[key]:
            raise ValueError(f"COCO annotation file {path!r} has no {key!r} (an empty or "
                             "missing list)")
    if not isinstance(data.setdefault("annotations", []), list):
        raise ValueError(f"COCO annotation file {path!r}: 'annotations' must be a list")
    return data


def check_segmentation(segmentation: Any, height: int, width: int, where: str) -> bool:
    """Check a COCO segmentation against its image size.

    Args:
        segmentation: a list of polygons [x1, y1, x2, y2, ...] (pixel-edge coordinates) or
            an RLE dict {"size": [height, width], "counts": str or list of run lengths}.
        height, width: the image size from the JSON.
        where: the text naming the annotation in error messages.

    Returns:
        True if a polygon reaches outside the image (it will be clipped), else False.

    Raises:
        InvalidAnnotation: kinds "bad_polygon", "outside_image", "bad_rle".
    """
    if isinstance(segmentation, dict):
        size = segmentation.get("size")
        counts = segmentation.get("counts")
        if not isinstance(size, (list, tuple)) or list(size) != [height, width]:
            raise InvalidAnnotation("bad_rle", f"{where}: RLE size {size!r} does not match "
                                    f"the image's [height, width] = [{height}, {width}]")
        if isinstance(counts, list):
            if any(not _is_id(c) or isinstance(c, str) or c < 0 for c in counts) \
                    or sum(counts) != height * width:
                raise InvalidAnnotation("bad_rle", f"{where}: uncompressed RLE counts must be "
                                        f"non-negative integers summing to {height * width}")
        elif not isinstance(counts, (str, bytes)) or not counts:
            raise InvalidAnnotation("bad_rle", f"{where}: RLE 'counts' must be a string or a "
                                    f"list of integers, got {type(counts).__name__}")
        return False
    if not isinstance(segmentation, list) or not segmentation:
        raise InvalidAnnotation("bad_polygon", f"{where}: segmentation must be a non-empty "
                                f"list of polygons or an RLE dict, got {segmentation!r:.60}")
    xs, ys = [], []
    for polygon in segmentation:
        if not isinstance(polygon, list) or len(polygon) % 2 or len(polygon) < 6:
            n = len(polygon) if isinstance(polygon, list) else polygon
            raise InvalidAnnotation("bad_polygon", f"{where}: a polygon needs at least 3 "
                                    f"(x, y) points as a flat list, got {n!r} values")
        if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in polygon):
            raise InvalidAnnotation("bad_polygon", f"{where}: polygon coordinates must be "
                                    "finite numbers")
        xs.extend(polygon[0::2])
        ys.extend(polygon[1::2])
    if max(xs) <= 0 or min(xs) >= width or max(ys) <= 0 or min(ys) >= height:
        raise InvalidAnnotation("outside_image", f"{where}: the polygon lies entirely outside "
                                f"the {width}x{height} image")
    return min(xs) < 0 or min(ys) < 0 or max(xs) > width or max(ys) > height


def decode_segmentation(segmentation: Any, height: int, width: int) -> np.ndarray:
    """Rasterize a (checked) COCO segmentation to a [height, width] uint8 mask."""
    if isinstance(segmentation, list):
        rle = mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
    elif isinstance(segmentation["counts"], list):
        rle = mask_utils.frPyObjects(segmentation, height, width)
    else:
        rle = segmentation
    return mask_utils.decode(rle)


def _is_id(value: Any) -> bool:
    """True for a usable COCO id: an int (not a bool) or a string."""
    return isinstance(value, (int, str)) and not isinstance(value, bool)


def check_image_file(path: str, height: int, width: int, where: str) -> None:
    """Check an image file's header against the JSON's size without decoding the pixels.

    Raises:
        InvalidAnnotation: kinds "empty_image_file" (0 bytes), "unreadable_image" (not an
            image Pillow can open), "animated_image" (more than one frame), "size_mismatch"
            (the file's width x height differ from the JSON's).
    """
    from PIL import Image, UnidentifiedImageError

    if os.path.getsize(path) == 0:
        raise InvalidAnnotation("empty_image_file", f"{where}: image file {path!r} is empty "
                                "(0 bytes)")
    try:
        with Image.open(path) as image:
            size, frames = image.size, getattr(image, "n_frames", 1)
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise InvalidAnnotation("unreadable_image", f"{where}: image file {path!r} cannot be "
                                f"read ({type(err).__name__}: {err})") from err
    if frames > 1:
        raise InvalidAnnotation("animated_image", f"{where}: image file {path!r} is animated "
                                f"({frames} frames); save the frame to use as a still image")
    if tuple(size) != (width, height):
        raise InvalidAnnotation("size_mismatch", f"{where}: image file {path!r} is "
                                f"{size[0]}x{size[1]} but the JSON says {width}x{height} "
                                "(width x height)")


def check_bbox(bbox: Any, height: int, width: int, where: str) -> None:
    """Check a COCO `bbox` [x, y, width, height] (pixels) against its image.

    Raises:
        InvalidAnnotation: kind "bad_bbox": not 4 finite numbers, a negative width or height,
            or a box entirely outside the image. A [x, y, 0, 0] box is accepted: it goes with
            an empty mask, which `load_mask` skips.
    """
    if not isinstance(bbox, (list, tuple)) or len(bbox) != 4 or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            for v in bbox):
        raise InvalidAnnotation("bad_bbox", f"{where}: 'bbox' must be 4 finite numbers "
                                f"[x, y, width, height], got {bbox!r:.80}")
    x, y, w, h = bbox
    if w < 0 or h < 0:
        raise InvalidAnnotation("bad_bbox", f"{where}: 'bbox' {list(bbox)} has a negative "
                                "width or height (COCO boxes are [x, y, width, height])")
    if x > width or y > height or x + w < 0 or y + h < 0:
        raise InvalidAnnotation("bad_bbox", f"{where}: 'bbox' {list(bbox)} lies entirely "
                                f"outside the {width}x{height} image")


class CocoDataset(Dataset):
    """A dataset read from COCO-format instance annotations (see the module doc).

    Attributes:
        skipped: Counter of skipped items by reason ("bad_image", "missing_image_file",
            "empty_image_file", "unreadable_image", "animated_image", "size_mismatch",
            "bad_annotation", "duplicate_annotation_id", "unknown_image", "unknown_category",
            "bad_polygon", "bad_rle", "outside_image", "missing_segmentation", "bad_bbox",
            "bad_area", "empty_mask"); only skip_invalid=True skips, except
            "empty_mask" (a mask with no pixel after decoding is always skipped, as matterport).
        clipped: number of annotations whose polygons were clipped to the image.
        coco: the pycocotools COCO object of the last `load_coco` call.
    """

    source = "coco"

    def __init__(self, class_map: dict | None = None, channels: int | None = 3) -> None:
        super().__init__(class_map=class_map, channels=channels)
        self.skipped: Counter = Counter()
        self.clipped = 0
        self.coco: COCO | None = None
        self._category_to_source: dict[int, int] = {}
        self._empty_seen: set = set()

    def _skip(self, err: InvalidAnnotation, skip_invalid: bool) -> None:
        skip_or_raise(self.skipped, err, skip_invalid, logger)

    def load_coco(self, annotation_json: str, image_dir: str,
                  class_ids: Sequence[int] | None = None, class_map: dict | None = None,
                  return_coco: bool = False, limit: int | None = None,
                  skip_invalid: bool = False, check_files: bool = True) -> COCO | None:
        """Register the images and classes of a COCO instances file.

        Args:
            annotation_json: path of the instances JSON file.
            image_dir: folder the images' `file_name`s are relative to.
            class_ids: COCO category ids to load (default all); only images with an instance
                of one of them are loaded then.
            class_map: {category id: class name} to rename classes; categories mapped to the
                same name are merged into one class, registered under the smallest of their
                category ids (results map back to that id).
            return_coco: return the pycocotools COCO object.
            limit: load at most this many images (in ascending COCO image id order).
            skip_invalid: skip (log and count) bad images and annotations instead of raising.
            check_files: (mrcnn) read each image file's header at load time (empty,
                unreadable, animated, size other than the JSON's); False leaves these checks
                to `load_image` (faster start on a very large set).

        Returns:
            The COCO object if `return_coco`, else None.

        Raises:
            FileNotFoundError: the annotation file, or an image file (without skip_invalid).
            ValueError: bad input as described in the module doc, unknown ids in `class_ids`
                or `class_map`, or no image left to load.
        """
        data = read_annotation_file(annotation_json)
        name = os.path.basename(annotation_json)
        categories = {}
        for cat in data["categories"]:
            if not isinstance(cat, dict) or not isinstance(cat.get("id"), int):
                raise ValueError(f"{name}: category {cat!r:.80} has no integer 'id'")
            categories[cat["id"]] = str(cat.get("name", cat["id"]))
        selected = sorted(categories) if class_ids is None else sorted({int(c) for c in class_ids})
        unknown = [c for c in selected if c not in categories]
        if not selected:
            raise ValueError(f"{name}: class_ids is empty; pass None to load every category")
        if unknown:
            raise ValueError(f"{name}: class_ids {list(class_ids or [])} include unknown "
                             f"category ids {unknown}; known: {sorted(categories)}")
        class_map = dict(class_map or {})
        if [c for c in class_map if c not in categories]:
            raise ValueError(f"{name}: class_map keys {sorted(class_map)} include ids that are "
                             f"not categories; known: {sorted(categories)}")

        images = self._check_images(data, name, image_dir, skip_invalid, check_files)
        self._check_annotations(data, name, images, categories, skip_invalid)
        coco = COCO()
        coco.dataset = data
        quiet(coco.createIndex)

        # Classes: renamed/merged through class_map, each under its smallest category id.
        groups: dict[str, int] = {}
        for cat_id in selected:
            class_name = str(class_map.get(cat_id, categories[cat_id]))
            groups.setdefault(class_name, cat_id)
            self._category_to_source[cat_id] = groups[class_name]
        for class_name, source_id in groups.items():
            self.add_class(self.source, source_id, class_name)

        if class_ids is None:
            image_ids = sorted(images)
        else:
            image_ids = sorted({i for c in selected for i in coco.getImgIds(catIds=[c])
                                if i in images})
        if limit:
            image_ids = image_ids[:int(limit)]
        for image_id in image_ids:
            entry = coco.imgs[image_id]
            ann_ids = coco.getAnnIds(imgIds=[image_id], catIds=selected, iscrowd=None)
            self.add_image(self.source, image_id=image_id, path=images[image_id],
                           width=int(entry["width"]), height=int(entry["height"]),
                           annotations=coco.loadAnns(ann_ids), coco_url=entry.get("coco_url"))
        if not image_ids:
            raise ValueError(f"{name}: no image to load (skipped: {dict(self.skipped)}; "
                             f"class_ids {class_ids})")
        logger.info("%s: %d images, %d classes; skipped %s; clipped %d", name, len(image_ids),
                    len(groups), dict(self.skipped) or "nothing", self.clipped)
        self.coco = coco
        return coco if return_coco else None

    def _check_images(self, data: dict, name: str, image_dir: str, skip_invalid: bool,
                      check_files: bool = True) -> dict[int, str]:
        """Check the image entries and files; returns {image id: path} of the usable ones.

        Raises:
            ValueError: duplicate image ids, or ids of mixed types (never skipped: the
                annotations of such ids cannot be attributed to one image).
        """
        ids = [e["id"] for e in data["images"] if isinstance(e, dict) and _is_id(e.get("id"))]
        seen: set = set()
        for image_id in ids:
            if image_id in seen:
                raise ValueError(f"{name}: image id {image_id!r} appears more than once in "
                                 "'images'; image ids must be unique")
            seen.add(image_id)
        if len({type(i) for i in ids}) > 1:
            first_int = next(i for i in ids if isinstance(i, int))
            first_str = next(i for i in ids if isinstance(i, str))
            raise ValueError(f"{name}: image ids mix integers and strings (e.g. {first_int!r} "
                             f"and {first_str!r}); use one type (COCO uses integers)")
        paths = {}
        for entry in data["images"]:
            try:
                if not isinstance(entry, dict) or "id" not in entry:
                    raise InvalidAnnotation("bad_image", f"{name}: image entry {entry!r:.80} "
                                            "has no 'id'")
                where = f"{name}: image id {entry['id']!r}"
                if not _is_id(entry["id"]):
                    raise InvalidAnnotation("bad_image", f"{where}: the id must be an integer "
                                            "or a string")
                for key in ("width", "height"):
                    if isinstance(entry.get(key), bool) or not isinstance(entry.get(key), int) \
                            or entry[key] <= 0:
                        raise InvalidAnnotation("bad_image", f"{where}: {key!r} must be a "
                                                f"positive integer, got {entry.get(key)!r}")
                if not entry.get("file_name"):
                    raise InvalidAnnotation("bad_image", f"{where}: no 'file_name'")
                path = os.path.join(image_dir, entry["file_name"])
                if not os.path.isfile(path):
                    if not skip_invalid:
                        raise FileNotFoundError(f"{where}: image file {path!r} not found (pass "
                                                "skip_invalid=True to skip missing images)")
                    raise InvalidAnnotation("missing_image_file",
                                            f"{where}: image file {path!r} not found")
                if check_files:
                    check_image_file(path, entry["height"], entry["width"], where)
            except InvalidAnnotation as err:
                self._skip(err, skip_invalid)
                continue
            paths[entry["id"]] = path
        return paths

    def _check_annotations(self, data: dict, name: str, images: dict[int, str],
                           categories: dict[int, str], skip_invalid: bool) -> None:
        """Check every annotation; drop skipped ones and fill missing iscrowd, area and bbox."""
        known = {e["id"] for e in data["images"] if isinstance(e, dict) and _is_id(e.get("id"))}
        sizes = {e["id"]: (e["height"], e["width"]) for e in data["images"]
                 if isinstance(e, dict) and _is_id(e.get("id")) and e["id"] in images}
        kept = []
        ann_ids: dict = {}  # annotation id -> image id of its first (kept) occurrence
        for ann in data["annotations"]:
            ann_id = ann.get("id") if isinstance(ann, dict) else None
            image_id = ann.get("image_id") if isinstance(ann, dict) else None
            where = f"{name}: annotation id {ann_id!r} (image id {image_id!r})"
            try:
                if not isinstance(ann, dict) or ann_id is None:
                    raise InvalidAnnotation("bad_annotation", f"{where}: not an object with "
                                            "an 'id'")
                if not _is_id(ann_id):
                    raise InvalidAnnotation("bad_annotation", f"{where}: the id must be an "
                                            "integer or a string")
                if ann_id in ann_ids:
                    raise InvalidAnnotation("duplicate_annotation_id", f"{where}: annotation "
                                            f"id {ann_id!r} is already used (image id "
                                            f"{ann_ids[ann_id]!r}); annotation ids must be "
                                            "unique")
                if not _is_id(image_id) or image_id not in known:
                    raise InvalidAnnotation("unknown_image", f"{where}: image id {image_id!r} "
                                            "is not in 'images'")
                if image_id not in images:
                    continue  # its image was skipped: dropped with it, not counted again
                if not _is_id(ann.get("category_id")) or ann["category_id"] not in categories:
                    raise InvalidAnnotation("unknown_category", f"{where}: category id "
                                            f"{ann.get('category_id')!r} is not in "
                                            f"'categories' {sorted(categories)}")
                if "segmentation" not in ann:
                    raise InvalidAnnotation("missing_segmentation", f"{where}: no "
                                            "'segmentation'")
                height, width = sizes[image_id]
                self.clipped += check_segmentation(ann["segmentation"], height, width, where)
                if "bbox" in ann:
                    check_bbox(ann["bbox"], height, width, where)
                if "area" in ann and (isinstance(ann["area"], bool) or not isinstance(
                        ann["area"], (int, float)) or not ann["area"] >= 0
                        or not math.isfinite(ann["area"])):
                    raise InvalidAnnotation("bad_area", f"{where}: 'area' must be a finite "
                                            f"number >= 0, got {ann['area']!r}")
            except InvalidAnnotation as err:
                self._skip(err, skip_invalid)
                continue
            ann["iscrowd"] = int(bool(ann.get("iscrowd", 0)))
            if "area" not in ann or "bbox" not in ann:
                rle = mask_utils.encode(np.asfortranarray(
                    decode_segmentation(ann["segmentation"], height, width)))
                ann.setdefault("area", float(mask_utils.area(rle)))
                ann.setdefault("bbox", [float(v) for v in mask_utils.toBbox(rle)])
            ann_ids[ann_id] = image_id
            kept.append(ann)
        data["annotations"] = kept

    def load_image(self, image_id: int) -> np.ndarray:
        """Read the image and check its size against the JSON's width and height."""
        image = super().load_image(image_id)
        info = self.image_info[image_id]
        if info["source"] == self.source and image.shape[:2] != (info["height"], info["width"]):
            raise ValueError(f"{self._describe(image_id)}: the file is {image.shape[1]}x"
                             f"{image.shape[0]} but the annotations say {info['width']}x"
                             f"{info['height']}")
        return image

    def load_mask(self, image_id: int) -> tuple[np.ndarray, np.ndarray]:
        """Instance masks of an image, decoded from its annotations.

        Returns:
            masks: [height, width, instances] bool.
            class_ids: [instances] int32 internal class ids, negative for crowd instances.
        """
        info = self.image_info[image_id]
        if info["source"] != self.source:
            return super().load_mask(image_id)
        height, width = info["height"], info["width"]
        masks, class_ids = [], []
        for ann in info["annotations"]:
            source_id = self._category_to_source.get(ann["category_id"])
            if source_id is None:
                continue
            class_id = self.map_source_class_id(f"{self.source}.{source_id}")
            try:
                mask = decode_segmentation(ann["segmentation"], height, width)
            except Exception as err:  # pycocotools raises ValueError, TypeError, ...
                raise ValueError(f"{self._describe(image_id)}: annotation id {ann['id']!r}: "
                                 f"cannot decode the segmentation ({err})") from err
            if not mask.any():
                if ann["id"] not in self._empty_seen:
                    self._empty_seen.add(ann["id"])
                    self.skipped["empty_mask"] += 1
                    logger.info("%s: annotation id %r has an empty mask; skipped",
                                self._describe(image_id), ann["id"])
                continue
            masks.append(mask.astype(bool))
            class_ids.append(-class_id if ann.get("iscrowd") else class_id)
        if not masks:
            return np.zeros([height, width, 0], dtype=bool), np.zeros([0], dtype=np.int32)
        return np.stack(masks, axis=2), np.array(class_ids, dtype=np.int32)

    def image_reference(self, image_id: int) -> str:
        """The image's `coco_url` when the JSON has one, else its path."""
        info = self.image_info[image_id]
        if info["source"] != self.source:
            return super().image_reference(image_id)
        return info.get("coco_url") or info["path"]
