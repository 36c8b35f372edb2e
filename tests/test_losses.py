"""losses: hand-computed values, exactly zero (and finite gradients) with nothing to learn."""

import math

import numpy as np
import pytest
import tensorflow as tf

from mrcnn.modeling import losses


def test_smooth_l1_golden():
    out = losses.smooth_l1_loss([0.0, 0.0, 0.0, 1.0], [0.5, 2.0, -1.0, 1.0]).numpy()
    # |d| < 1: 0.5 d^2; otherwise |d| - 0.5 (|d| = 1 is on the linear side: 0.5).
    np.testing.assert_allclose(out, [0.125, 1.5, 0.5, 0.0])


def test_rpn_class_loss_golden():
    rpn_match = np.array([[[1], [-1], [0]]], np.int32)
    logits = np.array([[[0.0, 0.0], [0.0, math.log(3.0)], [100.0, -100.0]]], np.float32)
    # Positive with equal logits: log 2. Negative with p(bg) = 1/4: log 4. Neutral ignored.
    expected = (math.log(2) + math.log(4)) / 2
    out = losses.rpn_class_loss_graph(rpn_match, logits)
    assert out.dtype == tf.float32 and out.shape == ()
    assert out.numpy() == pytest.approx(expected, rel=1e-6)


def test_rpn_bbox_loss_golden_pairs_targets_per_image():
    rpn_match = np.array([[1, 0, 1, -1], [0, 1, 0, 0]], np.int32)[..., None]
    target = np.zeros((2, 3, 4), np.float32)
    target[0, 0] = [0.1, 0.2, 0.3, 0.4]
    target[0, 1] = [-0.1, 0.0, 0.5, 0.1]
    target[1, 0] = [0.3, 0.3, -0.2, 0.0]
    pred = np.full((2, 4, 4), 9.0, np.float32)  # non-positive anchors: must not count
    pred[0, 0] = target[0, 0] + [0.5, 0, 0, 0]   # 0.125
    pred[0, 2] = target[0, 1] + [2.0, 0, 0, 0]   # 1.5
    pred[1, 1] = target[1, 0] + [0, 0, 0, -1.0]  # 0.5
    out = losses.rpn_bbox_loss_graph(None, target, rpn_match, pred)
    assert out.numpy() == pytest.approx((0.125 + 1.5 + 0.5) / 12, rel=1e-5)


def test_mrcnn_class_loss_golden_ignores_inactive_predictions():
    target = np.array([[1, 0, 2]], np.int32)
    logits = np.array([[[0, 0, 0], [0, 0, 5], [math.log(3), 0, 0]]], np.float32)
    active = np.array([[1, 1, 0]], np.float32)
    # ROI 0: argmax 0 (active), CE log 3. ROI 1: predicts inactive class 2, ignored.
    # ROI 2: argmax 0 (active), CE of class 2 = -log(1 / 5) = log 5.
    out = losses.mrcnn_class_loss_graph(target, logits, active)
    assert out.numpy() == pytest.approx((math.log(3) + math.log(5)) / 2, rel=1e-6)
    # The same image twice gives the same mean.
    out2 = losses.mrcnn_class_loss_graph(np.repeat(target, 2, 0), np.repeat(logits, 2, 0),
                                         np.repeat(active, 2, 0))
    assert out2.numpy() == pytest.approx(out.numpy(), rel=1e-6)


def test_mrcnn_bbox_loss_golden_uses_true_class_deltas():
    target_ids = np.array([[2, 0, 1]], np.int32)
    target = np.array([[[0.1, 0.1, 0.1, 0.1], [5, 5, 5, 5], [0.2, -0.2, 0.0, 0.3]]], np.float32)
    pred = np.full((1, 3, 3, 4), 7.0, np.float32)
    pred[0, 0, 2] = target[0, 0] + [0.5, 0, 0, 0]  # 0.125
    pred[0, 2, 1] = target[0, 2] + [0, 0, 3.0, 0]  # 2.5
    out = losses.mrcnn_bbox_loss_graph(target, target_ids, pred)
    assert out.numpy() == pytest.approx((0.125 + 2.5) / 8, rel=1e-6)


def test_mrcnn_mask_loss_golden_uses_true_class_channel():
    target_ids = np.array([[1, 0]], np.int32)
    target = np.zeros((1, 2, 2, 2), np.float32)
    target[0, 0] = [[1, 0], [1, 0]]
    pred = np.full((1, 2, 2, 2, 2), 0.01, np.float32)
    pred[0, 0, :, :, 1] = [[0.5, 0.5], [0.9, 0.1]]
    out = losses.mrcnn_mask_loss_graph(target, target_ids, pred)
    expected = (2 * math.log(2) - 2 * math.log(0.9)) / 4
    assert out.numpy() == pytest.approx(expected, rel=1e-5)


