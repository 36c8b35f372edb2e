"""Tests for mrcnn.structures.boxes: golden values computed by hand, round trips, bad inputs."""

import numpy as np
import pytest

from mrcnn.structures import boxes as B


# ----------------------------------------------------------------------------- extract_bboxes
def test_extract_bboxes_golden_exclusive_corner_and_empty_mask():
    mask = np.zeros((5, 6, 3), dtype=bool)
    mask[1:3, 2:5, 0] = True  # rows 1-2, cols 2-4
    mask[4, 5, 2] = True  # a single pixel in the bottom-right corner
    boxes = B.extract_bboxes(mask)
    assert boxes.dtype == np.int32
    np.testing.assert_array_equal(boxes, [[1, 2, 3, 5], [0, 0, 0, 0], [4, 5, 5, 6]])


def test_extract_bboxes_accepts_uint8_with_holes():
    mask = np.zeros((8, 8, 1), dtype=np.uint8)
    mask[2, 3, 0] = 1
    mask[6, 1, 0] = 1  # disjoint pixels: the box spans both
    np.testing.assert_array_equal(B.extract_bboxes(mask), [[2, 1, 7, 4]])


def test_extract_bboxes_no_instances_and_bad_rank():
    assert B.extract_bboxes(np.zeros((4, 4, 0), bool)).shape == (0, 4)
    with pytest.raises(ValueError, match="height, width, N"):
        B.extract_bboxes(np.zeros((4, 4), bool))


# ----------------------------------------------------------------------------- IoU
def test_compute_iou_golden():
    box = np.array([0, 0, 2, 2])
    boxes = np.array([[1, 1, 3, 3], [0, 0, 2, 2], [2, 2, 4, 4], [0, 0, 1, 4]])
    areas = np.array([4, 4, 4, 4])
    iou = B.compute_iou(box, boxes, 4, areas)
    # overlap 1 of union 7; identical; touching corners; overlap 2 of union 6.
    np.testing.assert_allclose(iou, [1 / 7, 1.0, 0.0, 2 / 6])


def test_compute_overlaps_golden():
    boxes1 = np.array([[0, 0, 10, 10], [5, 5, 15, 15]])
    boxes2 = np.array([[0, 0, 10, 10], [0, 0, 5, 5], [20, 20, 30, 30]])
    expected = [[1.0, 25 / 100, 0.0],
                [25 / 175, 0.0, 0.0]]
    np.testing.assert_allclose(B.compute_overlaps(boxes1, boxes2), expected)


def test_compute_overlaps_zero_area_boxes_give_zero_not_nan():
    degenerate = np.array([[3, 3, 3, 3]])
    out = B.compute_overlaps(degenerate, degenerate)
    assert out.shape == (1, 1) and out[0, 0] == 0.0


def test_compute_overlaps_empty_and_bad_shape():
    assert B.compute_overlaps(np.zeros((0, 4)), np.ones((3, 4))).shape == (0, 3)
    with pytest.raises(ValueError, match="boxes2"):
        B.compute_overlaps(np.ones((2, 4)), np.ones((2, 3)))


def test_compute_overlaps_masks_golden_and_empty_masks():
    m1 = np.zeros((4, 4, 2), bool)
    m1[:2, :2, 0] = True  # 4 pixels; instance 1 stays empty
    m2 = np.zeros((4, 4, 2), bool)
    m2[:2, :, 0] = True  # 8 pixels containing m1[..., 0]; instance 1 empty
    np.testing.assert_allclose(B.compute_overlaps_masks(m1, m2), [[0.5, 0.0], [0.0, 0.0]])


def test_compute_overlaps_masks_soft_masks_threshold_at_half():
    soft = np.full((2, 2, 1), 0.6)
    soft[0, 0, 0] = 0.4  # below 0.5: not part of the mask
    hard = np.ones((2, 2, 1), bool)
    np.testing.assert_allclose(B.compute_overlaps_masks(soft, hard), [[0.75]])


def test_compute_overlaps_masks_no_instances_and_mismatched_sizes():
    assert B.compute_overlaps_masks(np.zeros((4, 4, 0)), np.zeros((4, 4, 2))).shape == (0, 2)
    with pytest.raises(ValueError, match="mask sizes differ"):
        B.compute_overlaps_masks(np.zeros((4, 4, 1)), np.zeros((4, 5, 1)))
    with pytest.raises(ValueError, match="height, width, N"):
        B.compute_overlaps_masks(np.zeros((4, 4)), np.zeros((4, 4, 1)))


# ----------------------------------------------------------------------------- NMS
NMS_BOXES = np.array([[0, 0, 10, 10],     # 0: score .9
                      [1, 1, 11, 11],     # 1: score .8, IoU 81/119 with 0, 72/118 with 3
                      [20, 20, 30, 30],   # 2: score .7, far away
                      [0, 0, 10, 9]])     # 3: score .95, IoU 90/100 with 0
