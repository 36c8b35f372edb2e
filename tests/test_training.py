"""Training machinery: presets, set_trainable, weight-decay selection, optimizer, callbacks."""

import json
import logging
import math
import os
import re

import h5py
import keras
import numpy as np
import pytest
from shared_fixtures import FIXTURES as SHARED_FIXTURES
from tiny_config import TinyConfig

from mrcnn import model as modellib
from mrcnn.checkpoint import read_h5_extras
from mrcnn.config import LOSS_NAMES
from mrcnn.engine import trainer as training
from mrcnn.engine.callbacks import MatterportCheckpoint, NonFiniteLossGuard
from mrcnn.engine.trainer import (
    LAYER_PRESETS,
    l2_regularized_weights,
    make_optimizer,
    resolve_layers,
    set_trainable,
)

FIXTURES = SHARED_FIXTURES


# --------------------------------------------------------------------------- presets
def test_resolve_layers_maps_presets_and_passes_regexes():
    assert resolve_layers("heads") == r"(mrcnn\_.*)|(rpn\_.*)|(fpn\_.*)"
    assert resolve_layers("all") == ".*"
    for preset in ("3+", "4+", "5+"):
        assert resolve_layers(preset) == LAYER_PRESETS[preset]
    assert resolve_layers(r"res5.*") == r"res5.*"
    assert set(LAYER_PRESETS) == {"heads", "3+", "4+", "5+", "all"}


@pytest.mark.parametrize("preset, yes, no", [
    ("heads", ["mrcnn_class_logits", "rpn_conv_shared", "fpn_p2", "mrcnn_mask_bn4"],
     ["res5a_branch2a", "bn5a_branch2a", "conv1", "bn_conv1", "rpn"]),
    ("5+", ["res5c_branch2c", "bn5a_branch1", "fpn_c5p5"], ["res4a_branch2a", "bn4f_branch2c"]),
    ("4+", ["res4w_branch2c", "bn4a_branch1", "res5a_branch2a", "mrcnn_bbox_fc"],
     ["res3a_branch2a", "bn3d_branch2c", "res2c_branch2b", "conv1"]),
    ("3+", ["res3a_branch2a", "bn3b_branch2b", "res5a_branch1"],
     ["res2a_branch2a", "bn2c_branch2c", "bn_conv1"]),
    ("all", ["conv1", "bn_conv1", "res2a_branch2a", "anything"], []),
])
def test_presets_select_matterport_layer_names(preset, yes, no):
    regex = resolve_layers(preset)
    for name in yes:
        assert re.fullmatch(regex, name), (preset, name)
    for name in no:
        assert not re.fullmatch(regex, name), (preset, name)


def test_resolve_layers_errors():
    with pytest.raises(TypeError, match="42"):
        resolve_layers(42)
    with pytest.raises(ValueError, match=r"'\(res4'"):
        resolve_layers("(res4")


# --------------------------------------------------------------------------- L2 and optimizer
def _toy_bn_model():
    inputs = keras.Input((4,))
    x = keras.layers.Dense(3, name="fc")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    outputs = keras.layers.Dense(1, name="out", use_bias=False)(x)
    return keras.Model(inputs, outputs)


def test_l2_regularized_weights_excludes_batchnorm_gamma_and_beta():
    model = _toy_bn_model()
    chosen = l2_regularized_weights(model.trainable_weights)
    assert [v.path for v in chosen] == ["fc/kernel", "fc/bias", "out/kernel"]
    # The same rule on every weight: only gamma and beta are dropped.
    names = [v.path for v in l2_regularized_weights(model.weights)]
    assert "bn/gamma" not in names and "bn/beta" not in names
    assert "bn/moving_mean" in names and "bn/moving_variance" in names


def test_make_optimizer_clips_by_global_norm():
    opt = make_optimizer(0.02, 0.9, 5.0)
    assert isinstance(opt, keras.optimizers.SGD)
    assert opt.global_clipnorm == 5.0
    assert opt.clipnorm is None and opt.clipvalue is None
    assert float(opt.learning_rate) == pytest.approx(0.02)
    assert opt.momentum == pytest.approx(0.9)
    assert make_optimizer(0.1, 0.0, None).global_clipnorm is None


