"""Diagnostic drawings (matterport's names): precision-recall curves, overlap matrices,
tables and weight statistics. Re-exported by mrcnn.vis.drawing."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import numpy as np

from mrcnn.vis.figures import done, finish, new_axes, new_subplots, same_count


def plot_precision_recall(AP: float, precisions: np.ndarray, recalls: np.ndarray,  # noqa: N803
                          path: str | None = None):
    """The precision-recall curve of one evaluation (from `compute_ap`). Returns the Axes."""
    same_count(precisions=precisions, recalls=recalls)
    fig, ax = new_axes(None, (6, 6), path)
    ax.set_title(f"Precision-Recall Curve. AP@50 = {AP:.3f}")
    ax.set_ylim(0, 1.1)
    ax.set_xlim(0, 1.1)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.plot(recalls, precisions)
    done(fig, ax, path)
    return ax



def plot_pr_curves(curves: dict[str, tuple[np.ndarray, np.ndarray]], title: str = "",
                   path: str | None = None):
    """Several precision-recall curves on one plot (e.g. COCOeval's at IoU 0.5 and 0.75 for
    bbox and segm, from `mrcnn.evaluation.runner.EvaluationReport.pr_curves`).

    Args:
        curves: {label: (recall [K], precision [K])}, values in [0, 1].
        title: the plot title.
        path: save the figure here (PNG) on its own Agg canvas instead of showing it.

    Returns:
        The Axes.

    Raises:
        ValueError: no curve, or a curve whose recall and precision differ in length.
    """
    if not curves:
        raise ValueError("plot_pr_curves needs at least one curve")
    fig, ax = new_axes(None, (6, 6), path)
    for label, (recall, precision) in curves.items():
        same_count(recall=recall, precision=precision)
        ax.plot(recall, precision, label=label)
    ax.set_title(title or "Precision-recall")
    ax.set_xlim(0, 1.0)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower left")
    done(fig, ax, path)
    return ax

def plot_overlaps(gt_class_ids: np.ndarray, pred_class_ids: np.ndarray,
                  pred_scores: np.ndarray, overlaps: np.ndarray, class_names: Sequence[str],
                  threshold: float = 0.5, path: str | None = None):
    """The IoU grid of predictions (rows) against ground truth (columns).

    A cell is labelled "match" when the IoU passes `threshold` and the classes agree, "wrong"
    when the IoU passes but the classes differ.

    Args:
        overlaps: [len(pred_class_ids), len(gt_class_ids)] IoUs.

    Returns:
        The Axes.
    """
    same_count(pred_class_ids=pred_class_ids, pred_scores=pred_scores)
    overlaps = np.asarray(overlaps)
    if overlaps.shape != (len(pred_class_ids), len(gt_class_ids)):
        raise ValueError(f"overlaps must have shape ({len(pred_class_ids)}, "
                         f"{len(gt_class_ids)}), got {overlaps.shape}")
    fig, ax = new_axes(None, (12, 10), path)
    ax.imshow(overlaps, interpolation="nearest", cmap="Blues", vmin=0, vmax=1)
    ax.set_yticks(np.arange(len(pred_class_ids)))
    ax.set_yticklabels([f"{class_names[int(c)]} ({s:.2f})"
                        for c, s in zip(pred_class_ids, pred_scores, strict=True)])
    ax.set_xticks(np.arange(len(gt_class_ids)))
    ax.set_xticklabels([class_names[int(c)] for c in gt_class_ids], rotation=90)
    for i in range(overlaps.shape[0]):
        for j in range(overlaps.shape[1]):
            value = overlaps[i, j]
            note = ""
            if value > threshold:
                note = "match" if gt_class_ids[j] == pred_class_ids[i] else "wrong"
            color = "white" if value > 0.5 else "black"
            ax.text(j, i, f"{value:.3f}\n{note}", ha="center", va="center", fontsize=9,
                    color=color)
    ax.set_ylabel("Predictions (score)")
    ax.set_xlabel("Ground Truth")
    done(fig, ax, path)
    return ax


def display_table(table: Sequence[Sequence[Any]], path: str | None = None) -> str:
    """A table (first row: header) as HTML; drawn to a PNG as well when `path` is given.

    Returns:
        The HTML string (show it in a notebook with `IPython.display.HTML`).
    """
    rows = [[str(cell) for cell in row] for row in table]
    if not rows:
        raise ValueError("display_table needs at least one row")
    html_rows = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                        for row in rows)
    if path is not None:
        width = max(len(r) for r in rows)
        padded = [r + [""] * (width - len(r)) for r in rows]
        fig, ax = new_subplots(1, 1, (2 + 2 * width, 0.5 + 0.3 * len(rows)), path)
        ax.axis("off")
        if len(padded) > 1:
            cells = ax.table(cellText=padded[1:], colLabels=padded[0], loc="center")
        else:  # a header alone: matplotlib needs cell text
            cells = ax.table(cellText=padded, loc="center")
        cells.auto_set_font_size(False)
        cells.set_fontsize(8)
        finish(fig, path)
    return f"<table>{html_rows}</table>"


def _weight_note(name: str, values: np.ndarray) -> str:
    if not np.all(np.isfinite(values)):
        return "non-finite values"
    # Biases, BN betas and moving means may legitimately be constant; kernels should not.
    constant_ok = any(k in name for k in ("bias", "beta", "moving_mean", "moving_variance",
                                          "gamma"))
    if values.size > 1 and values.std() == 0 and not constant_ok:
        return "constant (dead?)"
    if np.abs(values).max() > 1000:
        return "large values (> 1000)"
    return ""


def display_weight_stats(model: Any, path: str | None = None) -> list[list[str]]:
    """Per-weight statistics (shape, min, max, std, note) of a Keras model or `MaskRCNN`.

    Args:
        model: a Keras model, or an object with a `keras_model` attribute (MaskRCNN).
        path: optional PNG path for the rendered table.

    Returns:
        Rows: a header, then one row per weight, "WEIGHT NAME", "SHAPE", "MIN", "MAX", "STD",
        "NOTE" (non-finite, constant kernel, or values above 1000).
    """
    model = getattr(model, "keras_model", model)
    weights = getattr(model, "weights", None)
    if weights is None:
        raise TypeError(f"display_weight_stats needs a Keras model, got {type(model)}")
    rows = [["WEIGHT NAME", "SHAPE", "MIN", "MAX", "STD", "NOTE"]]
    for w in weights:
        name = getattr(w, "path", None) or w.name
        values = np.asarray(w.numpy() if hasattr(w, "numpy") else w, dtype=np.float64)
        rows.append([name, str(tuple(values.shape)), f"{values.min():+9.4f}",
                     f"{values.max():+10.4f}", f"{values.std():+9.4f}",
                     _weight_note(name, values)])
    if path is not None:
        display_table(rows, path=path)
    return rows
