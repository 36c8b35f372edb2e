"""Tests for mrcnn.data.targets: RPN targets, random ROIs and detection targets."""

import math

import numpy as np
import pytest

from mrcnn.config import Config
from mrcnn.data.targets import build_detection_targets, build_rpn_targets, generate_random_rois


class TinyConfig(Config):
    NAME = "tiny"
    NUM_CLASSES = 4
    BACKBONE = "resnet50"
    IMAGE_MIN_DIM = 64
    IMAGE_MAX_DIM = 64
    RPN_TRAIN_ANCHORS_PER_IMAGE = 256
    TRAIN_ROIS_PER_IMAGE = 20
    ROI_POSITIVE_RATIO = 0.33  # int(20 * 0.33) = 6 foreground ROIs at most
    MINI_MASK_SHAPE = (56, 56)


def tiny_config(**overrides):
    config = TinyConfig()
    for key, value in overrides.items():
        setattr(config, key, value)
    return config


def as_boxes(rows):
    return np.array(rows, dtype=np.float64).reshape(-1, 4)


# ---------------------------------------------------------------- loop reference (RPN)
def ref_iou(a, b):
    ih = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iw = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ih * iw
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union


def ref_delta(a, g):
    ah, aw = a[2] - a[0], a[3] - a[1]
    gh, gw = g[2] - g[0], g[3] - g[1]
    return [((g[0] + gh / 2) - (a[0] + ah / 2)) / ah, ((g[1] + gw / 2) - (a[1] + aw / 2)) / aw,
            math.log(gh / ah), math.log(gw / aw)]


def ref_rpn_labels(anchors, gt_class_ids, gt_boxes, std):
    """Plain-loop version of the deterministic part (before subsampling)."""
    crowd = [b for c, b in zip(gt_class_ids, gt_boxes, strict=True) if c < 0]
    gts = [b for c, b in zip(gt_class_ids, gt_boxes, strict=True) if c >= 0]
    match = [0] * len(anchors)
    best_gt = [None] * len(anchors)
    for i, a in enumerate(anchors):
        touches_crowd = any(ref_iou(a, c) >= 0.001 for c in crowd)
        ious = [ref_iou(a, g) for g in gts]
        best = max(ious) if ious else 0.0
        if ious:
            best_gt[i] = ious.index(best)
        if best < 0.3 and not touches_crowd:
            match[i] = -1
    for g in gts:
        ious = [ref_iou(a, g) for a in anchors]
        top = max(ious)
        if top > 0:
            for i, v in enumerate(ious):
                if v == top:
                    match[i] = 1
    for i, a in enumerate(anchors):
        if gts and max(ref_iou(a, g) for g in gts) >= 0.7:
            match[i] = 1
    deltas = {i: np.array(ref_delta(anchors[i], gts[best_gt[i]])) / std
              for i in range(len(anchors)) if match[i] == 1}
    return np.array(match), deltas


def random_case(seed, num_anchors=300, num_gt=4):
    rng = np.random.default_rng(seed)
    y1 = rng.integers(-8, 60, num_anchors)
    x1 = rng.integers(-8, 60, num_anchors)
    anchors = np.stack([y1, x1, y1 + rng.integers(4, 40, num_anchors),
                        x1 + rng.integers(4, 40, num_anchors)], axis=1).astype(np.float64)
    anchors = np.concatenate([anchors, anchors[:20]])  # duplicates make ties
    gy = rng.integers(0, 40, num_gt + 1)
    gx = rng.integers(0, 40, num_gt + 1)
    gt_boxes = np.stack([gy, gx, gy + rng.integers(6, 24, num_gt + 1),
                         gx + rng.integers(6, 24, num_gt + 1)], axis=1).astype(np.int32)
    gt_class_ids = np.array([1, 2, 3, 1, -1][:num_gt] + [-1], dtype=np.int32)[:num_gt + 1]
    return anchors, gt_class_ids, gt_boxes


