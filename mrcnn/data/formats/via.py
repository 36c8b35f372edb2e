"""VIA (VGG Image Annotator) datasets: a folder of images with a region JSON file.

`ViaDataset.load_via(dataset_dir, subset)` reads `dataset_dir/subset/via_region_data.json`
as matterport's balloon sample did, in any of VIA's layouts:

- the VIA 1.x export: {key: {"filename", "regions": {"0": region, ...}, ...}, ...};
- the VIA 2.x export: the same with "regions" a list of regions;
- the VIA 2.x project file: the image dict above under "_via_img_metadata".

A region is {"shape_attributes": {"name": "polygon", "all_points_x": [...], "all_points_y":
[...]}, "region_attributes": {...}}; rect, circle, ellipse and polyline (read as a closed
polygon) shapes are drawn too. Coordinates are pixels (x = column, y = row). Images without
regions are left out, as matterport did (counted in `skipped["no_regions"]`).

Classes: one class `class_name` for every region (matterport's balloon), or, with
`class_attribute`, the class of each region is the value of that region attribute (a text
field, or a dropdown/checkbox dict with exactly one option set); classes get ids 1..K in
sorted name order.

Bad input (missing image file, polygon with fewer than 3 points, a shape lying entirely
outside the image, an unknown shape, a region without its class) is a ValueError (or
FileNotFoundError) naming the file, the image and the region, unless `skip_invalid=True`:
then it is skipped, logged and counted in `dataset.skipped`. Shapes reaching partly outside
the image are clipped to it (counted in `dataset.clipped`).
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from typing import Any

import numpy as np
import skimage.draw

from mrcnn.data.dataset import Dataset
from mrcnn.data.formats.common import InvalidAnnotation, read_json, skip_or_raise

logger = logging.getLogger(__name__)

SHAPES = ("polygon", "polyline", "rect", "circle", "ellipse")


def read_via_file(path: str) -> list[dict]:
    """Read a VIA JSON file and return its per-image entries (any VIA layout).

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is empty, not JSON, or not a VIA region file.
    """
    data = read_json(path, "VIA annotation file")
    if isinstance(data, dict) and isinstance(data.get("_via_img_metadata"), dict):
        data = data["_via_img_metadata"]
    entries = list(data.values()) if isinstance(data, dict) else None
    if not entries or not all(isinstance(e, dict) and "filename" in e for e in entries):
        raise ValueError(f"VIA annotation file {path!r}: expected an object of image entries "
                         "with 'filename' and 'regions' (a VIA export or project file)")
    return entries


def shape_to_polygon(shape: dict, where: str) -> tuple[np.ndarray, np.ndarray]:
    """The outline of a VIA shape as (rows, cols) float arrays, or (center, radii) for ellipses.

    Returns:
        (ys, xs) polygon vertices for polygon/polyline/rect; for circle and ellipse
        (array([cy, cx]), array([ry, rx])).

    Raises:
        InvalidAnnotation: "bad_polygon" (fewer than 3 points, unequal or non-numeric
            coordinate lists, bad sizes) or "unknown_shape".
    """
    name = shape.get("name")
    try:
        if name in ("polygon", "polyline"):
            xs = np.asarray(shape["all_points_x"], dtype=np.float64)
            ys = np.asarray(shape["all_points_y"], dtype=np.float64)
            if xs.ndim != 1 or xs.shape != ys.shape or len(xs) < 3:
                raise InvalidAnnotation("bad_polygon", f"{where}: a polygon needs at least 3 "
                                        f"points with as many x as y values, got {xs.size} x "
                                        f"and {ys.size} y values")
        elif name == "rect":
            x, y, w, h = (float(shape[k]) for k in ("x", "y", "width", "height"))
            if w <= 0 or h <= 0:
                raise InvalidAnnotation("bad_polygon", f"{where}: rect of size {w}x{h}")
            xs, ys = np.array([x, x + w, x + w, x]), np.array([y, y, y + h, y + h])
        elif name in ("circle", "ellipse"):
            cx, cy = float(shape["cx"]), float(shape["cy"])
            rx = float(shape["r"] if name == "circle" else shape["rx"])
            ry = float(shape["r"] if name == "circle" else shape["ry"])
            if rx <= 0 or ry <= 0:
                raise InvalidAnnotation("bad_polygon", f"{where}: {name} radius must be > 0")
            return np.array([cy, cx]), np.array([ry, rx])
        else:
            raise InvalidAnnotation("unknown_shape", f"{where}: shape {name!r} is not one of "
                                    f"{SHAPES}")
    except (KeyError, TypeError, ValueError) as err:
        if isinstance(err, InvalidAnnotation):
            raise
        raise InvalidAnnotation("bad_polygon", f"{where}: malformed {name!r} shape "
                                f"attributes ({type(err).__name__}: {err})") from err
    if not (np.all(np.isfinite(xs)) and np.all(np.isfinite(ys))):
        raise InvalidAnnotation("bad_polygon", f"{where}: coordinates must be finite")
    return ys, xs


def draw_shape_mask(shape: dict, height: int, width: int) -> np.ndarray:
    """Rasterize a VIA shape into a [height, width] bool mask, clipped to the image."""
    mask = np.zeros([height, width], dtype=bool)
    first, second = shape_to_polygon(shape, "shape")
    if shape.get("name") in ("circle", "ellipse"):
        rr, cc = skimage.draw.ellipse(first[0], first[1], second[0], second[1],
                                      shape=(height, width))
    else:
        rr, cc = skimage.draw.polygon(first, second, shape=(height, width))
    mask[rr, cc] = True
    return mask


def _extent(shape: dict, where: str) -> tuple[float, float, float, float]:
    """(y_min, x_min, y_max, x_max) of a shape (checks it on the way)."""
    first, second = shape_to_polygon(shape, where)
    if shape.get("name") in ("circle", "ellipse"):
        return (first[0] - second[0], first[1] - second[1],
                first[0] + second[0], first[1] + second[1])
    return first.min(), second.min(), first.max(), second.max()


def _image_size(path: str) -> tuple[int, int]:
    """(height, width) of an image file, from its header."""
    from PIL import Image

    with Image.open(path) as image:
        width, height = image.size
    return height, width


class ViaDataset(Dataset):
    """A dataset read from VIA polygon annotations (see the module doc).

    Attributes:
        skipped: Counter of skipped items by reason ("missing_image_file", "bad_image",
            "bad_polygon", "unknown_shape", "outside_image", "missing_class", "no_regions").
        clipped: number of shapes clipped to their image.
    """

    def __init__(self, class_map: dict | None = None, channels: int | None = 3) -> None:
        super().__init__(class_map=class_map, channels=channels)
        self.skipped: Counter = Counter()
        self.clipped = 0

    def load_via(self, dataset_dir: str, subset: str | None = None, class_name: str = "balloon",
                 class_attribute: str | None = None,
                 annotation_file: str = "via_region_data.json", source: str = "via",
                 skip_invalid: bool = False) -> None:
        """Register the annotated images of `dataset_dir/subset`.

        Args:
            dataset_dir: the dataset root.
            subset: subfolder holding the images and the JSON ("train", "val"), or None when
                they lie in `dataset_dir` itself.
            class_name: the one class of every region (ignored with `class_attribute`).
            class_attribute: region attribute holding each region's class name.
            annotation_file: name of the VIA JSON file in the folder.
            source: the source name of classes and images.
            skip_invalid: skip (log and count) bad images and regions instead of raising.

        Raises:
            FileNotFoundError: the folder, the JSON file or (without skip_invalid) an image.
            ValueError: bad input as in the module doc, or no annotated image left.
        """
        folder = os.path.join(dataset_dir, subset) if subset else dataset_dir
        if not os.path.isdir(folder):
            raise FileNotFoundError(f"VIA dataset folder not found: {folder!r}")
        json_path = os.path.join(folder, annotation_file)
        entries = read_via_file(json_path)
        name = os.path.basename(json_path)
        images = []
        for entry in entries:
            regions = entry.get("regions") or []
            regions = list(regions.values()) if isinstance(regions, dict) else list(regions)
            if not regions:
                self.skipped["no_regions"] += 1
                continue
            try:
                images.append(self._check_entry(entry, regions, folder, name, class_name,
                                                class_attribute, skip_invalid))
            except InvalidAnnotation as err:
                skip_or_raise(self.skipped, err, skip_invalid, logger)
        images = [i for i in images if i["shapes"]]
        if not images:
            raise ValueError(f"{json_path!r}: no annotated image to load (skipped: "
                             f"{dict(self.skipped)})")
        names = sorted({c for image in images for c in image["classes"]})
        for class_id, class_label in enumerate(names, start=1):
            self.add_class(source, class_id, class_label)
        for image in images:
            self.add_image(source, image_id=image["filename"], path=image["path"],
                           width=image["width"], height=image["height"],
                           polygons=image["shapes"],
                           via_class_ids=[names.index(c) + 1 for c in image["classes"]])
        logger.info("%s: %d images, classes %s; skipped %s; clipped %d", json_path,
                    len(images), names, dict(self.skipped) or "nothing", self.clipped)

    def _check_entry(self, entry: dict, regions: list, folder: str, name: str,
                     class_name: str, class_attribute: str | None, skip_invalid: bool) -> dict:
        """Check one image entry and its regions; returns what add_image needs."""
        filename = entry["filename"]
        path = os.path.join(folder, filename)
        if not os.path.isfile(path):
            if not skip_invalid:
                raise FileNotFoundError(f"{name}: image {filename!r}: file {path!r} not found "
                                        "(pass skip_invalid=True to skip missing images)")
            raise InvalidAnnotation("missing_image_file", f"{name}: image {filename!r}: "
                                    f"file {path!r} not found")
        try:
            height, width = _image_size(path)
        except OSError as err:
            raise InvalidAnnotation("bad_image", f"{name}: image {filename!r}: cannot read "
                                    f"{path!r} ({err})") from err
        shapes, classes = [], []
        for index, region in enumerate(regions):
            where = f"{name}: image {filename!r}, region {index}"
            try:
                if not isinstance(region, dict) or \
                        not isinstance(region.get("shape_attributes"), dict):
                    raise InvalidAnnotation("bad_polygon", f"{where}: no 'shape_attributes'")
                shape = region["shape_attributes"]
                y1, x1, y2, x2 = _extent(shape, where)
                if y2 < 0 or x2 < 0 or y1 > height - 1 or x1 > width - 1:
                    raise InvalidAnnotation("outside_image", f"{where}: the shape lies "
                                            f"entirely outside the {width}x{height} image")
                label = class_name
                if class_attribute is not None:
                    label = _region_class(region.get("region_attributes"), class_attribute,
                                          where)
            except InvalidAnnotation as err:
                skip_or_raise(self.skipped, err, skip_invalid, logger)
                continue
            self.clipped += bool(y1 < 0 or x1 < 0 or y2 > height - 1 or x2 > width - 1)
            shapes.append(shape)
            classes.append(label)
        return {"filename": filename, "path": path, "height": height, "width": width,
                "shapes": shapes, "classes": classes}

    def load_mask(self, image_id: int) -> tuple[np.ndarray, np.ndarray]:
        """Instance masks drawn from the image's shapes.

        Returns:
            masks: [height, width, instances] bool.
            class_ids: [instances] int32 internal class ids.
        """
        info = self.image_info[image_id]
        if "polygons" not in info:
            return super().load_mask(image_id)
        height, width = info["height"], info["width"]
        masks = np.zeros([height, width, len(info["polygons"])], dtype=bool)
        for i, shape in enumerate(info["polygons"]):
            masks[:, :, i] = draw_shape_mask(shape, height, width)
        class_ids = np.array([self.map_source_class_id(f"{info['source']}.{c}")
                              for c in info["via_class_ids"]], dtype=np.int32)
        return masks, class_ids

    def image_reference(self, image_id: int) -> str:
        """The path of the image file."""
        return self.image_info[image_id]["path"]


def _region_class(attributes: Any, key: str, where: str) -> str:
    """The class name stored in region attribute `key` (text, or one selected option)."""
    value = attributes.get(key) if isinstance(attributes, dict) else None
    if isinstance(value, dict):  # dropdown / checkbox: {option: true, ...}
        chosen = [k for k, v in value.items() if v]
        value = chosen[0] if len(chosen) == 1 else None
    if not isinstance(value, (str, int)) or not str(value).strip():
        raise InvalidAnnotation("missing_class", f"{where}: region attribute {key!r} holds no "
                                f"single class name (got {value!r})")
    return str(value).strip()
