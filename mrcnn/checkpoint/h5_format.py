"""Read and write the Keras-2 HDF5 weights layout (matterport's `mask_rcnn_*.h5` files).

Layout: root attrs `layer_names` (every layer, in model order), `backend`, `keras_version`; one
group per layer with attr `weight_names` (ordered, e.g. `conv1/kernel:0`) naming datasets inside
the group. A full-model save nests the same under a `model_weights` group. Attributes may be
stored as bytes or str and, when large, split into chunks `name0`, `name1`, ...

We write byte-string attributes (what Keras 2.0-2.2 expects) and `keras_version = "2.15.0"`,
plus an optional `mrcnn_extras` group (epoch, config JSON, metadata JSON such as the class
names and the training state, optimizer state) that Keras-2 readers never look at because it is
not listed in `layer_names`.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import h5py
import numpy as np

from mrcnn.checkpoint.naming import model_entries
from mrcnn.fileio import atomic_write

logger = logging.getLogger(__name__)

KERAS_VERSION = "2.15.0"  # written to keras_version: a Keras-2 version all Keras-2 readers accept
EXTRAS_GROUP = "mrcnn_extras"
OPTIMIZER_GROUP = "optimizer"
# HDF5 refuses object headers above 64 KiB; Keras 2 splits larger attributes into chunks.
HDF5_OBJECT_HEADER_LIMIT = 64512


def _decode(value: Any) -> str:
    if isinstance(value, bytes | np.bytes_):
        return value.decode("utf8")
    return str(value)


def read_str_list_attr(obj: Any, name: str) -> list[str] | None:
    """Read a list-of-strings attribute (bytes or str, whole or chunked); None if absent."""
    attrs = obj.attrs
    if name in attrs:
        return [_decode(v) for v in np.atleast_1d(attrs[name])]
    if f"{name}0" not in attrs:
        return None
    out: list[str] = []
    k = 0
    while f"{name}{k}" in attrs:
        out.extend(_decode(v) for v in np.atleast_1d(attrs[f"{name}{k}"]))
        k += 1
    return out


def read_str_attr(obj: Any, name: str) -> str | None:
    """Read a scalar string attribute stored as bytes or str; None if absent."""
    if name not in obj.attrs:
        return None
    return _decode(obj.attrs[name])


def write_str_list_attr(obj: Any, name: str, values: list[str]) -> None:
    """Write a list of strings as fixed-length bytes, chunked above the HDF5 header limit."""
    encoded = [v.encode("utf8") for v in values]
    if not encoded:
        obj.attrs[name] = np.zeros((0,), dtype="S1")
        return
    data = np.array(encoded, dtype=f"S{max(1, max(len(v) for v in encoded))}")
    n_chunks = 1
    while data.nbytes / n_chunks > HDF5_OBJECT_HEADER_LIMIT:
        n_chunks += 1
    if n_chunks == 1:
        obj.attrs[name] = data
        return
    for k, chunk in enumerate(np.array_split(data, n_chunks)):
        obj.attrs[f"{name}{k}"] = chunk


@dataclass
class GroupInfo:
    """What the file holds for one layer group.

    Attributes:
        name: Group (layer) name.
        weight_names: Dataset names in stored order.
        shapes: One shape per weight (None where the dataset is missing).
        dtypes: One dtype string per weight (None where the dataset is missing).
        missing: Weight names listed in `weight_names` whose dataset is absent.
    """

    name: str
    weight_names: list[str] = field(default_factory=list)
    shapes: list[tuple[int, ...] | None] = field(default_factory=list)
    dtypes: list[str | None] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


class H5WeightsFile:
    """An open Keras-2 weights file: layout metadata plus on-demand reading of values.

    Use `open_h5_weights(path)` rather than constructing it directly.
    """

    def __init__(self, path: str, handle: h5py.File):
        self.path = path
        self._file = handle
        root = handle["model_weights"] if "model_weights" in handle else handle
        self._root = root
        names = read_str_list_attr(root, "layer_names")
        if names is None:
            hint = (" It looks like a Keras 3 `.weights.h5` file; load it with model.load_weights."
                    if "layers" in root or "_layer_checkpoint_dependencies" in root else "")
            raise ValueError(f"{path}: not a Keras-2 weights file (no 'layer_names' attribute)."
                             + hint)
        self.layer_names: list[str] = names
        self.backend = read_str_attr(root, "backend")
        self.keras_version = read_str_attr(root, "keras_version")
        self.groups: list[GroupInfo] = [self._scan(name) for name in names]
        self.by_name: dict[str, GroupInfo] = {g.name: g for g in self.groups}

    def _scan(self, name: str) -> GroupInfo:
        if name not in self._root:
            raise ValueError(f"{self.path}: layer {name!r} is listed in layer_names but has no "
                             "group in the file")
        group = self._root[name]
        weight_names = read_str_list_attr(group, "weight_names") or []
        info = GroupInfo(name, list(weight_names))
        for wname in weight_names:
            obj = group.get(wname)
            if isinstance(obj, h5py.Dataset):
                info.shapes.append(tuple(int(d) for d in obj.shape))
                info.dtypes.append(str(obj.dtype))
            else:
                info.shapes.append(None)
                info.dtypes.append(None)
                info.missing.append(wname)
        return info

    @property
    def weighted_groups(self) -> list[GroupInfo]:
        """Groups with at least one weight, in `layer_names` order (weightless ones ignored)."""
        return [g for g in self.groups if g.weight_names]

    def check_complete(self, name: str) -> None:
        """Raise ValueError if any dataset listed for group `name` is missing."""
        info = self.by_name[name]
        if info.missing:
            raise ValueError(f"{self.path}: layer {name!r}: datasets missing from the group: "
                             f"{info.missing} (listed in weight_names {info.weight_names})")

    def read(self, name: str, index: int) -> np.ndarray:
        """Read weight `index` of group `name` as a numpy array."""
        info = self.by_name[name]
        wname = info.weight_names[index]
        try:
            return np.asarray(self._root[name][wname][()])
        except (OSError, KeyError, RuntimeError) as err:
            raise ValueError(f"{self.path}: layer {name!r}: cannot read dataset {wname!r} "
                             f"(file damaged or truncated?): {err}") from err

    def close(self) -> None:
        self._file.close()


@contextmanager
def open_h5_weights(filepath: str | os.PathLike) -> Iterator[H5WeightsFile]:
    """Open a Keras-2 HDF5 weights file for reading.

    Raises:
        FileNotFoundError: `filepath` does not exist.
        ValueError: The file is not HDF5, is truncated, or lacks the Keras-2 layout.
    """
    path = os.fspath(filepath)
    if not os.path.exists(path):
        raise FileNotFoundError(f"Weights file not found: {path}")
    if not h5py.is_hdf5(path):
        raise ValueError(f"{path}: not an HDF5 file")
    try:
        handle = h5py.File(path, "r")
    except OSError as err:
        raise ValueError(f"{path}: cannot open as HDF5 (truncated or damaged?): {err}") from err
    try:
        try:
            weights_file = H5WeightsFile(path, handle)
        except (OSError, KeyError, RuntimeError) as err:
            raise ValueError(f"{path}: damaged HDF5 weights file: {err}") from err
        yield weights_file
    finally:
        handle.close()


def _json_default(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def _write_layout(handle: h5py.File, model: Any) -> int:
    entries = model_entries(model)
    write_str_list_attr(handle, "layer_names", [e.name for e in entries])
    handle.attrs["backend"] = np.bytes_(b"tensorflow")  # fixed-length: reads back as bytes
    handle.attrs["keras_version"] = np.bytes_(KERAS_VERSION.encode("utf8"))
    n_weights = 0
    for entry in entries:
        group = handle.create_group(entry.name)
        write_str_list_attr(group, "weight_names", entry.weight_names)
        for wname, variable in zip(entry.weight_names, entry.variables, strict=True):
            value = np.asarray(variable.numpy() if hasattr(variable, "numpy") else variable)
            group.create_dataset(wname, data=value)
            n_weights += 1
    return n_weights


def _write_optimizer(group: h5py.Group, optimizer: Any) -> None:
    variables = list(getattr(optimizer, "variables", []))
    write_str_list_attr(group, "variable_paths",
                        [str(getattr(v, "path", v.name)) for v in variables])
    group.attrs["optimizer_class"] = np.bytes_(type(optimizer).__name__.encode("utf8"))
    for k, variable in enumerate(variables):
        group.create_dataset(str(k), data=np.asarray(variable.numpy()))


# HDF5 object headers, attributes and the JSON extras, on top of the raw arrays.
_H5_OVERHEAD_BYTES = 2**20


def _variable_nbytes(variable: Any) -> int:
    """Bytes of a variable's values, from its shape and dtype (no copy)."""
    dtype = getattr(variable, "dtype", None)
    try:
        itemsize = np.dtype(getattr(dtype, "name", dtype)).itemsize
    except TypeError:
        itemsize = 4  # e.g. bfloat16 without ml_dtypes registered: an upper bound is enough
    return int(np.prod(tuple(variable.shape), dtype=np.int64)) * itemsize


