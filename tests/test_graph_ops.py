"""graph_ops: parity of the TF twins with structures.boxes, golden values of the graph helpers."""

import numpy as np
import pytest
import tensorflow as tf

from mrcnn.config import Config
from mrcnn.data.targets import (
    CROWD_IOU,
    DETECTION_FG_IOU,
    build_detection_targets,
    generate_random_rois,
)
from mrcnn.modeling import graph_ops
from mrcnn.structures import boxes as np_boxes
from mrcnn.structures.image_meta import compose_image_meta, parse_image_meta
from mrcnn.structures.masks import minimize_mask


def random_boxes(rng, n, scale=1.0):
    """[n, (y1, x1, y2, x2)] boxes with positive height and width."""
    y1x1 = rng.uniform(0, 0.7, size=(n, 2))
    hw = rng.uniform(0.05, 0.3, size=(n, 2))
    return (np.concatenate([y1x1, y1x1 + hw], axis=1) * scale).astype(np.float32)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def test_apply_box_deltas_parity(rng):
    boxes = random_boxes(rng, 50, scale=100)
    deltas = rng.normal(0, 0.3, size=(50, 4)).astype(np.float32)
    expected = np_boxes.apply_box_deltas(boxes, deltas)
    np.testing.assert_allclose(graph_ops.apply_box_deltas_graph(boxes, deltas).numpy(),
                               expected, rtol=1e-5, atol=1e-4)


def test_apply_box_deltas_batched_and_golden():
    # Box of height 4, width 2 centred at (2, 1); dy=0.5 moves the centre by 2, log 2 doubles.
    boxes = np.array([[[0, 0, 4, 2]]], np.float32)
    deltas = np.array([[[0.5, 0, np.log(2), 0]]], np.float32)
    out = graph_ops.apply_box_deltas_graph(boxes, deltas).numpy()
    np.testing.assert_allclose(out, [[[0, 0, 8, 2]]], atol=1e-6)


def test_box_refinement_parity_and_round_trip(rng):
    box = random_boxes(rng, 40)
    gt = random_boxes(rng, 40)
    deltas = graph_ops.box_refinement_graph(box, gt).numpy()
    np.testing.assert_allclose(deltas, np_boxes.box_refinement(box, gt), rtol=1e-5, atol=1e-5)
    back = graph_ops.apply_box_deltas_graph(box, deltas).numpy()
    np.testing.assert_allclose(back, gt, atol=1e-5)


def test_overlaps_parity(rng):
    b1 = random_boxes(rng, 30)
    b2 = random_boxes(rng, 20)
    np.testing.assert_allclose(graph_ops.overlaps_graph(b1, b2).numpy(),
                               np_boxes.compute_overlaps(b1, b2), rtol=1e-5, atol=1e-6)


def test_overlaps_golden_and_empty_union():
    b1 = np.array([[0, 0, 2, 2], [0, 0, 0, 0]], np.float32)
    b2 = np.array([[1, 1, 3, 3], [0, 0, 0, 0]], np.float32)
    out = graph_ops.overlaps_graph(b1, b2).numpy()
    # Intersection 1, union 4 + 4 - 1 = 7; zero-area pairs give 0, not NaN.
    np.testing.assert_allclose(out, [[1 / 7, 0], [0, 0]], atol=1e-7)
    assert graph_ops.overlaps_graph(b1, np.zeros((0, 4), np.float32)).shape == (2, 0)


def test_clip_boxes_golden():
    boxes = np.array([[-0.2, 0.1, 0.5, 1.3], [0.95, -1.0, 1.5, 0.2]], np.float32)
    window = np.array([0.0, 0.0, 0.9, 1.0], np.float32)
    out = graph_ops.clip_boxes_graph(boxes, window).numpy()
    np.testing.assert_allclose(out, [[0, 0.1, 0.5, 1.0], [0.9, 0, 0.9, 0.2]], atol=1e-7)


