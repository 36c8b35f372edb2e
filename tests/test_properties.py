"""Property-based tests (hypothesis) of the COCO loader and the data pipeline (issue 11).

Random valid annotation files load, and every mask, box and class id that comes out of
`CocoDataset.load_mask` and `load_image_gt` matches what was drawn. The same files with one
annotation broken in a random way raise a ValueError that names that annotation's id, never
another exception; with `skip_invalid=True` they load with exactly that annotation skipped
and counted.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from mrcnn.config import Config
from mrcnn.data.formats import CocoDataset
from mrcnn.data.ground_truth import load_image_gt
from mrcnn.structures.boxes import extract_bboxes

# pycocotools 2.x calls np.array(copy=False) on numpy 2: its own deprecation, not ours.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

CATEGORIES = [{"id": 3, "name": "a"}, {"id": 8, "name": "b"}]
SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


class PipelineConfig(Config):
    NAME = "prop"
    NUM_CLASSES = 3
    IMAGE_MIN_DIM = 64
    IMAGE_MAX_DIM = 64


@st.composite
def rectangles(draw, height, width):
    """A (y1, x1, y2, x2) pixel box inside a height x width image, at least 1x1."""
    y1 = draw(st.integers(0, height - 1))
    x1 = draw(st.integers(0, width - 1))
    y2 = draw(st.integers(y1 + 1, height))
    x2 = draw(st.integers(x1 + 1, width))
    return y1, x1, y2, x2


def uncompressed_rle(mask):
    """COCO's uncompressed RLE: column-major run lengths, starting with a run of zeros."""
    flat = mask.T.reshape(-1).astype(np.int8)
    changes = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], changes, [flat.size]])
    runs = np.diff(bounds).tolist()
    if flat[0]:
        runs = [0] + runs
    return {"size": list(mask.shape), "counts": [int(r) for r in runs]}


@st.composite
def coco_sets(draw):
    """(data, drawn) with drawn[image id] = [(annotation id, category id, crowd, box)]."""
    images, annotations, drawn = [], [], {}
    next_id = draw(st.integers(1, 1000))
    for image_id in range(1, draw(st.integers(1, 3)) + 1):
        height, width = draw(st.integers(8, 40)), draw(st.integers(8, 40))
        images.append({"id": image_id, "file_name": f"{image_id}.png", "height": height,
                       "width": width})
        drawn[image_id] = []
        for _ in range(draw(st.integers(0, 3))):
            y1, x1, y2, x2 = draw(rectangles(height, width))
            category = draw(st.sampled_from([3, 8]))
            crowd = draw(st.booleans())
            if draw(st.booleans()):
                segmentation = [[x1, y1, x2, y1, x2, y2, x1, y2]]
            else:
                mask = np.zeros([height, width], bool)
                mask[y1:y2, x1:x2] = True
                segmentation = uncompressed_rle(mask)
            ann = {"id": next_id, "image_id": image_id, "category_id": category,
                   "iscrowd": int(crowd), "segmentation": segmentation}
            if draw(st.booleans()):  # as COCO files carry them; otherwise computed on load
                ann["bbox"] = [float(x1), float(y1), float(x2 - x1), float(y2 - y1)]
                ann["area"] = float((x2 - x1) * (y2 - y1))
            annotations.append(ann)
            drawn[image_id].append((next_id, category, crowd, (y1, x1, y2, x2)))
            next_id += draw(st.integers(1, 5))
    return {"images": images, "categories": CATEGORIES, "annotations": annotations}, drawn


def write(folder: Path, data: dict) -> tuple[str, str]:
    for entry in data["images"]:
        pixels = np.full((entry["height"], entry["width"], 3), 77, np.uint8)
        Image.fromarray(pixels).save(folder / entry["file_name"])
    path = folder / "instances.json"
    path.write_text(json.dumps(data))
    return str(path), str(folder)


def load(data: dict, **kwargs) -> CocoDataset:
    with tempfile.TemporaryDirectory() as folder:
        dataset = CocoDataset()
        dataset.load_coco(*write(Path(folder), data), **kwargs)
        dataset.prepare()
    return dataset


