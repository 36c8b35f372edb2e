"""The load report and the value transforms shared by the HDF5 and TF-checkpoint loaders."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np


@dataclass
class LoadReport:
    """What a weights load did (or, for a dry run, would do).

    For HDF5 files every entry is a top-level layer (group) name; for TF checkpoints it is a
    model weight name (`"conv1/kernel"`) or a checkpoint variable name.

    Attributes:
        loaded: Layers whose weights were assigned.
        mismatched: [(name, file_shapes, model_shapes)] skipped for a shape mismatch.
        missing_in_file: Weighted model layers with nothing to load from the file.
        unused_in_file: Weighted file groups (or checkpoint variables) that no layer used.
        excluded: Model layers left alone because `exclude` matched them.
        reshaped: Layers where a value was reshaped (same element count, different shape).
        adapted: Layers whose input channels were adapted or flipped.
        source: The file or checkpoint path.
        dry_run: True when nothing was assigned.
    """

    loaded: list[str] = field(default_factory=list)
    mismatched: list[tuple[str, tuple, tuple]] = field(default_factory=list)
    missing_in_file: list[str] = field(default_factory=list)
    unused_in_file: list[str] = field(default_factory=list)
    excluded: list[str] = field(default_factory=list)
    reshaped: list[str] = field(default_factory=list)
    adapted: list[str] = field(default_factory=list)
    source: str = ""
    dry_run: bool = False

    def summary(self) -> str:
        """One line: the source and how many layers fell in each category."""
        verb = "would load" if self.dry_run else "loaded"
        return (f"Weights from {self.source}: {verb} {len(self.loaded)}, "
                f"mismatched {len(self.mismatched)}, missing in file "
                f"{len(self.missing_in_file)}, unused in file {len(self.unused_in_file)}, "
                f"excluded {len(self.excluded)}")

    def log(self, logger: logging.Logger) -> None:
        """Log `summary()` at INFO and the layer lists (`str(self)`) at DEBUG."""
        logger.info("%s", self.summary())
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("%s", self)

    def __str__(self) -> str:
        lines = [self.summary()]

        def block(title: str, names: list[str]) -> None:
            if names:
                lines.append(f"  {title} ({len(names)}): " + ", ".join(names))

        block("loaded", self.loaded)
        for name, file_shapes, model_shapes in self.mismatched:
            lines.append(f"  mismatch {name}: file {list(file_shapes)} vs model "
                         f"{list(model_shapes)}")
        block("missing in file", self.missing_in_file)
        block("unused in file", self.unused_in_file)
        block("excluded", self.excluded)
        block("reshaped", self.reshaped)
        block("channels adapted/flipped", self.adapted)
        return "\n".join(lines)


def mismatch_error(source: str, mismatched: list[tuple[str, tuple, tuple]]) -> ValueError:
    """The error raised for shape mismatches: every layer with both shapes, and the fix."""
    lines = [f"{source}: shape mismatch in {len(mismatched)} layer(s):"]
    for name, file_shapes, model_shapes in mismatched:
        lines.append(f"  {name}: file {list(file_shapes)} vs model {list(model_shapes)}")
    names = [m[0] for m in mismatched]
    lines.append(f"Pass exclude={names!r} to leave these layers alone, skip_mismatch=True to "
                 "skip them, or reshape=True when only the shape (not the size) differs.")
    return ValueError("\n".join(lines))


def flip_input_channels(kernel: np.ndarray) -> np.ndarray:
    """Reverse the input-channel axis of a conv kernel `[kh, kw, in, out]` (RGB <-> BGR)."""
    return kernel[:, :, ::-1, :]


def adapt_input_channels(kernel: np.ndarray, channels: int) -> np.ndarray:
    """Turn an RGB conv kernel `[kh, kw, 3, out]` into one for `channels` input channels.

    Every new input channel gets the mean of the three RGB filters, so a grayscale image
    (or any extra band) sees the average colour filter.

    Returns:
        [kh, kw, channels, out] array with the kernel's dtype.
    """
    mean = kernel.mean(axis=2, keepdims=True)
    return np.repeat(mean, channels, axis=2).astype(kernel.dtype)


def fit_value(value: np.ndarray, target_shape: tuple, *, reshape: bool, adapt: bool,
              flip: bool, first_kernel: bool) -> tuple[np.ndarray | None, str]:
    """Fit one stored value to a model variable's shape.

    Args:
        value: The stored array.
        target_shape: The model variable's shape.
        reshape: Allow a reshape when the element counts match.
        adapt: Allow first-layer input-channel adaptation (RGB -> 1 or 4+ channels).
        flip: Flip RGB <-> BGR (input-channel axis) of the first layer's kernel.
        first_kernel: True for the kernel of the model's first weighted layer.

    Returns:
        (fitted value or None when it cannot fit, one of "", "reshaped", "adapted").
    """
    target_shape = tuple(int(d) for d in target_shape)
    how = ""
    is_rgb_kernel = first_kernel and value.ndim == 4 and value.shape[2] == 3
    if flip and is_rgb_kernel:
        value = flip_input_channels(value)
        how = "adapted"
    if value.shape == target_shape:
        return value, how
    if (adapt and is_rgb_kernel and len(target_shape) == 4
            and value.shape[:2] == target_shape[:2] and value.shape[3] == target_shape[3]):
        return adapt_input_channels(value, target_shape[2]), "adapted"
    if reshape and value.size == int(np.prod(target_shape)):
        return value.reshape(target_shape), "reshaped"
    return None, how


def cast_for(variable, value: np.ndarray) -> np.ndarray:
    """Cast `value` to the variable's dtype when numpy knows it (else leave it to Keras)."""
    try:
        return np.asarray(value, dtype=np.dtype(str(variable.dtype)))
    except TypeError:
        return value


def assign_all(pairs: list[tuple]) -> None:
    """Assign [(variable, value)] after everything has been checked."""
    for variable, value in pairs:
        variable.assign(cast_for(variable, value))
