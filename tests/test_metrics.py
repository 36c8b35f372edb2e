"""Tests for mrcnn.evaluation.metrics: a hand-computed AP case, empty inputs, recall, bad inputs."""

import logging

import numpy as np
import pytest

from mrcnn.evaluation import metrics as MT


def _case():
    """10x10 image, 2 ground-truth squares of class 1 and 3 predictions given out of order.

    g0 = rows 0-4, cols 0-4; g1 = rows 5-9, cols 5-9 (25 pixels each).
    p_a (score .7): 18 pixels inside g1 -> IoU 18/25 = 0.72
    p_b (score .9): exactly g0 -> IoU 1
    p_c (score .8): rows 0-4, cols 5-9 -> overlaps nothing (false positive)
    """
    gt_masks = np.zeros((10, 10, 2), bool)
    gt_masks[0:5, 0:5, 0] = True
    gt_masks[5:10, 5:10, 1] = True
    gt_boxes = np.array([[0, 0, 5, 5], [5, 5, 10, 10]])
    pred_masks = np.zeros((10, 10, 3), bool)
    pred_masks[5:10, 5:9, 0] = True
    pred_masks[9, 7:9, 0] = False  # 20 - 2 = 18 pixels
    pred_masks[0:5, 0:5, 1] = True
    pred_masks[0:5, 5:10, 2] = True
    pred_boxes = np.array([[5, 5, 10, 9], [0, 0, 5, 5], [0, 5, 5, 10]])
    return dict(gt_boxes=gt_boxes, gt_class_ids=np.array([1, 1]), gt_masks=gt_masks,
                pred_boxes=pred_boxes, pred_class_ids=np.array([1, 1, 1]),
                pred_scores=np.array([0.7, 0.9, 0.8]), pred_masks=pred_masks)


def test_compute_matches_golden():
    gt_match, pred_match, overlaps = MT.compute_matches(**_case())
    # Sorted by score: p_b (.9), p_c (.8), p_a (.7).
    np.testing.assert_array_equal(pred_match, [0, -1, 1])
    np.testing.assert_array_equal(gt_match, [0, 2])
    np.testing.assert_allclose(overlaps, [[1, 0], [0, 0], [0, 0.72]])


def test_compute_ap_golden():
    # TP, FP, TP: precision 1, 1/2, 2/3; recall 1/2, 1/2, 1.
    # Interpolated precision is 1 up to recall 1/2, then 2/3: AP = 0.5 * 1 + 0.5 * 2/3.
    m_ap, precisions, recalls, overlaps = MT.compute_ap(**_case())
    assert m_ap == pytest.approx(5 / 6)
    np.testing.assert_allclose(precisions, [1, 1, 2 / 3, 2 / 3, 0])
    np.testing.assert_allclose(recalls, [0, 0.5, 0.5, 1, 1])
    assert overlaps.shape == (3, 2)


def test_compute_ap_golden_strict_threshold():
    # At IoU 0.85 p_a no longer matches: TP, FP, FP -> AP = 0.5 * 1.
    m_ap, _, recalls, _ = MT.compute_ap(**_case(), iou_threshold=0.85)
    assert m_ap == pytest.approx(0.5)
    np.testing.assert_allclose(recalls, [0, 0.5, 0.5, 0.5, 1])


def test_compute_ap_class_must_match():
    case = _case()
    case["pred_class_ids"] = np.array([1, 2, 1])  # p_b predicts the wrong class
    gt_match, pred_match, _ = MT.compute_matches(**case)
    np.testing.assert_array_equal(pred_match, [-1, -1, 1])
    np.testing.assert_array_equal(gt_match, [-1, 2])
    # FP, FP, TP: precision 1/3 at recall 1/2 -> AP = 0.5 / 3
    assert MT.compute_ap(**case)[0] == pytest.approx(1 / 6)


def test_compute_matches_score_threshold_applies_to_iou_like_matterport():
    gt_match, pred_match, _ = MT.compute_matches(**_case(), score_threshold=0.8)
    np.testing.assert_array_equal(pred_match, [0, -1, -1])  # p_a's IoU 0.72 < 0.8
    np.testing.assert_array_equal(gt_match, [0, -1])


def test_compute_ap_ignores_zero_padding_rows():
    case = _case()
    case["gt_boxes"] = np.concatenate([case["gt_boxes"], np.zeros((2, 4))])
    case["gt_class_ids"] = np.array([1, 1, 0, 0])
    case["gt_masks"] = np.concatenate([case["gt_masks"], np.zeros((10, 10, 2), bool)], axis=2)
    case["pred_boxes"] = np.concatenate([case["pred_boxes"], np.zeros((1, 4))])
    case["pred_scores"] = np.array([0.7, 0.9, 0.8, 0.0])
    assert MT.compute_ap(**case)[0] == pytest.approx(5 / 6)


