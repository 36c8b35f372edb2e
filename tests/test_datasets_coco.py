"""Tests of mrcnn.data.formats.coco (COCO loading, results, COCOeval) and samples/coco/coco.py."""

from __future__ import annotations

import json
import os

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from mrcnn.data.formats import CocoDataset
from mrcnn.data.formats.coco import decode_segmentation
from mrcnn.evaluation.coco import STAT_NAMES, build_coco_results, evaluate_coco
from mrcnn.evaluation.metrics import compute_ap
from mrcnn.structures.boxes import extract_bboxes
from samples.coco import coco as coco_sample

# pycocotools 2.x calls np.array(copy=False) on numpy 2: its own deprecation, not ours.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

H, W = 48, 64
# COCO category ids are deliberately not contiguous: internal ids are 1, 2, 3.
CATEGORIES = [{"id": 1, "name": "square"}, {"id": 5, "name": "circle"},
              {"id": 9, "name": "triangle"}]


def rect_mask(y1, x1, y2, x2, height=H, width=W):
    mask = np.zeros([height, width], dtype=bool)
    mask[y1:y2, x1:x2] = True
    return mask


def rect_polygon(y1, x1, y2, x2):
    """A rectangle as a COCO polygon in pixel-edge coordinates: covers rows y1..y2-1."""
    return [x1, y1, x2, y1, x2, y2, x1, y2]


def circle_mask(cy, cx, r):
    mask = np.zeros([H, W], dtype=np.uint8)
    cv2.circle(mask, (cx, cy), r, 1, -1)
    return mask.astype(bool)


def uncompressed_rle(mask):
    """COCO's uncompressed RLE by hand: column-major runs, starting with a run of zeros."""
    flat = mask.T.reshape(-1).astype(np.int64)
    counts, current, run = [], 0, 0
    for value in flat:
        if value != current:
            counts.append(run)
            current, run = value, 0
        run += 1
    counts.append(run)
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": counts}


def compressed_rle(mask):
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": rle["size"], "counts": rle["counts"].decode("ascii")}


def write_image(path, masks, background):
    image = np.full([H, W, 3], background, dtype=np.uint8)
    for k, mask in enumerate(masks):
        image[mask] = (40 * (k + 1), 200 - 30 * k, 90)
    cv2.imwrite(str(path), image)


# Masks drawn per image: (category id, mask, segmentation kind, iscrowd).
SQUARE_1 = rect_mask(4, 6, 20, 26)
CIRCLE_1 = circle_mask(30, 44, 9)
TWO_PART = rect_mask(24, 4, 30, 12) | rect_mask(36, 20, 44, 30)
SQUARE_2 = rect_mask(10, 30, 22, 50)
CIRCLE_2 = circle_mask(32, 14, 8)
CROWD_2 = rect_mask(34, 36, 46, 60)


def build_coco_dir(tmp_path, edit=None):
    """Images and an instances JSON with polygons, compressed and uncompressed RLE, a crowd."""
    image_dir = tmp_path / "images"
    image_dir.mkdir(exist_ok=True)
    write_image(image_dir / "a.png", [SQUARE_1, CIRCLE_1, TWO_PART], (10, 20, 30))
    write_image(image_dir / "b.png", [SQUARE_2, CIRCLE_2, CROWD_2], (60, 50, 40))
    write_image(image_dir / "c.png", [], (90, 90, 90))
    data = {
        "images": [{"id": 7, "file_name": "a.png", "height": H, "width": W,
                    "coco_url": "http://example.org/a.png"},
                   {"id": 3, "file_name": "b.png", "height": H, "width": W},
                   {"id": 11, "file_name": "c.png", "height": H, "width": W}],
        "categories": CATEGORIES,
        "annotations": [
            {"id": 100, "image_id": 7, "category_id": 1, "iscrowd": 0,
             "segmentation": [rect_polygon(4, 6, 20, 26)]},
            {"id": 101, "image_id": 7, "category_id": 5, "iscrowd": 0,
             "segmentation": compressed_rle(CIRCLE_1)},
            {"id": 102, "image_id": 7, "category_id": 9, "iscrowd": 0,
             "segmentation": [rect_polygon(24, 4, 30, 12), rect_polygon(36, 20, 44, 30)]},
            {"id": 200, "image_id": 3, "category_id": 1, "iscrowd": 0,
             "segmentation": [rect_polygon(10, 30, 22, 50)]},
            {"id": 201, "image_id": 3, "category_id": 5, "iscrowd": 0,
             "segmentation": uncompressed_rle(CIRCLE_2)},
            {"id": 202, "image_id": 3, "category_id": 1, "iscrowd": 1,
             "segmentation": uncompressed_rle(CROWD_2)},
        ],
    }
    drawn = [SQUARE_1, CIRCLE_1, TWO_PART, SQUARE_2, CIRCLE_2, CROWD_2]
    for ann, mask in zip(data["annotations"], drawn, strict=True):
        ann["area"], ann["bbox"] = area_and_bbox(mask)  # as COCO files carry them
    if edit is not None:
        edit(data)
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(data))
    return str(path), str(image_dir)


