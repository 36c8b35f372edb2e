"""Matplotlib figure plumbing shared by the drawing modules: axes set-up, atomic saving,
count checks, rendering to arrays. Uses the Agg backend, so no display is needed."""

from __future__ import annotations

import os
from typing import Any

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from mrcnn.fileio import atomic_write  # noqa: E402


def finish(fig, path: str | None) -> None:
    """Save the figure to `path` (atomically) and close it, or leave it open."""
    if path is None:
        return
    with atomic_write(path, suffix=os.path.splitext(path)[1] or ".png", make_dirs=True) as tmp:
        fig.savefig(tmp, bbox_inches="tight")
    plt.close(fig)


def new_axes(ax, figsize: tuple) -> tuple[Any, Any]:
    """(new figure or None, axes): a fresh figure when `ax` is None."""
    if ax is not None:
        return None, ax
    fig, ax = plt.subplots(1, figsize=figsize)
    return fig, ax


def done(fig, ax, path: str | None) -> None:
    """Save to `path` the figure we created, or the caller's figure when a path is asked."""
    if path is not None:
        finish(fig if fig is not None else ax.figure, path)


def same_count(**arrays: Any) -> int:
    """The common first-axis length of the non-None arguments; ValueError naming them if not."""
    counts = {k: len(v) for k, v in arrays.items() if v is not None}
    if len(set(counts.values())) > 1:
        raise ValueError(f"Counts must match, got {counts}")
    return next(iter(counts.values()), 0)


def figure_to_array(fig) -> np.ndarray:
    """Render a figure to an RGB array [height, width, 3] uint8 (and close it)."""
    fig.canvas.draw()
    array = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    return array
