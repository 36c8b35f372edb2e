"""Atomic file writes: write to a temporary file beside the target, then rename.

A crash or an exception part-way leaves the target as it was (absent or the previous
version) and removes the temporary file, so no file ever looks complete when it is not.

Temporary files are named `.tmp_mrcnn_{pid}_{random}{suffix}` in the target's folder. A
process killed mid-write (SIGKILL, power loss) cannot remove its own, so every write first
removes the leftovers of dead writers in the same folder (`remove_stale_temp_files`), and
`mrcnn.engine.train_loop.train` calls it for the run folder when a run starts: leftovers
never outlive the next write. The final file gets the mode an ordinary `open()` would give it
(0666 minus the umask), not `mkstemp`'s 0600.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator

logger = logging.getLogger(__name__)

TEMP_PREFIX = ".tmp_mrcnn_"
# `.tmp_mrcnn_{pid}_{mkstemp's random part}{suffix}`; the pid tells whether the writer lives.
_TEMP_NAME = re.compile(re.escape(TEMP_PREFIX) + r"(?P<pid>\d+)_")
# A temp file of a live process is left alone, unless it is older than this (a pid reused
# after a crash, or a writer on another machine sharing the folder that died a day ago).
STALE_AFTER_S = 24 * 3600.0


def current_umask() -> int:
    """The process umask: from /proc on Linux, else by setting and restoring it (there is no
    getter; the set-and-restore briefly changes it for other threads)."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except OSError as e:
        return e.errno == errno.EPERM  # exists, owned by someone else
    return True


def is_temp_name(name: str) -> bool:
    """Whether a file name is one of `atomic_write`'s temporary files."""
    return _TEMP_NAME.match(name) is not None


def remove_stale_temp_files(folder: str | os.PathLike, max_age_s: float = STALE_AFTER_S
                            ) -> list[str]:
    """Delete the temporary files of `atomic_write`s that will never finish.

    A temp file is stale when its writer (the pid in its name) no longer runs, or when it is
    older than `max_age_s`. Files of live writers in this or another process are kept.

    Args:
        folder: the folder to clean; a missing folder is not an error.
        max_age_s: the age after which any temp file counts as stale.

    Returns:
        The paths removed.
    """
    folder = os.fspath(folder)
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return []
    removed = []
    now = time.time()
    for name in names:
        match = _TEMP_NAME.match(name)
        if match is None:
            continue
        path = os.path.join(folder, name)
        try:
            age = now - os.path.getmtime(path)
        except OSError:
            continue  # just renamed or removed by its writer
        if _pid_alive(int(match.group("pid"))) and age < max_age_s:
            continue
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)
            removed.append(path)
    if removed:
        logger.info("Removed %d temporary file(s) left by interrupted writes in %s: %s",
                    len(removed), folder, ", ".join(os.path.basename(p) for p in removed))
    return removed


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f}"


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, suffix: str | None = None,
                 make_dirs: bool = False, expected_bytes: int = 0) -> Iterator[str]:
    """Yield a temporary path in the target's folder; move it onto `path` on success.

    Leftover temp files of dead writers in the folder are removed first. The moved file has
    mode 0666 minus the umask, like a file made by `open(path, "w")`.

    Args:
        path: the final file.
        suffix: the temporary file's extension (default: the target's), for writers that
            choose the format by extension.
        make_dirs: create the target's folder when missing (else FileNotFoundError).
        expected_bytes: about how large the file will be; when the folder's file system has
            less free space than that, nothing is written (some writers, HDF5 among them, can
            crash the process when the disk fills under them).

    Raises:
        FileNotFoundError: the target's folder does not exist and `make_dirs` is False.
        OSError: (errno ENOSPC) less than `expected_bytes` free in the target's folder.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if make_dirs:
        os.makedirs(folder, exist_ok=True)
    elif not os.path.isdir(folder):
        raise FileNotFoundError(f"Folder for {os.path.basename(path)!r} does not exist: {folder}")
    if suffix is None:
        suffix = os.path.splitext(path)[1]
    remove_stale_temp_files(folder)
    if expected_bytes > 0:
        free = shutil.disk_usage(folder).free
        if free < expected_bytes:
            raise OSError(errno.ENOSPC,
                          f"Not enough free disk space to write {path}: it needs about "
                          f"{_mib(expected_bytes)} MiB and {folder} has {_mib(free)} MiB free; "
                          f"nothing was written (free some space, or write elsewhere)")
    fd, tmp = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{os.getpid()}_", suffix=suffix,
                               dir=folder)
    os.close(fd)
    try:
        yield tmp
        # mkstemp makes the file 0600; the target gets what open() would have given it.
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