def test_global_clipnorm_clips_the_joint_norm():
    # Two gradients of norms 3 and 4 (joint norm 5) clipped to 1: each scales by 1/5;
    # per-tensor clipping would have scaled them by 1/3 and 1/4.
    a = keras.Variable(np.zeros(1, np.float32))
    b = keras.Variable(np.zeros(1, np.float32))
    opt = make_optimizer(1.0, 0.0, 1.0)
    opt.apply([np.array([3.0], np.float32), np.array([4.0], np.float32)], [a, b])
    np.testing.assert_allclose([float(a.numpy()[0]), float(b.numpy()[0])], [-0.6, -0.8],
                               rtol=1e-5)


# --------------------------------------------------------------------------- callbacks (toy)
def _toy_model():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, name="dense")])
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss="mse")
    return model


def _toy_data(nan_from_batch=None, batches=4, batch_size=2):
    x = np.ones((batches * batch_size, 2), np.float32)
    y = np.zeros((batches * batch_size, 1), np.float32)
    if nan_from_batch is not None:
        x[nan_from_batch * batch_size:] = np.nan
    return x, y


def test_guard_stops_at_the_first_non_finite_batch():
    model = _toy_model()
    x, y = _toy_data(nan_from_batch=2)
    guard = NonFiniteLossGuard()
    seen = []
    counter = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: seen.append(batch))
    model.fit(x, y, batch_size=2, epochs=3, shuffle=False, verbose=0,
              callbacks=[guard, counter])
    assert guard.failure is not None
    assert (guard.failure["epoch"], guard.failure["batch"]) == (1, 2)
    assert math.isnan(guard.failure["logs"]["loss"])
    assert seen == [0, 1, 2]  # stopped right after the NaN batch: no epoch 2


def test_guard_stays_quiet_on_finite_losses():
    model = _toy_model()
    x, y = _toy_data()
    guard = NonFiniteLossGuard()
    history = model.fit(x, y, batch_size=2, epochs=2, verbose=0, callbacks=[guard])
    assert guard.failure is None and len(history.history["loss"]) == 2


def test_checkpoint_writes_matterport_names_in_keras2_layout(tmp_path):
    model = _toy_model()
    x, y = _toy_data()
    template = str(tmp_path / "mask_rcnn_toy_{epoch:04d}.h5")
    checkpoint = MatterportCheckpoint(template, config={"NAME": "toy", "LR": 0.01})
    model.fit(x, y, batch_size=2, epochs=2, verbose=0, callbacks=[checkpoint])
    expected = [str(tmp_path / "mask_rcnn_toy_0001.h5"), str(tmp_path / "mask_rcnn_toy_0002.h5")]
    assert checkpoint.saved == expected
    assert sorted(os.listdir(tmp_path)) == ["mask_rcnn_toy_0001.h5", "mask_rcnn_toy_0002.h5"]
    with h5py.File(expected[-1], "r") as f:
        names = [n.decode() if isinstance(n, bytes) else n for n in f.attrs["layer_names"]]
        assert names == ["dense"]
        weight_names = [n.decode() if isinstance(n, bytes) else n
                        for n in f["dense"].attrs["weight_names"]]
        assert weight_names == ["dense/kernel:0", "dense/bias:0"]
        np.testing.assert_array_equal(f["dense"]["dense/kernel:0"][()],
                                      model.get_layer("dense").kernel.numpy())
    extras = read_h5_extras(expected[-1])
    assert extras["epoch"] == 2 and extras["config"] == {"NAME": "toy", "LR": 0.01}
    assert extras["has_optimizer"]
    json.dumps(extras["config"])


