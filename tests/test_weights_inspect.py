"""Tests for `mrcnn inspect-weights` on files generated from matterport's layouts."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import json
import subprocess
import sys
import types

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf
from shared_fixtures import FIXTURES

import mrcnn
from mrcnn.tools import inspect_weights as winspect
from mrcnn.tools.cli import main as cli_main
from mrcnn.tools.common import UsageError, load_config_class


def main(argv):
    """The inspect-weights subcommand of `mrcnn` (argv as the old `python -m mrcnn.weights`)."""
    return cli_main(["inspect-weights"] + argv[1:])

ROOT = os.path.join(os.path.dirname(__file__), "..")
SMALL = 4096  # weights up to this many values get random data; larger ones stay unallocated


def fixture_path(name):
    return os.path.join(FIXTURES, name)


def write_layout_h5(layout, path):
    """Write a Keras-2 weights file with h5py straight from a layout JSON (random values)."""
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = np.array([n.encode() for n in layout["attrs"]["layer_names"]])
        f.attrs["backend"] = np.bytes_(b"tensorflow")
        f.attrs["keras_version"] = np.bytes_(layout["attrs"].get("keras_version", "2.0.8")
                                             .encode())
        for layer in layout["layers"]:
            g = f.create_group(layer["name"])
            g.attrs["weight_names"] = np.array([n.encode() for n in layer["weight_names"]])
            for w in layer["weights"]:
                if np.prod(w["shape"]) <= SMALL:
                    g.create_dataset(w["name"], data=rng.normal(size=w["shape"])
                                     .astype(w["dtype"]))
                else:  # lazily allocated: keeps the test file small and fast
                    g.create_dataset(w["name"], shape=tuple(w["shape"]), dtype=w["dtype"])


def expected_lines(layout):
    lines = []
    for layer in layout["layers"]:
        if layer["weights"]:
            lines.append(layer["name"])
            for w in layer["weights"]:
                shape = "(" + ", ".join(str(d) for d in w["shape"]) + ")"
                lines.append(f"    {w['name']}  {shape}  {w['dtype']}")
    return lines


def run_cli(*args):
    env = dict(os.environ, PYTHONPATH=os.path.abspath(ROOT), TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run([sys.executable, "-m", "mrcnn", "inspect-weights", *args],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)


def test_cli_lists_matterport_coco_layout(tmp_path):
    layout = json.load(open(fixture_path("matterport_coco_layout.json")))
    path = str(tmp_path / "mask_rcnn_coco.h5")
    write_layout_h5(layout, path)
    result = run_cli(path)
    assert result.returncode == 0, result.stderr
    out = result.stdout.splitlines()
    weighted = [layer for layer in layout["layers"] if layer["weights"]]
    n_values = sum(len(layer["weights"]) for layer in weighted)
    assert out[0].endswith(f"{len(layout['layers'])} layers, {len(weighted)} with weights, "
                           f"{n_values} weights")
    assert out[1:] == expected_lines(layout)
    assert "    rpn_conv_shared/kernel:0  (3, 3, 256, 512)  float32" in out
    assert "    mrcnn_class_logits/kernel:0  (1024, 81)  float32" in out


def test_inspect_lists_matterport_shapes_r50_layout(tmp_path, capsys):
    layout = json.load(open(fixture_path("matterport_shapes_r50_layout.json")))
    path = str(tmp_path / "shapes.h5")
    write_layout_h5(layout, path)
    assert main(["inspect", path]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1:] == expected_lines(layout)
    assert main(["inspect", path, "--all"]) == 0
    out_all = capsys.readouterr().out.splitlines()
    assert "input_image  (no weights)" in out_all and "anchors  (no weights)" in out_all


def test_inspect_marks_missing_datasets_and_extras(tmp_path, capsys):
    path = str(tmp_path / "w.h5")
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = np.array([b"conv1"])
        g = f.create_group("conv1")
        g.attrs["weight_names"] = np.array([b"conv1/kernel:0", b"conv1/bias:0"])
        g.create_dataset("conv1/kernel:0", data=np.zeros((1, 1, 3, 2), "float32"))
        f.create_group("mrcnn_extras").attrs["epoch"] = 3
    assert main(["inspect", path]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1:] == ["conv1", "    conv1/kernel:0  (1, 1, 3, 2)  float32",
                       "    conv1/bias:0  MISSING",
                       "mrcnn extras: epoch=3, config=no, optimizer state=no"]


def test_cli_lists_tf_checkpoint_from_layout(tmp_path):
    """A TF checkpoint holding the small weights of the shapes layout, under their names."""
    layout = json.load(open(fixture_path("matterport_shapes_r50_layout.json")))
    rng = np.random.default_rng(0)
    variables, expected = {}, []
    for layer in layout["layers"]:
        for w in layer["weights"]:
            if np.prod(w["shape"]) <= SMALL and layer["name"].startswith("mrcnn_"):
                name = w["name"][: -len(":0")]
                variables[name] = tf.Variable(rng.normal(size=w["shape"]).astype(w["dtype"]),
                                              name=name)
                shape = "(" + ", ".join(str(d) for d in w["shape"]) + ")"
                expected.append(f"{name}  {shape}  {w['dtype']}")
    assert len(expected) > 10
    prefix = str(tmp_path / "ckpt" / "model")
    # A name-keyed TF1-style checkpoint (what tf.compat.v1 Saver writes).
    tf.compat.v1.train.Saver(var_list=variables).save(None, prefix, write_meta_graph=False)
    result = run_cli(str(tmp_path / "ckpt"))
    assert result.returncode == 0, result.stderr
    out = result.stdout.splitlines()
    assert out[0] == f"{prefix}: TF checkpoint, {len(expected)} variables"
    assert out[1:] == sorted(expected)


def test_cli_errors(tmp_path, capsys):
    bad = tmp_path / "bad.h5"
    bad.write_text("hello")
    # The mrcnn command's status for bad input is 2.
    assert main(["inspect", str(bad)]) == 2
    assert "neither an HDF5 file nor a TF checkpoint" in capsys.readouterr().err
    assert main(["inspect", str(tmp_path / "none.h5")]) == 2
    assert "No weights file or checkpoint" in capsys.readouterr().err
    with pytest.raises(FileNotFoundError, match="No weights file"):
        winspect.describe_weights(tmp_path / "none.h5")


def write_small_h5(path):
    """conv1 (matches the stand-in model), mrcnn_class_logits (81 classes: mismatches) and a
    layer the model lacks; input_image has no weights."""
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = np.array([b"input_image", b"conv1", b"mrcnn_class_logits",
                                           b"old_layer"])
        f.create_group("input_image").attrs["weight_names"] = np.zeros((0,), "S1")
        for name, shapes in [("conv1", [(1, 1, 3, 2), (2,)]),
                             ("mrcnn_class_logits", [(2, 81), (81,)]),
                             ("old_layer", [(2, 2), (2,)])]:
            g = f.create_group(name)
            names = [f"{name}/kernel:0", f"{name}/bias:0"]
            g.attrs["weight_names"] = np.array([n.encode() for n in names])
            for n, s in zip(names, shapes, strict=True):
                g.create_dataset(n, data=np.ones(s, "float32"))


def small_model():
    inp = keras.Input((4, 4, 3))
    x = keras.layers.Conv2D(2, 1, name="conv1")(inp)
    x = keras.layers.Dense(5, name="mrcnn_class_logits")(x)
    x = keras.layers.Dense(2, name="new_layer")(x)
    return keras.Model(inp, x)


def test_diff_against_model_is_a_dry_run(tmp_path):
    path = str(tmp_path / "w.h5")
    write_small_h5(path)
    model = small_model()
    before = [w.numpy().copy() for w in model.weights]
    report = winspect.diff_against_model(path, model)
    assert report.loaded == ["conv1"]
    assert [m[0] for m in report.mismatched] == ["mrcnn_class_logits"]
    assert report.missing_in_file == ["new_layer"] and report.unused_in_file == ["old_layer"]
    for w, v in zip(model.weights, before, strict=True):
        np.testing.assert_array_equal(w.numpy(), v)


def test_config_errors_come_from_the_one_config_loader(tmp_path, capsys):
    """inspect-weights --config reads its class as every other subcommand does."""
    path = str(tmp_path / "w.h5")
    write_small_h5(path)
    for spec, message in [("mrcnn.config.Config", "must look like 'module.path:ClassName'"),
                          ("mrcnn.config:Nope", "no Config subclass 'Nope'"),
                          ("mrcnn.no_such_module:Config", "cannot import"),
                          (str(tmp_path / "missing.py") + ":X", "not found")]:
        assert main(["inspect", path, "--config", spec]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
        with pytest.raises(UsageError, match=message.replace("(", r"\(")):
            load_config_class(spec)


def test_config_diff_uses_dry_run(tmp_path, monkeypatch, capsys):
    """--config builds MaskRCNN(mode="training", ...) and prints the dry-run diff.

    The full network is too slow for this unit test: a stand-in MaskRCNN with a tiny model
    takes the place of mrcnn.model here.
    """
    built = {}

    class FakeMaskRCNN:
        def __init__(self, mode, config, model_dir):
            built.update(mode=mode, config=type(config).__name__, model_dir=model_dir,
                         num_classes=config.NUM_CLASSES, name=config.NAME)
            self.keras_model = small_model()
            self.before = [w.numpy().copy() for w in self.keras_model.weights]
            built["model"] = self

    fake = types.ModuleType("mrcnn.model")
    fake.MaskRCNN = FakeMaskRCNN
    monkeypatch.setitem(sys.modules, "mrcnn.model", fake)
    monkeypatch.setattr(mrcnn, "model", fake, raising=False)
    path = str(tmp_path / "w.h5")
    write_small_h5(path)
    # A config file and --set overrides, as for the other subcommands.
    (tmp_path / "myconf.py").write_text(
        "from mrcnn.config import Config\nclass Mine(Config):\n    NAME = 'mine'\n")
    assert main(["inspect", path, "--config", str(tmp_path / "myconf.py") + ":Mine",
                 "--set", "NUM_CLASSES=5"]) == 0
    assert (built["config"], built["name"], built["num_classes"]) == ("Mine", "mine", 5)
    capsys.readouterr()
    assert main(["inspect", path, "--config", "mrcnn.config:Config"]) == 0
    out = capsys.readouterr().out
    assert built["mode"] == "training" and built["config"] == "Config"
    assert "would load 1" in out and "loaded (1): conv1" in out
    assert "mismatch mrcnn_class_logits: file [(2, 81), (81,)] vs model [(2, 5), (5,)]" in out
    assert "missing in file (1): new_layer" in out and "unused in file (1): old_layer" in out
    model = built["model"]
    for w, v in zip(model.keras_model.weights, model.before, strict=True):
        np.testing.assert_array_equal(w.numpy(), v)
