"""Shared pieces of the annotation-format loaders: the invalid-item error, skip-or-raise, JSON."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
from collections import Counter
from typing import Any

logger = logging.getLogger(__name__)


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


def quiet(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, str]:
    """Call a pycocotools function with its prints captured; returns (result, printed text)."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        result = fn(*args, **kwargs)
    return result, buffer.getvalue()