@pytest.mark.parametrize("shape", [(64, 64), (128, 96, 3)])
def test_norm_denorm_parity_and_round_trip(rng, shape):
    pixel = np.round(random_boxes(rng, 25, scale=min(shape[:2])))
    norm = graph_ops.norm_boxes_graph(pixel, tf.constant(shape)).numpy()
    np.testing.assert_allclose(norm, np_boxes.norm_boxes(pixel, shape), rtol=1e-6, atol=1e-6)
    denorm = graph_ops.denorm_boxes_graph(norm, tf.constant(shape)).numpy()
    np.testing.assert_array_equal(denorm, np_boxes.denorm_boxes(norm, shape))
    np.testing.assert_array_equal(denorm, pixel.astype(np.int32))
    assert denorm.dtype == np.int32


def test_norm_boxes_golden():
    out = graph_ops.norm_boxes_graph(np.array([[0, 0, 11, 21]], np.float32), [11, 21]).numpy()
    np.testing.assert_allclose(out, [[0, 0, 1, 1]])


def test_parse_image_meta_parity():
    meta = np.stack([
        compose_image_meta(7, (30, 40, 3), (64, 64, 3), (12, 0, 52, 64), 1.6, np.array([1, 1, 0])),
        compose_image_meta(9, (64, 32, 3), (64, 64, 3), (0, 16, 64, 48), 1.0, np.array([1, 0, 1])),
    ]).astype(np.float32)
    ours = graph_ops.parse_image_meta_graph(meta)
    theirs = parse_image_meta(meta)
    assert set(ours) == set(theirs)
    for key, value in theirs.items():
        np.testing.assert_allclose(ours[key].numpy(), value, rtol=1e-6, err_msg=key)


def test_parse_image_meta_graph_reads_the_shared_layout():
    from mrcnn import utils
    from mrcnn.structures import image_meta

    meta = np.arange(2 * image_meta.meta_size(5), dtype=np.float32).reshape(2, -1)
    parsed = utils.parse_image_meta_graph(meta)
    for name in image_meta.FIELD_NAMES:
        column = image_meta.SLICES[name]
        expected = meta[:, column.start] if name in image_meta.SCALAR_FIELDS else meta[:, column]
        np.testing.assert_array_equal(parsed[name].numpy(), expected, err_msg=name)


def test_trim_zeros_parity():
    x = np.array([[0, 0, 0, 0], [1, 2, 3, 4], [0, 0, 0, 0], [0, 0.5, 0, 0]], np.float32)
    trimmed, non_zeros = graph_ops.trim_zeros_graph(x)
    np.testing.assert_array_equal(trimmed.numpy(), np_boxes.trim_zeros(x))
    np.testing.assert_array_equal(non_zeros.numpy(), [False, True, False, True])


def test_log2_golden():
    np.testing.assert_allclose(graph_ops.log2_graph([1.0, 8.0, 0.5]).numpy(), [0, 3, -1],
                               atol=1e-6)


def test_batch_slice_single_and_multiple_outputs():
    a = tf.constant([[1.0, 2.0], [3.0, 4.0]])
    b = tf.constant([10.0, 20.0])
    single = graph_ops.batch_slice([a, b], lambda x, y: x * y, 2)
    np.testing.assert_allclose(single.numpy(), [[10, 20], [60, 80]])
    first, second = graph_ops.batch_slice(a, lambda x: (x[0], x + 1), 2, names=["f", "s"])
    np.testing.assert_allclose(first.numpy(), [1, 3])
    np.testing.assert_allclose(second.numpy(), [[2, 3], [4, 5]])