# ---------------------------------------------------------------- build_rpn_targets
def test_rpn_golden_four_anchors_one_gt():
    anchors = as_boxes([[1, 0, 11, 10],     # IoU 90/110 = 0.82 -> positive
                        [0, 0, 10, 20],     # IoU 0.5 -> neutral
                        [20, 20, 30, 30],   # IoU 0 -> negative
                        [0, 0, 10, 40]])    # IoU 0.25 -> negative
    match, bbox = build_rpn_targets((64, 64, 3), anchors, np.array([1]),
                                    np.array([[0, 0, 10, 10]]), tiny_config(), rng=0)
    assert match.dtype == np.int32 and bbox.dtype == np.float32
    np.testing.assert_array_equal(match, [1, 0, -1, -1])
    assert bbox.shape == (256, 4)
    # dy = (5 - 6) / 10 = -0.1, divided by std 0.1 -> -1
    np.testing.assert_allclose(bbox[0], [-1.0, 0.0, 0.0, 0.0], atol=1e-6)
    assert not bbox[1:].any()


def test_rpn_best_anchor_positive_below_threshold_and_ties():
    anchors = as_boxes([[0, 0, 10, 20],      # IoU 0.5, the GT's best
                        [0, -10, 10, 10],    # IoU 0.5 too (a tie)
                        [0, 0, 10, 40],      # IoU 0.25
                        [0, 0, 20, 20]])     # IoU 0.25
    match, bbox = build_rpn_targets((64, 64), anchors, np.array([1]),
                                    np.array([[0, 0, 10, 10]]), tiny_config(), rng=0)
    np.testing.assert_array_equal(match, [1, 1, -1, -1])
    # anchor 0: center (5, 10), h 10, w 20: dx = -5/20 / 0.1, dw = log(0.5) / 0.2
    np.testing.assert_allclose(bbox[0], [0.0, -2.5, 0.0, math.log(0.5) / 0.2], atol=1e-5)
    np.testing.assert_allclose(bbox[1], [0.0, 2.5, 0.0, math.log(0.5) / 0.2], atol=1e-5)


def test_rpn_gt_without_any_overlap_is_skipped():
    # Matterport's formula would turn every zero-IoU anchor positive for the far GT box.
    anchors = as_boxes([[0, 0, 10, 10], [30, 30, 40, 40], [50, 0, 60, 10]])
    gt_boxes = np.array([[0, 0, 10, 10], [100, 100, 110, 110]])
    match, _ = build_rpn_targets((128, 128), anchors, np.array([1, 2]), gt_boxes,
                                 tiny_config(), rng=0)
    np.testing.assert_array_equal(match, [1, -1, -1])


def test_rpn_crowd_boxes():
    anchors = as_boxes([[0, 0, 10, 10],       # matches the GT
                        [40, 40, 50, 50],     # inside the crowd box -> neutral
                        [55, 55, 65, 65],     # IoU with crowd 25/2575 ~ 0.0097 -> neutral
                        [59, 59, 69, 69],     # IoU with crowd 1/2599 < 0.001 -> negative
                        [0, 40, 10, 50]])     # far from all -> negative
    gt_boxes = np.array([[0, 0, 10, 10], [10, 10, 60, 60]])
    match, bbox = build_rpn_targets((128, 128), anchors, np.array([1, -1]), gt_boxes,
                                    tiny_config(), rng=0)
    np.testing.assert_array_equal(match, [1, 0, 0, -1, -1])
    np.testing.assert_allclose(bbox[0], 0.0, atol=1e-6)


def test_rpn_only_crowd_boxes():
    anchors = as_boxes([[40, 40, 50, 50], [0, 70, 10, 80]])
    match, bbox = build_rpn_targets((128, 128), anchors, np.array([-1]),
                                    np.array([[10, 10, 60, 60]]), tiny_config(), rng=0)
    np.testing.assert_array_equal(match, [0, -1])
    assert not bbox.any()


def test_rpn_zero_gt_fills_budget_with_negatives():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 100, 1000)
    anchors = np.stack([y, y, y + 8, y + 8], axis=1).astype(np.float64)
    match, bbox = build_rpn_targets((128, 128), anchors, np.zeros([0], np.int32),
                                    np.zeros([0, 4], np.int32), tiny_config(), rng=1)
    assert (match == -1).sum() == 256 and (match == 1).sum() == 0
    assert set(np.unique(match)) == {-1, 0}
    assert not bbox.any()
    few, _ = build_rpn_targets((128, 128), anchors[:5], [], np.zeros([0, 4]), tiny_config())
    np.testing.assert_array_equal(few, [-1] * 5)


