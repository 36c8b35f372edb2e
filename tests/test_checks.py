"""structures.checks: the shared argument checks accept, convert and reject as documented."""

import numpy as np
import pytest

from mrcnn.structures import checks as C


@pytest.mark.parametrize("value", [1, 7, np.int64(3), np.int32(1)])
def test_check_positive_int_accepts_and_converts(value):
    out = C.check_positive_int("n", value)
    assert out == int(value) and type(out) is int


@pytest.mark.parametrize("value", [0, -2, 2.0, 2.5, True, np.bool_(True), "3", None])
def test_check_positive_int_rejects_with_name_and_value(value):
    with pytest.raises(ValueError) as err:
        C.check_positive_int("proposal_count", value)
    assert str(err.value) == f"proposal_count={value!r}: must be a positive integer"


def test_check_int_minimum():
    assert C.check_int("steps", 0, minimum=0) == 0
    with pytest.raises(ValueError, match=r"^count=-1: must be a non-negative integer$"):
        C.check_int("count", -1, minimum=0)
    with pytest.raises(ValueError, match=r"^k=2: must be an integer >= 3$"):
        C.check_int("k", 2, minimum=3)


def test_check_positive_ints_and_height_width():
    assert C.check_positive_ints("filters", [64, np.int64(64), 256], 3) == (64, 64, 256)
    assert C.check_height_width("mask_shape", np.array([28, 14])) == (28, 14)
    for bad in ([64, 64], [64, 0, 256], [64, 64.0, 256], 64):
        with pytest.raises(ValueError, match=r"^filters=.*: must be 3 positive integers$"):
            C.check_positive_ints("filters", bad, 3)
    for bad in (28, (28,), (28, 0), (28, 14, 1)):
        with pytest.raises(ValueError, match=r"mask_shape=.*\(height, width\)"):
            C.check_height_width("mask_shape", bad)


def test_check_fraction():
    assert C.check_fraction("r", 1) == 1.0 and C.check_fraction("r", np.float32(0.5)) == 0.5
    assert C.check_fraction("c", 0, allow_zero=True) == 0.0
    for bad in (0, 1.5, -0.1, float("nan"), "0.5", None, True):
        with pytest.raises(ValueError, match=r"^r=.*: must be a number in \(0, 1\]$"):
            C.check_fraction("r", bad)
    with pytest.raises(ValueError, match=r"must be a number in \[0, 1\]"):
        C.check_fraction("c", 1.2, allow_zero=True)


def test_check_positive_floats():
    assert C.check_positive_floats("std", np.array([0.1, 0.1, 0.2, 0.2]), 4) == [
        0.1, 0.1, 0.2, 0.2]
    for bad in ([0.1, 0.2], [0.1, 0.1, 0.2, -0.2], [0.1, 0.1, 0.2, np.inf], "abc"):
        with pytest.raises(ValueError, match=r"^std=.*: must be 4 positive numbers$"):
            C.check_positive_floats("std", bad, 4)


def test_check_one_of():
    assert C.check_one_of("mode", "square", ("square", "crop")) == "square"
    assert C.check_one_of("policy", None, (None, "mixed_float16")) is None
    for bad in ("stretch", ["square"], 0):
        with pytest.raises(ValueError, match=r"^mode=.*: must be one of \('square', 'crop'\)$"):
            C.check_one_of("mode", bad, ("square", "crop"))


def test_check_boxes():
    boxes = C.check_boxes("rois", [[0, 0, 1, 1]])
    assert isinstance(boxes, np.ndarray) and boxes.shape == (1, 4)
    assert C.check_boxes("dets", np.zeros((2, 6)), extra_columns=True).shape == (2, 6)
    assert C.check_boxes("gt", np.zeros(0), empty_ok=True).shape == (0, 4)
    for bad, kwargs in ((np.zeros((2, 6)), {}), (np.zeros((2, 3)), {"extra_columns": True}),
                        (np.zeros(4), {}), (np.zeros(0), {})):
        with pytest.raises(ValueError, match=r"rois must have shape \[N, \(y1, x1, y2, x2\)\]"):
            C.check_boxes("rois", bad, **kwargs)


def test_config_reports_through_the_shared_format():
    from mrcnn.config import Config

    bad = type("Bad", (Config,), {"NAME": "x", "POOL_SIZE": 0})
    with pytest.raises(ValueError, match=r"^Config POOL_SIZE=0: must be a positive integer$"):
        bad()
