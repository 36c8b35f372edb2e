"""Tests of mrcnn/tools/debug_data.py: anchor-match check, suggestions, pictures."""

from __future__ import annotations

import json
import os

import cv2
import numpy as np
import pytest

from mrcnn.config import Config
from mrcnn.data.augment import import_imgaug
from mrcnn.data.dataset import Dataset
from mrcnn.tools.debug_data import (
    NEGATIVE_IOU,
    POSITIVE_IOU,
    DebugDataResult,
    ObjectMatch,
    best_anchor_ious,
    check_image,
    debug_dataset,
    suggest_anchor_changes,
)

SIZE = 64
# A 16 x 16 square centred on (24, 24): the scale-16 anchor of ratio 1 on the stride-8 level
# is centred there too (centres at multiples of 8), so it fits exactly.
ALIGNED = (16, 16, 32, 32)
# One pixel high, 56 wide: any anchor's intersection with it is at most 1 x (anchor width),
# so IoU <= 1 / (anchor height) <= 1 / (8 / sqrt(2)) = 0.18 (the flattest, smallest anchor).
THIN = (50, 4, 51, 60)


class TinyConfig(Config):
    NAME = "tiny"
    NUM_CLASSES = 2
    IMAGE_MIN_DIM = SIZE
    IMAGE_MAX_DIM = SIZE
    RPN_ANCHOR_SCALES = (8, 16, 32, 64, 128)
    RPN_TRAIN_ANCHORS_PER_IMAGE = 32
    MAX_GT_INSTANCES = 5
    RANDOM_SEED = 0


class RectDataset(Dataset):
    """Images of rectangles: objects are (class id, (y1, x1, y2, x2)); negative id: crowd."""

    def load(self, images):
        self.add_class("rects", 1, "rect")
        for i, objects in enumerate(images):
            self.add_image("rects", image_id=f"img{i}", path=None, objects=objects)

    def load_image(self, image_id):
        image = np.full([SIZE, SIZE, 3], 40, dtype=np.uint8)
        for k, (_, (y1, x1, y2, x2)) in enumerate(self.image_info[image_id]["objects"]):
            image[y1:y2, x1:x2] = (200, 60 * k % 255, 100)
        return image

    def load_mask(self, image_id):
        objects = self.image_info[image_id]["objects"]
        masks = np.zeros([SIZE, SIZE, len(objects)], dtype=bool)
        for k, (_, (y1, x1, y2, x2)) in enumerate(objects):
            masks[y1:y2, x1:x2, k] = True
        return masks, np.array([c for c, _ in objects], dtype=np.int32)


def make_dataset(images):
    dataset = RectDataset()
    dataset.load(images)
    dataset.prepare()
    return dataset


def obj(box, iou):
    return ObjectMatch(image_id=0, source_id="a", class_id=1, class_name="rect", box=box,
                       best_iou=iou, best_anchor=(0.0, 0.0, 1.0, 1.0))


def test_best_anchor_ious_by_hand():
    anchors = np.array([[0, 0, 10, 10], [0, 0, 20, 20], [5, 5, 15, 15]], dtype=np.float32)
    # [0, 0, 10, 15] (area 150): anchor 0 gives 100 / 150, anchor 1 150 / 400,
    # anchor 2 50 / 200; [100, 100, 101, 150] touches none.
    iou, index = best_anchor_ious(np.array([[0, 0, 10, 10], [0, 0, 10, 15],
                                            [100, 100, 101, 150]]), anchors)
    np.testing.assert_allclose(iou, [1.0, 100 / 150, 0.0], rtol=1e-6)
    assert index[:2].tolist() == [0, 0]
    iou, index = best_anchor_ious(np.zeros([0, 4]), anchors)
    assert iou.shape == (0,) and index.shape == (0,)
    with pytest.raises(ValueError, match="anchors"):
        best_anchor_ious(np.zeros([1, 4]), np.zeros([0, 4]))


def test_status_thresholds_and_size():
    assert (POSITIVE_IOU, NEGATIVE_IOU) == (0.7, 0.3)
    assert [obj((0, 0, 1, 1), v).status for v in (1.0, 0.7, 0.69, 0.3, 0.29, 0.0)] == [
        "matched", "matched", "forced", "forced", "unmatched", "unmatched"]
    o = obj((10, 20, 13, 120), 0.1)
    assert (o.height, o.width) == (3, 100)
    result = DebugDataResult(objects=[obj((0, 0, 9, 9), 0.9), obj((0, 0, 9, 9), 0.5), o])
    assert [len(result.matched), len(result.forced), len(result.unmatched)] == [1, 1, 1]
    assert result.to_dict()["objects"][2]["status"] == "unmatched"


