"""modeling.backbone (ResNet), modeling.fpn (feature pyramid), modeling.layers.batch_norm."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from mrcnn.modeling.backbone import conv_block, identity_block, resnet_graph  # noqa: E402
from mrcnn.modeling.fpn import build_fpn  # noqa: E402
from mrcnn.modeling.layers.batch_norm import BatchNorm  # noqa: E402

RNG = np.random.default_rng(0)


def _np(x):
    return keras.ops.convert_to_numpy(x)


# ----------------------------------------------------------------------------------------
# BatchNorm
# ----------------------------------------------------------------------------------------

def _bn_with_stats(train_bn):
    bn = BatchNorm(train_bn=train_bn, epsilon=1e-3, name="bn_test")
    bn.build((None, 1))
    # gamma 2, beta 1, moving_mean 1, moving_variance 4.
    bn.set_weights([np.array([2.0], "float32"), np.array([1.0], "float32"),
                    np.array([1.0], "float32"), np.array([4.0], "float32")])
    return bn


X_BN = np.array([[3.0], [5.0]], "float32")  # batch mean 4, batch variance 1


@pytest.mark.parametrize("train_bn", [False, None])
def test_frozen_batch_norm_uses_moving_stats_even_when_training(train_bn):
    bn = _bn_with_stats(train_bn)
    expected = 2.0 * (X_BN - 1.0) / np.sqrt(4.0 + 1e-3) + 1.0
    np.testing.assert_allclose(_np(bn(X_BN, training=True)), expected, rtol=1e-5)
    # ... and never updates them.
    np.testing.assert_allclose(bn.get_weights()[2:], [[1.0], [4.0]])


def test_trainable_batch_norm_uses_batch_stats_when_training():
    bn = _bn_with_stats(True)
    expected = 2.0 * (X_BN - 4.0) / np.sqrt(1.0 + 1e-3) + 1.0
    np.testing.assert_allclose(_np(bn(X_BN, training=True)), expected, rtol=1e-5)
    # moving_mean = 0.99 * 1 + 0.01 * 4; moving_variance = 0.99 * 4 + 0.01 * 1.
    np.testing.assert_allclose(bn.get_weights()[2:], [[1.03], [3.97]], rtol=1e-5)
    expected = 2.0 * (X_BN - 1.03) / np.sqrt(3.97 + 1e-3) + 1.0
    np.testing.assert_allclose(_np(bn(X_BN, training=False)), expected, rtol=1e-5)


def test_frozen_batch_norm_inside_a_model_called_with_training():
    inp = keras.Input(shape=(1,))
    bn = _bn_with_stats(False)
    model = keras.Model(inp, bn(inp))
    expected = 2.0 * (X_BN - 1.0) / np.sqrt(4.0 + 1e-3) + 1.0
    np.testing.assert_allclose(_np(model(X_BN, training=True)), expected, rtol=1e-5)


def test_batch_norm_weight_order_and_config_round_trip():
    bn = BatchNorm(train_bn=False, name="bn_conv1")
    bn.build((None, 4, 4, 3))
    assert [w.path.split("/")[-1] for w in bn.weights] == [
        "gamma", "beta", "moving_mean", "moving_variance"]
    config = bn.get_config()
    assert config["train_bn"] is False
    clone = BatchNorm.from_config(config)
    assert clone.train_bn is False and clone.name == "bn_conv1"


def test_batch_norm_rejects_non_bool_train_bn():
    with pytest.raises(TypeError, match="'yes'"):
        BatchNorm(train_bn="yes")


# ----------------------------------------------------------------------------------------
# ResNet
# ----------------------------------------------------------------------------------------

def _layer_names(model):
    return [layer.name for layer in model.layers]


@pytest.mark.parametrize("architecture,letters", [("resnet50", "abcdef"),
                                                  ("resnet101", "abcdefghijklmnopqrstuvw")])
def test_resnet_stage4_block_letters(architecture, letters):
    image = keras.Input(shape=(64, 64, 3))
    outputs = resnet_graph(image, architecture, stage5=True)
    names = _layer_names(keras.Model(image, outputs))
    stage4 = sorted({n[:5] for n in names if n.startswith("res4") and n.endswith("_out")})
    assert stage4 == [f"res4{c}" for c in letters]


def test_resnet50_names_and_shapes():
    image = keras.Input(shape=(64, 64, 3), name="input_image")
    c1, c2, c3, c4, c5 = resnet_graph(image, "resnet50", stage5=True, train_bn=False)
    assert tuple(c1.shape) == (None, 16, 16, 64)
    assert tuple(c2.shape) == (None, 16, 16, 256)
    assert tuple(c3.shape) == (None, 8, 8, 512)
    assert tuple(c4.shape) == (None, 4, 4, 1024)
    assert tuple(c5.shape) == (None, 2, 2, 2048)
    model = keras.Model(image, [c2, c3, c4, c5])
    names = set(_layer_names(model))
    for expected in ("conv1", "bn_conv1", "res2a_branch2a", "bn2a_branch2a", "res2a_branch1",
                     "bn2a_branch1", "res2c_out", "res3d_branch2c", "res4f_out",
                     "res5a_branch1", "bn5c_branch2c", "res5c_out"):
        assert expected in names
    # Only conv blocks have a shortcut branch.
    assert sorted(n for n in names if n.endswith("_branch1")) == [
        "bn2a_branch1", "bn3a_branch1", "bn4a_branch1", "bn5a_branch1",
        "res2a_branch1", "res3a_branch1", "res4a_branch1", "res5a_branch1"]
    # Stage 2 keeps the stem's stride; the others halve the resolution in their conv block.
    assert model.get_layer("res2a_branch2a").strides == (1, 1)
    assert model.get_layer("res3a_branch2a").strides == (2, 2)
    assert model.get_layer("res3a_branch1").strides == (2, 2)
    conv1 = model.get_layer("conv1")
    assert conv1.kernel_size == (7, 7) and conv1.strides == (2, 2) and conv1.use_bias
    assert all(layer.use_bias for layer in model.layers
               if isinstance(layer, keras.layers.Conv2D))
    bns = [layer for layer in model.layers if isinstance(layer, BatchNorm)]
    assert len(bns) == 53 and all(layer.train_bn is False for layer in bns)


def test_resnet_without_stage5():
    image = keras.Input(shape=(64, 64, 3))
    outputs = resnet_graph(image, "resnet50", stage5=False)
    assert outputs[4] is None
    names = _layer_names(keras.Model(image, outputs[:4]))
    assert not any(n.startswith(("res5", "bn5")) for n in names)


def test_resnet_rejects_unknown_architecture():
    with pytest.raises(ValueError, match="'resnet18'"):
        resnet_graph(keras.Input(shape=(64, 64, 3)), "resnet18")


def _zero_convs(model):
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            layer.set_weights([np.zeros_like(w) for w in layer.get_weights()])


def test_identity_block_with_zero_convs_is_relu_of_input():
    # Zero convolutions give zeros; frozen BN at init (mean 0, var 1, gamma 1, beta 0) keeps
    # them zero; the block then returns relu(0 + input).
    inp = keras.Input(shape=(2, 2, 2))
    model = keras.Model(inp, identity_block(inp, 3, [1, 1, 2], stage=9, block="z",
                                            train_bn=False))
    _zero_convs(model)
    x = np.array([[[[1.0, -1.0], [-2.0, 2.0]], [[0.5, -0.5], [3.0, -3.0]]]], "float32")
    np.testing.assert_allclose(model.predict(x, verbose=0), np.maximum(x, 0.0))
    assert model.layers[-1].name == "res9z_out"


def test_conv_block_shortcut_golden_value():
    # Main branch zeroed; the 1x1 stride-2 shortcut with kernel 1 and bias 0 picks every other
    # pixel: out = relu(x[:, ::2, ::2] / sqrt(1 + eps)).
    inp = keras.Input(shape=(4, 4, 1))
    model = keras.Model(inp, conv_block(inp, 3, [1, 1, 1], stage=9, block="a",
                                        train_bn=False))
    _zero_convs(model)
    model.get_layer("res9a_branch1").set_weights([np.ones((1, 1, 1, 1), "float32"),
                                                  np.zeros((1,), "float32")])
    x = RNG.normal(size=(1, 4, 4, 1)).astype("float32")
    expected = np.maximum(x[:, ::2, ::2] / np.sqrt(1.0 + 1e-3), 0.0)
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("filters", [[64, 64], [64, 0, 256], [64, 64.0, 256]])
def test_blocks_reject_bad_filters(filters):
    inp = keras.Input(shape=(8, 8, 256))
    with pytest.raises(ValueError, match="filters"):
        identity_block(inp, 3, filters, stage=2, block="b")
    with pytest.raises(ValueError, match="filters"):
        conv_block(inp, 3, filters, stage=2, block="a")


def test_blocks_reject_empty_block_letter():
    with pytest.raises(ValueError, match="block"):
        identity_block(keras.Input(shape=(8, 8, 4)), 3, [1, 1, 4], stage=2, block="")


# ----------------------------------------------------------------------------------------
# FPN
# ----------------------------------------------------------------------------------------

def _fpn_model(depth=8):
    cs = [keras.Input(shape=(s, s, c)) for s, c in ((16, 4), (8, 6), (4, 8), (2, 10))]
    return keras.Model(cs, build_fpn(*cs, top_down_pyramid_size=depth))


def test_fpn_names_and_shapes():
    model = _fpn_model()
    assert [tuple(o.shape) for o in model.outputs] == [
        (None, 16, 16, 8), (None, 8, 8, 8), (None, 4, 4, 8), (None, 2, 2, 8), (None, 1, 1, 8)]
    names = set(_layer_names(model))
    assert {"fpn_c5p5", "fpn_c4p4", "fpn_c3p3", "fpn_c2p2", "fpn_p5upsampled",
            "fpn_p4upsampled", "fpn_p3upsampled", "fpn_p4add", "fpn_p3add", "fpn_p2add",
            "fpn_p2", "fpn_p3", "fpn_p4", "fpn_p5", "fpn_p6"} <= names
    assert model.get_layer("fpn_p2").kernel_size == (3, 3)
    assert model.get_layer("fpn_c2p2").kernel_size == (1, 1)


def test_fpn_top_down_and_p6_golden_values():
    # Laterals: 1x1 convs summing the channels; output convs: identity on channel 0 only.
    model = _fpn_model(depth=1)
    for name in ("fpn_c5p5", "fpn_c4p4", "fpn_c3p3", "fpn_c2p2"):
        layer = model.get_layer(name)
        k = np.ones(layer.kernel.shape, "float32")
        layer.set_weights([k, np.zeros((1,), "float32")])
    for name in ("fpn_p2", "fpn_p3", "fpn_p4", "fpn_p5"):
        k = np.zeros((3, 3, 1, 1), "float32")
        k[1, 1, 0, 0] = 1.0
        model.get_layer(name).set_weights([k, np.zeros((1,), "float32")])
    c2 = RNG.normal(size=(1, 16, 16, 4)).astype("float32")
    c3 = RNG.normal(size=(1, 8, 8, 6)).astype("float32")
    c4 = RNG.normal(size=(1, 4, 4, 8)).astype("float32")
    c5 = RNG.normal(size=(1, 2, 2, 10)).astype("float32")
    p2, p3, p4, p5, p6 = model.predict([c2, c3, c4, c5], verbose=0)

    def up(x):
        return x.repeat(2, axis=1).repeat(2, axis=2)

    e5 = c5.sum(-1, keepdims=True)
    e4 = up(e5) + c4.sum(-1, keepdims=True)
    e3 = up(e4) + c3.sum(-1, keepdims=True)
    e2 = up(e3) + c2.sum(-1, keepdims=True)
    for got, want in ((p5, e5), (p4, e4), (p3, e3), (p2, e2), (p6, e5[:, ::2, ::2])):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("depth", [0, 256.0, True])
def test_fpn_rejects_bad_depth(depth):
    cs = [keras.Input(shape=(s, s, 4)) for s in (16, 8, 4, 2)]
    with pytest.raises(ValueError, match="top_down_pyramid_size"):
        build_fpn(*cs, top_down_pyramid_size=depth)
