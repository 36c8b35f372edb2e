"""Drawing detections, ground truth and diagnostics with matplotlib (numpy side, no display).

Each drawing function takes an optional `ax` to draw into (where matterport had one) and an
optional `path`. With a path the drawing is made on a pyplot-free figure (its own Agg canvas)
and written there (PNG by extension) atomically, so nothing needs a screen and a notebook's
pyplot state is untouched. Without one it is a pyplot figure shown by the user's backend, as in
matterport (`display_instances` and `display_images` call pyplot's show() as matterport's did).
Importing this module leaves the matplotlib backend alone. matterport's names and argument
orders are kept. Boxes are `(y1, x1, y2, x2)` in image pixels throughout. No TensorFlow here.
"""

from __future__ import annotations

import colorsys
import logging
import random
from collections.abc import Sequence

import matplotlib.lines as lines
import matplotlib.patches as patches
import numpy as np
from matplotlib.patches import Polygon
from skimage.measure import find_contours

from mrcnn.evaluation.metrics import compute_matches
from mrcnn.structures.masks import unmold_mask
from mrcnn.vis.figures import (  # noqa: F401  (figure_to_array was public here)
    done,
    figure_to_array,
    finish,
    new_axes,
    new_figure,
    new_subplots,
    same_count,
    show,
)
from mrcnn.vis.labels import LABEL_SIZE, char_size_of, place_label
from mrcnn.vis.stats import (  # noqa: F401  (drawing.display_table etc. were public here)
    display_table,
    display_weight_stats,
    plot_overlaps,
    plot_precision_recall,
)

logger = logging.getLogger(__name__)


def random_colors(n: int, bright: bool = True, seed: int | None = None) -> list[tuple]:
    """`n` visually distinct RGB colours in [0, 1], shuffled (reproducible with `seed`)."""
    brightness = 1.0 if bright else 0.7
    colors = [colorsys.hsv_to_rgb(i / max(n, 1), 1, brightness) for i in range(n)]
    random.Random(seed).shuffle(colors)
    return colors


def apply_mask(image: np.ndarray, mask: np.ndarray, color: Sequence[float],
               alpha: float = 0.5) -> np.ndarray:
    """Blend `color` into `image` where `mask` is set (in place; also returned).

    Args:
        image: [H, W, 3] image (uint8 or float), pixel values in [0, 255].
        mask: [H, W] bool/0-1 mask.
        color: RGB in [0, 1].
        alpha: weight of the colour.
    """
    if mask.shape != image.shape[:2]:
        raise ValueError(f"mask shape {mask.shape} does not match image {image.shape[:2]}")
    for c in range(3):
        image[:, :, c] = np.where(mask == 1,
                                  image[:, :, c] * (1 - alpha) + alpha * color[c] * 255,
                                  image[:, :, c])
    return image


def _rgb(image: np.ndarray) -> np.ndarray:
    """A float [H, W, 3] copy of a gray, RGB or RGBA image."""
    out = np.asarray(image).astype(np.float32).copy()
    if out.ndim == 2:
        out = np.stack([out] * 3, axis=-1)
    if out.ndim != 3 or out.shape[-1] < 3:
        raise ValueError(f"image must be [H, W] or [H, W, 3], got shape {np.shape(image)}")
    return out[..., :3]


def _setup_image_axes(ax, image: np.ndarray, title: str) -> None:
    height, width = image.shape[:2]
    ax.set_ylim(height + 10, -10)
    ax.set_xlim(-10, width + 10)
    ax.axis("off")
    ax.set_title(title)


