"""Read TensorFlow checkpoints (TF1 Saver or TF2 object checkpoints) into Keras 3 models.

Model weights are addressed as `"{layer}/{short}"` (the Keras-2 weight name without `:0`, so
`"conv1/kernel"`, `"rpn_conv_shared/bias"` inside the nested RPN model, `"mrcnn_class_conv1/kernel"`
for a wrapped layer) or by their Keras 3 variable path.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import tensorflow as tf

from mrcnn.checkpoint.naming import short_name, weighted_entries
from mrcnn.checkpoint.report import LoadReport, assign_all, fit_value, mismatch_error

logger = logging.getLogger(__name__)

# Bookkeeping entries of TF2 object checkpoints that are never model weights.
_SKIP = ("_CHECKPOINTABLE_OBJECT_GRAPH",)


def resolve_checkpoint(path: str | os.PathLike) -> str:
    """The checkpoint prefix for a prefix, an `.index`/`.data-*` file, or a folder.

    Raises:
        FileNotFoundError: Nothing that looks like a checkpoint is there.
    """
    p = os.fspath(path)
    if os.path.isdir(p):
        latest = tf.train.latest_checkpoint(p)
        if latest is None:
            raise FileNotFoundError(f"No TF checkpoint found in folder {p}")
        return latest
    p = re.sub(r"(\.index|\.data-\d+-of-\d+)$", "", p)
    if not os.path.exists(p + ".index") and not os.path.isfile(p):
        raise FileNotFoundError(f"TF checkpoint not found: {p} (no {p}.index)")
    return p


def _reader(path: str | os.PathLike):
    prefix = resolve_checkpoint(path)
    try:
        return prefix, tf.train.load_checkpoint(prefix)
    except (tf.errors.OpError, ValueError) as err:
        raise ValueError(f"{prefix}: not a readable TF checkpoint: {err}") from err


def list_checkpoint_variables(path: str | os.PathLike) -> list[tuple[str, tuple, str]]:
    """List a checkpoint's variables.

    Args:
        path: Checkpoint prefix, its `.index` file, or a folder (its latest checkpoint).

    Returns:
        [(name, shape, dtype name)] sorted by name, bookkeeping entries left out.

    Raises:
        FileNotFoundError: No checkpoint at `path`.
        ValueError: The checkpoint cannot be read.
    """
    _, reader = _reader(path)
    shapes = reader.get_variable_to_shape_map()
    dtypes = reader.get_variable_to_dtype_map()
    return [(name, tuple(int(d) for d in shapes[name]), dtypes[name].name)
            for name in sorted(shapes) if name not in _SKIP]


def read_checkpoint_variable(path: str | os.PathLike, name: str) -> np.ndarray:
    """Read one checkpoint variable by name.

    Raises:
        FileNotFoundError: No checkpoint at `path`.
        KeyError: The checkpoint has no variable `name`.
    """
    prefix, reader = _reader(path)
    if not reader.has_tensor(name):
        raise KeyError(f"{prefix}: no variable {name!r} in the checkpoint")
    return np.asarray(reader.get_tensor(name))


def _model_lookup(model: Any) -> tuple[dict[str, tuple[Any, str]], list[str], str | None]:
    """Map every accepted weight key to (variable, label); also all labels in order."""
    lookup: dict[str, tuple[Any, str]] = {}
    labels: list[str] = []
    first_kernel = None
    for entry in weighted_entries(model):
        for variable, keys in zip(entry.variables, entry.keys, strict=True):
            label = keys[0]
            labels.append(label)
            if first_kernel is None and short_name(variable) == "kernel":
                first_kernel = label
            for key in keys:
                lookup.setdefault(key, (variable, label))
    return lookup, labels, first_kernel


def _target(name: str, name_map: Callable | Mapping | None) -> str | None:
    if name_map is None:
        return name
    if callable(name_map):
        return name_map(name)
    if isinstance(name_map, Mapping):
        return name_map.get(name)
    raise TypeError(f"name_map must be a callable, a dict or None, got {type(name_map)}")


def load_tf_checkpoint(model: Any, path: str | os.PathLike,
                       name_map: Callable[[str], str | None] | Mapping[str, str] | None = None,
                       strip_prefix: str | None = None, add_prefix: str | None = None,
                       reshape: bool = False, flip_channels: bool = False,
                       skip_mismatch: bool = False, dry_run: bool = False) -> LoadReport:
    """Load checkpoint variables into a model through a name map.

    Each checkpoint name first loses `strip_prefix` (when it starts with it) and gains
    `add_prefix`; then `name_map` (a callable, or a dict; None means identity) turns it into a
    model weight name (`"conv1/kernel"`, a trailing `:0` is accepted) or None to skip it.
    Everything is checked before anything is assigned.

    Args:
        model: A built Keras 3 model.
        path: Checkpoint prefix, `.index` file, or folder.
        name_map: Checkpoint name (after the prefix edits) -> model weight name or None.
        strip_prefix: Scope to remove from checkpoint names.
        add_prefix: Scope to put in front of checkpoint names.
        reshape: Reshape values whose element count matches.
        flip_channels: Reverse the RGB input channels of the model's first kernel.
        skip_mismatch: Skip (and report) shape mismatches instead of raising.
        dry_run: Plan and report only.

    Returns:
        A `LoadReport` whose entries are model weight names (loaded, mismatched,
        missing_in_file) and checkpoint variable names (unused_in_file).

    Raises:
        FileNotFoundError: No checkpoint at `path`.
        ValueError: Unreadable checkpoint, a mapped name that is no model weight, two
            variables mapped to one weight, or (without `skip_mismatch`) shape mismatches.
    """
    prefix, reader = _reader(path)
    shapes = reader.get_variable_to_shape_map()
    lookup, labels, first_kernel = _model_lookup(model)
    report = LoadReport(source=prefix, dry_run=dry_run)
    pairs: list[tuple[Any, Any]] = []
    assigned: dict[str, str] = {}
    for name in sorted(shapes):
        if name in _SKIP:
            continue
        key = name
        if strip_prefix and key.startswith(strip_prefix):
            key = key[len(strip_prefix):]
        if add_prefix:
            key = add_prefix + key
        target = _target(key, name_map)
        if target is None or (name_map is None and re.sub(r":\d+$", "", target) not in lookup):
            report.unused_in_file.append(name)
            continue
        target = re.sub(r":\d+$", "", str(target))
        if target not in lookup:
            raise ValueError(f"{prefix}: checkpoint variable {name!r} maps to {target!r}, which "
                             f"is not a model weight (model weights look like {labels[:3]})")
        variable, label = lookup[target]
        if label in assigned:
            raise ValueError(f"{prefix}: model weight {label!r} is the target of both "
                             f"{assigned[label]!r} and {name!r}")
        assigned[label] = name
        value, how = fit_value(np.asarray(reader.get_tensor(name)), tuple(variable.shape),
                               reshape=reshape, adapt=False, flip=flip_channels,
                               first_kernel=label == first_kernel)
        if value is None:
            report.mismatched.append((label, (tuple(shapes[name]),), (tuple(variable.shape),)))
            continue
        pairs.append((variable, value))
        report.loaded.append(label)
        if how == "reshaped":
            report.reshaped.append(label)
        elif how == "adapted":
            report.adapted.append(label)
    report.missing_in_file.extend(lb for lb in labels if lb not in assigned)
    if report.mismatched and not skip_mismatch:
        raise mismatch_error(prefix, report.mismatched)
    if not dry_run:
        assign_all(pairs)
    report.log(logger)
    return report