def area_and_bbox(mask):
    """COCO's `area` (pixel count) and `bbox` [x, y, width, height] of a drawn mask."""
    ys, xs = np.nonzero(mask)
    x, y = int(xs.min()), int(ys.min())
    return float(mask.sum()), [float(x), float(y), float(xs.max() + 1 - x),
                               float(ys.max() + 1 - y)]


def load(tmp_path, edit=None, **kwargs):
    dataset = CocoDataset()
    coco = dataset.load_coco(*build_coco_dir(tmp_path, edit), return_coco=True, **kwargs)
    dataset.prepare()
    return dataset, coco


def index_of(dataset, coco_id):
    return dataset.image_from_source_map[f"coco.{coco_id}"]


class GroundTruthModel:
    """Stand-in for an inference MaskRCNN: `detect` returns the ground truth of the image."""

    def __init__(self, dataset, batch_size=2):
        self.config = type("Cfg", (), {"BATCH_SIZE": batch_size})()
        self.dataset = dataset
        self.by_image = {dataset.load_image(i).tobytes(): i for i in dataset.image_ids}
        self.calls = []

    def detect(self, images, verbose=0):
        self.calls.append(len(images))
        results = []
        for image in images:
            masks, class_ids = self.dataset.load_mask(self.by_image[image.tobytes()])
            keep = class_ids > 0  # a model never predicts crowd regions
            masks, class_ids = masks[..., keep], class_ids[keep]
            results.append({"rois": extract_bboxes(masks), "class_ids": class_ids,
                            "scores": np.linspace(0.99, 0.5, len(class_ids)), "masks": masks})
        return results


# ---------------------------------------------------------------- decoding
def test_area_and_bbox_by_hand():
    assert area_and_bbox(SQUARE_1) == (16 * 20, [6.0, 4.0, 20.0, 16.0])
    # Two rectangles of one instance: 6 x 8 + 8 x 10 pixels, spanning rows 24..43, cols 4..29.
    assert area_and_bbox(TWO_PART) == (48 + 80, [4.0, 24.0, 26.0, 20.0])


def test_decode_segmentation_against_drawn_masks():
    """Each form COCO allows, against masks drawn by hand or with OpenCV, not pycocotools."""
    def decoded(segmentation, height=H, width=W):
        mask = decode_segmentation(segmentation, height, width)
        assert mask.shape == (height, width) and mask.dtype == np.uint8
        return mask.astype(bool)

    np.testing.assert_array_equal(decoded([rect_polygon(4, 6, 20, 26)]), SQUARE_1)
    np.testing.assert_array_equal(
        decoded([rect_polygon(24, 4, 30, 12), rect_polygon(36, 20, 44, 30)]), TWO_PART)
    np.testing.assert_array_equal(decoded(compressed_rle(CIRCLE_1)), CIRCLE_1)
    np.testing.assert_array_equal(decoded(uncompressed_rle(CIRCLE_2)), CIRCLE_2)
    # Uncompressed RLE by hand on a 3 x 4 image: column-major runs of 0s and 1s. Runs 1, 2,
    # 5, 4: index 0 off, 1-2 on, 3-7 off, 8-11 on, where index = column * 3 + row.
    expected = np.array([[0, 0, 0, 1],
                         [1, 0, 0, 1],
                         [1, 0, 1, 1]], dtype=bool)
    np.testing.assert_array_equal(decoded({"size": [3, 4], "counts": [1, 2, 5, 4]}, 3, 4),
                                  expected)
    # The triangle (x, y) = (0, 0), (0, 8), (8, 8) in pixel-edge coordinates is the region
    # x <= y: pixels (row y, column x) below the diagonal are inside, those above outside
    # (the diagonal pixels, half covered, are pycocotools' choice and not checked).
    triangle = decoded([[0, 0, 0, 8, 8, 8]], 8, 8)
    rows, cols = np.indices((8, 8))
    assert not triangle[rows < cols].any() and triangle[rows > cols].all()


