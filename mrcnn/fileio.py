"""Atomic file writes: write to a temporary file beside the target, then rename.

A crash or an exception part-way leaves the target as it was (absent or the previous
version) and removes the temporary file, so no file ever looks complete when it is not.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, suffix: str | None = None,
                 make_dirs: bool = False) -> Iterator[str]:
    """Yield a temporary path in the target's folder; move it onto `path` on success.

    Args:
        path: the final file.
        suffix: the temporary file's extension (default: the target's), for writers that
            choose the format by extension.
        make_dirs: create the target's folder when missing (else FileNotFoundError).

    Raises:
        FileNotFoundError: the target's folder does not exist and `make_dirs` is False.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if make_dirs:
        os.makedirs(folder, exist_ok=True)
    elif not os.path.isdir(folder):
        raise FileNotFoundError(f"Folder for {os.path.basename(path)!r} does not exist: {folder}")
    if suffix is None:
        suffix = os.path.splitext(path)[1]
    fd, tmp = tempfile.mkstemp(prefix=".tmp_", suffix=suffix, dir=folder)
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