def test_compute_ap_empty_predictions_and_empty_ground_truth_are_zero_not_nan():
    case = _case()
    no_pred = dict(case, pred_boxes=np.zeros((0, 4)), pred_class_ids=np.zeros(0, int),
                   pred_scores=np.zeros(0), pred_masks=np.zeros((10, 10, 0), bool))
    m_ap, precisions, recalls, overlaps = MT.compute_ap(**no_pred)
    assert m_ap == 0.0 and overlaps.shape == (0, 2)
    np.testing.assert_array_equal(recalls, [0, 1])
    np.testing.assert_array_equal(precisions, [0, 0])
    no_gt = dict(case, gt_boxes=np.zeros((0, 4)), gt_class_ids=np.zeros(0, int),
                 gt_masks=np.zeros((10, 10, 0), bool))
    m_ap, precisions, recalls, _ = MT.compute_ap(**no_gt)
    assert m_ap == 0.0 and not np.isnan(precisions).any() and not np.isnan(recalls).any()
    both = dict(no_gt, pred_boxes=np.zeros((0, 4)), pred_class_ids=np.zeros(0, int),
                pred_scores=np.zeros(0), pred_masks=np.zeros((10, 10, 0), bool))
    assert MT.compute_ap(**both)[0] == 0.0


def test_compute_matches_bad_inputs():
    case = _case()
    with pytest.raises(ValueError, match="pred_scores has 2 entries for 3"):
        MT.compute_matches(**dict(case, pred_scores=np.array([0.1, 0.2])))
    with pytest.raises(ValueError, match="gt_masks has 1 entries for 2"):
        MT.compute_matches(**dict(case, gt_masks=case["gt_masks"][..., :1]))
    with pytest.raises(ValueError, match="mask sizes differ"):
        MT.compute_matches(**dict(case, pred_masks=np.zeros((12, 10, 3), bool)))
    with pytest.raises(ValueError, match="gt_boxes"):
        MT.compute_matches(**dict(case, gt_boxes=np.zeros((2, 3)) + 1))


def test_compute_ap_range_golden_and_logs(caplog, capsys):
    with caplog.at_level(logging.INFO, logger="mrcnn.evaluation.metrics"):
        mean_ap = MT.compute_ap_range(*_case().values(), iou_thresholds=[0.5, 0.85])
    assert mean_ap == pytest.approx((5 / 6 + 0.5) / 2)
    messages = [r.getMessage() for r in caplog.records]
    assert any("AP @0.50" in m for m in messages)
    assert any("AP @0.50-0.85" in m for m in messages)
    assert capsys.readouterr().out == ""


def test_compute_ap_range_default_thresholds():
    # p_a (IoU 0.72) matches at 0.50 ... 0.70 (5 thresholds) but not at 0.75 ... 0.95 (5).
    mean_ap = MT.compute_ap_range(*_case().values(), verbose=0)
    assert mean_ap == pytest.approx((5 * 5 / 6 + 5 * 0.5) / 10)
    with pytest.raises(ValueError, match="iou_thresholds"):
        MT.compute_ap_range(*_case().values(), iou_thresholds=[], verbose=0)


def test_compute_recall_golden():
    pred = np.array([[0, 0, 10, 10], [0, 0, 10, 9], [20, 20, 30, 30], [50, 50, 60, 60]])
    gt = np.array([[0, 0, 10, 10], [20, 20, 30, 35], [100, 100, 110, 110]])
    # IoUs of the best matches: 1, 0.9, 100/150, 0
    recall, positive_ids = MT.compute_recall(pred, gt, 0.5)
    assert recall == pytest.approx(2 / 3)
    np.testing.assert_array_equal(positive_ids, [0, 1, 2])
    recall, positive_ids = MT.compute_recall(pred, gt, 0.95)
    assert recall == pytest.approx(1 / 3)
    np.testing.assert_array_equal(positive_ids, [0])


def test_compute_recall_empty_inputs():
    recall, ids = MT.compute_recall(np.zeros((0, 4)), np.ones((2, 4)), 0.5)
    assert recall == 0.0 and ids.size == 0
    recall, ids = MT.compute_recall(np.array([[0, 0, 5, 5]]), np.zeros((0, 4)), 0.5)
    assert recall == 0.0 and ids.size == 0