def test_rpn_subsampling_budget_and_reproducible():
    gt = np.array([[10, 10, 40, 40]])
    anchors = np.concatenate([np.tile(gt, (300, 1)),                  # 300 positives
                              np.tile([[60, 60, 70, 70]], (500, 1))])  # 500 negatives
    anchors = anchors.astype(np.float64)
    config = tiny_config(RPN_TRAIN_ANCHORS_PER_IMAGE=64)
    m1, b1 = build_rpn_targets((128, 128), anchors, [1], gt, config, rng=np.random.default_rng(7))
    m2, b2 = build_rpn_targets((128, 128), anchors, [1], gt, config, rng=np.random.default_rng(7))
    m3, _ = build_rpn_targets((128, 128), anchors, [1], gt, config, rng=np.random.default_rng(8))
    assert (m1 == 1).sum() == 32 and (m1 == -1).sum() == 32
    assert np.all(m1[:300] >= 0) and np.all(m1[300:] <= 0)
    np.testing.assert_array_equal(m1, m2)
    np.testing.assert_array_equal(b1, b2)
    assert not np.array_equal(m1, m3)
    assert b1.shape == (64, 4) and not b1.any()  # identical boxes: zero deltas


def test_rpn_subsampled_positive_deltas_follow_anchor_order():
    # Anchor i is the GT box shifted down by i pixels: IoU (100 - i) / (100 + i) >= 0.72 and
    # dy = -i / 100, i.e. -i / 10 after dividing by the 0.1 std.
    shifts = np.arange(16)
    anchors = np.stack([shifts, 0 * shifts, 100 + shifts, 100 + 0 * shifts], 1).astype(float)
    config = tiny_config(RPN_TRAIN_ANCHORS_PER_IMAGE=16)
    match, bbox = build_rpn_targets((128, 128), anchors, [1], [[0, 0, 100, 100]], config, rng=3)
    positives = np.flatnonzero(match == 1)
    assert len(positives) == 8 and (match == -1).sum() == 0
    np.testing.assert_allclose(bbox[:8, 0], -positives / 10, atol=1e-5)
    np.testing.assert_allclose(bbox[:8, 2], np.log(100 / 100) / 0.2, atol=1e-6)
    assert not bbox[8:].any()


def test_rpn_odd_budget_and_few_negatives():
    gt = np.array([[10, 10, 40, 40]])
    anchors = np.concatenate([np.tile(gt, (10, 1)), [[60, 60, 70, 70]] * 3]).astype(float)
    config = tiny_config(RPN_TRAIN_ANCHORS_PER_IMAGE=7)
    match, bbox = build_rpn_targets((128, 128), anchors, [1], gt, config, rng=0)
    assert (match == 1).sum() == 3 and (match == -1).sum() == 3
    assert bbox.shape == (7, 4)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rpn_matches_loop_reference(seed):
    anchors, gt_class_ids, gt_boxes = random_case(seed)
    std = np.array([0.1, 0.1, 0.2, 0.2])
    ref_match, ref_deltas = ref_rpn_labels(anchors.tolist(), gt_class_ids.tolist(),
                                           gt_boxes.astype(float).tolist(), std)
    assert (ref_match == 1).any() and (ref_match == -1).any() and (ref_match == 0).any()
    big = tiny_config(RPN_TRAIN_ANCHORS_PER_IMAGE=10 ** 5)
    match, bbox = build_rpn_targets((64, 64), anchors, gt_class_ids, gt_boxes, big, rng=seed)
    np.testing.assert_array_equal(match, ref_match)
    positives = np.flatnonzero(match == 1)
    expected = np.array([ref_deltas[i] for i in positives])
    np.testing.assert_allclose(bbox[:len(positives)], expected, rtol=1e-5, atol=1e-5)
    assert not bbox[len(positives):].any()

    # With a small budget the result is a subsample of the same labels.
    small = tiny_config(RPN_TRAIN_ANCHORS_PER_IMAGE=4)
    assert (ref_match == 1).sum() > 2  # so positives are subsampled too
    match, bbox = build_rpn_targets((64, 64), anchors, gt_class_ids, gt_boxes, small, rng=seed)
    positives = np.flatnonzero(match == 1)
    assert len(positives) == 2 and (match == -1).sum() == 2
    assert np.all(ref_match[match == 1] == 1) and np.all(ref_match[match == -1] == -1)
    expected = np.array([ref_deltas[i] for i in positives])
    np.testing.assert_allclose(bbox[:len(positives)], expected, rtol=1e-5, atol=1e-5)


