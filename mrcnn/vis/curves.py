"""Training curves: the losses, the learning rate and the mAP of a run's epochs in one picture.

The records are those of the run's epoch log (`mrcnn.engine.callbacks.EpochLog`,
`metrics.json`) or a Keras `History.history` turned into records (`history_records`). The
drawing is made on a pyplot-free Figure with its own Agg canvas and saved atomically, so it
works headless and leaves a notebook's backend alone (`mrcnn.vis.figures`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

from matplotlib.ticker import MaxNLocator

from mrcnn.vis import figures

logger = logging.getLogger(__name__)

# The loss keys drawn, in matterport's order; "val_" twins are drawn dashed in the same colour.
LOSS_KEYS = ("loss", "rpn_class_loss", "rpn_bbox_loss", "mrcnn_class_loss", "mrcnn_bbox_loss",
             "mrcnn_mask_loss")


def history_records(history: Mapping[str, Sequence[float]],
                    first_epoch: int = 1) -> list[dict[str, Any]]:
    """A Keras `History.history` ({key: [value per epoch]}) as epoch records.

    Args:
        history: `History.history`.
        first_epoch: the 1-based number of the first epoch in it (initial_epoch + 1).

    Returns:
        [{"epoch": n, key: value, ...}, ...].
    """
    count = max((len(v) for v in history.values()), default=0)
    return [{"epoch": first_epoch + i,
             **{k: float(v[i]) for k, v in history.items() if i < len(v)}}
            for i in range(count)]


def _series(records: Sequence[Mapping[str, Any]], key: str) -> tuple[list[int], list[float]]:
    xs, ys = [], []
    for record in records:
        value = record.get(key)
        if value is None:
            continue
        value = float(value)
        if math.isfinite(value):
            xs.append(int(record["epoch"]))
            ys.append(value)
    return xs, ys


def _metric_keys(records: Sequence[Mapping[str, Any]]) -> list[str]:
    """Keys that are neither losses nor the learning rate (e.g. "mAP"), in first-seen order."""
    keys: list[str] = []
    for record in records:
        for key in record:
            plain = key[4:] if key.startswith("val_") else key
            if key in ("epoch", "lr") or plain.endswith("loss") or key in keys:
                continue
            keys.append(key)
    return keys


def plot_training_curves(records: Sequence[Mapping[str, Any]], path: str,
                         title: str | None = None) -> list[str]:
    """Draw losses (log scale), learning rate and metrics over epochs and save to `path`.

    Args:
        records: epoch records, each with "epoch" (1-based) and values such as "loss",
            "val_loss", "mrcnn_mask_loss", "lr", "mAP" (None or missing where not measured).
        path: the PNG to write (atomically; the folder is created).
        title: a title above the panels (e.g. the run folder's name).

    Returns:
        The panels drawn, among "losses", "learning rate" and "metrics".

    Raises:
        ValueError: no record, or a record without an integer "epoch".
    """
    if not records:
        raise ValueError("plot_training_curves needs at least one epoch record, got none")
    for record in records:
        if not isinstance(record.get("epoch"), int):
            raise ValueError(f"every record needs an integer 'epoch', got {dict(record)!r}")
    metrics = _metric_keys(records)
    panels = ["losses", "learning rate"] + (["metrics"] if metrics else [])
    fig, axes = figures.new_subplots(1, len(panels), (5.0 * len(panels), 4.0), path,
                                     squeeze=False)
    ax_loss, ax_lr = axes[0][0], axes[0][1]
    colours = {key: f"C{k}" for k, key in enumerate(LOSS_KEYS)}
    for key in LOSS_KEYS:
        for prefix, style in (("", "-"), ("val_", "--")):
            xs, ys = _series(records, prefix + key)
            if xs:
                ax_loss.plot(xs, ys, style, color=colours[key], marker=".",
                             label=prefix + key, linewidth=2.0 if key == "loss" else 1.0)
    if ax_loss.lines and all(y > 0 for line in ax_loss.lines for y in line.get_ydata()):
        ax_loss.set_yscale("log")
    ax_loss.set_title("losses (dashed: validation)")
    xs, ys = _series(records, "lr")
    ax_lr.plot(xs, ys, marker=".", color="C0")
    ax_lr.set_title("learning rate (end of epoch)")
    if metrics:
        ax_metric = axes[0][2]
        for k, key in enumerate(metrics):
            xs, ys = _series(records, key)
            ax_metric.plot(xs, ys, marker="o", color=f"C{k}", label=key)
        ax_metric.set_title("metrics")
        ax_metric.legend(fontsize="small")
    for ax in axes[0]:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.grid(True, alpha=0.3)
    if ax_loss.lines:
        ax_loss.legend(fontsize="x-small")
    if title:
        fig.suptitle(title, y=1.03)
    figures.finish(fig, path)
    logger.info("Wrote training curves (%s) to %s", ", ".join(panels), path)
    return panels