def display_instances(image: np.ndarray, boxes: np.ndarray, masks: np.ndarray,
                      class_ids: np.ndarray, class_names: Sequence[str],
                      scores: np.ndarray | None = None, title: str = "",
                      figsize: tuple = (16, 16), ax=None, show_mask: bool = True,
                      show_bbox: bool = True, colors: Sequence | None = None,
                      captions: Sequence[str] | None = None, path: str | None = None):
    """Draw instances: boxes [N, (y1, x1, y2, x2)] pixels, masks [H, W, N], class ids [N].

    Args:
        scores: [N] confidences shown in the captions (optional).
        colors: N RGB colours in [0, 1] (default: distinct random colours).
        captions: N strings replacing the "class score" captions.

    Returns:
        The matplotlib Axes drawn into.

    Raises:
        ValueError: boxes, masks, class ids, scores, colours or captions differ in count.
    """
    boxes = np.asarray(boxes).reshape(-1, 4)
    n = boxes.shape[0]
    masks = np.asarray(masks)
    same_count(boxes=boxes, masks=masks.T if masks.ndim == 3 else np.zeros((n,)),
                class_ids=class_ids, scores=scores, captions=captions)
    if colors is not None and len(colors) < n:
        raise ValueError(f"{len(colors)} colors for {n} instances")
    fig, ax = new_axes(ax, figsize, path)
    colors = colors or random_colors(n, seed=0)
    _setup_image_axes(ax, image, title)
    masked = _rgb(image)
    placed: list[tuple[float, float, float, float]] = []
    char_size = char_size_of(ax, image.shape[:2], LABEL_SIZE)
    for i in range(n):
        color = colors[i]
        if not np.any(boxes[i]):
            continue  # skipped: zero box (e.g. lost in cropping)
        y1, x1, y2, x2 = boxes[i]
        if show_bbox:
            ax.add_patch(patches.Rectangle((x1, y1), x2 - x1, y2 - y1, linewidth=2, alpha=0.7,
                                           linestyle="dashed", edgecolor=color,
                                           facecolor="none"))
        if captions is not None:
            caption = captions[i]
        else:
            label = class_names[class_ids[i]] if class_ids[i] < len(class_names) else "?"
            caption = f"{label} {scores[i]:.3f}" if scores is not None else label
        x, y = (place_label(caption, x1, y1, image.shape[:2], placed, char_size)
                if caption else (x1, y1))
        ax.text(x, y, caption, color="w", size=LABEL_SIZE, verticalalignment="top",
                bbox={"facecolor": color, "alpha": 0.6, "pad": 1, "edgecolor": "none"})
        if show_mask:
            masked = apply_mask(masked, masks[:, :, i], color)
        # Pad so that masks touching the border still give closed contours.
        padded = np.pad(masks[:, :, i].astype(np.uint8), 1)
        for verts in find_contours(padded, 0.5):
            verts = verts - 1
            ax.add_patch(Polygon(verts[:, ::-1], facecolor="none", edgecolor=color))
    ax.imshow(np.clip(masked, 0, 255).astype(np.uint8))
    done(fig, ax, path)
    show(fig, path)
    return ax