def test_rpn_bad_inputs():
    anchors = as_boxes([[0, 0, 10, 10]])
    with pytest.raises(ValueError, match=r"2 class ids and 1 boxes"):
        build_rpn_targets((64, 64), anchors, [1, 2], [[0, 0, 5, 5]], tiny_config())
    with pytest.raises(ValueError, match="anchors"):
        build_rpn_targets((64, 64), np.zeros([3, 5]), [1], [[0, 0, 5, 5]], tiny_config())
    with pytest.raises(ValueError, match="gt_boxes"):
        build_rpn_targets((64, 64), anchors, [1], [[0, 0, 5]], tiny_config())


# ---------------------------------------------------------------- generate_random_rois
def test_random_rois_inside_image_and_not_degenerate():
    gt_boxes = np.array([[10, 10, 20, 30], [40, 0, 60, 20], [5, 5, 5, 9]])  # last: zero height
    rois = generate_random_rois((64, 48, 3), 100, np.array([1, 2, 3]), gt_boxes, rng=0)
    assert rois.shape == (100, 4) and rois.dtype == np.int32
    assert np.all(rois[:, :2] >= 0)
    assert np.all(rois[:, 2] < 64) and np.all(rois[:, 3] < 48)
    assert np.all(rois[:, 2] > rois[:, 0]) and np.all(rois[:, 3] > rois[:, 1])
    # int(0.9 * 100 / 3) = 30 per box; the first box's grown region is y [0, 30), x [0, 50->48)
    first = rois[:30]
    assert np.all(first[:, 2] < 30) and np.all(first[:, 3] < 48)
    second = rois[30:60]  # region y [20, 64), x [0, 40)
    assert np.all(second[:, 0] >= 20) and np.all(second[:, 3] < 40)


def test_random_rois_reproducible_and_zero_gt():
    gt = np.array([[10, 10, 20, 20]])
    a = generate_random_rois((64, 64), 10, [1], gt, rng=np.random.default_rng(5))
    b = generate_random_rois((64, 64), 10, [1], gt, rng=np.random.default_rng(5))
    np.testing.assert_array_equal(a, b)
    rois = generate_random_rois((32, 16), 50, [], np.zeros([0, 4]), rng=1)
    assert rois.shape == (50, 4)
    assert np.all(rois[:, 2] < 32) and np.all(rois[:, 3] < 16)
    assert np.all(rois[:, 2] > rois[:, 0]) and np.all(rois[:, 3] > rois[:, 1])
    assert generate_random_rois((8, 8), 0, [1], gt).shape == (0, 4)


def test_random_rois_tiny_image():
    rois = generate_random_rois((2, 2), 20, [1], [[0, 0, 1, 1]], rng=0)
    np.testing.assert_array_equal(rois, np.tile([0, 0, 1, 1], (20, 1)))


def test_random_rois_bad_inputs():
    with pytest.raises(ValueError, match="count"):
        generate_random_rois((64, 64), -1, [1], [[0, 0, 5, 5]])
    with pytest.raises(ValueError, match="too small"):
        generate_random_rois((1, 64), 4, [1], [[0, 0, 1, 5]])
    with pytest.raises(ValueError, match=r"1 class ids and 2 boxes"):
        generate_random_rois((64, 64), 4, [1], [[0, 0, 5, 5], [1, 1, 4, 4]])


# ---------------------------------------------------------------- build_detection_targets
def half_box_case():
    """One GT box [10, 10, 30, 30] of class 2 whose left half (x 10..19) is the object."""
    gt_boxes = np.array([[10, 10, 30, 30]], dtype=np.int32)
    full = np.zeros([64, 64, 1], dtype=bool)
    full[10:30, 10:20, 0] = True
    mini = np.zeros([56, 56, 1], dtype=bool)
    mini[:, :28, 0] = True
    rois = np.array([[12, 10, 32, 30],                     # IoU 360 / 440 -> foreground
                     [40, 40, 60, 60], [0, 40, 10, 60]],   # background
                    dtype=np.int32)
    return rois, np.array([2], dtype=np.int32), gt_boxes, full, mini


