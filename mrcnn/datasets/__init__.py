"""Datasets read from annotation formats on disk: COCO instances JSON and VIA polygon JSON.

    from mrcnn.datasets import CocoDataset, ViaDataset, build_coco_results, evaluate_coco

Both loaders check every image and annotation when they load, so bad data fails at once with
a message naming the file, image and annotation, instead of deep inside training. With
`skip_invalid=True` bad items are skipped instead, logged, and counted in `dataset.skipped`.
The submodules are imported on first use (the VIA loader does not need pycocotools).
"""

from __future__ import annotations

import importlib
import json
import logging
import os
from collections import Counter
from typing import Any

_EXPORTS = {
    "CocoDataset": "mrcnn.datasets.coco",
    "build_coco_results": "mrcnn.datasets.coco",
    "evaluate_coco": "mrcnn.datasets.coco",
    "STAT_NAMES": "mrcnn.datasets.coco",
    "ViaDataset": "mrcnn.datasets.via",
}

__all__ = ["InvalidAnnotation", "read_json", "skip_or_raise", *_EXPORTS]


class InvalidAnnotation(ValueError):
    """An image or annotation that cannot be used; `kind` names the reason in `skipped`."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def skip_or_raise(skipped: Counter, err: InvalidAnnotation, skip_invalid: bool,
                  logger: logging.Logger) -> None:
    """Count and log `err` in `skipped` when `skip_invalid`, else raise it as a ValueError.

    Raises:
        ValueError: `skip_invalid` is False; the message says how to skip instead.
    """
    if not skip_invalid:
        raise ValueError(f"{err} (pass skip_invalid=True to skip such items)") from err
    skipped[err.kind] += 1
    logger.warning("skipped: %s", err)


def read_json(path: str, kind: str) -> Any:
    """Read a JSON annotation file, with errors that name `kind` and the path.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is empty or not valid JSON.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{kind} not found: {path!r}")
    with open(path, "rb") as f:
        raw = f.read()
    if not raw.strip():
        raise ValueError(f"{kind} {path!r} is empty")
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{kind} {path!r} is not valid JSON: {err}") from err


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'mrcnn.datasets' has no attribute {name!r}")