# ---------------------------------------------------------------- loading
def test_masks_and_class_ids_match_what_was_drawn(tmp_path):
    dataset, _ = load(tmp_path)
    assert dataset.class_names == ["BG", "square", "circle", "triangle"]
    assert dataset.num_images == 3
    masks, class_ids = dataset.load_mask(index_of(dataset, 7))
    assert class_ids.tolist() == [1, 2, 3]
    assert masks.shape == (H, W, 3) and masks.dtype == bool
    np.testing.assert_array_equal(masks[..., 0], SQUARE_1)  # polygon
    np.testing.assert_array_equal(masks[..., 1], CIRCLE_1)  # compressed RLE
    np.testing.assert_array_equal(masks[..., 2], TWO_PART)  # two polygons, one instance
    masks, class_ids = dataset.load_mask(index_of(dataset, 3))
    assert class_ids.tolist() == [1, 2, -1]  # the crowd square is negative
    np.testing.assert_array_equal(masks[..., 0], SQUARE_2)
    np.testing.assert_array_equal(masks[..., 1], CIRCLE_2)  # uncompressed RLE
    np.testing.assert_array_equal(masks[..., 2], CROWD_2)
    masks, class_ids = dataset.load_mask(index_of(dataset, 11))
    assert masks.shape == (H, W, 0) and class_ids.shape == (0,)
    assert dict(dataset.skipped) == {} and dataset.clipped == 0


def test_image_loading_reference_and_source_ids(tmp_path):
    dataset, coco = load(tmp_path)
    image = dataset.load_image(index_of(dataset, 7))
    assert image.shape == (H, W, 3)
    assert tuple(image[0, 0]) == (30, 20, 10)  # written as BGR (10, 20, 30) by OpenCV
    assert dataset.image_reference(index_of(dataset, 7)) == "http://example.org/a.png"
    assert dataset.image_reference(index_of(dataset, 3)).endswith("b.png")
    assert [dataset.get_source_class_id(c, "coco") for c in (1, 2, 3)] == [1, 5, 9]
    assert isinstance(coco, COCO) and sorted(coco.getImgIds()) == [3, 7, 11]


def test_class_subset_loads_only_images_and_masks_of_those_classes(tmp_path):
    dataset, _ = load(tmp_path, class_ids=[5])
    assert dataset.class_names == ["BG", "circle"]
    assert sorted(info["id"] for info in dataset.image_info) == [3, 7]
    masks, class_ids = dataset.load_mask(index_of(dataset, 7))
    assert class_ids.tolist() == [1]
    np.testing.assert_array_equal(masks[..., 0], CIRCLE_1)


def test_class_map_renames_and_merges_classes(tmp_path):
    dataset, _ = load(tmp_path, class_map={1: "thing", 9: "thing"})
    assert dataset.class_names == ["BG", "thing", "circle"]
    _, class_ids = dataset.load_mask(index_of(dataset, 7))
    assert class_ids.tolist() == [1, 2, 1]  # triangle merged into the class of category 1
    assert dataset.get_source_class_id(1, "coco") == 1


def test_limit_and_missing_area_bbox_are_filled(tmp_path):
    def drop_area(data):
        for ann in data["annotations"]:
            del ann["area"], ann["bbox"]

    dataset, coco = load(tmp_path, edit=drop_area, limit=2)
    assert sorted(info["id"] for info in dataset.image_info) == [3, 7]  # ascending ids
    assert coco.anns[100]["area"] == 16 * 20
    assert coco.anns[100]["bbox"] == [6.0, 4.0, 20.0, 16.0]


