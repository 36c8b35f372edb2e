"""Tests for mrcnn.checkpoint (HDF5 read/load/write) with authentic Keras-2 files from tf_keras."""

import errno
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import logging
import shutil

import h5py
import keras
import numpy as np
import pytest
import tf_keras
from keras import ops

from mrcnn import fileio
from mrcnn.checkpoint import (
    LoadReport,
    h5_format,
    load_optimizer_state,
    load_weights_h5,
    read_h5_extras,
    save_weights_h5,
)

N_ROIS = 2


class FoldWrapper(keras.layers.Wrapper):
    """Test stand-in for mrcnn's TimeDistributed: fold [batch, rois] into one axis."""

    def build(self, input_shape):
        if not self.layer.built:
            self.layer.build((None,) + tuple(input_shape[2:]))
        self.built = True

    def call(self, x):
        y = self.layer(ops.reshape(x, (-1,) + tuple(x.shape[2:])))
        return ops.reshape(y, (-1, x.shape[1]) + tuple(y.shape[1:]))


def _random_weights(model, seed):
    rng = np.random.default_rng(seed)
    values = []
    for w in model.weights:
        v = rng.normal(size=tuple(w.shape)).astype("float32")
        if "moving_variance" in w.name:
            v = np.abs(v) + 0.5
        values.append(v)
    model.set_weights(values)


def build_k2(in_ch=3, n_cls=3):
    """tf_keras (Keras 2) model: nested rpn_model, TimeDistributed conv/BN, BN stats."""
    L = tf_keras.layers
    si = L.Input((None, None, 4))
    s = L.Conv2D(4, 3, padding="same", name="rpn_conv_shared")(si)
    s = L.BatchNormalization(name="rpn_bn")(s)
    s = L.Conv2D(2, 1, name="rpn_class_raw")(s)
    sub = tf_keras.Model(si, s, name="rpn_model")
    img = L.Input((8, 8, in_ch), name="input_image")
    x = L.Conv2D(4, 3, padding="same", name="conv1")(img)
    x = L.BatchNormalization(name="bn_conv1")(x)
    x = L.Activation("relu")(x)
    r = sub(x)
    rois = L.Input((N_ROIS, 3, 3, 4), name="input_rois")
    y = L.TimeDistributed(L.Conv2D(5, 3), name="mrcnn_class_conv1")(rois)
    y = L.TimeDistributed(L.BatchNormalization(), name="mrcnn_class_bn1")(y)
    y = L.Reshape((N_ROIS, 5))(y)
    y = L.Dense(n_cls, name="mrcnn_class_logits")(y)
    model = tf_keras.Model([img, rois], [r, y])
    _random_weights(model, 0)
    return model


def build_k3(in_ch=3, n_cls=3, prefix="", extra=False):
    """The equivalent Keras 3 model (test wrapper around explicitly named inner layers)."""
    K = keras.layers
    si = keras.Input((None, None, 4))
    s = K.Conv2D(4, 3, padding="same", name="rpn_conv_shared")(si)
    s = K.BatchNormalization(name="rpn_bn")(s)
    s = K.Conv2D(2, 1, name="rpn_class_raw")(s)
    sub = keras.Model(si, s, name=prefix + "rpn_model")
    img = keras.Input((8, 8, in_ch), name="input_image")
    x = K.Conv2D(4, 3, padding="same", name=prefix + "conv1")(img)
    x = K.BatchNormalization(name=prefix + "bn_conv1")(x)
    x = K.Activation("relu")(x)
    r = sub(x)
    rois = keras.Input((N_ROIS, 3, 3, 4), name="input_rois")
    y = FoldWrapper(K.Conv2D(5, 3, name="inner_conv"), name=prefix + "mrcnn_class_conv1")(rois)
    y = FoldWrapper(K.BatchNormalization(name="inner_bn"), name=prefix + "mrcnn_class_bn1")(y)
    y = K.Reshape((N_ROIS, 5))(y)
    y = K.Dense(n_cls, name=prefix + "mrcnn_class_logits")(y)
    if extra:
        y = K.Dense(2, name="extra_dense")(y)
    model = keras.Model([img, rois], [r, y])
    _random_weights(model, 1)
    return model


def k2_layer_weights(k2, name):
    """{Keras-2 weight name: value} of one top-level tf_keras layer."""
    layer = k2.get_layer(name)
    return {w.name: w.numpy() for w in layer.weights}