def test_suggestions_for_small_large_thin_wide_and_in_between():
    config = Config()  # scales (32, 64, 128, 256, 512), ratios (0.5, 1, 2)
    assert suggest_anchor_changes([obj((0, 0, 40, 40), 0.8)], config) == []
    # 4 x 6: size sqrt(24) = 4.9 < 32 / sqrt(2); smallest scale to 4 (a power of two at or
    # below 4.9), every scale divided by 8.
    small = suggest_anchor_changes([obj((0, 0, 4, 6), 0.05)], config)
    assert len(small) == 1 and "(4, 8, 16, 32, 64)" in small[0]
    # 800 x 800: size 800 > 512 * sqrt(2).
    assert "larger than the largest" in suggest_anchor_changes([obj((0, 0, 800, 800), 0.5)],
                                                               config)[0]
    # 200 high, 5 wide: width/height 0.025, log2 = -5.3, so 2 ** -5 = 0.03125 is proposed.
    thin = suggest_anchor_changes([obj((0, 0, 200, 5), 0.1)], config)
    assert len(thin) == 1 and "tall/thin" in thin[0] and "(0.03125, 0.5, 1, 2)" in thin[0]
    # 5 high, 200 wide: 40, log2 = 5.3, so 32 is proposed.
    wide = suggest_anchor_changes([obj((0, 0, 5, 200), 0.1)], config)
    assert "wide/flat" in wide[0] and "(0.5, 1, 2, 32)" in wide[0]
    # 45 x 45 lies between the scales 32 and 64.
    between = suggest_anchor_changes([obj((0, 0, 45, 45), 0.5)], config)
    assert len(between) == 1 and between[0].startswith("1 object(s) lie between")
    assert "RPN_ANCHOR_STRIDE" not in between[0]  # already 1


def test_check_image_finds_the_aligned_and_the_thin_object():
    dataset = make_dataset([[(1, ALIGNED), (1, THIN), (-1, (40, 40, 60, 60))]])
    masks, class_ids = dataset.load_mask(0)
    boxes = np.array([ALIGNED, THIN, (40, 40, 60, 60)])
    objects = check_image(dataset, TinyConfig(), 0, class_ids, boxes, (SIZE, SIZE, 3))
    assert [o.box for o in objects] == [ALIGNED, THIN]  # the crowd region is not checked
    assert objects[0].best_iou == pytest.approx(1.0)
    assert objects[0].best_anchor == (16.0, 16.0, 32.0, 32.0)
    assert objects[1].best_iou < 1 / (8 / np.sqrt(2)) and objects[1].status == "unmatched"
    assert objects[1].source_id == "img0" and objects[1].class_name == "rect"


def test_debug_dataset_pictures_table_and_json(tmp_path):
    import matplotlib.pyplot as plt

    iaa = import_imgaug().augmenters
    dataset = make_dataset([[(1, ALIGNED)], [(1, THIN), (1, (8, 30, 40, 62))],
                            [(1, (20, 20, 44, 44))]])
    figures = plt.get_fignums()
    result = debug_dataset(dataset, TinyConfig(), str(tmp_path / "out"), count=2,
                           augmentation=iaa.Fliplr(1.0), augment_samples=2, check_limit=1)
    assert plt.get_fignums() == figures  # drawn without pyplot: nothing left open or shown
    names = sorted(os.listdir(tmp_path / "out"))  # and no temporary file left behind
    assert names == sorted(f"image000{i}_{kind}.png" for i in (0, 1)
                           for kind in ("gt", "augmented", "anchors"))
    assert sorted(result.files) == sorted(str(tmp_path / "out" / n) for n in names)
    for name in names:
        picture = cv2.imread(str(tmp_path / "out" / name))
        assert picture is not None and picture.std() > 1
    # check_limit=1 checks image 0; the drawn image 1 is always checked too; image 2 is not.
    assert result.checked_images == [0, 1]
    assert [o.box for o in result.unmatched] == [THIN]
    assert all(n >= 1 for n in result.positive_anchors.values())  # forced anchors at least
    text = str(result)
    assert "UNMATCHED" in text and "(50, 4, 51, 60)" in text and "Suggestions:" in text
    assert "effectively unmatched (IoU < 0.3): 1" in text
    json.dumps(result.to_dict())


def test_debug_dataset_without_augmentation_or_drawing(tmp_path):
    dataset = make_dataset([[(1, ALIGNED)], [(1, ALIGNED)]])
    result = debug_dataset(dataset, TinyConfig(), str(tmp_path), image_ids=[1], augment_samples=0)
    assert sorted(os.listdir(tmp_path)) == ["image0001_anchors.png", "image0001_gt.png"]
    assert result.checked_images == [0, 1] and len(result.matched) == 2
    assert result.suggestions == [] and "Suggestions" not in str(result)
    result = debug_dataset(dataset, TinyConfig(), str(tmp_path / "none"), count=0)
    assert result.files == [] and len(result.objects) == 2


def test_debug_dataset_bad_input(tmp_path):
    with pytest.raises(ValueError, match="no image"):
        debug_dataset(make_dataset([]), TinyConfig(), str(tmp_path))
    dataset = make_dataset([[(1, ALIGNED)]])
    with pytest.raises(ValueError, match=r"image ids \[5\]"):
        debug_dataset(dataset, TinyConfig(), str(tmp_path), image_ids=[5])
    with pytest.raises(ValueError, match="count and augment_samples"):
        debug_dataset(dataset, TinyConfig(), str(tmp_path), count=-1)