def display_images(images: Sequence[np.ndarray], titles: Sequence[str] | None = None,
                   cols: int = 4, cmap=None, norm=None, interpolation=None,
                   path: str | None = None):
    """Show images in a grid with optional titles. Returns the figure.

    Raises:
        ValueError: no images, or a different number of titles.
    """
    if len(images) == 0:
        raise ValueError("display_images needs at least one image")
    titles = list(titles) if titles is not None else [""] * len(images)
    same_count(images=images, titles=titles)
    rows = (len(images) + cols - 1) // cols
    fig = new_figure((14, 14 * rows // cols + 1), path)
    for i, (image, title) in enumerate(zip(images, titles, strict=True), start=1):
        ax = fig.add_subplot(rows, cols, i)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
        ax.imshow(np.asarray(image).astype(np.uint8), cmap=cmap, norm=norm,
                  interpolation=interpolation)
    finish(fig, path)
    show(fig, path)
    return fig


def detections_grid(images: Sequence[np.ndarray], results: Sequence[dict],
                    class_names: Sequence[str], path: str | None, cols: int = 4):
    """Draw `detect()` results for several images into one figure (saved to `path` if given).

    Returns:
        The figure (closed when saved).
    """
    same_count(images=images, results=results)
    cols = max(1, min(cols, len(images)))
    rows = (len(images) + cols - 1) // cols
    fig, axes = new_subplots(rows, cols, (4 * cols, 4 * rows), path, squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, image, r in zip(axes.ravel(), images, results, strict=False):
        display_instances(image, r["rois"], r["masks"], r["class_ids"], class_names,
                          r.get("scores"), ax=ax)
    finish(fig, path)
    return fig


def _drop_zero_rows(boxes, class_ids, masks, scores=None):
    keep = np.any(np.asarray(boxes).reshape(-1, 4) != 0, axis=1)
    return (np.asarray(boxes).reshape(-1, 4)[keep], np.asarray(class_ids)[keep],
            np.asarray(masks)[..., keep], None if scores is None else np.asarray(scores)[keep])


def display_differences(image: np.ndarray, gt_box: np.ndarray, gt_class_id: np.ndarray,
                        gt_mask: np.ndarray, pred_box: np.ndarray, pred_class_id: np.ndarray,
                        pred_score: np.ndarray, pred_mask: np.ndarray,
                        class_names: Sequence[str], title: str = "", ax=None,
                        show_mask: bool = True, show_box: bool = True,
                        iou_threshold: float = 0.5, score_threshold: float = 0.5,
                        path: str | None = None):
    """Ground truth (green) and predictions (red, captioned "score / IoU") on one image.

    Args:
        gt_box: [N, (y1, x1, y2, x2)] pixels; gt_class_id [N]; gt_mask [H, W, N].
        pred_box: [M, (y1, x1, y2, x2)] pixels; pred_class_id, pred_score [M];
            pred_mask [H, W, M].
        iou_threshold, score_threshold: passed to `compute_matches`.

    Returns:
        The Axes drawn into.
    """
    same_count(gt_box=gt_box, gt_class_id=gt_class_id, gt_mask=np.asarray(gt_mask).T)
    same_count(pred_box=pred_box, pred_class_id=pred_class_id, pred_score=pred_score,
                pred_mask=np.asarray(pred_mask).T)
    gt_box, gt_class_id, gt_mask, _ = _drop_zero_rows(gt_box, gt_class_id, gt_mask)
    pred_box, pred_class_id, pred_mask, pred_score = _drop_zero_rows(
        pred_box, pred_class_id, pred_mask, pred_score)
    # compute_matches reports predictions in descending score order: use the same order.
    order = np.argsort(-pred_score, kind="stable")
    pred_box, pred_class_id = pred_box[order], pred_class_id[order]
    pred_score, pred_mask = pred_score[order], pred_mask[..., order]
    gt_match, pred_match, overlaps = compute_matches(
        gt_box, gt_class_id, gt_mask, pred_box, pred_class_id, pred_score, pred_mask,
        iou_threshold=iou_threshold, score_threshold=score_threshold)
    n_gt, n_pred = len(gt_match), len(pred_match)
    colors = [(0, 1, 0, 0.8)] * n_gt + [(1, 0, 0, 1)] * n_pred
    captions = [""] * n_gt
    for i in range(n_pred):
        j = int(pred_match[i])
        iou = overlaps[i, j] if j > -1 else (overlaps[i].max() if n_gt else 0.0)
        captions.append(f"{pred_score[i]:.2f} / {iou:.2f}")
    title = title or "Ground Truth and Detections\n GT=green, pred=red, captions: score/IoU"
    return display_instances(
        image, np.concatenate([gt_box, pred_box]),
        np.concatenate([gt_mask, pred_mask], axis=-1),
        np.concatenate([gt_class_id, pred_class_id]), class_names,
        ax=ax, show_bbox=show_box, show_mask=show_mask, colors=colors,
        captions=captions, title=title, path=path)


def draw_rois(image: np.ndarray, rois: np.ndarray, refined_rois: np.ndarray,
              mask: np.ndarray, class_ids: np.ndarray, class_names: Sequence[str],
              limit: int = 10, seed: int | None = None, path: str | None = None):
    """Draw up to `limit` random ROIs before (dashed) and after (solid) refinement.

    Args:
        rois: [N, (y1, x1, y2, x2)] proposals in pixels.
        refined_rois: [N, (y1, x1, y2, x2)] the same after applying the predicted deltas.
        mask: [N, mask_height, mask_width] per-ROI mask targets (pasted into positive ROIs).
        class_ids: [N] class of each ROI; 0 is background (drawn grey, no mask).

    Returns:
        The Axes drawn into.
    """
    same_count(rois=rois, refined_rois=refined_rois, mask=mask, class_ids=class_ids)
    rois, refined_rois = np.asarray(rois), np.asarray(refined_rois)
    n = len(rois)
    ids = np.random.default_rng(seed).permutation(n)[:limit]
    fig, ax = new_axes(None, (12, 12), path)
    colors = random_colors(len(ids), seed=seed)
    _setup_image_axes(ax, image, "")
    masked = _rgb(image)
    for color, i in zip(colors, ids, strict=True):
        y1, x1, y2, x2 = rois[i]
        positive = class_ids[i] > 0
        ax.add_patch(patches.Rectangle(
            (x1, y1), x2 - x1, y2 - y1, linewidth=2, linestyle="dashed", facecolor="none",
            edgecolor=color if positive else "gray", alpha=0.7 if positive else 0.3))
        if not positive:
            continue
        ry1, rx1, ry2, rx2 = refined_rois[i]
        ax.add_patch(patches.Rectangle((rx1, ry1), rx2 - rx1, ry2 - ry1, linewidth=2,
                                       edgecolor=color, facecolor="none"))
        ax.add_line(lines.Line2D([x1, rx1], [y1, ry1], color=color))
        ax.text(rx1, ry1 + 8, class_names[class_ids[i]], color="w", size=11)
        box = np.clip(np.round(rois[i]).astype(np.int32), 0, None)
        if box[2] > box[0] and box[3] > box[1]:
            masked = apply_mask(masked, unmold_mask(mask[i], box, image.shape), color)
    ax.imshow(np.clip(masked, 0, 255).astype(np.uint8))
    n_pos = int(np.sum(np.asarray(class_ids) > 0))
    ax.set_title(f"ROIs: {n}, positive: {n_pos}, negative: {n - n_pos} "
                 f"(positive fraction {n_pos / max(n, 1):.2f})")
    done(fig, ax, path)
    return ax


def draw_box(image: np.ndarray, box: Sequence[int], color: Sequence[int]) -> np.ndarray:
    """Draw a 2-pixel box outline into `image` (in place; also returned).

    Args:
        image: [H, W, C] array.
        box: (y1, x1, y2, x2) pixels, clipped to the image.
        color: C channel values, e.g. (255, 0, 0).
    """
    image = np.asarray(image)
    if image.ndim != 3:
        raise ValueError(f"image must be [H, W, C], got shape {image.shape}")
    if len(box) != 4:
        raise ValueError(f"box must be (y1, x1, y2, x2), got {box}")
    h, w = image.shape[:2]
    y1, x1, y2, x2 = (int(v) for v in box)
    y1, y2 = np.clip([y1, y2], 0, h - 1)
    x1, x2 = np.clip([x1, x2], 0, w - 1)
    image[y1:y1 + 2, x1:x2 + 1] = color
    image[max(y2 - 1, 0):y2 + 1, x1:x2 + 1] = color
    image[y1:y2 + 1, x1:x1 + 2] = color
    image[y1:y2 + 1, max(x2 - 1, 0):x2 + 1] = color
    return image


def display_top_masks(image: np.ndarray, mask: np.ndarray, class_ids: np.ndarray,
                      class_names: Sequence[str], limit: int = 4, path: str | None = None):
    """The image, then the union mask of each of the `limit` classes with the largest area.

    Args:
        mask: [H, W, N] instance masks; class_ids: [N].

    Returns:
        The figure.
    """
    mask, class_ids = np.asarray(mask), np.asarray(class_ids)
    if mask.ndim != 3:
        raise ValueError(f"mask must be [H, W, N], got shape {mask.shape}")
    same_count(mask=mask.T, class_ids=class_ids)
    unique = np.unique(class_ids)
    areas = [np.sum(mask[..., class_ids == c]) for c in unique]
    top = [c for _, c in sorted(zip(areas, unique, strict=True), key=lambda p: -p[0])]
    images, titles = [image], [f"H x W={image.shape[0]}x{image.shape[1]}"]
    for i in range(limit):
        if i < len(top):
            images.append(np.sum(mask[..., class_ids == top[i]], axis=-1) > 0)
            titles.append(class_names[top[i]])
        else:
            images.append(np.zeros(mask.shape[:2], bool))
            titles.append("-")
    images = [im.astype(np.uint8) * 255 if im.dtype == bool else im for im in images]
    return display_images(images, titles=titles, cols=limit + 1, cmap="Blues_r", path=path)


def draw_boxes(image: np.ndarray, boxes: np.ndarray | None = None,
               refined_boxes: np.ndarray | None = None, masks: np.ndarray | None = None,
               captions: Sequence[str] | None = None,
               visibilities: Sequence[int] | None = None, title: str = "", ax=None,
               path: str | None = None):
    """Draw boxes, their refinements (joined to them by a line), masks and captions.

    Args:
        boxes: [N, (y1, x1, y2, x2)] pixels; drawn dashed when `refined_boxes` is given.
        refined_boxes: [N, (y1, x1, y2, x2)] pixels.
        masks: [H, W, N].
        captions: N strings.
        visibilities: N values: 0 hidden, 1 faint, 2 full (default 2).

    Returns:
        The Axes.
    """
    if boxes is None and refined_boxes is None:
        raise ValueError("draw_boxes needs boxes or refined_boxes")
    n = same_count(boxes=boxes, refined_boxes=refined_boxes, captions=captions,
                    visibilities=visibilities,
                    masks=None if masks is None else np.asarray(masks).T)
    fig, ax = new_axes(ax, (12, 12), path)
    colors = random_colors(n, seed=0)
    _setup_image_axes(ax, image, title)
    masked = _rgb(image)
    for i in range(n):
        visibility = 2 if visibilities is None else visibilities[i]
        if visibility == 0:
            continue
        color = colors[i]
        style, alpha = ("dotted", 0.5) if visibility == 1 else ("solid", 1.0)
        if boxes is not None and np.any(boxes[i]):
            y1, x1, y2, x2 = boxes[i]
            ax.add_patch(patches.Rectangle(
                (x1, y1), x2 - x1, y2 - y1, linewidth=2, alpha=alpha, facecolor="none",
                linestyle="dashed" if refined_boxes is not None else style, edgecolor=color))
        if refined_boxes is not None and visibility > 0:
            ry1, rx1, ry2, rx2 = refined_boxes[i]
            ax.add_patch(patches.Rectangle((rx1, ry1), rx2 - rx1, ry2 - ry1, linewidth=2,
                                           edgecolor=color, facecolor="none"))
            if boxes is not None:
                ax.add_line(lines.Line2D([boxes[i][1], rx1], [boxes[i][0], ry1], color=color))
        if captions is not None:
            y, x = (refined_boxes if refined_boxes is not None else boxes)[i][:2]
            ax.text(x, y, captions[i], size=11, verticalalignment="top", color="w",
                    bbox={"facecolor": "none", "alpha": 0.5, "pad": 2, "edgecolor": "none"})
        if masks is not None:
            masked = apply_mask(masked, np.asarray(masks)[:, :, i], color)
    ax.imshow(np.clip(masked, 0, 255).astype(np.uint8))
    done(fig, ax, path)
    return ax