def snapshot(model):
    return [w.numpy().copy() for w in model.weights]


def assert_unchanged(model, before):
    for w, v in zip(model.weights, before, strict=True):
        np.testing.assert_array_equal(w.numpy(), v)


def assert_layer_equals_k2(k3, k2, name, k3_name=None):
    """Every weight of the Keras 3 layer equals the tf_keras weight with the same short name."""
    expected = k2_layer_weights(k2, name)
    layer = k3.get_layer(k3_name or name)
    from mrcnn.checkpoint.naming import layer_entry

    entry = layer_entry(layer)
    for wname, var in zip(entry.weight_names, entry.variables, strict=True):
        # tf_keras names TimeDistributed weights after the inner layer; match on short names.
        short = wname.split("/")[-1]
        owner = wname.split("/")[0] if isinstance(layer, keras.Model) else None
        cands = [v for k, v in expected.items()
                 if k.split("/")[-1] == short and (owner is None or k.startswith(owner + "/"))]
        assert len(cands) == 1, (wname, list(expected))
        np.testing.assert_array_equal(var.numpy(), cands[0])


# Weighted layers in model.layers order (topological; the same in tf_keras and Keras 3 here).
WEIGHTED = ["conv1", "mrcnn_class_conv1", "bn_conv1", "mrcnn_class_bn1", "rpn_model",
            "mrcnn_class_logits"]


@pytest.fixture(scope="module")
def k2_model():
    return build_k2()


@pytest.fixture(scope="module")
def k2_file(tmp_path_factory, k2_model):
    path = str(tmp_path_factory.mktemp("k2") / "k2.h5")
    k2_model.save_weights(path)
    return path


def test_bn_statistics_are_non_trivial(k2_model):
    mean = k2_layer_weights(k2_model, "bn_conv1")["bn_conv1/moving_mean:0"]
    assert np.abs(mean).sum() > 0


def test_load_by_name_matches_every_layer(k2_model, k2_file):
    k3 = build_k3()
    report = load_weights_h5(k3, k2_file, by_name=True)
    assert isinstance(report, LoadReport)
    assert report.loaded == WEIGHTED
    assert report.mismatched == [] and report.missing_in_file == []
    assert report.unused_in_file == [] and report.excluded == []
    for name in WEIGHTED:
        assert_layer_equals_k2(k3, k2_model, name)


def test_nested_batchnorm_order(k2_model, k2_file):
    # Keras 2 writes the nested model's moving statistics last: they must still land in rpn_bn.
    k3 = build_k3()
    load_weights_h5(k3, k2_file, by_name=True)
    bn = k3.get_layer("rpn_model").get_layer("rpn_bn")
    expected = k2_model.get_layer("rpn_model").get_layer("rpn_bn").get_weights()
    for got, want in zip(bn.get_weights(), expected, strict=True):
        np.testing.assert_array_equal(got, want)


def test_weights_matched_by_stored_name_not_position(tmp_path, k2_model, k2_file):
    path = str(tmp_path / "reordered.h5")
    shutil.copy(k2_file, path)
    with h5py.File(path, "r+") as f:
        g = f["rpn_model"]
        g.attrs["weight_names"] = np.array([n.encode() for n in g.attrs["weight_names"]][::-1])
    k3 = build_k3()
    load_weights_h5(k3, path, by_name=True)
    assert_layer_equals_k2(k3, k2_model, "rpn_model")


def test_load_by_order_with_other_names(k2_model, k2_file):
    k3 = build_k3(prefix="x_")
    report = load_weights_h5(k3, k2_file)
    assert report.loaded == ["x_" + n for n in WEIGHTED]
    for name in WEIGHTED:
        assert_layer_equals_k2(k3, k2_model, name, "x_" + name)


def test_load_by_order_count_mismatch(k2_file):
    k3 = build_k3(extra=True)
    before = snapshot(k3)
    with pytest.raises(ValueError, match=r"file has 6, the model has 7"):
        load_weights_h5(k3, k2_file)
    assert_unchanged(k3, before)


def test_mismatch_raises_listing_layers_and_leaves_weights(k2_file):
    k3 = build_k3(n_cls=5)
    before = snapshot(k3)
    with pytest.raises(ValueError) as info:
        load_weights_h5(k3, k2_file, by_name=True)
    msg = str(info.value)
    assert "mrcnn_class_logits" in msg and "[(5, 3), (3,)]" in msg and "[(5, 5), (5,)]" in msg
    assert "exclude=['mrcnn_class_logits']" in msg
    assert_unchanged(k3, before)


