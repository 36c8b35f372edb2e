"""Restore a Keras 3 optimizer's state saved by `save_weights_h5(..., optimizer=...)`."""

from __future__ import annotations

import logging
import os
from typing import Any

from mrcnn.checkpoint.h5_format import read_optimizer_arrays
from mrcnn.checkpoint.report import cast_for

logger = logging.getLogger(__name__)


def _strip_root(path: str) -> str:
    """Drop the optimizer's own name (`adam/...`), which changes with Keras' name counters."""
    return path.split("/", 1)[-1]


def _match(stored: list[tuple[str, Any]], variables: list) -> list[tuple[Any, Any]] | None:
    """Pair every optimizer variable with a stored value by path; None if any is missing."""
    for key in (lambda p: p, _strip_root):
        table = {key(p): v for p, v in stored}
        if len(table) != len(stored):
            continue
        pairs = []
        for variable in variables:
            value = table.get(key(str(getattr(variable, "path", variable.name))))
            if value is None:
                break
            pairs.append((variable, value))
        if len(pairs) == len(variables):
            return pairs
    return None


def load_optimizer_state(optimizer: Any, filepath: str | os.PathLike,
                         model: Any = None) -> bool:
    """Assign the optimizer variables stored in a weights file to `optimizer`.

    The optimizer's variables must exist: build it first with
    `optimizer.build(model.trainable_variables)`, or pass `model` and an unbuilt optimizer is
    built on `model.trainable_variables` here. Variables are matched by path (then by path
    without the optimizer's own name) and shape; on any mismatch nothing is assigned.

    Args:
        optimizer: A Keras 3 optimizer.
        filepath: A file written by `save_weights_h5(..., optimizer=...)`.
        model: Optional model whose trainable variables build an unbuilt optimizer.

    Returns:
        True when the state was restored; False (with a logged warning) when the file holds
        no optimizer state or it does not match the optimizer.

    Raises:
        FileNotFoundError / ValueError: as for reading the weights file.
    """
    stored = read_optimizer_arrays(filepath)
    if stored is None:
        logger.warning("%s holds no optimizer state", os.fspath(filepath))
        return False
    if not getattr(optimizer, "built", False):
        if model is None:
            logger.warning("Optimizer %s is not built; build it on the model's trainable "
                           "variables (or pass model=) before loading its state",
                           type(optimizer).__name__)
            return False
        optimizer.build(model.trainable_variables)
    variables = list(optimizer.variables)
    if len(variables) != len(stored):
        logger.warning("Optimizer state in %s has %d variables, the optimizer has %d; not "
                       "restored", os.fspath(filepath), len(stored), len(variables))
        return False
    pairs = _match(stored, variables)
    if pairs is None:
        logger.warning("Optimizer variable names in %s do not match the optimizer; not restored",
                       os.fspath(filepath))
        return False
    bad = [str(getattr(v, "path", v.name)) for v, value in pairs
           if tuple(v.shape) != tuple(value.shape)]
    if bad:
        logger.warning("Optimizer state in %s: shape mismatch for %s; not restored",
                       os.fspath(filepath), bad)
        return False
    for variable, value in pairs:
        variable.assign(cast_for(variable, value))
    logger.info("Restored %d optimizer variables from %s", len(pairs), os.fspath(filepath))
    return True