NMS_SCORES = np.array([0.9, 0.8, 0.7, 0.95])


def test_non_max_suppression_golden():
    keep = B.non_max_suppression(NMS_BOXES, NMS_SCORES, 0.5)
    assert keep.dtype == np.int32
    np.testing.assert_array_equal(keep, [3, 2])
    # 72/118 = 0.61 <= 0.7 keeps box 1; 0.9 > 0.7 still drops box 0.
    np.testing.assert_array_equal(B.non_max_suppression(NMS_BOXES, NMS_SCORES, 0.7), [3, 1, 2])
    np.testing.assert_array_equal(B.non_max_suppression(NMS_BOXES, NMS_SCORES, 0.95),
                                  [3, 0, 1, 2])


def test_non_max_suppression_empty_and_mismatched_scores():
    assert B.non_max_suppression(np.zeros((0, 4)), np.zeros(0), 0.5).shape == (0,)
    with pytest.raises(ValueError, match="scores has 3 values for 4 boxes"):
        B.non_max_suppression(NMS_BOXES, NMS_SCORES[:3], 0.5)


# ----------------------------------------------------------------------------- box deltas
def test_box_refinement_golden():
    deltas = B.box_refinement(np.array([[0, 0, 10, 10]]), np.array([[2, 4, 12, 24]]))
    assert deltas.dtype == np.float32
    # centres (5, 5) -> (7, 14); size (10, 10) -> (10, 20)
    np.testing.assert_allclose(deltas, [[0.2, 0.9, 0.0, np.log(2)]], rtol=1e-6)


def test_apply_box_deltas_golden():
    out = B.apply_box_deltas(np.array([[0, 0, 10, 10]]),
                             np.array([[0.2, 0.9, 0.0, np.log(2)]]))
    np.testing.assert_allclose(out, [[2, 4, 12, 24]], atol=1e-5)


def test_box_refinement_apply_box_deltas_round_trip():
    rng = np.random.default_rng(0)
    y1x1 = rng.uniform(0, 100, (50, 2))
    boxes = np.concatenate([y1x1, y1x1 + rng.uniform(1, 80, (50, 2))], axis=1)
    gy1x1 = rng.uniform(0, 100, (50, 2))
    gt = np.concatenate([gy1x1, gy1x1 + rng.uniform(1, 80, (50, 2))], axis=1)
    restored = B.apply_box_deltas(boxes, B.box_refinement(boxes, gt))
    np.testing.assert_allclose(restored, gt, atol=1e-3)


def test_box_deltas_mismatched_shapes():
    with pytest.raises(ValueError, match="gt_box has 1"):
        B.box_refinement(np.ones((2, 4)), np.ones((1, 4)))
    with pytest.raises(ValueError, match="deltas must have shape"):
        B.apply_box_deltas(np.ones((2, 4)), np.ones((3, 4)))


# ----------------------------------------------------------------------------- normalization
def test_norm_boxes_golden():
    # scale (h-1, w-1) = (10, 20), shift (0, 0, 1, 1)
    boxes = np.array([[0, 0, 11, 21], [5, 10, 6, 11]])
    out = B.norm_boxes(boxes, (11, 21))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[0, 0, 1, 1], [0.5, 0.5, 0.5, 0.5]])


def test_denorm_boxes_golden_rounds_to_int32():
    out = B.denorm_boxes(np.array([[0.0, 0.0, 1.0, 1.0], [0.26, 0.5, 0.5, 0.74]]), (11, 21, 3))
    assert out.dtype == np.int32
    # 0.26 * 10 = 2.6 -> 3; 0.74 * 20 + 1 = 15.8 -> 16
    np.testing.assert_array_equal(out, [[0, 0, 11, 21], [3, 10, 6, 16]])


def test_norm_denorm_round_trip():
    rng = np.random.default_rng(1)
    y1x1 = rng.integers(0, 60, (30, 2))
    boxes = np.concatenate([y1x1, y1x1 + rng.integers(1, 40, (30, 2))], axis=1)
    np.testing.assert_array_equal(B.denorm_boxes(B.norm_boxes(boxes, (100, 120)), (100, 120)),
                                  boxes)


def test_norm_boxes_rejects_degenerate_shape():
    with pytest.raises(ValueError, match="too small"):
        B.norm_boxes(np.zeros((1, 4)), (1, 5))
    with pytest.raises(ValueError, match="height, width"):
        B.denorm_boxes(np.zeros((1, 4)), (5,))


# ----------------------------------------------------------------------------- trim_zeros
def test_trim_zeros_golden_and_bad_rank():
    x = np.array([[0, 0, 0, 0], [1, 2, 3, 4], [0, 0, 0, 0], [0, 0, 0, 5]])
    np.testing.assert_array_equal(B.trim_zeros(x), [[1, 2, 3, 4], [0, 0, 0, 5]])
    with pytest.raises(ValueError, match="2-D"):
        B.trim_zeros(np.zeros(4))
