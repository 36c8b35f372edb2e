"""atomic_write: the target appears whole or not at all."""

import os
import signal
import subprocess
import sys
import time

import pytest

from mrcnn import fileio
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


# --------------------------------------------------------------------------- mode and leftovers
@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_the_target_gets_the_umask_mode_not_mkstemps_0600(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        assert fileio.current_umask() == umask
        with atomic_write(tmp_path / "w.h5") as tmp:
            open(tmp, "w").close()
    finally:
        os.umask(old)
    assert os.stat(tmp_path / "w.h5").st_mode & 0o777 == mode


def _dead_pid():
    """A pid that no process has: a child that has exited and been reaped."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_write_removes_the_leftovers_of_dead_writers_only(tmp_path):
    dead = tmp_path / f".tmp_mrcnn_{_dead_pid()}_abc.h5"
    dead.write_bytes(b"x" * 1000)
    live = tmp_path / f".tmp_mrcnn_{os.getppid()}_def.h5"  # the test runner's parent lives
    live.write_bytes(b"y")
    old_live = tmp_path / f".tmp_mrcnn_{os.getppid()}_old.json"
    old_live.write_bytes(b"z")
    day_ago = time.time() - fileio.STALE_AFTER_S - 60
    os.utime(old_live, (day_ago, day_ago))
    other = tmp_path / ".tmp_user_file.h5"  # not ours: never touched
    other.write_bytes(b"u")
    with atomic_write(tmp_path / "new.json") as tmp:
        open(tmp, "w").close()
    assert sorted(os.listdir(tmp_path)) == sorted([live.name, other.name, "new.json"])


def test_remove_stale_temp_files_reports_and_tolerates_missing_folders(tmp_path):
    assert fileio.remove_stale_temp_files(tmp_path / "absent") == []
    name = f".tmp_mrcnn_{_dead_pid()}_q.png"
    (tmp_path / name).write_bytes(b"")
    assert fileio.remove_stale_temp_files(tmp_path) == [str(tmp_path / name)]
    assert fileio.is_temp_name(name) and not fileio.is_temp_name("mask_rcnn_x_0001.h5")


def test_a_killed_writer_leaves_a_temp_file_that_the_next_write_removes(tmp_path):
    # A real SIGKILL in the middle of a write: the child's temp file stays behind.
    script = (
        "import os, sys, time\n"
        "from mrcnn.fileio import atomic_write\n"
        f"with atomic_write({str(tmp_path / 'big.h5')!r}) as tmp:\n"
        "    open(tmp, 'wb').write(b'0' * 4096)\n"
        "    print('writing', flush=True)\n"
        "    time.sleep(60)\n")
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                             cwd=os.path.dirname(os.path.dirname(fileio.__file__)))
    assert child.stdout.readline().strip() == b"writing"
    child.send_signal(signal.SIGKILL)
    child.wait()
    leftovers = [n for n in os.listdir(tmp_path) if fileio.is_temp_name(n)]
    assert len(leftovers) == 1 and not (tmp_path / "big.h5").exists()
    with atomic_write(tmp_path / "big.h5") as tmp:
        open(tmp, "wb").close()
    assert os.listdir(tmp_path) == ["big.h5"]


def test_nothing_is_left_after_an_exception_before_the_temp_file_is_written(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with atomic_write(tmp_path / "a.png"):
            raise KeyboardInterrupt
    assert os.listdir(tmp_path) == []
