"""evaluation.evaluator: evaluate_dataset and EvaluationResult, on hand-computed cases."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mrcnn.config import Config
from mrcnn.data.dataset import Dataset
from mrcnn.evaluation.evaluator import EvaluationResult, evaluate_dataset, image_metrics
from mrcnn.structures.boxes import extract_bboxes

S = 64  # images are S x S: "square" resizing to 64 leaves them as they are


class EvalConfig(Config):
    NAME = "evaltest"
    NUM_CLASSES = 3
    IMAGES_PER_GPU = 2
    IMAGE_MIN_DIM = S
    IMAGE_MAX_DIM = S


def rect(y1, x1, y2, x2):
    mask = np.zeros([S, S], dtype=bool)
    mask[y1:y2, x1:x2] = True
    return mask


R1, R2, R3 = rect(4, 4, 14, 14), rect(30, 30, 40, 40), rect(10, 40, 20, 50)
FP = rect(50, 4, 60, 14)
CROWD = rect(44, 44, 60, 60)
R3_SHIFTED = rect(10, 42, 20, 52)  # IoU with R3 = 80 / 120 = 0.667


class RectDataset(Dataset):
    """Three images told apart by their colour: A (two classes), B (one + crowd), C (none)."""

    GT = {0: ([R1, R2], [1, 2]), 1: ([R3, CROWD], [2, -2]), 2: ([], [])}

    def __init__(self):
        super().__init__()
        self.add_class("rects", 1, "red")
        self.add_class("rects", 2, "blue")
        for i in range(3):
            self.add_image("rects", image_id=i, path=None)
        self.prepare()

    def load_image(self, image_id):
        return np.full([S, S, 3], 10 * (image_id + 1), dtype=np.uint8)

    def load_mask(self, image_id):
        masks, class_ids = self.GT[image_id]
        if not masks:
            return np.zeros([S, S, 0], bool), np.zeros([0], np.int32)
        return np.stack(masks, axis=2), np.array(class_ids, np.int32)


def detections(entries):
    """entries: [(mask, class id, score)] -> a detect() result dict."""
    if not entries:
        return {"rois": np.zeros([0, 4], np.int32), "class_ids": np.zeros([0], np.int32),
                "scores": np.zeros([0], np.float32), "masks": np.zeros([S, S, 0], bool)}
    masks = np.stack([e[0] for e in entries], axis=2)
    return {"rois": extract_bboxes(masks), "class_ids": np.array([e[1] for e in entries]),
            "scores": np.array([e[2] for e in entries]), "masks": masks}


class FixedModel:
    """Stand-in for an inference MaskRCNN returning fixed detections per image colour."""

    def __init__(self, by_image):
        self.config = EvalConfig()
        self.by_image = by_image
        self.batches = []

    def detect(self, images, verbose=0):
        self.batches.append(len(images))
        return [detections(self.by_image[int(image[0, 0, 0]) // 10 - 1]) for image in images]


PREDICTIONS = {
    # A: R1 found (class 1), a false positive of class 1, R2 found but called class 1.
    0: [(R1, 1, 0.9), (FP, 1, 0.8), (R2, 1, 0.7)],
    # B: R3 found with IoU 0.667; the crowd region is not to be found.
    1: [(R3_SHIFTED, 2, 0.95)],
    # C: no ground truth, one false positive of class 1.
    2: [(FP, 1, 0.5)],
}


def test_evaluate_dataset_hand_computed():
    model = FixedModel(PREDICTIONS)
    result = evaluate_dataset(model, RectDataset())
    # Image A, sorted by score: TP, FP, wrong class -> precision 1 at recall 0.5, then no
    # more recall: AP = 0.5 at every threshold (R1 is exact); recall = 1/2.
    # Image B: one TP with IoU 0.667 -> AP 1 at 0.50, 0.55, 0.60, 0.65 and 0 above: AP@0.5 = 1,
    # AP@[.5:.95] = 4/10; recall 1 (the crowd region does not count).
    # Image C has no ground truth: out of mAP and recall.
    assert result.map50 == pytest.approx((0.5 + 1.0) / 2)
    assert result.map == pytest.approx((0.5 + 0.4) / 2)
    assert result.recall50 == pytest.approx((0.5 + 1.0) / 2)
    # Per class: red = A (GT R1, preds R1 .9, FP .8, R2 .7 -> AP 1) and C (only a FP -> 0);
    # blue = A (GT R2, no blue prediction -> 0) and B (1).
    assert result.per_class_ap == {1: pytest.approx(0.5), 2: pytest.approx(0.5)}
    assert result.per_class_images == {1: 2, 2: 2}
    assert result.class_names == {1: "red", 2: "blue"}
    assert (result.num_images, result.num_images_with_gt) == (3, 2)
    assert model.batches == [2, 1]  # config.BATCH_SIZE images per detect call


def test_perfect_predictions_and_options():
    perfect = {0: [(R1, 1, 0.9), (R2, 2, 0.8)], 1: [(R3, 2, 0.9)], 2: []}
    model = FixedModel(perfect)
    result = evaluate_dataset(model, RectDataset())
    assert (result.map50, result.map, result.recall50) == (1.0, 1.0, 1.0)
    assert result.per_class_ap == {1: 1.0, 2: 1.0}
    # Other thresholds, a subset of images and a limit.
    result = evaluate_dataset(FixedModel(PREDICTIONS), RectDataset(), image_ids=[1],
                              iou_thresholds=[0.5, 0.7])
    assert (result.map50, result.map, result.num_images) == (1.0, 0.5, 1)
    assert result.iou_thresholds == (0.5, 0.7)
    result = evaluate_dataset(FixedModel(PREDICTIONS), RectDataset(), limit=1)
    assert (result.num_images, result.map50) == (1, 0.5)


def test_image_metrics_without_ground_truth_or_detections():
    empty = np.zeros([S, S, 0], bool)
    ap50, ap, recall, per_class = image_metrics(
        np.zeros([0], np.int32), np.zeros([0, 4], np.int32), empty,
        detections([(FP, 1, 0.5)]), [0.5])
    assert np.isnan(ap50) and np.isnan(ap) and np.isnan(recall)
    assert per_class == {1: 0.0}
    ap50, ap, recall, per_class = image_metrics(
        np.array([2]), extract_bboxes(R1[..., None]), R1[..., None],
        {"rois": np.zeros([0, 4]), "class_ids": np.zeros([0]), "scores": np.zeros([0]),
         "masks": np.zeros([0])}, [0.5])
    assert (ap50, ap, recall, per_class) == (0.0, 0.0, 0.0, {2: 0.0})


def test_bad_arguments():
    model = FixedModel(PREDICTIONS)
    with pytest.raises(ValueError, match="no image"):
        evaluate_dataset(model, RectDataset(), image_ids=[])
    with pytest.raises(ValueError, match="iou_thresholds"):
        evaluate_dataset(model, RectDataset(), iou_thresholds=[])
    with pytest.raises(ValueError, match="iou_thresholds"):
        evaluate_dataset(model, RectDataset(), iou_thresholds=[0.5, 1.5])


def test_result_table_and_dict():
    result = EvaluationResult(map50=0.75, map=0.45, recall50=0.5, per_class_ap={1: 0.25, 2: 1.0},
                              per_class_images={1: 2, 2: 1},
                              class_names={1: "red", 2: "blue"}, num_images=3,
                              num_images_with_gt=2)
    text = str(result)
    lines = text.splitlines()
    assert lines[0] == "Evaluation on 3 images (2 with ground truth)"
    assert lines[1].split() == ["class", "AP@0.5", "images"]
    assert lines[2].split() == ["red", "0.250", "2"]
    assert lines[3].split() == ["blue", "1.000", "1"]
    assert lines[4].split() == ["mAP@0.5", "0.750"]
    assert lines[5].split() == ["mAP@[0.50:0.95]", "0.450"]
    assert lines[6].split() == ["recall@0.5", "0.500"]
    data = result.to_dict()
    assert data["per_class_ap"] == {"red": 0.25, "blue": 1.0}
    assert data["map50"] == 0.75 and data["iou_thresholds"][0] == 0.5
    assert len(data["iou_thresholds"]) == 10
    json.dumps(data)


@pytest.mark.slow
def test_real_model_runs_through_evaluate_dataset(tmp_path):
    """An untrained inference MaskRCNN on two shapes images: the plumbing, not the scores."""
    from mrcnn import model as modellib
    from samples.shapes.shapes import ShapesConfig, ShapesDataset

    class TinyConfig(ShapesConfig):
        NAME = "evalslow"
        BACKBONE = "resnet50"
        IMAGES_PER_GPU = 1
        IMAGE_MIN_DIM = IMAGE_MAX_DIM = 64
        POST_NMS_ROIS_INFERENCE = 50
        DETECTION_MAX_INSTANCES = 5
        DETECTION_MIN_CONFIDENCE = 0.0

    dataset = ShapesDataset()
    dataset.load_shapes(2, 80, 80, seed=1)
    dataset.prepare()
    model = modellib.MaskRCNN("inference", TinyConfig(), str(tmp_path))
    result = evaluate_dataset(model, dataset)
    assert (result.num_images, result.num_images_with_gt) == (2, 2)
    for value in (result.map50, result.map, result.recall50, *result.per_class_ap.values()):
        assert 0.0 <= value <= 1.0
    assert set(result.per_class_ap) <= {1, 2, 3}


# ---------------------------------------------------------------------------- one pass
def _two_square_dataset():
    from mrcnn.data.dataset import Dataset

    class Squares(Dataset):
        def load_mask(self, image_id):
            masks = np.zeros((40, 60, 2), dtype=bool)
            masks[5:15, 5:25, 0] = True
            masks[20:35, 30:55, 1] = True
            return masks, np.array([1, 2], dtype=np.int32)

        def load_image(self, image_id):
            return np.zeros((40, 60, 3), dtype=np.uint8)

    dataset = Squares()
    dataset.add_class("sq", 1, "small")
    dataset.add_class("sq", 2, "large")
    for i in range(2):
        dataset.add_image("sq", i, None, height=40, width=60)
    dataset.prepare()
    return dataset


class _OracleModel:
    """Detects the ground truth exactly (scores 0.9), or every class swapped."""

    def __init__(self, dataset, swap=False):
        self.dataset, self.swap, self.calls = dataset, swap, 0
        self.config = type("C", (), {"BATCH_SIZE": 2, "DETECTION_MIN_CONFIDENCE": 0.05})()

    def detect(self, images, verbose=0):
        from mrcnn.structures.boxes import extract_bboxes

        self.calls += 1
        masks, class_ids = self.dataset.load_mask(0)
        ids = 3 - class_ids if self.swap else class_ids
        return [{"rois": extract_bboxes(masks), "class_ids": ids,
                 "scores": np.array([0.9, 0.8]), "masks": masks} for _ in images]


def test_one_pass_scores_perfect_detections_1_with_both_metrics():
    from mrcnn.evaluation.runner import evaluate_model

    dataset = _two_square_dataset()
    model = _OracleModel(dataset)
    report = evaluate_model(model, dataset)
    assert model.calls == 1  # 2 images, one batch of 2: detection ran once
    for eval_type in ("bbox", "segm"):
        assert report.coco[eval_type]["AP"] == pytest.approx(1.0)
        assert report.coco[eval_type]["AP50"] == pytest.approx(1.0)
    assert report.matterport.map50 == pytest.approx(1.0)
    assert report.matterport.map == pytest.approx(1.0)
    assert len(report.coco_results) == 4 and len(report.per_image) == 2
    assert report.per_image[0]["ap50"] == pytest.approx(1.0)
    recall, precision = report.pr_curves["segm IoU 0.50"]
    assert len(recall) == 101 and precision[-1] == pytest.approx(1.0)


def test_one_pass_scores_swapped_classes_0():
    from mrcnn.evaluation.runner import evaluate_model

    dataset = _two_square_dataset()
    report = evaluate_model(_OracleModel(dataset, swap=True), dataset, eval_types=("segm",))
    assert set(report.coco) == {"segm"}
    assert report.coco["segm"]["AP"] == pytest.approx(0.0)
    assert report.matterport.map50 == pytest.approx(0.0)
    with pytest.raises(ValueError, match="eval_types"):
        evaluate_model(_OracleModel(dataset), dataset, eval_types=("keypoints",))
