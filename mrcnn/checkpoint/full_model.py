"""Save and load a whole model (architecture, weights, custom layers) as one `.keras` file."""

from __future__ import annotations

import logging
import os
import zipfile
from typing import Any

import keras

from mrcnn.fileio import atomic_write

logger = logging.getLogger(__name__)


def save_model(model: Any, path: str | os.PathLike) -> None:
    """Save a whole model to a `.keras` file, atomically.

    Custom layers must implement `get_config` and be registered
    (`@keras.saving.register_keras_serializable`) or be passed to `load_model` as
    `custom_objects`. The model is written to a temporary file in the same folder, then
    renamed over `path`.

    Args:
        model: A Keras 3 model.
        path: Destination ending in `.keras`.

    Raises:
        ValueError: `path` does not end in `.keras` (use `save_weights_h5` for `.h5`).
        FileNotFoundError: The destination folder does not exist.
    """
    p = os.fspath(path)
    if not p.endswith(".keras"):
        raise ValueError(f"save_model writes the Keras 3 format; the path must end in '.keras', "
                         f"got {p!r} (for the Keras-2 HDF5 layout use save_weights_h5)")
    with atomic_write(p, suffix=".keras") as tmp:
        model.save(tmp)
    logger.info("Saved model %r to %s", getattr(model, "name", "?"), p)


def load_model(path: str | os.PathLike, custom_objects: dict | None = None,
               compile: bool = True) -> Any:
    """Load a model saved by `save_model` (or any `.keras` file).

    Args:
        path: The `.keras` file.
        custom_objects: {name: class or function} for custom objects that are not registered.
        compile: Restore the compiled state (optimizer, losses) when the file has one.

    Returns:
        The Keras 3 model.

    Raises:
        FileNotFoundError: `path` does not exist.
        ValueError: `path` is not a `.keras` archive or cannot be deserialized (the message
            names the file; an unknown custom layer asks for `custom_objects`).
    """
    p = os.fspath(path)
    if not os.path.exists(p):
        raise FileNotFoundError(f"Model file not found: {p}")
    if not zipfile.is_zipfile(p):
        raise ValueError(f"{p}: not a .keras model archive")
    try:
        return keras.models.load_model(p, custom_objects=custom_objects, compile=compile)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{p}: cannot load the model (pass unknown custom layers in "
                         f"custom_objects or register them): {err}") from err
