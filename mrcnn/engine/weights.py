"""Loading weights into a Mask R-CNN model: read the `weights` argument, load the file by
name or by order, and say what a resumed run takes from it (its run, the optimizer state).

The file I/O is `mrcnn.checkpoint`; the names ("last", "coco", run directories) are
`mrcnn.engine.runs`. `MaskRCNN.load_weights` delegates here.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mrcnn.engine import runs
from mrcnn.engine.trainer import LAYER_PRESETS

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedWeights:
    """The outcome of `load_model_weights`.

    Attributes:
        path: the file that was loaded.
        report: its `mrcnn.checkpoint.LoadReport`.
        optimizer_state_path: `path` when the file carries an optimizer state (restored by
            the next compile, `mrcnn.engine.train_loop.compile_model`), else None.
    """

    path: str
    report: Any
    optimizer_state_path: str | None


def weights_file(weights: str, model_dir: str, name: str) -> str:
    """The file behind "last", "coco", "imagenet" or a path (`runs.resolve_weights`).

    Raises:
        FileNotFoundError: there is no such file or checkpoint.
        ValueError: `weights` is "none": there is no file to load.
    """
    path = runs.resolve_weights(weights, model_dir, name)
    if path is None:
        raise ValueError(f"weights={weights!r} names no file to load")
    return path


def load_model_weights(keras_model: Any, weights: str, *, model_dir: str, name: str,
                       by_name: bool = False, exclude: Sequence[str] | None = None,
                       **kwargs: Any) -> LoadedWeights:
    """Load a matterport/Keras-2 HDF5 file (or "last", "coco", "imagenet") into a model.

    Args:
        keras_model: the model to load into.
        weights: a path, or a keyword of `runs.resolve_weights`.
        model_dir, name: where "last" looks, and the config NAME of the runs.
        by_name: match layers by name (otherwise by order of the weighted layers).
        exclude: layer names or regexes not to load; implies by-name loading.
        **kwargs: passed to `mrcnn.checkpoint.load_weights_h5` (e.g. skip_mismatch=True).

    Raises:
        FileNotFoundError, ValueError: see `weights_file`; a shape mismatch on a layer that
            is not excluded (the message lists the layers to exclude).
    """
    from mrcnn.checkpoint import load_weights_h5, read_h5_extras

    path = weights_file(weights, model_dir, name)
    if exclude:
        by_name = True
    report = load_weights_h5(keras_model, path, by_name=by_name, exclude=list(exclude or []),
                             **kwargs)
    if not report.dry_run:
        warn_unloaded(report)
    has_optimizer = bool(read_h5_extras(path).get("has_optimizer"))
    return LoadedWeights(path, report, path if has_optimizer else None)


# The layers a by-name load may leave to their initial values without a word: the heads,
# FPN and RPN that matterport's "imagenet" workflow trains from scratch (the `heads` preset).
UNLOADED_OK = re.compile(LAYER_PRESETS["heads"])


def unloaded_layers(report: Any) -> list[str]:
    """The weighted model layers a load left at their initial values that are expected to
    come from the file: layers missing in the file or skipped for a shape mismatch, except
    excluded layers and the heads, FPN and RPN (`UNLOADED_OK`)."""
    names = list(report.missing_in_file) + [m[0] for m in report.mismatched]
    return [n for n in names if not UNLOADED_OK.fullmatch(n)]


def warn_unloaded(report: Any) -> list[str]:
    """Log a WARNING when a load left backbone layers (or most of the model) unloaded.

    A ResNet-50 file loaded by name into a ResNet-101 model fills `res4a`-`res4f` and leaves
    the 102 layers of `res4g`-`res4w` random: that is a warning naming the count and the
    first layers, not an INFO line. Loading ImageNet or COCO weights with the heads excluded
    or missing stays quiet (the heads are trained from scratch on purpose).

    Returns:
        The unloaded layers warned about (empty when quiet).
    """
    unloaded = unloaded_layers(report)
    considered = len(report.loaded) + len(report.missing_in_file) + len(report.mismatched)
    if unloaded:
        logger.warning(
            "Weights from %s left %d of %d non-excluded weighted layers at their initial "
            "(random) values, %d of them outside the heads/FPN/RPN: %s%s. Is this the right "
            "file for this BACKBONE? Pass exclude=[...] for layers you mean to train from "
            "scratch.", report.source, considered - len(report.loaded), considered,
            len(unloaded), ", ".join(unloaded[:8]), ", ..." if len(unloaded) > 8 else "")
    return unloaded