def test_checkpoint_skips_non_finite_epochs(tmp_path, caplog):
    model = _toy_model()
    model.build((None, 2))
    checkpoint = MatterportCheckpoint(str(tmp_path / "ck_{epoch:04d}.h5"), save_optimizer=False)
    checkpoint.set_model(model)
    with caplog.at_level(logging.ERROR, logger="mrcnn.engine.callbacks.checkpoints"):
        checkpoint.on_epoch_end(0, {"loss": float("nan")})
        checkpoint.on_epoch_end(1, {"loss": float("inf")})
    assert checkpoint.saved == [] and os.listdir(tmp_path) == []
    assert "no checkpoint written" in caplog.text
    checkpoint.on_epoch_end(2, {"loss": 0.5})
    assert os.listdir(tmp_path) == ["ck_0003.h5"]
    assert not read_h5_extras(tmp_path / "ck_0003.h5")["has_optimizer"]


def test_guard_and_checkpoint_together_write_nothing_for_the_nan_epoch(tmp_path):
    model = _toy_model()
    x, y = _toy_data(nan_from_batch=1)
    checkpoint = MatterportCheckpoint(str(tmp_path / "ck_{epoch:04d}.h5"))
    guard = NonFiniteLossGuard()
    model.fit(x, y, batch_size=2, epochs=2, shuffle=False, verbose=0,
              callbacks=[guard, checkpoint])
    assert guard.failure["batch"] == 1
    assert os.listdir(tmp_path) == []


# --------------------------------------------------------------------------- set_trainable
@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return modellib.MaskRCNN("training", TinyConfig(), str(tmp_path_factory.mktemp("logs")))


@pytest.fixture(scope="module")
def matterport_weighted_names():
    """Weighted layer names of matterport's ResNet-50 training model (the shared fixture)."""
    with open(os.path.join(FIXTURES, "matterport_shapes_r50_layout.json")) as f:
        layout = json.load(f)
    return [layer["name"] for layer in layout["layers"] if layer["weights"]]


def _leaf_layers(model):
    """(name, layer) of every weighted leaf layer: nested models and wrappers opened."""
    out = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            out.extend(_leaf_layers(layer))
        elif layer.weights:
            out.append((layer.name, layer))
    return out


def _expected_leaf_names(fixture_names, top_level_regex):
    names = []
    for name in fixture_names:
        if name == "rpn_model":  # matterport's shared RPN: its inner layers are matched
            names.extend(["rpn_conv_shared", "rpn_class_raw", "rpn_bbox_pred"])
        elif re.fullmatch(top_level_regex, name):
            names.append(name)
    return names


def _trainable_state(model):
    state = {}
    for name, layer in _leaf_layers(model):
        inner = getattr(layer, "layer", None)
        if isinstance(inner, keras.layers.Layer):
            assert inner.trainable == layer.trainable, name  # wrapper and inner agree
        state[name] = layer.trainable
    return state


@pytest.mark.slow
@pytest.mark.parametrize("preset, regex", [
    ("heads", r"(mrcnn_.*)|(fpn_.*)"),
    ("3+", r"(res[345].*)|(bn[345].*)|(mrcnn_.*)|(fpn_.*)"),
    ("4+", r"(res[45].*)|(bn[45].*)|(mrcnn_.*)|(fpn_.*)"),
    ("5+", r"(res5.*)|(bn5.*)|(mrcnn_.*)|(fpn_.*)"),
    ("all", r".*"),
])
def test_set_trainable_presets_select_exactly_the_expected_layers(
        tiny_model, matterport_weighted_names, preset, regex):
    km = tiny_model.keras_model
    selected = tiny_model.set_trainable(preset, verbose=0)
    expected = _expected_leaf_names(matterport_weighted_names, regex)
    if preset != "all":  # the RPN belongs to every preset
        assert {"rpn_conv_shared", "rpn_class_raw", "rpn_bbox_pred"} <= set(expected)
    assert sorted(selected) == sorted(expected)
    state = _trainable_state(km)
    assert sorted(n for n, t in state.items() if t) == sorted(expected)
    # The model's trainable variables are exactly the selected layers' trainable ones.
    leaves = dict(_leaf_layers(km))
    want = {id(v) for n in expected for v in leaves[n].trainable_weights}
    assert {id(v) for v in km.trainable_variables} == want
    assert want


