"""graph_ops: parity of the TF twins with structures.boxes, golden values of the graph helpers."""

import numpy as np
import pytest
import tensorflow as tf

from mrcnn.modeling import graph_ops
from mrcnn.structures import boxes as np_boxes
from mrcnn.structures.image_meta import compose_image_meta, parse_image_meta


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
