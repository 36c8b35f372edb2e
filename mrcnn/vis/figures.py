"""Matplotlib figure plumbing shared by the drawing modules: figures, atomic saving, count
checks, rendering to arrays.

Importing this module (or any drawing module) leaves matplotlib's backend alone. A drawing
asked to go to a file (`path=`) is made on a `matplotlib.figure.Figure` with its own Agg canvas
and never touches pyplot, so it works headless and does not disturb a notebook. Without a path
the figure is a pyplot figure, shown by whatever backend the user chose (inline in a notebook),
as matterport's functions did.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from mrcnn.fileio import atomic_write


def new_figure(figsize: tuple, path: str | None, dpi: float | None = None) -> Figure:
    """A figure to draw into.

    Args:
        figsize: (width, height) in inches.
        path: where the drawing will be saved; when given, a pyplot-free Figure on an Agg
            canvas, else a pyplot figure (managed and shown by the user's backend).
        dpi: resolution (default: matplotlib's).

    Returns:
        The Figure.
    """
    if path is None:
        import matplotlib.pyplot as plt  # the user's backend, chosen by the user

        return plt.figure(figsize=figsize, dpi=dpi)
    fig = Figure(figsize=figsize, dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def new_subplots(rows: int, cols: int, figsize: tuple, path: str | None,
                 **kwargs: Any) -> tuple[Figure, Any]:
    """(figure, axes) as `plt.subplots(rows, cols, ...)`, pyplot-free when `path` is given."""
    fig = new_figure(figsize, path)
    return fig, fig.subplots(rows, cols, **kwargs)


def new_axes(ax: Any, figsize: tuple, path: str | None = None) -> tuple[Figure | None, Any]:
    """(new figure or None, axes): a fresh one-axes figure when `ax` is None."""
    if ax is not None:
        return None, ax
    return new_subplots(1, 1, figsize, path)


def is_pyplot_figure(fig: Figure) -> bool:
    """Whether pyplot manages `fig` (it then lives until closed)."""
    return getattr(fig.canvas, "manager", None) is not None


def close_figure(fig: Figure) -> None:
    """Release a pyplot figure; a pyplot-free one needs nothing."""
    if is_pyplot_figure(fig):
        import matplotlib.pyplot as plt

        plt.close(fig)


def save_figure(fig: Figure, path: str | os.PathLike) -> None:
    """Write `fig` to `path` atomically (format from the extension, PNG when none), creating
    the folder; the figure stays open."""
    path = os.fspath(path)
    with atomic_write(path, suffix=os.path.splitext(path)[1] or ".png", make_dirs=True) as tmp:
        fig.savefig(tmp, bbox_inches="tight")


def finish(fig: Figure, path: str | None) -> None:
    """Save a figure this package created to `path` (atomically) and release it; without a
    path leave it to the user's backend."""
    if path is None:
        return
    save_figure(fig, path)
    close_figure(fig)


def done(fig: Figure | None, ax: Any, path: str | None) -> None:
    """End a drawing: `fig` is the figure we created (None when the caller gave `ax`).

    With a path, our figure is saved and released; the caller's figure is saved and left
    open (it is theirs). Without a path nothing happens: the user's backend shows it.
    """
    if path is None:
        return
    if fig is not None:
        finish(fig, path)
    else:
        save_figure(ax.figure, path)


def show(fig: Figure | None, path: str | None) -> None:
    """matterport's auto-show: a pyplot figure we created, with no file asked, is shown by
    the user's backend (inline in a notebook, a window in a script)."""
    if fig is not None and path is None and is_pyplot_figure(fig):
        import matplotlib.pyplot as plt

        plt.show()


def same_count(**arrays: Any) -> int:
    """The common first-axis length of the non-None arguments; ValueError naming them if not."""
    counts = {k: len(v) for k, v in arrays.items() if v is not None}
    if len(set(counts.values())) > 1:
        raise ValueError(f"Counts must match, got {counts}")
    return next(iter(counts.values()), 0)


def figure_to_array(fig: Figure) -> np.ndarray:
    """Render a figure to an RGB array [height, width, 3] uint8 (and release it).

    Works for pyplot figures of any backend and for pyplot-free ones: a canvas without a
    pixel buffer is rendered through a fresh Agg canvas.
    """
    managed = is_pyplot_figure(fig)
    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    canvas.draw()
    array = np.asarray(canvas.buffer_rgba())[..., :3].copy()
    if managed:
        import matplotlib.pyplot as plt

        plt.close(fig)
    return array