@pytest.mark.parametrize("mini_mask", [False, True])
def test_detection_targets_golden(mini_mask):
    rois, class_ids, gt_boxes, full, mini = half_box_case()
    config = tiny_config(USE_MINI_MASK=mini_mask)
    out_rois, out_ids, bboxes, masks = build_detection_targets(
        rois, class_ids, gt_boxes, mini if mini_mask else full, config, rng=0)
    assert out_rois.shape == (20, 4) and out_ids.shape == (20,) and out_ids.dtype == np.int32
    assert bboxes.shape == (20, 4, 4) and masks.shape == (20, 28, 28, 4)
    np.testing.assert_array_equal(out_rois[0], [12, 10, 32, 30])
    assert out_ids[0] == 2 and not out_ids[1:].any()
    # 1 positive, then int(1 / 0.33) - 1 = 2 negatives (both background ROIs, ROI order),
    # then zero rows, as in the training graph.
    np.testing.assert_array_equal(out_rois[1:3], [[40, 40, 60, 60], [0, 40, 10, 60]])
    assert not out_rois[3:].any()
    # dy = (20 - 22) / 20 = -0.1 -> / 0.1 = -1
    np.testing.assert_allclose(bboxes[0, 2], [-1.0, 0.0, 0.0, 0.0], atol=1e-6)
    assert not bboxes[0, [0, 1, 3]].any() and not bboxes[1:].any()
    # ROI rows 12..31 hold 18 object rows then 2 empty ones, columns 10..29 hold 10 object
    # columns then 10 empty ones. Bilinear 20 -> 28 samples input (o + 0.5) * 20 / 28 - 0.5, and
    # outside the crop is 0 (skimage's "constant" border): at o = 0 that is -1/7.
    m = masks[0, :, :, 2]
    np.testing.assert_allclose(m[5, 5], 1.0, atol=1e-6)
    np.testing.assert_allclose([m[0, 5], m[5, 0], m[0, 0]], [6 / 7, 6 / 7, 36 / 49], atol=1e-5)
    np.testing.assert_allclose([m[5, 13], m[5, 14]], [6 / 7, 1 / 7], atol=1e-5)  # x 9.14, 9.86
    np.testing.assert_allclose([m[24, 5], m[25, 5]], [1.0, 2 / 7], atol=1e-5)  # y 17.0, 17.71
    assert not m[26:].any() and not m[:, 15:].any()
    assert not masks[0, :, :, [0, 1, 3]].any() and not masks[1:].any()


def test_detection_targets_random_case_classes_match_gt():
    rng = np.random.default_rng(11)
    gt_boxes = np.array([[4, 4, 24, 30], [30, 20, 60, 50], [10, 40, 28, 62]], dtype=np.int32)
    class_ids = np.array([1, 3, 2], dtype=np.int32)
    masks = np.zeros([64, 64, 3], dtype=bool)
    for k, (y1, x1, y2, x2) in enumerate(gt_boxes):
        masks[y1:y2, x1:x2, k] = True
    rois = generate_random_rois((64, 64), 200, class_ids, gt_boxes, rng=rng)
    config = tiny_config(USE_MINI_MASK=False)
    out_rois, out_ids, bboxes, out_masks = build_detection_targets(
        rois, class_ids, gt_boxes, masks, config, rng=rng)
    positives = np.flatnonzero(out_ids > 0)
    assert 0 < len(positives) <= 6
    np.testing.assert_array_equal(positives, np.arange(len(positives)))  # foreground first
    for i in range(20):
        ious = [ref_iou(out_rois[i].astype(float), g.astype(float)) for g in gt_boxes]
        if out_ids[i] > 0:
            assert max(ious) >= 0.5 and out_ids[i] == class_ids[int(np.argmax(ious))]
            assert bboxes[i, out_ids[i]].any() or tuple(out_rois[i]) in map(tuple, gt_boxes)
            assert out_masks[i, :, :, out_ids[i]].max() > 0.5
        else:
            assert max(ious) < 0.5 and not bboxes[i].any() and not out_masks[i].any()
    again = build_detection_targets(rois, class_ids, gt_boxes, masks, config,
                                    rng=np.random.default_rng(4))
    same = build_detection_targets(rois, class_ids, gt_boxes, masks, config,
                                   rng=np.random.default_rng(4))
    for x, y in zip(again, same, strict=True):
        np.testing.assert_array_equal(x, y)