# ---------------------------------------------------------------- results and COCOeval
def test_build_coco_results_by_hand(tmp_path):
    dataset, _ = load(tmp_path)
    rois = np.array([[4, 6, 20, 26], [21, 35, 40, 54]])
    masks = np.stack([SQUARE_1, CIRCLE_1], axis=2)
    results = build_coco_results(dataset, [7], rois, np.array([1, 2]),
                                 np.array([0.9, 0.4]), masks)
    assert [r["bbox"] for r in results] == [[6.0, 4.0, 20.0, 16.0], [35.0, 21.0, 19.0, 19.0]]
    assert [r["category_id"] for r in results] == [1, 5]
    assert [r["image_id"] for r in results] == [7, 7]
    assert [r["score"] for r in results] == [0.9, 0.4]
    assert isinstance(results[0]["segmentation"]["counts"], str)
    np.testing.assert_array_equal(mask_utils.decode(results[1]["segmentation"]), CIRCLE_1)
    json.dumps(results)  # serializable as a COCO results file
    assert build_coco_results(dataset, 7, np.zeros([0, 4]), [], [], None) == []
    with pytest.raises(ValueError, match="differ in count"):
        build_coco_results(dataset, [7], rois, np.array([1]), np.array([0.9, 0.4]), masks)


@pytest.mark.parametrize("eval_type", ["bbox", "segm"])
def test_evaluate_coco_on_ground_truth_gives_ap_one(tmp_path, eval_type):
    dataset, coco = load(tmp_path)
    model = GroundTruthModel(dataset)
    stats = evaluate_coco(model, dataset, coco, eval_type=eval_type)
    assert list(stats) == list(STAT_NAMES)
    assert stats["AP"] == pytest.approx(1.0)
    assert stats["AP50"] == pytest.approx(1.0) and stats["AP75"] == pytest.approx(1.0)
    assert stats["AR100"] == pytest.approx(1.0)
    assert model.calls == [2, 1]  # batches of config.BATCH_SIZE images


def test_evaluate_coco_limit_image_ids_and_errors(tmp_path):
    dataset, coco = load(tmp_path)
    model = GroundTruthModel(dataset)
    stats = evaluate_coco(model, dataset, coco, "segm", image_ids=[index_of(dataset, 3)])
    assert stats["AP"] == pytest.approx(1.0) and model.calls == [1]
    stats = evaluate_coco(model, dataset, coco, "bbox", limit=1)
    assert stats["AP"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="eval_type"):
        evaluate_coco(model, dataset, coco, eval_type="keypoints")
    with pytest.raises(ValueError, match="no image"):
        evaluate_coco(model, dataset, coco, image_ids=[])

    class Blind(GroundTruthModel):
        def detect(self, images, verbose=0):
            return [{"rois": np.zeros([0, 4]), "class_ids": np.zeros([0], int),
                     "scores": np.zeros([0]), "masks": np.zeros([H, W, 0], bool)}
                    for _ in images]

    assert evaluate_coco(Blind(dataset), dataset, coco) == dict.fromkeys(STAT_NAMES, 0.0)


