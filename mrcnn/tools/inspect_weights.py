"""Describe a weights file (Keras-2 HDF5 or TF checkpoint) and diff it against a model."""

from __future__ import annotations

import importlib
import os
import tempfile
from typing import Any

import h5py

from mrcnn.checkpoint.h5_format import open_h5_weights, read_h5_extras
from mrcnn.checkpoint.report import LoadReport


def file_kind(path: str | os.PathLike) -> str:
    """"h5" for an HDF5 file, "checkpoint" for a TF checkpoint (prefix, index or folder).

    Raises:
        FileNotFoundError: Nothing exists at `path` (nor `path + ".index"`).
    """
    p = os.fspath(path)
    if os.path.isfile(p) and h5py.is_hdf5(p):
        return "h5"
    if os.path.isdir(p) or os.path.exists(p + ".index") or p.endswith(".index"):
        return "checkpoint"
    if not os.path.exists(p):
        raise FileNotFoundError(f"No weights file or checkpoint at {p}")
    raise ValueError(f"{p}: neither an HDF5 file nor a TF checkpoint")


def _fmt_shape(shape: Any) -> str:
    return "MISSING" if shape is None else "(" + ", ".join(str(d) for d in shape) + ")"


def describe_h5(path: str | os.PathLike, show_all: bool = False) -> str:
    """A listing of a Keras-2 weights file: one line per weighted layer, then its weights.

    Args:
        path: The `.h5` file.
        show_all: Also list layers without weights.

    Returns:
        Lines: a header, then `layer` and indented `weight_name  shape  dtype` lines.
    """
    lines = []
    with open_h5_weights(path) as wf:
        weighted = wf.weighted_groups
        n_values = sum(1 for g in weighted for _ in g.weight_names)
        lines.append(f"{wf.path}: Keras-2 HDF5 weights (backend={wf.backend}, "
                     f"keras_version={wf.keras_version}): {len(wf.layer_names)} layers, "
                     f"{len(weighted)} with weights, {n_values} weights")
        for group in wf.groups:
            if not group.weight_names:
                if show_all:
                    lines.append(f"{group.name}  (no weights)")
                continue
            lines.append(group.name)
            for name, shape, dtype in zip(group.weight_names, group.shapes, group.dtypes,
                                          strict=True):
                lines.append(f"    {name}  {_fmt_shape(shape)}  {dtype or ''}".rstrip())
    extras = read_h5_extras(path)
    if extras["epoch"] is not None or extras["config"] is not None or extras["has_optimizer"]:
        lines.append(f"mrcnn extras: epoch={extras['epoch']}, config="
                     f"{'yes' if extras['config'] is not None else 'no'}, "
                     f"optimizer state={'yes' if extras['has_optimizer'] else 'no'}")
    return "\n".join(lines)


def describe_checkpoint(path: str | os.PathLike) -> str:
    """A listing of a TF checkpoint: one `name  shape  dtype` line per variable."""
    from mrcnn.checkpoint.tf_checkpoint import list_checkpoint_variables, resolve_checkpoint

    variables = list_checkpoint_variables(path)
    lines = [f"{resolve_checkpoint(path)}: TF checkpoint, {len(variables)} variables"]
    lines.extend(f"{name}  {_fmt_shape(shape)}  {dtype}" for name, shape, dtype in variables)
    return "\n".join(lines)


def load_config_class(spec: str) -> type:
    """Import `"module.path:ClassName"` and return the class.

    Raises:
        ValueError: `spec` is not of that form or names nothing importable.
    """
    module_name, sep, class_name = spec.partition(":")
    if not sep or not module_name or not class_name:
        raise ValueError(f"--config must look like 'module.path:ClassName', got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ValueError(f"--config {spec!r}: cannot import {module_name!r}: {err}") from err
    cls = getattr(module, class_name, None)
    if not isinstance(cls, type):
        raise ValueError(f"--config {spec!r}: {module_name} has no class {class_name!r}")
    return cls


def diff_against_config(path: str | os.PathLike, config_spec: str) -> LoadReport:
    """Dry-run a by-name load of `path` into the training model built from a config class.

    Builds `mrcnn.model.MaskRCNN(mode="training", config=cls(), model_dir=<temp dir>)` and
    reports what would load, mismatch, be missing or stay unused. Nothing is assigned.
    """
    from mrcnn import model as modellib  # built by the model module; imported only when asked

    cls = load_config_class(config_spec)
    with tempfile.TemporaryDirectory() as model_dir:
        mrcnn = modellib.MaskRCNN(mode="training", config=cls(), model_dir=model_dir)
        keras_model = getattr(mrcnn, "keras_model", mrcnn)
        if file_kind(path) == "h5":
            from mrcnn.checkpoint.loading import load_weights_h5

            return load_weights_h5(keras_model, path, by_name=True, skip_mismatch=True,
                                   dry_run=True)
        from mrcnn.checkpoint.tf_checkpoint import load_tf_checkpoint

        return load_tf_checkpoint(keras_model, path, None, skip_mismatch=True, dry_run=True)


def inspect_weights(path: str | os.PathLike, config_spec: str | None = None,
                    show_all: bool = False) -> str:
    """The full `inspect` text: the file listing, plus the diff when a config is given."""
    kind = file_kind(path)
    text = describe_h5(path, show_all) if kind == "h5" else describe_checkpoint(path)
    if config_spec:
        text += "\n\nDiff against the model of " + config_spec + ":\n"
        text += str(diff_against_config(path, config_spec))
    return text
