"""Argument checks shared by the whole package (numpy only, no TensorFlow).

Every check takes the argument's `name` and `value`, returns the value in its canonical type
(`int`, `float`, a tuple or an array) and raises `ValueError` in one format that names the
argument, quotes what it received and says what it needs:

    proposal_count=0: must be a positive integer
    Config ROI_POSITIVE_RATIO=1.5: must be a number in (0, 1]

`Config.validate`, the graph layers' constructors, the model builders and the numpy target
and box functions all check through here, so a rule (is `True` an integer? is 0 a fraction?)
is decided once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NoReturn

import numpy as np


def fail(name: str, value: Any, requirement: str) -> NoReturn:
    """Raise the package's argument error: `"{name}={value!r}: {requirement}"`.

    Raises:
        ValueError: always.
    """
    raise ValueError(f"{name}={value!r}: {requirement}")


def _is_int(value: Any) -> bool:
    """True for Python and numpy integers; bools are not integers here."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def check_int(name: str, value: Any, minimum: int = 1) -> int:
    """`value` as an int, when it is an integer >= `minimum` (a bool or a float is not).

    Raises:
        ValueError: naming `name` and `value`.
    """
    if not _is_int(value) or value < minimum:
        requirement = {0: "must be a non-negative integer", 1: "must be a positive integer"}
        fail(name, value, requirement.get(minimum, f"must be an integer >= {minimum}"))
    return int(value)


def check_positive_int(name: str, value: Any) -> int:
    """`value` as an int, when it is an integer >= 1.

    Raises:
        ValueError: naming `name` and `value`.
    """
    return check_int(name, value, minimum=1)


def check_positive_ints(name: str, value: Any, length: int,
                        what: str | None = None) -> tuple[int, ...]:
    """`value` as a tuple of `length` positive ints (filter counts, a shape).

    Args:
        name: the argument's name, for the error message.
        value: the sequence to check.
        length: how many integers it must hold.
        what: how the error message describes a valid value; default "`length` positive
            integers".

    Raises:
        ValueError: naming `name` and `value`.
    """
    try:
        items = tuple(value)
    except TypeError:
        items = None
    if items is None or len(items) != length or not all(_is_int(v) and v >= 1 for v in items):
        fail(name, value, f"must be {what or f'{length} positive integers'}")
    return tuple(int(v) for v in items)


def check_height_width(name: str, value: Any) -> tuple[int, int]:
    """`value` as a (height, width) pair of positive ints.

    Raises:
        ValueError: naming `name` and `value`.
    """
    height, width = check_positive_ints(name, value, 2, "(height, width), two positive integers")
    return height, width


def check_fraction(name: str, value: Any, allow_zero: bool = False) -> float:
    """`value` as a float in (0, 1], or in [0, 1] with `allow_zero`.

    Raises:
        ValueError: naming `name` and `value` (NaN and non-numbers included).
    """
    numeric = isinstance(value, (int, float, np.number)) and not isinstance(value, bool)
    number = float(value) if numeric and not isinstance(value, np.bool_) else float("nan")
    low_ok = number >= 0 if allow_zero else number > 0
    if not (low_ok and number <= 1):
        fail(name, value, f"must be a number in {'[0, 1]' if allow_zero else '(0, 1]'}")
    return number


def check_positive_floats(name: str, value: Any, length: int) -> list[float]:
    """`value` as a list of `length` finite positive floats (e.g. a box std dev of 4).

    Raises:
        ValueError: naming `name` and `value`.
    """
    try:
        numbers = np.asarray(value, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        numbers = np.zeros(0)
    if numbers.shape != (length,) or not np.all(np.isfinite(numbers)) or np.any(numbers <= 0):
        shown = value.tolist() if isinstance(value, np.ndarray) else value
        fail(name, shown, f"must be {length} positive numbers")
    return numbers.tolist()


def check_one_of(name: str, value: Any, choices: Sequence[Any]) -> Any:
    """`value` itself, when it is one of `choices`.

    Raises:
        ValueError: naming `name`, `value` and the choices.
    """
    if isinstance(value, (list, dict, np.ndarray)) or value not in tuple(choices):
        fail(name, value, f"must be one of {tuple(choices)}")
    return value


def check_boxes(name: str, boxes: Any, extra_columns: bool = False,
                empty_ok: bool = False) -> np.ndarray:
    """`boxes` as an array of shape [N, (y1, x1, y2, x2)].

    Args:
        name: the argument's name, for the error message.
        boxes: the array-like to check.
        extra_columns: accept [N, 4 + k] rows (e.g. detections with class and score) and
            return them whole.
        empty_ok: an empty input of any shape is returned as [0, 4].

    Returns:
        The boxes as a numpy array (dtype kept).

    Raises:
        ValueError: naming `name` and the shape received.
    """
    boxes = np.asarray(boxes)
    if empty_ok and boxes.size == 0:
        return boxes.reshape(0, 4)
    columns_ok = boxes.ndim == 2 and (boxes.shape[1] >= 4 if extra_columns
                                      else boxes.shape[1] == 4)
    if not columns_ok:
        raise ValueError(f"{name} must have shape [N, (y1, x1, y2, x2)], got {boxes.shape}")
    return boxes