def refine_case():
    """Golden case for refine_detections_graph: 3 classes, 6 ROIs, window cuts y at 0.92."""
    rois = np.array([
        [0.1, 0.1, 0.5, 0.5],    # class 1, 0.80: kept
        [0.12, 0.1, 0.5, 0.5],   # class 1, 0.75: IoU 0.95 with ROI 0, suppressed
        [0.1, 0.1, 0.5, 0.5],    # class 2, 0.90: other class, kept
        [0.3, 0.3, 0.4, 0.4],    # background: dropped
        [0.7, 0.1, 0.8, 0.2],    # class 1, 0.60 < 0.7: dropped
        [0.6, 0.6, 0.9, 0.9],    # class 2, 0.72: moved down by 0.1 * 0.3, then clipped
    ], np.float32)
    probs = np.array([
        [0.1, 0.8, 0.1], [0.05, 0.75, 0.2], [0.05, 0.05, 0.9],
        [0.9, 0.05, 0.05], [0.2, 0.6, 0.2], [0.1, 0.18, 0.72],
    ], np.float32)
    deltas = np.zeros((6, 3, 4), np.float32)
    deltas[5, 2] = [1.0, 0, 0, 0]      # times std 0.1: dy = 0.1 of the height
    deltas[5, 1] = [5.0, 5.0, 0, 0]    # deltas of a class that is not the ROI's: unused
    window = np.array([0, 0, 0.92, 1.0], np.float32)
    expected = np.array([
        [0.1, 0.1, 0.5, 0.5, 2, 0.9],
        [0.1, 0.1, 0.5, 0.5, 1, 0.8],
        [0.63, 0.6, 0.92, 0.9, 2, 0.72],
        [0, 0, 0, 0, 0, 0],
    ], np.float32)
    return rois, probs, deltas, window, expected


def test_refine_detections_golden():
    rois, probs, deltas, window, expected = refine_case()
    out = graph_ops.refine_detections_graph(rois, probs, deltas, window, 4, 0.7, 0.3,
                                            [0.1, 0.1, 0.2, 0.2]).numpy()
    np.testing.assert_allclose(out, expected, atol=1e-6)


def test_refine_detections_nothing_detected():
    rois, probs, deltas, window, _ = refine_case()
    probs[:, 0] = 1.0  # every ROI is background
    out = graph_ops.refine_detections_graph(rois, probs, deltas, window, 3, 0.7, 0.3,
                                            [0.1, 0.1, 0.2, 0.2]).numpy()
    np.testing.assert_array_equal(out, np.zeros((3, 6)))


def test_refine_detections_truncates_to_max_instances():
    rois, probs, deltas, window, expected = refine_case()
    out = graph_ops.refine_detections_graph(rois, probs, deltas, window, 2, 0.7, 0.3,
                                            [0.1, 0.1, 0.2, 0.2]).numpy()
    np.testing.assert_allclose(out, expected[:2], atol=1e-6)


# ------------------------------------------------------------------ detection targets parity
# build_detection_targets (numpy, pixels) and detection_targets_graph (TF, normalized) sample
# and label ROIs by the same rules. The twins get the same scene: the graph's boxes are the
# pixel boxes divided by 64, a power of two, so IoUs and deltas are exactly the same numbers.
SIDE = 64


class TargetConfig(Config):
    NAME = "targets"
    BACKBONE = "resnet50"
    NUM_CLASSES = 4
    IMAGE_MIN_DIM = SIDE
    IMAGE_MAX_DIM = SIDE
    MASK_POOL_SIZE = 7
    MASK_SHAPE = [14, 14]
    MINI_MASK_SHAPE = (28, 28)
    USE_MINI_MASK = True