def test_skip_mismatch_reports_both_shapes(k2_model, k2_file):
    k3 = build_k3(n_cls=5)
    logits_before = k3.get_layer("mrcnn_class_logits").get_weights()
    report = load_weights_h5(k3, k2_file, by_name=True, skip_mismatch=True)
    assert report.mismatched == [("mrcnn_class_logits", ((5, 3), (3,)), ((5, 5), (5,)))]
    assert "mrcnn_class_logits" not in report.loaded
    for got, want in zip(k3.get_layer("mrcnn_class_logits").get_weights(), logits_before,
                         strict=True):
        np.testing.assert_array_equal(got, want)
    assert_layer_equals_k2(k3, k2_model, "conv1")


@pytest.mark.parametrize("exclude", [["mrcnn_class_logits"], "mrcnn_class_logits",
                                     [r"mrcnn_class_l.*"]])
def test_exclude_implies_by_name(k2_model, k2_file, exclude):
    k3 = build_k3(n_cls=5, prefix="")
    before = k3.get_layer("mrcnn_class_logits").get_weights()
    report = load_weights_h5(k3, k2_file, exclude=exclude)
    assert report.excluded == ["mrcnn_class_logits"]
    assert report.unused_in_file == [] and report.mismatched == []
    np.testing.assert_array_equal(k3.get_layer("mrcnn_class_logits").get_weights()[0],
                                  before[0])
    assert_layer_equals_k2(k3, k2_model, "mrcnn_class_bn1")


def test_exclude_regex_heads(k2_file):
    report = load_weights_h5(build_k3(n_cls=5), k2_file, exclude=[r"mrcnn\_.*", "rpn_model"])
    assert report.loaded == ["conv1", "bn_conv1"]
    assert report.excluded == ["mrcnn_class_conv1", "mrcnn_class_bn1", "rpn_model",
                               "mrcnn_class_logits"]


def test_missing_and_unused(k2_file):
    img = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv1")(img)
    x = keras.layers.BatchNormalization(name="bn_conv1")(x)
    x = keras.layers.Dense(2, name="extra_dense")(x)
    report = load_weights_h5(keras.Model(img, x), k2_file, by_name=True)
    assert report.loaded == ["conv1", "bn_conv1"]
    assert report.missing_in_file == ["extra_dense"]
    assert report.unused_in_file == ["mrcnn_class_conv1", "mrcnn_class_bn1", "rpn_model",
                                     "mrcnn_class_logits"]
    text = str(report)
    assert "missing in file (1): extra_dense" in text and "unused in file (4)" in text


def test_dry_run_assigns_nothing(k2_file):
    k3 = build_k3()
    before = snapshot(k3)
    report = load_weights_h5(k3, k2_file, by_name=True, dry_run=True)
    assert report.dry_run and report.loaded == WEIGHTED
    assert "would load 6" in str(report)
    assert_unchanged(k3, before)


def test_report_is_logged(k2_file, caplog):
    with caplog.at_level(logging.INFO, logger="mrcnn.checkpoint.loading"):
        load_weights_h5(build_k3(), k2_file, by_name=True)
    assert "loaded 6" in caplog.text


def test_reshape_conv_kernel_into_dense(tmp_path):
    inp = tf_keras.Input((7, 7, 2))
    k2 = tf_keras.Model(inp, tf_keras.layers.Conv2D(3, 7, name="fc6")(inp))
    _random_weights(k2, 3)
    path = str(tmp_path / "fc6.h5")
    k2.save_weights(path)
    kernel = k2.get_layer("fc6").get_weights()[0]
    inp3 = keras.Input((98,))
    k3 = keras.Model(inp3, keras.layers.Dense(3, name="fc6")(inp3))
    with pytest.raises(ValueError, match=r"fc6: file \[\(7, 7, 2, 3\), \(3,\)\] vs model"):
        load_weights_h5(k3, path, by_name=True)
    report = load_weights_h5(k3, path, by_name=True, reshape=True)
    assert report.reshaped == ["fc6"]
    got = k3.get_layer("fc6").get_weights()[0]
    # Row index of the dense kernel = (y * 7 + x) * 2 + c (row-major flattening).
    assert got[(3 * 7 + 4) * 2 + 1, 2] == kernel[3, 4, 1, 2]
    assert got[0, 0] == kernel[0, 0, 0, 0] and got[97, 1] == kernel[6, 6, 1, 1]