def test_detection_targets_without_instances():
    # No positive ROI means no negative either (the graph's ratio rule): all rows are zero.
    rois = np.array([[0, 0, 10, 10], [5, 5, 20, 20]], dtype=np.int32)
    boxes = np.array([[0, 0, 10, 10]], dtype=np.int32)
    out_rois, out_ids, bboxes, masks = build_detection_targets(
        rois, np.array([-1]), boxes, np.ones([64, 64, 1], bool), tiny_config(USE_MINI_MASK=False),
        rng=0)
    assert out_rois.shape == (20, 4) and not out_rois.any() and not out_ids.any()
    assert not bboxes.any() and not masks.any()


def test_detection_targets_pad_with_zero_rows():
    rois, class_ids, gt_boxes, full, _ = half_box_case()
    padded = np.concatenate([rois[:1], np.zeros([3, 4], np.int32)])  # zero rows are padding
    out_rois, out_ids, bboxes, _ = build_detection_targets(
        padded, class_ids, gt_boxes, full, tiny_config(USE_MINI_MASK=False), rng=0)
    np.testing.assert_array_equal(out_rois[0], rois[0])
    np.testing.assert_array_equal(out_ids, [2] + [0] * 19)
    assert not out_rois[1:].any() and not bboxes[1:].any()


def test_detection_targets_iou_of_one_half_is_positive():
    rois, class_ids, gt_boxes, full, _ = half_box_case()
    half = np.array([[10, 10, 30, 50], [40, 40, 60, 60]])  # IoU 400 / 800 with the GT box
    out_rois, out_ids, _, _ = build_detection_targets(
        half, class_ids, gt_boxes, full, tiny_config(USE_MINI_MASK=False), rng=0)
    np.testing.assert_array_equal(out_rois[:2], half)
    np.testing.assert_array_equal(out_ids[:3], [2, 0, 0])


def test_detection_targets_rois_on_a_crowd_box_are_never_negative():
    rois, class_ids, gt_boxes, full, _ = half_box_case()
    crowd = np.array([[40, 40, 64, 64]])  # covers background ROI [40, 40, 60, 60]
    out_rois, out_ids, _, _ = build_detection_targets(
        rois, np.array([2, -1]), np.concatenate([gt_boxes, crowd]),
        np.concatenate([full, np.ones([64, 64, 1], bool)], axis=2),
        tiny_config(USE_MINI_MASK=False), rng=0)
    np.testing.assert_array_equal(out_rois[:2], [[12, 10, 32, 30], [0, 40, 10, 60]])
    np.testing.assert_array_equal(out_ids[:2], [2, 0])
    assert not out_rois[2:].any()


def test_detection_targets_sample_counts_follow_the_ratio():
    # 10 positives (copies of the GT box) and 30 negatives; budget 20, ratio 0.25:
    # int(20 * 0.25) = 5 positives, int(5 / 0.25) - 5 = 15 negatives.
    rois, class_ids, gt_boxes, full, _ = half_box_case()
    many = np.concatenate([np.repeat(gt_boxes, 10, axis=0),
                           np.repeat(rois[1:2], 30, axis=0)]) + np.arange(40)[:, None] % 2
    config = tiny_config(USE_MINI_MASK=False, ROI_POSITIVE_RATIO=0.25)
    _, out_ids, _, _ = build_detection_targets(many, class_ids, gt_boxes, full, config, rng=1)
    np.testing.assert_array_equal(out_ids, [2] * 5 + [0] * 15)


def test_detection_targets_bad_inputs():
    rois, class_ids, gt_boxes, full, _ = half_box_case()
    config = tiny_config(USE_MINI_MASK=False)
    with pytest.raises(ValueError, match=r"2 class ids and 1 boxes"):
        build_detection_targets(rois, np.array([1, 2]), gt_boxes, full, config)
    with pytest.raises(ValueError, match="gt_masks"):
        build_detection_targets(rois, class_ids, gt_boxes, full[:, :, [0, 0]], config)
    with pytest.raises(ValueError, match="empty"):
        build_detection_targets(np.zeros([0, 4]), class_ids, gt_boxes, full, config)
    with pytest.raises(ValueError, match="rpn_rois"):
        build_detection_targets(rois[:, :3], class_ids, gt_boxes, full, config)
    with pytest.raises(ValueError, match="class id 4"):
        build_detection_targets(rois, np.array([4]), gt_boxes, full, config)