def target_scene():
    """Three ellipse instances, one crowd box, and ROIs: jittered copies of every box, one ROI
    with IoU exactly 0.5, random ROIs, and zero padding."""
    gt_boxes = np.array([[4, 4, 24, 30], [30, 20, 60, 50], [10, 40, 28, 62], [40, 0, 56, 14]],
                        np.int32)
    class_ids = np.array([1, 3, 2, -1], np.int32)
    yy, xx = np.mgrid[:SIDE, :SIDE]
    full = np.zeros((SIDE, SIDE, 4), bool)
    for k, (y1, x1, y2, x2) in enumerate(gt_boxes):
        cy, cx, ry, rx = (y1 + y2 - 1) / 2, (x1 + x2 - 1) / 2, (y2 - y1) / 2, (x2 - x1) / 2
        full[..., k] = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
    rng = np.random.default_rng(3)
    jitter = [box + rng.integers(-4, 5, size=(6, 4)) for box in gt_boxes]
    rois = np.concatenate([
        *jitter,
        [[10, 40, 28, 51]],  # half of GT box 2: IoU exactly 0.5, positive in both twins
        generate_random_rois((SIDE, SIDE), 40, class_ids, gt_boxes, rng=rng),
        np.zeros((5, 4)),  # padding
    ]).astype(np.int32)
    rois = np.clip(rois, 0, SIDE)
    rois = rois[(rois[:, 2] > rois[:, 0]) & (rois[:, 3] > rois[:, 1]) | ~rois.any(axis=1)]
    return rois, class_ids, gt_boxes, minimize_mask(gt_boxes, full, (28, 28))


def reference_labels(rois, class_ids, gt_boxes):
    """Plain-loop labels: {roi: class id} of the positives, and the set of negatives."""
    def iou(a, b):
        inter = (max(0, min(a[2], b[2]) - max(a[0], b[0]))
                 * max(0, min(a[3], b[3]) - max(a[1], b[1])))
        return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)

    positives, negatives = {}, set()
    for roi in map(tuple, rois.tolist()):
        if not any(roi):
            continue  # padding
        ious = [iou(roi, g) for c, g in zip(class_ids, gt_boxes, strict=True) if c > 0]
        crowd = [iou(roi, g) for c, g in zip(class_ids, gt_boxes, strict=True) if c < 0]
        best = max(ious)
        if best >= DETECTION_FG_IOU:
            instances = [c for c in class_ids if c > 0]
            positives[roi] = int(instances[ious.index(best)])
        elif max(crowd) < CROWD_IOU:
            negatives.add(roi)
    return positives, negatives


def assert_masks_agree_but_on_edges(a, b):
    """0/1 masks a and b differ only where b has an edge: a pixel that differs has a
    neighbour (8-connected) of the other value in b. Their IoU is high."""
    padded = np.pad(b, 1, mode="edge")
    window = np.lib.stride_tricks.sliding_window_view(padded, (3, 3))
    on_edge = window.min(axis=(2, 3)) != window.max(axis=(2, 3))
    assert not np.any((a != b) & ~on_edge)
    assert np.logical_and(a, b).sum() / np.logical_or(a, b).sum() > 0.85


def both_twins(rois, class_ids, gt_boxes, mini_masks, rois_per_image, positive_ratio, seed=0):
    """Run both twins; return per twin ({roi: (class, deltas, mask)}, [negative rois], padding
    row count), ROIs in pixels."""
    config = TargetConfig()
    config.TRAIN_ROIS_PER_IMAGE = rois_per_image
    config.ROI_POSITIVE_RATIO = positive_ratio
    n_rois, n_ids, n_bbox, n_masks = build_detection_targets(
        rois, class_ids, gt_boxes, mini_masks, config, rng=seed)
    padded = 6  # the graph's inputs are zero padded to MAX_GT_INSTANCES
    gt_ids = np.zeros(padded, np.int32)
    gt_ids[:len(class_ids)] = class_ids
    gt_norm = np.zeros((padded, 4), np.float32)
    gt_norm[:len(gt_boxes)] = gt_boxes / SIDE
    masks = np.zeros(mini_masks.shape[:2] + (padded,), bool)
    masks[..., :len(class_ids)] = mini_masks
    tf.random.set_seed(seed)
    t_rois, t_ids, t_deltas, t_masks = [x.numpy() for x in graph_ops.detection_targets_graph(
        rois / SIDE, gt_ids, gt_norm, masks, rois_per_image, positive_ratio,
        config.MASK_SHAPE, True, config.BBOX_STD_DEV)]
    t_rois = np.round(t_rois * SIDE).astype(np.int32)

    def split(rois_px, ids, deltas, masks):
        positive = {tuple(r): (int(c), d, m) for r, c, d, m in
                    zip(rois_px.tolist(), ids, deltas, masks, strict=True) if c > 0}
        negative = [tuple(r) for r, c in zip(rois_px.tolist(), ids, strict=True)
                    if c == 0 and any(r)]
        padding = sum(1 for r in rois_px.tolist() if not any(r))
        return positive, negative, padding

    numpy_side = split(n_rois, n_ids, [n_bbox[i, c] for i, c in enumerate(n_ids)],
                       [n_masks[i, ..., c] for i, c in enumerate(n_ids)])
    graph_side = split(t_rois, t_ids, t_deltas, t_masks)
    return numpy_side, graph_side


