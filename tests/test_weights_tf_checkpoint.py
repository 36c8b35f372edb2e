"""Tests for mrcnn.checkpoint.tf_checkpoint with checkpoints written by tf.train.Checkpoint."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import pytest
import tensorflow as tf

from mrcnn.checkpoint import list_checkpoint_variables, load_tf_checkpoint, read_checkpoint_variable
from mrcnn.checkpoint.tf_checkpoint import resolve_checkpoint

SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"
RNG = np.random.default_rng(0)
CONV_K = RNG.normal(size=(3, 3, 3, 4)).astype("float32")
CONV_B = RNG.normal(size=(4,)).astype("float32")
FC_K = RNG.normal(size=(2, 2, 4, 3)).astype("float32")  # stored as a conv kernel
FC_B = RNG.normal(size=(3,)).astype("float32")


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    """A TF2 object checkpoint: backbone/{conv,fc}/{w,b} plus a step counter."""
    backbone = tf.Module()
    backbone.conv = tf.Module()
    backbone.conv.w = tf.Variable(CONV_K)
    backbone.conv.b = tf.Variable(CONV_B)
    backbone.fc = tf.Module()
    backbone.fc.w = tf.Variable(FC_K)
    backbone.fc.b = tf.Variable(FC_B)
    step = tf.Variable(5, dtype=tf.int64)
    folder = tmp_path_factory.mktemp("ckpt")
    return tf.train.Checkpoint(backbone=backbone, step=step).save(str(folder / "model"))


def build():
    """conv1 (3x3, RGB -> 4) then a dense `fc` on a flattened 2x2x4 map."""
    inp = keras.Input((2, 2, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv1")(inp)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(3, name="fc")(x)
    return keras.Model(inp, x)


def name_map(name):
    """backbone-stripped names like 'conv/w/.ATTRIBUTES/VARIABLE_VALUE' -> 'conv1/kernel'."""
    parts = name[: -len(SUFFIX)].split("/")
    if not name.endswith(SUFFIX) or len(parts) != 2:
        return None  # step, save_counter
    scope, var = parts
    layer = {"conv": "conv1", "fc": "fc"}[scope]
    return f"{layer}/{ {'w': 'kernel', 'b': 'bias'}[var] }"


def snapshot(model):
    return [w.numpy().copy() for w in model.weights]


def test_list_variables(ckpt):
    listed = {name: (shape, dtype) for name, shape, dtype in list_checkpoint_variables(ckpt)}
    assert listed["backbone/conv/w" + SUFFIX] == ((3, 3, 3, 4), "float32")
    assert listed["backbone/fc/b" + SUFFIX] == ((3,), "float32")
    assert listed["step" + SUFFIX] == ((), "int64")
    assert "_CHECKPOINTABLE_OBJECT_GRAPH" not in listed
    # The folder and the .index file resolve to the same checkpoint.
    assert list_checkpoint_variables(os.path.dirname(ckpt)) == list_checkpoint_variables(ckpt)
    assert resolve_checkpoint(ckpt + ".index") == ckpt


def test_read_variable(ckpt):
    np.testing.assert_array_equal(read_checkpoint_variable(ckpt, "backbone/fc/w" + SUFFIX), FC_K)
    with pytest.raises(KeyError, match="nope"):
        read_checkpoint_variable(ckpt, "nope")


def test_load_through_callable_with_reshape(ckpt):
    model = build()
    report = load_tf_checkpoint(model, ckpt, name_map, strip_prefix="backbone/", reshape=True)
    assert sorted(report.loaded) == ["conv1/bias", "conv1/kernel", "fc/bias", "fc/kernel"]
    assert report.reshaped == ["fc/kernel"]
    assert report.unused_in_file == ["save_counter" + SUFFIX, "step" + SUFFIX]
    assert report.missing_in_file == []
    np.testing.assert_array_equal(model.get_layer("conv1").kernel.numpy(), CONV_K)
    fc = model.get_layer("fc").kernel.numpy()
    assert fc.shape == (16, 3)
    assert fc[(1 * 2 + 0) * 4 + 3, 2] == FC_K[1, 0, 3, 2]  # row-major flatten of [2, 2, 4]


def test_load_through_dict_with_add_prefix_and_flip(ckpt):
    model = build()
    mapping = {"net/backbone/conv/w" + SUFFIX: "conv1/kernel:0",
               "net/backbone/conv/b" + SUFFIX: "conv1/bias"}
    report = load_tf_checkpoint(model, ckpt, mapping, add_prefix="net/", flip_channels=True)
    assert sorted(report.loaded) == ["conv1/bias", "conv1/kernel"]
    assert report.adapted == ["conv1/kernel"]
    assert sorted(report.missing_in_file) == ["fc/bias", "fc/kernel"]
    got = model.get_layer("conv1").kernel.numpy()
    np.testing.assert_array_equal(got[:, :, 0], CONV_K[:, :, 2])
    np.testing.assert_array_equal(got[:, :, 2], CONV_K[:, :, 0])


def test_mismatch_raises_then_skips(ckpt):
    model = build()
    before = snapshot(model)
    pattern = r"fc/kernel: file \[\(2, 2, 4, 3\)\] vs model \[\(16, 3\)\]"
    with pytest.raises(ValueError, match=pattern):
        load_tf_checkpoint(model, ckpt, name_map, strip_prefix="backbone/")
    for w, v in zip(model.weights, before, strict=True):
        np.testing.assert_array_equal(w.numpy(), v)
    report = load_tf_checkpoint(model, ckpt, name_map, strip_prefix="backbone/",
                                skip_mismatch=True)
    assert report.mismatched == [("fc/kernel", ((2, 2, 4, 3),), ((16, 3),))]
    np.testing.assert_array_equal(model.get_layer("fc").kernel.numpy(), before[2])
    np.testing.assert_array_equal(model.get_layer("fc").bias.numpy(), FC_B)


def test_dry_run(ckpt):
    model = build()
    before = snapshot(model)
    report = load_tf_checkpoint(model, ckpt, name_map, strip_prefix="backbone/", reshape=True,
                                dry_run=True)
    assert len(report.loaded) == 4 and report.dry_run
    for w, v in zip(model.weights, before, strict=True):
        np.testing.assert_array_equal(w.numpy(), v)


def test_identity_map_leaves_foreign_names_unused(ckpt):
    report = load_tf_checkpoint(build(), ckpt, None)
    assert report.loaded == [] and len(report.unused_in_file) == 6


def test_bad_maps(ckpt):
    with pytest.raises(ValueError, match="maps to 'conv9/kernel', which is not a model weight"):
        load_tf_checkpoint(build(), ckpt, lambda n: "conv9/kernel" if "conv/w" in n else None)
    with pytest.raises(ValueError, match="target of both"):
        load_tf_checkpoint(build(), ckpt, lambda n: "conv1/bias" if n.endswith(SUFFIX) and
                           "/b/" in n else None)
    with pytest.raises(TypeError, match="name_map"):
        load_tf_checkpoint(build(), ckpt, 42)


def test_missing_and_damaged_checkpoints(tmp_path, ckpt):
    with pytest.raises(FileNotFoundError):
        list_checkpoint_variables(str(tmp_path / "none"))
    with pytest.raises(FileNotFoundError, match="No TF checkpoint found in folder"):
        list_checkpoint_variables(str(tmp_path))
    bad = tmp_path / "bad"
    (tmp_path / "bad.index").write_bytes(b"garbage" * 10)
    with pytest.raises(ValueError, match="not a readable TF checkpoint"):
        list_checkpoint_variables(str(bad))