def expected_h5_bytes(model: Any, optimizer: Any = None) -> int:
    """About how large `save_weights_h5(model, ..., optimizer=optimizer)` makes the file."""
    total = sum(_variable_nbytes(v) for e in model_entries(model) for v in e.variables)
    if optimizer is not None:
        total += sum(_variable_nbytes(v) for v in getattr(optimizer, "variables", []))
    return total + _H5_OVERHEAD_BYTES


def save_weights_h5(model: Any, filepath: str | os.PathLike, *, epoch: int | None = None,
                    config: dict | None = None, optimizer: Any = None,
                    metadata: dict | None = None) -> None:
    """Write a model's weights in the Keras-2 HDF5 layout, atomically.

    The file loads with `tf_keras`/Keras-2 `model.load_weights(path, by_name=True)` and with
    matterport's `MaskRCNN.load_weights`. It is written to a temporary file in the same folder
    and renamed over `filepath`, so a crash never leaves a half-written checkpoint.

    Args:
        model: A built Keras 3 model.
        filepath: Destination (`.h5`).
        epoch: Optional epoch number stored in the `mrcnn_extras` group.
        config: Optional dict (e.g. `Config.to_dict()`) stored there as JSON.
        optimizer: Optional built Keras 3 optimizer whose variables are stored there.
        metadata: Optional JSON-able dict stored there (the class names, detection settings
            and training state a checkpoint carries: `mrcnn.engine.train_loop`).

    Raises:
        TypeError: `config` or `metadata` is not a dict.
        FileNotFoundError: The destination folder does not exist.
        OSError: (errno ENOSPC) the destination's disk has less free space than the file
            needs; nothing is written and an existing file at `filepath` is kept.
    """
    if config is not None and not isinstance(config, dict):
        raise TypeError(f"config must be a dict (e.g. Config.to_dict()), got {type(config)}")
    if metadata is not None and not isinstance(metadata, dict):
        raise TypeError(f"metadata must be a dict, got {type(metadata)}")
    path = os.fspath(filepath)
    with atomic_write(path, suffix=".h5",
                      expected_bytes=expected_h5_bytes(model, optimizer)) as tmp:
        with h5py.File(tmp, "w") as handle:
            n_weights = _write_layout(handle, model)
            if any(v is not None for v in (epoch, config, optimizer, metadata)):
                extras = handle.create_group(EXTRAS_GROUP)
                if epoch is not None:
                    extras.attrs["epoch"] = int(epoch)
                if config is not None:
                    extras.attrs["config_json"] = json.dumps(config, default=_json_default)
                if metadata is not None:
                    extras.attrs["metadata_json"] = json.dumps(metadata, default=_json_default)
                if optimizer is not None:
                    _write_optimizer(extras.create_group(OPTIMIZER_GROUP), optimizer)
    logger.info("Saved %d weights to %s", n_weights, path)


