"""atomic_write: the target appears whole or not at all."""

import os

import pytest

from mrcnn.fileio import atomic_write


def test_success_moves_the_file_into_place(tmp_path):
    target = tmp_path / "out.json"
    with atomic_write(target) as tmp:
        assert tmp.endswith(".json") and os.path.dirname(tmp) == str(tmp_path)
        with open(tmp, "w") as f:
            f.write("new")
    assert target.read_text() == "new"
    assert os.listdir(tmp_path) == ["out.json"]


def test_failure_keeps_the_old_file_and_cleans_up(tmp_path):
    target = tmp_path / "weights.h5"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="crash"):
        with atomic_write(target) as tmp:
            with open(tmp, "w") as f:
                f.write("half")
            raise RuntimeError("crash")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["weights.h5"]


def test_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        with atomic_write(tmp_path / "nope" / "x.h5"):
            pass
    with atomic_write(tmp_path / "made" / "x.txt", make_dirs=True) as tmp:
        open(tmp, "w").close()
    assert (tmp_path / "made" / "x.txt").exists()
