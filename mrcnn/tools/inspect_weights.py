"""Describe a weights file (Keras-2 HDF5 or TF checkpoint) and diff it against a model.

    from mrcnn.tools.inspect_weights import describe_weights, diff_against_model
    print(describe_weights("mask_rcnn_coco.h5"))
    print(diff_against_model("mask_rcnn_coco.h5", model.keras_model))   # a LoadReport

The command line is `mrcnn inspect-weights FILE [--config MODULE:CLASS --set ...]`.
"""

from __future__ import annotations

import os
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


def diff_against_model(path: str | os.PathLike, keras_model: Any) -> LoadReport:
    """Dry-run a by-name load of `path` into `keras_model`: what would load, mismatch, be
    missing or stay unused. Nothing is assigned.

    The `mrcnn inspect-weights FILE --config ...` command builds the model from the config
    (`mrcnn.tools.commands.inspect_weights`); this function only compares.

    Args:
        path: a Keras-2 `.h5` weights file or a TF checkpoint.
        keras_model: the Keras model (e.g. `MaskRCNN(...).keras_model`).

    Raises:
        FileNotFoundError: nothing at `path`.
        ValueError: `path` is neither an HDF5 file nor a TF checkpoint.
    """
    if file_kind(path) == "h5":
        from mrcnn.checkpoint.loading import load_weights_h5

        return load_weights_h5(keras_model, path, by_name=True, skip_mismatch=True,
                               dry_run=True)
    from mrcnn.checkpoint.tf_checkpoint import load_tf_checkpoint

    return load_tf_checkpoint(keras_model, path, None, skip_mismatch=True, dry_run=True)


def describe_weights(path: str | os.PathLike, show_all: bool = False) -> str:
    """The listing of a Keras-2 `.h5` file or a TF checkpoint (`describe_h5` or
    `describe_checkpoint`).

    Raises:
        FileNotFoundError: nothing at `path`.
        ValueError: `path` is neither an HDF5 file nor a TF checkpoint.
    """
    if file_kind(path) == "h5":
        return describe_h5(path, show_all)
    return describe_checkpoint(path)
