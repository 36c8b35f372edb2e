"""Tests for mrcnn.modeling.layers.time_distributed.TimeDistributed (the folding wrapper)."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from mrcnn.modeling.layers.batch_norm import BatchNorm  # noqa: E402
from mrcnn.modeling.layers.time_distributed import TimeDistributed  # noqa: E402

RNG = np.random.default_rng(0)


def _conv_td(name="td_conv"):
    return TimeDistributed(keras.layers.Conv2D(3, (3, 3), name=f"{name}_inner"), name=name)


def test_conv_equals_explicit_loop_over_rois():
    x = RNG.normal(size=(2, 4, 5, 5, 2)).astype("float32")
    td = _conv_td()
    out = keras.ops.convert_to_numpy(td(x))
    inner = td.layer
    expected = np.stack(
        [keras.ops.convert_to_numpy(inner(x[:, i])) for i in range(x.shape[1])], axis=1)
    assert out.shape == (2, 4, 3, 3, 3)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


def test_dense_golden_values():
    # Dense with kernel [[1, 0], [0, 2], [1, 1]] and bias [0.5, -1]:
    # y = [x0 + x2 + 0.5, 2 x1 + x2 - 1]
    td = TimeDistributed(keras.layers.Dense(2, name="fc_inner"), name="fc")
    td.build((None, None, 3))
    td.layer.set_weights([np.array([[1, 0], [0, 2], [1, 1]], "float32"),
                          np.array([0.5, -1], "float32")])
    x = np.array([[[1, 2, 3], [0, 0, 0]], [[-1, 1, 0], [2, 0, 1]]], "float32")
    expected = np.array([[[4.5, 6.0], [0.5, -1.0]], [[-0.5, 1.0], [3.5, 0.0]]], "float32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(td(x)), expected, rtol=1e-6)


def test_dynamic_roi_count_under_predict():
    rois = keras.Input(shape=(None, 5, 5, 2))
    td = _conv_td()
    model = keras.Model(rois, td(rois))
    assert tuple(model.output.shape) == (None, None, 3, 3, 3)
    for n in (5, 2, 0):
        x = RNG.normal(size=(2, n, 5, 5, 2)).astype("float32")
        out = model.predict(x, verbose=0)
        assert out.shape == (2, n, 3, 3, 3)
        if n:
            expected = np.stack(
                [keras.ops.convert_to_numpy(td.layer(x[:, i])) for i in range(n)], axis=1)
            np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


def test_batch_norm_inside_pools_statistics_over_all_rois():
    td = TimeDistributed(
        BatchNorm(train_bn=True, center=False, scale=False, epsilon=1e-3, name="bn_inner"),
        name="bn")
    # One channel; ROI 0 of each image holds small values, ROI 1 large ones, so per-ROI
    # statistics would normalize both to about +-1 while pooled statistics do not.
    x = np.array([[[1.0], [9.0]], [[3.0], [11.0]]], "float32")  # [batch 2, rois 2, 1]
    # All four values: mean 6, variance ((25 + 9 + 9 + 25) / 4) = 17.
    expected = (x - 6.0) / np.sqrt(17.0 + 1e-3)
    out = keras.ops.convert_to_numpy(td(x, training=True))
    np.testing.assert_allclose(out, expected, rtol=1e-5)
    # Inference mode uses the moving statistics: after one update with momentum 0.99,
    # moving_mean = 0.01 * 6 and moving_variance = 0.99 + 0.01 * 17.
    mean, var = 0.06, 0.99 + 0.17
    out = keras.ops.convert_to_numpy(td(x, training=False))
    np.testing.assert_allclose(out, (x - mean) / np.sqrt(var + 1e-3), rtol=1e-4)


def test_training_flag_reaches_inner_layer_in_a_model():
    inp = keras.Input(shape=(None, 1))
    td = TimeDistributed(BatchNorm(train_bn=True, center=False, scale=False, name="bn_inner"),
                         name="bn")
    model = keras.Model(inp, td(inp))
    x = np.array([[[2.0], [4.0]]], "float32")
    # training=True: batch statistics (mean 3, variance 1).
    out = keras.ops.convert_to_numpy(model(x, training=True))
    np.testing.assert_allclose(out, (x - 3.0) / np.sqrt(1.0 + 1e-3), rtol=1e-5)


def test_compute_output_shape():
    td = _conv_td()
    assert td.compute_output_shape((None, None, 5, 5, 2)) == (None, None, 3, 3, 3)
    assert td.compute_output_shape((2, 7, 5, 5, 2)) == (2, 7, 3, 3, 3)
    td_fc = TimeDistributed(keras.layers.Dense(4, name="d_inner"), name="d")
    assert td_fc.compute_output_shape((1, None, 8)) == (1, None, 4)


def test_names_and_weights_belong_to_the_wrapper():
    td = _conv_td("mrcnn_class_conv1")
    td.build((None, None, 5, 5, 2))
    assert td.name == "mrcnn_class_conv1"
    assert td.layer.name == "mrcnn_class_conv1_inner"
    assert [tuple(w.shape) for w in td.weights] == [(3, 3, 2, 3), (3,)]
    assert td.weights[0] is td.layer.kernel


def test_get_config_round_trip():
    td = _conv_td()
    x = RNG.normal(size=(1, 2, 5, 5, 2)).astype("float32")
    out = keras.ops.convert_to_numpy(td(x))
    config = td.get_config()
    assert config["name"] == "td_conv"
    assert config["layer"]["config"]["name"] == "td_conv_inner"
    clone = TimeDistributed.from_config(config)
    assert isinstance(clone, TimeDistributed)
    assert clone.name == "td_conv" and clone.layer.name == "td_conv_inner"
    clone.build((None, None, 5, 5, 2))
    clone.set_weights(td.get_weights())
    np.testing.assert_allclose(keras.ops.convert_to_numpy(clone(x)), out, rtol=1e-6)


def test_model_save_and_load_round_trip(tmp_path):
    inp = keras.Input(shape=(None, 3))
    bn = TimeDistributed(BatchNorm(train_bn=False, name="bn_inner"), name="bn")
    out = TimeDistributed(keras.layers.Dense(2, name="fc_inner"), name="fc")(bn(inp))
    model = keras.Model(inp, out)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.get_layer("bn").layer.train_bn is False
    x = RNG.normal(size=(2, 4, 3)).astype("float32")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-6)


def test_mixed_precision_inputs_are_not_forced_to_float32():
    td = TimeDistributed(keras.layers.Dense(2, name="fc_inner", dtype="mixed_bfloat16"),
                         name="fc", dtype="mixed_bfloat16")
    out = td(np.ones((1, 3, 4), "float32"))
    assert keras.backend.standardize_dtype(out.dtype) == "bfloat16"
    assert tuple(out.shape) == (1, 3, 2)


def test_rejects_non_layer():
    with pytest.raises(ValueError, match="keras Layer"):
        TimeDistributed("conv")


def test_rejects_input_without_roi_axis():
    td = TimeDistributed(keras.layers.Dense(2, name="fc_inner"), name="fc")
    with pytest.raises(ValueError, match=r"\[batch, rois, \.\.\.\]"):
        td.build((None, 3))
    with pytest.raises(ValueError, match="at least 3 dimensions"):
        td.compute_output_shape((4, 3))


@pytest.mark.parametrize("padding", ["same", "valid"])
def test_zero_rois_give_empty_output_eagerly_and_under_predict(padding):
    # TF's CPU convolution returns an empty input unchanged (8 channels, not 16).
    td = TimeDistributed(keras.layers.Conv2D(16, (3, 3), padding=padding, name="c_inner"),
                         name="c")
    side = 7 if padding == "same" else 5
    x = np.zeros((2, 0, 7, 7, 8), "float32")
    assert tuple(td(x).shape) == (2, 0, side, side, 16)
    inp = keras.Input(shape=(None, 7, 7, 8))
    model = keras.Model(inp, td(inp))
    assert model.predict(x, verbose=0).shape == (2, 0, side, side, 16)


def test_zero_rois_leave_batch_norm_statistics_alone():
    td = TimeDistributed(BatchNorm(train_bn=True, name="bn_inner"), name="bn")
    out = td(np.zeros((1, 0, 3), "float32"), training=True)
    assert tuple(out.shape) == (1, 0, 3)
    np.testing.assert_array_equal(td.layer.moving_mean.numpy(), np.zeros(3))
    np.testing.assert_array_equal(td.layer.moving_variance.numpy(), np.ones(3))


def test_fit_trains_inner_layers_and_updates_batch_norm_statistics():
    inp = keras.Input(shape=(None, 3))
    x = TimeDistributed(keras.layers.Dense(4, name="fc_inner"), name="fc")(inp)
    bn = TimeDistributed(BatchNorm(train_bn=True, name="bn_inner"), name="bn")
    model = keras.Model(inp, bn(x))
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    kernel_before = model.get_layer("fc").get_weights()[0].copy()
    x_train = RNG.normal(size=(4, 5, 3)).astype("float32") + 2.0
    y_train = RNG.normal(size=(4, 5, 4)).astype("float32")
    history = model.fit(x_train, y_train, batch_size=2, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert not np.allclose(model.get_layer("fc").get_weights()[0], kernel_before)
    assert not np.allclose(bn.layer.moving_mean.numpy(), 0.0)


def test_gradients_with_dynamic_roi_count_in_a_traced_function():
    import tensorflow as tf

    td = TimeDistributed(keras.layers.Conv2D(2, (3, 3), padding="same", name="c_inner"),
                         name="c")
    bn = TimeDistributed(BatchNorm(train_bn=True, name="bn_inner"), name="bn")
    td.build((None, None, 4, 4, 1))
    bn.build((None, None, 4, 4, 2))

    @tf.function(input_signature=[tf.TensorSpec((None, None, 4, 4, 1), tf.float32)])
    def grads(x):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(bn(td(x, training=True), training=True) ** 2)
        return tape.gradient(loss, td.trainable_variables + bn.trainable_variables)

    x = RNG.normal(size=(2, 3, 4, 4, 1)).astype("float32")
    for n in (3, 0):
        kernel_grad, *_ = grads(tf.constant(x[:, :n]))
        assert tuple(kernel_grad.shape) == (3, 3, 1, 2)
        # No ROIs: no loss, zero gradients.
        assert bool(tf.reduce_any(kernel_grad != 0)) == (n > 0)
