"""Caption placement for drawings of detections: inside the image, clear of each other.

`place_label` is used by `mrcnn.vis.drawing.display_instances` (and so by `detections_grid`
and matterport's `visualize.display_instances`).
"""

from __future__ import annotations

LABEL_SIZE = 9  # points: the caption font of display_instances


def char_size_of(ax, image_shape: tuple, fontsize: float) -> float:
    """A font size in image pixels: how many image pixels `fontsize` points span in `ax`
    (the image fills the axes with 10 px margins and equal aspect)."""
    width_in, height_in = ax.figure.get_size_inches()
    box = ax.get_position()
    units_per_inch = max((image_shape[1] + 20) / max(box.width * width_in, 1e-3),
                         (image_shape[0] + 20) / max(box.height * height_in, 1e-3))
    return fontsize / 72 * units_per_inch


def place_label(text: str, x: float, y: float, image_shape: tuple,
                placed: list[tuple[float, float, float, float]],
                char_size: float | None = None) -> tuple[float, float]:
    """Where to put a caption at a box's top-left corner so that it stays inside the image
    and clears the captions already placed (which it joins).

    The caption's size is estimated from its length (`char_size` pixels per character
    across and a line high; default 1/40 of the larger image side, at least 6): it is shifted
    left to end inside the image, and down, one line at a time, past every placed caption it
    would overlap, but not below the image (then it stays where it overlaps least).

    Args:
        text: the caption.
        x, y: the box's top-left corner (pixels).
        image_shape: (height, width).
        placed: [(x1, y1, x2, y2)] of the captions placed so far; the new one is appended.

    Returns:
        (x, y) of the caption's top-left corner.
    """
    height, width = int(image_shape[0]), int(image_shape[1])
    size = char_size or max(6.0, max(height, width) / 40)
    text_w, text_h = 0.6 * size * max(len(text), 1), 1.3 * size
    x = float(min(max(x, 0.0), max(width - text_w, 0.0)))
    y = float(min(max(y, 0.0), max(height - text_h, 0.0)))

    def overlaps(top: float) -> list[tuple]:
        return [r for r in placed if x < r[2] and r[0] < x + text_w
                and top < r[3] and r[1] < top + text_h]

    top = y
    while overlaps(top) and top + text_h <= height - text_h:
        top = max(r[3] for r in overlaps(top))
    top = min(top, max(height - text_h, 0.0))
    if overlaps(top):
        top = y
    placed.append((x, top, x + text_w, top + text_h))
    return x, top

