"""Tests for mrcnn.checkpoint.full_model: whole models with custom layers in one .keras file."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import pytest

from mrcnn.checkpoint import load_model, save_model


@keras.saving.register_keras_serializable(package="test_weights_full_model")
class Scale(keras.layers.Layer):
    """Registered custom layer with a weight and a constructor argument."""

    def __init__(self, init=2.0, **kwargs):
        super().__init__(**kwargs)
        self.init = init

    def build(self, input_shape):
        self.scale = self.add_weight(shape=(input_shape[-1],), name="scale",
                                     initializer=keras.initializers.Constant(self.init))

    def call(self, x):
        return x * self.scale

    def get_config(self):
        return {**super().get_config(), "init": self.init}


class Shift(keras.layers.Layer):
    """Unregistered custom layer: needs custom_objects to load."""

    def __init__(self, offset=1.0, **kwargs):
        super().__init__(**kwargs)
        self.offset = offset

    def call(self, x):
        return x + self.offset

    def get_config(self):
        return {**super().get_config(), "offset": self.offset}


def build():
    inp = keras.Input((4,))
    x = keras.layers.Dense(3, name="fc")(inp)
    x = Scale(0.5, name="scale")(x)
    x = Shift(3.0, name="shift")(x)
    return keras.Model(inp, x, name="tiny")


def test_round_trip_with_custom_layers(tmp_path):
    model = build()
    model.get_layer("scale").scale.assign(np.array([1.0, -2.0, 3.0], "float32"))
    path = str(tmp_path / "tiny.keras")
    save_model(model, path)
    assert os.listdir(tmp_path) == ["tiny.keras"]  # no temporary file left behind
    loaded = load_model(path, custom_objects={"Shift": Shift})
    assert isinstance(loaded.get_layer("scale"), Scale)
    assert loaded.get_layer("shift").offset == 3.0
    x = np.arange(8, dtype="float32").reshape(2, 4)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-6)
    # Golden value: fc output * [1, -2, 3] + 3.
    fc = x @ model.get_layer("fc").kernel.numpy() + model.get_layer("fc").bias.numpy()
    np.testing.assert_allclose(loaded.predict(x, verbose=0), fc * [1, -2, 3] + 3, rtol=1e-5)


def test_overwrite_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "m.keras"
    path.write_bytes(b"old")
    model = build()

    def boom(*args, **kwargs):
        raise RuntimeError("interrupted")

    monkeypatch.setattr(model, "save", boom)
    with pytest.raises(RuntimeError, match="interrupted"):
        save_model(model, str(path))
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["m.keras"]


def test_bad_inputs(tmp_path):
    with pytest.raises(ValueError, match="must end in '.keras'"):
        save_model(build(), str(tmp_path / "m.h5"))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        save_model(build(), str(tmp_path / "no" / "m.keras"))
    with pytest.raises(FileNotFoundError, match="none.keras"):
        load_model(str(tmp_path / "none.keras"))
    junk = tmp_path / "junk.keras"
    junk.write_text("junk")
    with pytest.raises(ValueError, match="not a .keras model archive"):
        load_model(str(junk))
    path = str(tmp_path / "m.keras")
    save_model(build(), path)
    with pytest.raises(ValueError, match="custom_objects"):
        load_model(path)  # Shift is not registered