def read_h5_extras(filepath: str | os.PathLike) -> dict:
    """Read the optional `mrcnn_extras` group of a weights file.

    Returns:
        {"epoch": int or None, "config": dict or None, "metadata": dict or None,
        "has_optimizer": bool}; all empty values for a file written by Keras 2 or matterport.

    Raises:
        FileNotFoundError / ValueError: as `open_h5_weights`.
    """
    out: dict[str, Any] = {"epoch": None, "config": None, "metadata": None,
                           "has_optimizer": False}
    with open_h5_weights(filepath) as wf:
        handle = wf._file
        if EXTRAS_GROUP not in handle:
            return out
        extras = handle[EXTRAS_GROUP]
        if "epoch" in extras.attrs:
            out["epoch"] = int(extras.attrs["epoch"])
        for key, attr in (("config", "config_json"), ("metadata", "metadata_json")):
            text = read_str_attr(extras, attr)
            if text is None:
                continue
            try:
                out[key] = json.loads(text)
            except json.JSONDecodeError as err:
                raise ValueError(f"{wf.path}: {EXTRAS_GROUP}/{attr} is not JSON: {err}"
                                 ) from err
        out["has_optimizer"] = OPTIMIZER_GROUP in extras
    return out


def read_optimizer_arrays(filepath: str | os.PathLike) -> list[tuple[str, np.ndarray]] | None:
    """The stored optimizer variables as [(path, value)], or None when none are stored."""
    with open_h5_weights(filepath) as wf:
        handle = wf._file
        if EXTRAS_GROUP not in handle or OPTIMIZER_GROUP not in handle[EXTRAS_GROUP]:
            return None
        group = handle[EXTRAS_GROUP][OPTIMIZER_GROUP]
        paths = read_str_list_attr(group, "variable_paths") or []
        out = []
        for k, vpath in enumerate(paths):
            if str(k) not in group:
                raise ValueError(f"{wf.path}: optimizer variable {vpath!r} has no dataset")
            out.append((vpath, np.asarray(group[str(k)][()])))
        return out
