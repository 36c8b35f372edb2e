"""Load Keras-2 HDF5 weights into a Keras 3 model: plan every assignment first, then assign.

Loading by name matches file groups to top-level layers by name; loading by order pairs the
weighted groups of the file with the weighted layers of the model in sequence. Inside a group,
weights are matched by their stored names when those are the names we expect (this keeps
nested models with BatchNorm right whatever their trainable order was) and by position
otherwise, as Keras 2 did.
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any

from mrcnn.checkpoint.h5_format import GroupInfo, H5WeightsFile, open_h5_weights
from mrcnn.checkpoint.naming import (
    LayerEntry,
    is_excluded,
    normalize_exclude,
    short_name,
    weighted_entries,
)
from mrcnn.checkpoint.report import LoadReport, assign_all, fit_value, mismatch_error

logger = logging.getLogger(__name__)


def _file_order(entry: LayerEntry, group: GroupInfo) -> list[int]:
    """Index into `group.weight_names` for each model variable of `entry`."""
    stored = [re.sub(r":\d+$", "", n) for n in group.weight_names]
    index = {n: i for i, n in enumerate(stored)}
    if len(index) == len(stored):
        order = []
        for keys in entry.keys:
            hit = next((index[k] for k in keys if k in index), None)
            if hit is None:
                break
            order.append(hit)
        if len(order) == len(entry.keys) and len(set(order)) == len(order):
            return order
    return list(range(len(group.weight_names)))


class _Planner:
    """Collects (variable, value) pairs and fills the report without touching the model."""

    def __init__(self, wf: H5WeightsFile, report: LoadReport, first_layer: str | None,
                 reshape: bool, adapt: bool, flip: bool):
        self.wf = wf
        self.report = report
        self.first_layer = first_layer
        self.reshape = reshape
        self.adapt = adapt
        self.flip = flip
        self.pairs: list[tuple[Any, Any]] = []

    def match(self, entry: LayerEntry, group: GroupInfo) -> None:
        """Plan loading `group` of the file into the model layer of `entry`."""
        self.wf.check_complete(group.name)
        n_file, n_model = len(group.weight_names), len(entry.variables)
        if n_file != n_model:
            raise ValueError(
                f"{self.wf.path}: layer {entry.name!r}: weight count differs: the file group "
                f"{group.name!r} holds {n_file} weights {group.weight_names}, the model layer "
                f"has {n_model} {entry.weight_names}. Exclude it with exclude=[{entry.name!r}].")
        order = _file_order(entry, group)
        file_shapes = tuple(group.shapes[i] for i in order)
        model_shapes = tuple(tuple(int(d) for d in v.shape) for v in entry.variables)
        fitted, hows = [], set()
        for variable, i in zip(entry.variables, order, strict=True):
            first_kernel = entry.name == self.first_layer and short_name(variable) == "kernel"
            value, how = fit_value(self.wf.read(group.name, i), tuple(variable.shape),
                                   reshape=self.reshape, adapt=self.adapt, flip=self.flip,
                                   first_kernel=first_kernel)
            if value is None:
                self.report.mismatched.append((entry.name, file_shapes, model_shapes))
                return
            fitted.append((variable, value))
            hows.add(how)
        self.pairs.extend(fitted)
        self.report.loaded.append(entry.name)
        if "reshaped" in hows:
            self.report.reshaped.append(entry.name)
        if "adapted" in hows:
            self.report.adapted.append(entry.name)


def _plan_by_name(wf: H5WeightsFile, entries: list[LayerEntry], patterns: list[str],
                  planner: _Planner) -> None:
    report = planner.report
    file_groups = {g.name: g for g in wf.weighted_groups}
    used: set[str] = set()
    for entry in entries:
        if is_excluded(entry.name, patterns):
            report.excluded.append(entry.name)
            used.add(entry.name)
            continue
        group = file_groups.get(entry.name)
        if group is None:
            report.missing_in_file.append(entry.name)
            continue
        used.add(entry.name)
        planner.match(entry, group)
    report.unused_in_file.extend(g.name for g in wf.weighted_groups if g.name not in used)


def _plan_by_order(wf: H5WeightsFile, entries: list[LayerEntry], planner: _Planner) -> None:
    groups = wf.weighted_groups
    if len(groups) != len(entries):
        raise ValueError(
            f"{wf.path}: loading by order needs as many weighted layers in the file as in the "
            f"model: the file has {len(groups)}, the model has {len(entries)}. "
            "Use by_name=True to match layers by name.")
    for entry, group in zip(entries, groups, strict=True):
        planner.match(entry, group)


def load_weights_h5(model: Any, filepath: str | os.PathLike, by_name: bool = False,
                    exclude: str | list[str] | None = None, skip_mismatch: bool = False,
                    reshape: bool = False, adapt_input_channels: bool = False,
                    flip_channels: bool = False, dry_run: bool = False) -> LoadReport:
    """Load a Keras-2 HDF5 weights file (matterport's layout) into a Keras 3 model.

    Everything is checked before anything is assigned: when the load fails, every weight of
    the model is unchanged.

    Args:
        model: A built Keras 3 model.
        filepath: The `.h5` weights file (a weights-only or a full-model save).
        by_name: Match file groups to layers by name; otherwise pair weighted layers in order.
        exclude: Layer names and/or regexes (full match) to leave alone; implies `by_name`.
        skip_mismatch: Skip (and report) layers whose shapes differ instead of raising.
        reshape: Reshape a stored value when its element count matches (e.g. a 7x7 conv
            kernel `[7, 7, C, K]` into a dense kernel `[49 * C, K]`).
        adapt_input_channels: Fit an RGB kernel `[kh, kw, 3, out]` of the model's first
            weighted layer to 1 or 4+ input channels (mean of the RGB filters, repeated).
        flip_channels: Reverse the RGB order of the first layer's kernel (RGB <-> BGR).
        dry_run: Plan and report only; assign nothing.

    Returns:
        The `LoadReport` (also logged at INFO).

    Raises:
        FileNotFoundError: `filepath` does not exist.
        ValueError: Not HDF5, truncated, not the Keras-2 layout, datasets missing from a
            group, a weight count that differs, different weighted-layer counts when loading
            by order, or (without `skip_mismatch`) shape mismatches, all listed.
    """
    patterns = normalize_exclude(exclude)
    by_name = bool(by_name or patterns)
    path = os.fspath(filepath)
    entries = weighted_entries(model)
    first_layer = entries[0].name if entries else None
    report = LoadReport(source=path, dry_run=dry_run)
    with open_h5_weights(path) as wf:
        planner = _Planner(wf, report, first_layer, reshape, adapt_input_channels,
                           flip_channels)
        if by_name:
            _plan_by_name(wf, entries, patterns, planner)
        else:
            _plan_by_order(wf, entries, planner)
    if report.mismatched and not skip_mismatch:
        raise mismatch_error(path, report.mismatched)
    if flip_channels and first_layer not in report.adapted:
        logger.warning("flip_channels: the first weighted layer %r got no RGB kernel from %s",
                       first_layer, path)
    if not dry_run:
        assign_all(planner.pairs)
    report.log(logger)
    return report