@SETTINGS
@given(coco_sets())
def test_valid_annotations_give_the_drawn_masks_boxes_and_classes(case):
    data, drawn = case
    with tempfile.TemporaryDirectory() as folder:
        dataset = CocoDataset()
        dataset.load_coco(*write(Path(folder), data))
        dataset.prepare()
        assert dataset.skipped == {} and dataset.num_images == len(drawn)
        config = PipelineConfig()
        for image_id, instances in drawn.items():
            index = dataset.image_from_source_map[f"coco.{image_id}"]
            masks, class_ids = dataset.load_mask(index)
            assert masks.dtype == bool and masks.shape[2] == len(instances)
            expected_ids = []
            for k, (_, category, crowd, (y1, x1, y2, x2)) in enumerate(instances):
                expected = np.zeros(masks.shape[:2], bool)
                expected[y1:y2, x1:x2] = True
                np.testing.assert_array_equal(masks[:, :, k], expected)
                internal = dataset.map_source_class_id(f"coco.{category}")
                expected_ids.append(-internal if crowd else internal)
            assert class_ids.tolist() == expected_ids
            np.testing.assert_array_equal(extract_bboxes(masks),
                                          np.array([b for *_, b in instances],
                                                   np.int32).reshape(-1, 4))
            # Through the pipeline: boxes are the boxes of the returned (resized) masks.
            image, meta, gt_ids, gt_boxes, gt_masks = load_image_gt(dataset, config, index)
            assert image.shape == (64, 64, 3) and gt_masks.shape[:2] == (64, 64)
            assert gt_ids.tolist() == expected_ids[:len(gt_ids)]
            np.testing.assert_array_equal(gt_boxes, extract_bboxes(gt_masks))
            assert np.all(gt_boxes[:, 2:] > gt_boxes[:, :2])


# Ways to break one annotation; each gets (annotation, data) and edits in place.
CORRUPTIONS = {
    "bbox_negative": lambda a, d: a.update(bbox=[1.0, 1.0, -3.0, 2.0]),
    "bbox_three_values": lambda a, d: a.update(bbox=[1.0, 1.0, 3.0]),
    "bbox_not_numbers": lambda a, d: a.update(bbox=["1", 1, 3, 2]),
    "bbox_outside": lambda a, d: a.update(bbox=[500.0, 1.0, 3.0, 2.0]),
    "area_negative": lambda a, d: a.update(area=-1.0),
    "category_unknown": lambda a, d: a.update(category_id=999),
    "category_a_list": lambda a, d: a.update(category_id=[3]),
    "image_unknown": lambda a, d: a.update(image_id=10_000),
    "image_id_a_list": lambda a, d: a.update(image_id=[1]),
    "id_a_float": lambda a, d: a.update(id=float(a["id"]) + 0.5),
    "no_segmentation": lambda a, d: a.pop("segmentation"),
    "segmentation_text": lambda a, d: a.update(segmentation="polygon"),
    "polygon_too_short": lambda a, d: a.update(segmentation=[[1, 1, 5, 5]]),
    "polygon_outside": lambda a, d: a.update(segmentation=[[500, 500, 600, 500, 600, 600]]),
    "polygon_nan": lambda a, d: a.update(segmentation=[[1, 1, 5, 1, float("nan"), 5]]),
    "rle_wrong_size": lambda a, d: a.update(segmentation={"size": [1, 1], "counts": [0, 1]}),
    "rle_bad_sum": lambda a, d: a.update(segmentation={"size": _size(a, d), "counts": [1, 2]}),
    "rle_text_size": lambda a, d: a.update(segmentation={"size": ["x", "y"], "counts": [1]}),
    "duplicate_id": lambda a, d: a.update(id=_earlier_id(a, d)),
}


def _size(ann, data):
    entry = next(e for e in data["images"] if e["id"] == ann["image_id"])
    return [entry["height"], entry["width"]]


def _earlier_id(ann, data):
    return data["annotations"][0]["id"]


@SETTINGS
@given(coco_sets(), st.sampled_from(sorted(CORRUPTIONS)), st.data())
def test_one_broken_annotation_is_a_value_error_naming_it(case, kind, pick):
    data, _ = case
    candidates = data["annotations"][1:] if kind == "duplicate_id" else data["annotations"]
    if not candidates:
        return
    ann = pick.draw(st.sampled_from(candidates))
    CORRUPTIONS[kind](ann, data)
    with pytest.raises(ValueError) as info:  # any other exception fails the test
        load(data)
    assert f"annotation id {ann['id']!r}" in str(info.value)

    # skip_invalid: exactly that annotation is skipped and counted, every other one loads.
    total = len(data["annotations"])
    dataset = load(data, skip_invalid=True)
    assert sum(dataset.skipped.values()) == 1
    kept = sum(dataset.load_mask(i)[0].shape[2] for i in dataset.image_ids)
    assert kept == total - 1