def test_mrcnn_mask_loss_clips_certain_wrong_predictions():
    target = np.ones((1, 1, 1, 1), np.float32)
    pred = np.zeros((1, 1, 1, 1, 2), np.float32)
    out = losses.mrcnn_mask_loss_graph(target, np.array([[1]]), pred)
    assert out.numpy() == pytest.approx(-math.log(1e-7), rel=1e-4)


def test_l2_weight_decay_golden():
    weights = [tf.Variable(np.full((2, 2), 2.0, np.float32)), tf.constant([3.0])]
    # (16 / 4 + 9 / 1) * 0.01
    assert losses.l2_weight_decay(weights, 0.01).numpy() == pytest.approx(0.13, rel=1e-6)
    assert losses.l2_weight_decay([], 0.01).numpy() == 0.0


@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf"), "x", None])
def test_l2_weight_decay_rejects_bad_decay(bad):
    with pytest.raises(ValueError, match="weight_decay"):
        losses.l2_weight_decay([tf.constant([1.0])], bad)


def _empty_cases():
    """(loss fn, inputs, index of the differentiated prediction) with nothing to learn."""
    b, a, r, c, m = 2, 5, 4, 3, 2
    return [
        (lambda x: losses.rpn_class_loss_graph(np.zeros((b, a, 1), np.int32), x),
         np.ones((b, a, 2), np.float32)),
        (lambda x: losses.rpn_bbox_loss_graph(None, np.zeros((b, 3, 4), np.float32),
                                              np.array([[[-1]] * a] * b, np.int32), x),
         np.ones((b, a, 4), np.float32)),
        (lambda x: losses.mrcnn_class_loss_graph(np.zeros((b, r), np.int32), x,
                                                 np.array([[0, 1, 1]] * b, np.float32)),
         np.tile(np.array([5.0, 0, 0], np.float32), (b, r, 1))),
        (lambda x: losses.mrcnn_bbox_loss_graph(np.zeros((b, r, 4), np.float32),
                                                np.zeros((b, r), np.int32), x),
         np.ones((b, r, c, 4), np.float32)),
        (lambda x: losses.mrcnn_mask_loss_graph(np.zeros((b, r, m, m), np.float32),
                                                np.zeros((b, r), np.int32), x),
         np.full((b, r, m, m, c), 0.5, np.float32)),
    ]


@pytest.mark.parametrize("case", range(5))
@pytest.mark.parametrize("graph_mode", [False, True])
def test_losses_exactly_zero_with_finite_gradient_when_nothing_to_learn(case, graph_mode):
    fn, value = _empty_cases()[case]
    x = tf.Variable(value)

    def loss_and_grad():
        with tf.GradientTape() as tape:
            loss = fn(x)
        return loss, tape.gradient(loss, x)

    if graph_mode:
        loss_and_grad = tf.function(loss_and_grad)
    loss, grad = loss_and_grad()
    assert loss.dtype == tf.float32
    assert loss.numpy() == 0.0
    grad = tf.convert_to_tensor(grad).numpy() if grad is not None else np.zeros(1)
    assert np.all(np.isfinite(grad))
    assert np.all(grad == 0)


def test_losses_accept_bfloat16_predictions():
    logits = tf.constant([[[0.0, 0.0]]], tf.bfloat16)
    out = losses.rpn_class_loss_graph(np.array([[[1]]]), logits)
    assert out.dtype == tf.float32
    assert out.numpy() == pytest.approx(math.log(2), rel=1e-3)


def test_rpn_bbox_loss_gradient_reaches_only_positive_anchors():
    rpn_match = np.array([[[1], [0]]], np.int32)
    target = np.zeros((1, 2, 4), np.float32)
    pred = tf.Variable(np.full((1, 2, 4), 0.5, np.float32))
    with tf.GradientTape() as tape:
        loss = losses.rpn_bbox_loss_graph(None, target, rpn_match, pred)
    grad = tf.convert_to_tensor(tape.gradient(loss, pred)).numpy()
    # d/dp of mean(0.5 p^2) over 4 values = p / 4.
    np.testing.assert_allclose(grad, [[[0.125] * 4, [0] * 4]])