@pytest.mark.parametrize("channels", [1, 4])
def test_adapt_input_channels(k2_model, k2_file, channels):
    rgb = k2_layer_weights(k2_model, "conv1")["conv1/kernel:0"]
    k3 = build_k3(in_ch=channels)
    with pytest.raises(ValueError, match="conv1"):
        load_weights_h5(k3, k2_file, by_name=True)
    report = load_weights_h5(k3, k2_file, by_name=True, adapt_input_channels=True)
    assert report.adapted == ["conv1"]
    got = k3.get_layer("conv1").get_weights()[0]
    assert got.shape == (3, 3, channels, 4)
    for c in range(channels):
        want = (rgb[:, :, 0, :] + rgb[:, :, 1, :] + rgb[:, :, 2, :]) / 3.0
        np.testing.assert_allclose(got[:, :, c, :], want, rtol=1e-6, atol=1e-6)


def test_flip_channels(k2_model, k2_file):
    rgb = k2_layer_weights(k2_model, "conv1")["conv1/kernel:0"]
    k3 = build_k3()
    report = load_weights_h5(k3, k2_file, by_name=True, flip_channels=True)
    assert report.adapted == ["conv1"]
    got = k3.get_layer("conv1").get_weights()[0]
    np.testing.assert_array_equal(got[:, :, 0, :], rgb[:, :, 2, :])
    np.testing.assert_array_equal(got[:, :, 1, :], rgb[:, :, 1, :])
    np.testing.assert_array_equal(got[:, :, 2, :], rgb[:, :, 0, :])
    # Only the first layer is flipped.
    assert_layer_equals_k2(k3, k2_model, "rpn_model")


@pytest.mark.filterwarnings("ignore:You are saving your model as an HDF5")
def test_full_model_save_nests_under_model_weights(tmp_path, k2_model):
    path = str(tmp_path / "full.h5")
    k2_model.save(path, save_format="h5")
    with h5py.File(path) as f:
        assert "model_weights" in f
    k3 = build_k3()
    assert load_weights_h5(k3, path, by_name=True).loaded == WEIGHTED
    assert_layer_equals_k2(k3, k2_model, "mrcnn_class_bn1")


# --- our writer -------------------------------------------------------------------------