def test_compute_ap_agrees_with_cocoeval_ap50():
    """Our compute_ap against COCOeval's AP@0.5 (segm) on fixed synthetic predictions.

    The two differ by definition: COCOeval pools each category's detections over all images,
    interpolates precision at 101 recall points and averages over categories; compute_ap scores
    one image with all-point interpolation. The comparable quantity is computed here by tiling
    all images side by side into one canvas (no mask crosses a tile, so matching is the same as
    per image, and the canvas pools the detections over images), running compute_ap per
    category on it and averaging over categories. What remains is 101-point versus all-point
    interpolation, a difference of at most about 1/101 per precision drop.
    """
    rng = np.random.default_rng(3)
    n_images, size = 6, 48
    images, annotations, results = [], [], []
    gt_tiles, pred_tiles = [], []  # (image index, class, mask[, score])
    ann_id = 1
    for i in range(n_images):
        images.append({"id": i + 1, "file_name": f"{i}.png", "height": size, "width": size})
        for _ in range(3):
            y, x = rng.integers(0, size - 14, size=2)
            h, w = rng.integers(8, 14, size=2)
            cls = int(rng.integers(1, 3))
            gt = rect_mask(y, x, y + h, x + w, size, size)
            annotations.append({"id": ann_id, "image_id": i + 1, "category_id": cls,
                                "iscrowd": 0, "area": float(gt.sum()),
                                "bbox": [float(x), float(y), float(w), float(h)],
                                "segmentation": compressed_rle(gt)})
            ann_id += 1
            gt_tiles.append((i, cls, gt))
            if rng.random() < 0.8:  # a detection, shifted by up to 3 px (IoU 0.4 to 1)
                dy, dx = rng.integers(-3, 4, size=2)
                pred = rect_mask(max(y + dy, 0), max(x + dx, 0), y + dy + h, x + dx + w,
                                 size, size)
                pred_cls = cls if rng.random() < 0.9 else 3 - cls
                pred_tiles.append((i, pred_cls, pred, float(rng.random())))
        for _ in range(int(rng.integers(0, 3))):  # false positives
            y, x = rng.integers(0, size - 10, size=2)
            pred_tiles.append((i, int(rng.integers(1, 3)), rect_mask(y, x, y + 10, x + 10,
                                                                     size, size),
                               float(rng.random())))
    for i, cls, mask, score in pred_tiles:
        results.append({"image_id": i + 1, "category_id": cls, "score": score,
                        "segmentation": compressed_rle(mask)})
    coco = COCO()
    coco.dataset = {"images": images, "annotations": annotations,
                    "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]}
    coco.createIndex()
    evaluator = COCOeval(coco, coco.loadRes(results), "segm")
    evaluator.evaluate()
    evaluator.accumulate()
    evaluator.summarize()
    coco_ap50 = evaluator.stats[1]

    def canvas(entries):
        masks = np.zeros([size, size * n_images, len(entries)], dtype=bool)
        for k, entry in enumerate(entries):
            masks[:, entry[0] * size:(entry[0] + 1) * size, k] = entry[2]
        return masks

    aps = []
    for cls in (1, 2):
        gts = [t for t in gt_tiles if t[1] == cls]
        preds = [t for t in pred_tiles if t[1] == cls]
        gt_masks, pred_masks = canvas(gts), canvas(preds)
        ap = compute_ap(extract_bboxes(gt_masks), np.full(len(gts), cls), gt_masks,
                        extract_bboxes(pred_masks), np.full(len(preds), cls),
                        np.array([t[3] for t in preds]), pred_masks, iou_threshold=0.5)[0]
        aps.append(ap)
    ours = float(np.mean(aps))
    assert 0.2 < coco_ap50 < 0.95  # a mix of hits, misses and false positives
    assert ours == pytest.approx(coco_ap50, abs=0.02)


# ---------------------------------------------------------------- bad input
def test_missing_empty_and_malformed_annotation_files(tmp_path):
    dataset = CocoDataset()
    image_dir = str(tmp_path)
    with pytest.raises(FileNotFoundError, match="nope.json"):
        dataset.load_coco(str(tmp_path / "nope.json"), image_dir)
    path = tmp_path / "empty.json"
    path.write_text("  \n")
    with pytest.raises(ValueError, match="empty.json.*is empty"):
        dataset.load_coco(str(path), image_dir)
    path.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        dataset.load_coco(str(path), image_dir)
    path.write_text("[]")
    with pytest.raises(ValueError, match="expected a JSON object"):
        dataset.load_coco(str(path), image_dir)
    path.write_text(json.dumps({"images": [], "annotations": [], "categories": CATEGORIES}))
    with pytest.raises(ValueError, match="empty.json.* has no 'images'"):
        dataset.load_coco(str(path), image_dir)
    path.write_text(json.dumps({"images": [{"id": 1}], "annotations": []}))
    with pytest.raises(ValueError, match="has no 'categories'"):
        dataset.load_coco(str(path), image_dir)


def test_missing_image_file_raises_or_is_skipped_and_counted(tmp_path):
    json_path, image_dir = build_coco_dir(tmp_path)
    os.remove(os.path.join(image_dir, "b.png"))
    with pytest.raises(FileNotFoundError, match=r"image id 3.*b\.png"):
        CocoDataset().load_coco(json_path, image_dir)
    dataset = CocoDataset()
    dataset.load_coco(json_path, image_dir, skip_invalid=True)
    dataset.prepare()
    assert dataset.skipped == {"missing_image_file": 1}
    assert sorted(info["id"] for info in dataset.image_info) == [7, 11]
    for name in ("a.png", "c.png"):
        os.remove(os.path.join(image_dir, name))
    with pytest.raises(ValueError, match="no image to load"):
        CocoDataset().load_coco(json_path, image_dir, skip_invalid=True)


def _add(annotation):
    def edit(data):
        data["annotations"].append({"id": 999, "iscrowd": 0, **annotation})
    return edit


@pytest.mark.parametrize("annotation, kind, message", [
    ({"image_id": 42, "category_id": 1, "segmentation": [rect_polygon(1, 1, 5, 5)]},
     "unknown_image", r"annotation id 999 \(image id 42\).*not in 'images'"),
    ({"image_id": 7, "category_id": 4, "segmentation": [rect_polygon(1, 1, 5, 5)]},
     "unknown_category", r"annotation id 999 \(image id 7\): category id 4"),
    ({"image_id": 7, "category_id": 1, "segmentation": [[1, 1, 5, 5]]},  # 2 points
     "bad_polygon", r"annotation id 999 \(image id 7\): a polygon needs at least 3"),
    ({"image_id": 7, "category_id": 1, "segmentation": [[1, 1, 5, 5, 9]]},
     "bad_polygon", "at least 3"),
    ({"image_id": 7, "category_id": 1, "segmentation": [rect_polygon(100, 1, 120, 5)]},
     "outside_image", r"annotation id 999.*entirely outside the 64x48 image"),
    ({"image_id": 7, "category_id": 1,
      "segmentation": {"size": [H + 1, W], "counts": [0, (H + 1) * W]}},
     "bad_rle", "RLE size"),
    ({"image_id": 7, "category_id": 1, "segmentation": {"size": [H, W], "counts": [5, 3]}},
     "bad_rle", "summing to 3072"),
    ({"image_id": 7, "category_id": 1}, "missing_segmentation", "no 'segmentation'"),
])
def test_bad_annotations_raise_or_are_skipped(tmp_path, annotation, kind, message):
    with pytest.raises(ValueError, match=message):
        load(tmp_path, edit=_add(annotation))
    dataset, coco = load(tmp_path, edit=_add(annotation), skip_invalid=True)
    assert dataset.skipped == {kind: 1}
    assert 999 not in coco.anns  # not part of the evaluation ground truth either
    _, class_ids = dataset.load_mask(index_of(dataset, 7))
    assert class_ids.tolist() == [1, 2, 3]


def test_polygon_partly_outside_is_clipped(tmp_path):
    dataset, _ = load(tmp_path, edit=_add({"image_id": 11, "category_id": 1,
                                            "segmentation": [rect_polygon(-5, 50, 10, 80)]}))
    assert dataset.clipped == 1
    masks, _ = dataset.load_mask(index_of(dataset, 11))
    np.testing.assert_array_equal(masks[..., 0], rect_mask(0, 50, 10, W))


def test_empty_mask_is_skipped_and_counted_once(tmp_path):
    empty = compressed_rle(np.zeros([H, W], dtype=bool))
    dataset, _ = load(tmp_path, edit=_add({"image_id": 11, "category_id": 1,
                                            "segmentation": empty, "area": 0.0,
                                            "bbox": [0.0, 0.0, 0.0, 0.0]}))
    for _ in range(2):
        masks, class_ids = dataset.load_mask(index_of(dataset, 11))
    assert masks.shape == (H, W, 0) and class_ids.shape == (0,)
    assert dataset.skipped == {"empty_mask": 1}


def test_bad_class_ids_class_map_and_image_size(tmp_path):
    with pytest.raises(ValueError, match=r"unknown category ids \[4\]"):
        load(tmp_path, class_ids=[1, 4])
    with pytest.raises(ValueError, match="class_map keys"):
        load(tmp_path, class_map={2: "x"})

    def wrong_size(data):
        data["images"][2]["width"] = W + 2

    with pytest.raises(ValueError, match=f"image id 11: image file .* is {W}x{H} but the JSON "
                                         f"says {W + 2}x{H}"):
        load(tmp_path, edit=wrong_size)  # read from the file header at load time (issue 11)
    dataset, _ = load(tmp_path, edit=wrong_size, check_files=False)
    with pytest.raises(ValueError, match=f"the file is {W}x{H} but the annotations say "
                                         f"{W + 2}x{H}"):
        dataset.load_image(index_of(dataset, 11))


def test_bad_image_entry(tmp_path):
    def no_width(data):
        del data["images"][2]["width"]

    with pytest.raises(ValueError, match="image id 11: 'width' must be a positive integer"):
        load(tmp_path, edit=no_width)
    dataset, _ = load(tmp_path, edit=no_width, skip_invalid=True)
    assert dataset.skipped == {"bad_image": 1} and dataset.num_images == 2


# ---------------------------------------------------------------- samples/coco/coco.py
def make_coco_root(tmp_path, subset="minival", year="2014"):
    json_path, image_dir = build_coco_dir(tmp_path)
    root = tmp_path / "coco"
    (root / "annotations").mkdir(parents=True)
    os.replace(json_path, root / "annotations" / f"instances_{subset}{year}.json")
    os.replace(image_dir, root / f"val{year}")
    return str(root)


def test_sample_config_and_paths():
    config = coco_sample.CocoConfig()
    assert (config.NAME, config.IMAGES_PER_GPU, config.NUM_CLASSES) == ("coco", 2, 81)
    assert coco_sample.coco_paths("/d", "minival", "2014") == (
        os.path.join("/d", "annotations", "instances_minival2014.json"),
        os.path.join("/d", "val2014"))
    assert coco_sample.coco_paths("/d", "train", "2017")[1] == os.path.join("/d", "train2017")


def test_sample_reports_missing_data_and_download(tmp_path, capsys):
    status = coco_sample.main(["evaluate", f"--dataset={tmp_path}", "--model=last",
                               "--download=True"])
    out, err = capsys.readouterr()
    assert status == 2
    assert "downloads nothing" in out
    assert "data not found" in err and "instances_minival2014.json" in err
    with pytest.raises(FileNotFoundError, match="not on disk"):
        coco_sample.CocoDataset().load_coco(str(tmp_path), "val", year="2017")


def test_sample_evaluate_command_with_stand_in_model(tmp_path, capsys, monkeypatch):
    root = make_coco_root(tmp_path)
    dataset = coco_sample.CocoDataset()
    dataset.load_coco(root, "minival", year="2014")
    dataset.prepare()
    assert dataset.num_images == 3
    calls = {}

    def fake_load_model(mode, config, logs, weights):
        calls.update(mode=mode, weights=weights, batch=config.BATCH_SIZE)
        return GroundTruthModel(dataset, batch_size=1)

    monkeypatch.setattr(coco_sample, "load_model", fake_load_model)
    status = coco_sample.main(["evaluate", f"--dataset={root}", "--model=last", "--limit=3",
                               "--eval-type", "segm", f"--logs={tmp_path}"])
    out, _ = capsys.readouterr()
    assert status == 0
    assert calls == {"mode": "inference", "weights": "last", "batch": 1}
    assert "    AP: 1.000" in out


@pytest.mark.slow
def test_evaluate_coco_with_a_real_model(tmp_path):
    """An untrained inference MaskRCNN through evaluate_coco: the plumbing, not the scores."""
    from mrcnn import model as modellib
    from mrcnn.config import Config

    class TinyConfig(Config):
        NAME = "cocoslow"
        BACKBONE = "resnet50"
        NUM_CLASSES = 4
        IMAGES_PER_GPU = 2
        IMAGE_MIN_DIM = IMAGE_MAX_DIM = 64
        RPN_ANCHOR_SCALES = (8, 16, 32, 64, 128)
        POST_NMS_ROIS_INFERENCE = 50
        DETECTION_MAX_INSTANCES = 5
        DETECTION_MIN_CONFIDENCE = 0.0

    dataset, coco = load(tmp_path)
    model = modellib.MaskRCNN("inference", TinyConfig(), str(tmp_path / "logs"))
    for eval_type in ("bbox", "segm"):
        stats = evaluate_coco(model, dataset, coco, eval_type=eval_type)
        assert list(stats) == list(STAT_NAMES)
        assert all(-1.0 <= v <= 1.0 for v in stats.values())