@pytest.mark.slow
def test_set_trainable_heads_freezes_backbone_and_reaches_inner_layers(tiny_model):
    km = tiny_model.keras_model
    tiny_model.set_trainable("heads", verbose=0)
    assert not km.get_layer("res4a_branch2a").trainable
    assert not km.get_layer("bn_conv1").trainable
    rpn = km.get_layer("rpn_model")
    assert rpn.get_layer("rpn_conv_shared").trainable
    wrapper = km.get_layer("mrcnn_class_conv1")
    assert wrapper.trainable and wrapper.layer.trainable
    tiny_model.set_trainable("res5.*", verbose=0)
    assert not wrapper.trainable and not wrapper.layer.trainable
    assert not rpn.get_layer("rpn_conv_shared").trainable
    assert km.get_layer("res5a_branch2a").trainable


@pytest.mark.slow
def test_set_trainable_regex_matching_nothing_warns(tiny_model, caplog):
    with caplog.at_level(logging.WARNING, logger="mrcnn.engine.trainer"):
        selected = set_trainable(tiny_model.keras_model, r"no_such_layer.*")
    assert selected == []
    assert "no_such_layer" in caplog.text and "matched no" in caplog.text
    assert tiny_model.keras_model.trainable_variables == []


@pytest.mark.slow
def test_set_trainable_logs_the_selection(tiny_model, caplog):
    with caplog.at_level(logging.DEBUG, logger="mrcnn.engine.trainer"):
        selected = tiny_model.set_trainable(r"mrcnn_mask.*", verbose=1)
    assert selected and all(n.startswith("mrcnn_mask") for n in selected)
    assert "mrcnn_mask_deconv" in caplog.text
    with pytest.raises(ValueError, match="regular expression"):
        tiny_model.set_trainable("(")
    assert training.LOSS_NAMES == ("rpn_class_loss", "rpn_bbox_loss", "mrcnn_class_loss",
                                   "mrcnn_bbox_loss", "mrcnn_mask_loss")
    assert training.LOSS_NAMES is LOSS_NAMES  # one owner: mrcnn.config


# --------------------------------------------------------------------------- callback order
def test_training_callbacks_run_metric_producers_before_readers(tmp_path):
    from mrcnn.engine.callbacks import EpochMetricCallback
    from mrcnn.engine.train_loop import training_callbacks

    class Producer(EpochMetricCallback):
        metric_names = ("score",)

        def on_epoch_end(self, epoch, logs=None):
            logs["score"] = float(epoch)

    class Reader(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seen = []

        def on_epoch_end(self, epoch, logs=None):
            self.seen.append(logs.get("score"))

    reader, producer, other = Reader(), Producer(), keras.callbacks.History()
    template = str(tmp_path / "mask_rcnn_toy_{epoch:04d}.h5")
    guard, callbacks = training_callbacks(str(tmp_path), template, {"NAME": "toy"},
                                          [reader, producer, other])
    kinds = [type(cb) for cb in callbacks]
    assert callbacks[0] is guard and isinstance(guard, NonFiniteLossGuard)
    assert callbacks[1] is producer
    assert kinds[2:4] == [keras.callbacks.TensorBoard, MatterportCheckpoint]
    assert callbacks[4:] == [reader, other]  # the user's order, after the writer
    assert callbacks[3].path_template == template
    assert callbacks[3].config == {"NAME": "toy"}
    # A plain callback that happens to carry matterport-era attributes is not moved.
    legacy = keras.callbacks.Callback()
    legacy.adds_logs = True
    _, callbacks = training_callbacks(str(tmp_path), template, None, [reader, legacy])
    assert callbacks[-2:] == [reader, legacy]
    # In a fit the reader sees the producer's value of the same epoch.
    model = _toy_model()
    x, y = _toy_data()
    _, callbacks = training_callbacks(str(tmp_path), template, None, [reader, producer])
    reader.seen.clear()
    model.fit(x, y, batch_size=2, epochs=2, verbose=0, callbacks=callbacks)
    assert reader.seen == [0.0, 1.0]
    assert sorted(os.listdir(tmp_path))[:2] == ["mask_rcnn_toy_0001.h5", "mask_rcnn_toy_0002.h5"]