def test_round_trip_through_tf_keras_and_back(tmp_path):
    k3 = build_k3()
    ours = str(tmp_path / "ours.h5")
    save_weights_h5(k3, ours)
    with h5py.File(ours) as f:
        assert [n.decode() for n in f.attrs["layer_names"]] == [lay.name for lay in k3.layers]
        assert f.attrs["keras_version"] == b"2.15.0" and f.attrs["backend"] == b"tensorflow"
        assert [n.decode() for n in f["mrcnn_class_conv1"].attrs["weight_names"]] == [
            "mrcnn_class_conv1/kernel:0", "mrcnn_class_conv1/bias:0"]
        assert [n.decode() for n in f["rpn_model"].attrs["weight_names"]][-2:] == [
            "rpn_bn/moving_mean:0", "rpn_bn/moving_variance:0"]
    for by_name in (True, False):
        k2 = build_k2()
        k2.load_weights(ours, by_name=by_name)
        for name in WEIGHTED:
            assert_layer_equals_k2(k3, k2, name)
    back = str(tmp_path / "back.h5")
    k2.save_weights(back)
    k3b = build_k3(prefix="")
    _random_weights(k3b, 7)
    load_weights_h5(k3b, back, by_name=True)
    for a, b in zip(k3.weights, k3b.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_extras_and_optimizer_state(tmp_path, k2_file):
    k3 = build_k3()
    k3.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    xs = [np.ones((2, 8, 8, 3), "float32"), np.ones((2, N_ROIS, 3, 3, 4), "float32")]
    ys = [np.zeros((2, 8, 8, 2), "float32"), np.zeros((2, N_ROIS, 3), "float32")]
    k3.fit(xs, ys, epochs=1, verbose=0)
    path = str(tmp_path / "ckpt.h5")
    config = {"NAME": "shapes", "MEAN_PIXEL": np.array([1.5, 2.0, 3.0]), "STEPS": np.int64(4)}
    save_weights_h5(k3, path, epoch=7, config=config, optimizer=k3.optimizer)
    extras = read_h5_extras(path)
    assert extras == {"epoch": 7, "has_optimizer": True, "metadata": None,
                      "config": {"NAME": "shapes", "MEAN_PIXEL": [1.5, 2.0, 3.0], "STEPS": 4}}
    assert read_h5_extras(k2_file) == {"epoch": None, "config": None, "metadata": None,
                                       "has_optimizer": False}
    build_k2().load_weights(path, by_name=True)  # Keras-2 readers ignore the extras

    fresh = keras.optimizers.Adam(0.01)
    assert load_optimizer_state(fresh, path) is False  # not built
    assert load_optimizer_state(fresh, path, model=k3) is True
    for a, b in zip(fresh.variables, k3.optimizer.variables, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert float(np.abs(fresh.variables[2].numpy()).sum()) > 0

    other_model = build_k3(n_cls=5)
    other = keras.optimizers.Adam()
    other.build(other_model.trainable_variables)
    before = [v.numpy().copy() for v in other.variables]
    assert load_optimizer_state(other, path) is False  # shapes differ
    for v, b in zip(other.variables, before, strict=True):
        np.testing.assert_array_equal(v.numpy(), b)
    assert load_optimizer_state(keras.optimizers.Adam(), k2_file, model=k3) is False


def test_config_must_be_dict(tmp_path):
    with pytest.raises(TypeError, match="config must be a dict"):
        save_weights_h5(build_k3(), str(tmp_path / "x.h5"), config="NAME=x")


def test_atomic_write_keeps_old_file_on_failure(tmp_path, monkeypatch, k2_file):
    path = str(tmp_path / "w.h5")
    shutil.copy(k2_file, path)
    original = open(path, "rb").read()

    def boom(handle, model):
        raise RuntimeError("disk full")

    monkeypatch.setattr(h5_format, "_write_layout", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        save_weights_h5(build_k3(), path)
    assert open(path, "rb").read() == original
    assert os.listdir(tmp_path) == ["w.h5"]


def test_save_into_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        save_weights_h5(build_k3(), str(tmp_path / "nope" / "w.h5"))


def test_chunked_attributes_round_trip(tmp_path):
    names = [f"layer_with_a_long_name_{i:05d}" for i in range(3000)]  # ~87 KB > 64 KB
    path = str(tmp_path / "chunks.h5")
    with h5py.File(path, "w") as f:
        h5_format.write_str_list_attr(f, "layer_names", names)
        assert "layer_names" not in f.attrs and "layer_names1" in f.attrs
    with h5py.File(path) as f:
        assert h5_format.read_str_list_attr(f, "layer_names") == names
        from tf_keras.src.saving.legacy import hdf5_format as k2_format

        assert k2_format.load_attributes_from_hdf5_group(f, "layer_names") == names


def test_str_attributes_are_read(tmp_path, k2_model, k2_file):
    # tf_keras writes str (object) attributes, matterport-era Keras bytes: convert to bytes.
    path = str(tmp_path / "bytes.h5")
    shutil.copy(k2_file, path)
    with h5py.File(path, "r+") as f:
        assert f.attrs["layer_names"].dtype == object
        names = [n.encode() for n in f.attrs["layer_names"]]
        f.attrs["layer_names"] = np.array(names, dtype="S40")
        g = f["conv1"]
        g.attrs["weight_names"] = np.array([b"conv1/kernel:0", b"conv1/bias:0"])
    k3 = build_k3()
    assert load_weights_h5(k3, path, by_name=True).loaded == WEIGHTED
    assert_layer_equals_k2(k3, k2_model, "conv1")


def test_weightless_extra_group_is_ignored(tmp_path, k2_file):
    path = str(tmp_path / "anchors.h5")
    shutil.copy(k2_file, path)
    with h5py.File(path, "r+") as f:
        names = list(f.attrs["layer_names"]) + ["anchors"]
        f.attrs["layer_names"] = np.array([str(n).encode() for n in names])
        f.create_group("anchors").attrs["weight_names"] = np.zeros((0,), "S1")
    report = load_weights_h5(build_k3(), path, by_name=True)
    assert report.unused_in_file == [] and report.loaded == WEIGHTED


# --- bad input: every failure names the file/layer and leaves the model unchanged --------

def _damaged_copy(tmp_path, k2_file, edit):
    path = str(tmp_path / "damaged.h5")
    shutil.copy(k2_file, path)
    with h5py.File(path, "r+") as f:
        edit(f)
    return path


def _expect_failure(path, exc, pattern, **kwargs):
    k3 = build_k3()
    before = snapshot(k3)
    with pytest.raises(exc, match=pattern):
        load_weights_h5(k3, path, **kwargs)
    assert_unchanged(k3, before)


def test_missing_file(tmp_path):
    _expect_failure(str(tmp_path / "none.h5"), FileNotFoundError, "none.h5")


def test_not_hdf5(tmp_path):
    path = tmp_path / "text.h5"
    path.write_text("not weights at all\n" * 100)
    _expect_failure(str(path), ValueError, "text.h5: not an HDF5 file")


def test_truncated_file(tmp_path, k2_file):
    data = open(k2_file, "rb").read()
    path = tmp_path / "cut.h5"
    path.write_bytes(data[: len(data) // 2])
    _expect_failure(str(path), ValueError, "cut.h5", by_name=True)


def test_group_dataset_missing(tmp_path, k2_file):
    # Damage a late layer, so earlier layers are planned before the failure.
    def edit(f):
        del f["mrcnn_class_logits"]["mrcnn_class_logits/bias:0"]

    path = _damaged_copy(tmp_path, k2_file, edit)
    _expect_failure(path, ValueError,
                    r"damaged.h5: layer 'mrcnn_class_logits': datasets missing.*bias:0",
                    by_name=True)


def test_weight_count_differs(tmp_path, k2_file):
    def edit(f):
        f["mrcnn_class_logits"].attrs["weight_names"] = np.array([b"mrcnn_class_logits/kernel:0"])

    path = _damaged_copy(tmp_path, k2_file, edit)
    _expect_failure(path, ValueError,
                    r"damaged.h5: layer 'mrcnn_class_logits': weight count differs.*holds 1 "
                    r"weights.*has 2", by_name=True)
    _expect_failure(path, ValueError, "weight count differs")  # by order too


def test_group_listed_but_absent(tmp_path, k2_file):
    path = _damaged_copy(tmp_path, k2_file, lambda f: f.__delitem__("bn_conv1"))
    _expect_failure(path, ValueError, "'bn_conv1' is listed in layer_names but has no group")


def test_keras3_weights_file_is_rejected_with_hint(tmp_path):
    k3 = build_k3()
    path = str(tmp_path / "k3.weights.h5")
    k3.save_weights(path)
    _expect_failure(path, ValueError, "not a Keras-2 weights file.*Keras 3")


def test_bad_exclude_type(k2_file):
    with pytest.raises(TypeError, match="exclude entries"):
        load_weights_h5(build_k3(), k2_file, exclude=[3])


def test_expected_size_bounds_the_written_file(tmp_path):
    k3 = build_k3()
    k3.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    k3.optimizer.build(k3.trainable_variables)
    for optimizer in (None, k3.optimizer):
        path = tmp_path / f"with_{type(optimizer).__name__}.h5"
        save_weights_h5(k3, path, epoch=1, config={"NAME": "x"}, optimizer=optimizer)
        expected = h5_format.expected_h5_bytes(k3, optimizer)
        raw = sum(np.asarray(v.numpy()).nbytes for v in k3.weights)
        if optimizer is not None:
            raw += sum(np.asarray(v.numpy()).nbytes for v in optimizer.variables)
        assert expected == raw + 2**20
        assert os.path.getsize(path) <= expected


def test_too_little_free_space_writes_nothing_and_says_so(tmp_path, monkeypatch, k2_file):
    path = str(tmp_path / "w.h5")
    shutil.copy(k2_file, path)
    original = open(path, "rb").read()
    model = build_k3()
    needed = h5_format.expected_h5_bytes(model)
    real = shutil.disk_usage(tmp_path)

    def disk_with(free):
        return lambda folder: type(real)(real.total, real.total - free, free)

    monkeypatch.setattr(fileio.shutil, "disk_usage", disk_with(needed - 1))
    with pytest.raises(OSError, match=r"Not enough free disk space to write .*w\.h5") as err:
        save_weights_h5(model, path)
    assert err.value.errno == errno.ENOSPC
    assert "MiB free" in str(err.value)
    assert open(path, "rb").read() == original
    assert os.listdir(tmp_path) == ["w.h5"]

    monkeypatch.setattr(fileio.shutil, "disk_usage", disk_with(needed))
    save_weights_h5(model, path)
    assert open(path, "rb").read() != original
    assert os.listdir(tmp_path) == ["w.h5"]