def test_detection_targets_twins_agree_when_every_candidate_is_taken():
    rois, class_ids, gt_boxes, mini = target_scene()
    positives, negatives = reference_labels(rois, class_ids, gt_boxes)
    # The scene has positives of every class, the 0.5 ROI, and ROIs on the crowd box.
    assert set(positives.values()) == {1, 2, 3} and positives[(10, 40, 28, 51)] == 2
    assert len(positives) + len(negatives) < len({tuple(r) for r in rois if r.any()})
    # Budget: int(400 * 0.1) = 40 >= positives, and int(P / 0.1) - P = 9 P >= negatives.
    assert len(positives) <= 40 and 9 * len(positives) >= len(negatives)
    (n_pos, n_neg, n_pad), (t_pos, t_neg, t_pad) = both_twins(
        rois, class_ids, gt_boxes, mini, 400, 0.1)
    assert {r: c for r, (c, _, _) in n_pos.items()} == positives
    assert {r: c for r, (c, _, _) in t_pos.items()} == positives
    assert set(n_neg) == set(t_neg) == negatives
    assert len(n_neg) == len(t_neg) == len(negatives)  # no repeats
    assert n_pad == t_pad == 400 - len(positives) - len(negatives)
    for roi, (_, deltas, mask) in n_pos.items():
        # Same deltas (scale-free); masks agree after rounding but on a few edge pixels.
        np.testing.assert_allclose(t_pos[roi][1], deltas, atol=1e-5, err_msg=str(roi))
        graph_mask = t_pos[roi][2]
        assert set(np.unique(graph_mask)) <= {0.0, 1.0}
        assert graph_mask.sum() > 0
        assert_masks_agree_but_on_edges(np.round(mask), graph_mask)


@pytest.mark.parametrize("seed", [0, 1])
def test_detection_targets_twins_sample_the_same_counts(seed):
    rois, class_ids, gt_boxes, mini = target_scene()
    positives, negatives = reference_labels(rois, class_ids, gt_boxes)
    (n_pos, n_neg, n_pad), (t_pos, t_neg, t_pad) = both_twins(
        rois, class_ids, gt_boxes, mini, 16, 0.25, seed=seed)
    # int(16 * 0.25) = 4 positives, then int(4 / 0.25) - 4 = 12 negatives: no padding.
    assert len(positives) > 4 and len(negatives) > 12
    assert (len(n_pos), len(n_neg), n_pad) == (len(t_pos), len(t_neg), t_pad) == (4, 12, 0)
    for pos, neg in ((n_pos, n_neg), (t_pos, t_neg)):
        assert {r: c for r, (c, _, _) in pos.items()}.items() <= positives.items()
        assert set(neg) <= negatives and len(set(neg)) == len(neg)


def test_detection_targets_twins_without_positives_give_no_rois():
    rois, class_ids, gt_boxes, mini = target_scene()
    far = np.array([[0, 56, 6, 63], [58, 58, 63, 63]], np.int32)  # touch no instance
    (n_pos, n_neg, n_pad), (t_pos, t_neg, t_pad) = both_twins(
        far, class_ids, gt_boxes, mini, 8, 0.5)
    assert not n_pos and not n_neg and not t_pos and not t_neg and n_pad == t_pad == 8
