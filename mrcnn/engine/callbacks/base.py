"""Epoch-log conventions: the base class of callbacks that add metrics to the logs, the
direction of a monitored name, and the callbacks that stop training on a logged value."""

from __future__ import annotations

import logging
import math
import re
from typing import Any

import keras

logger = logging.getLogger(__name__)


class EpochMetricCallback(keras.callbacks.Callback):
    """Base class of the callbacks that add values to the epoch logs (e.g. MeanAPCallback).

    A subclass writes its values into `logs` in `on_epoch_end` and names their keys in
    `metric_names`. `MaskRCNN.train` (`mrcnn.engine.train_loop.training_callbacks`) runs the
    custom callbacks that are instances of this class first, right after the NaN guard and
    before TensorBoard, the epoch checkpoint writer and every other custom callback, so all
    of those see the added values (a `BestCheckpoint` or `EarlyStopping` monitoring "mAP",
    the TensorBoard scalars, History).
    """

    @property
    def metric_names(self) -> tuple[str, ...]:
        """The keys this callback adds to the epoch logs."""
        return ()


class NonFiniteLossGuard(keras.callbacks.Callback):
    """Stops training at the first batch whose loss is NaN or infinite and remembers where.

    Attributes:
        failure: None, or {"epoch": 1-based epoch, "batch": batch index, "logs": the
            batch's logs} of the first non-finite batch.
    """

    def __init__(self):
        super().__init__()
        self.failure: dict[str, Any] | None = None
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.failure = {"epoch": self._epoch + 1, "batch": batch,
                            "logs": {k: float(v) for k, v in (logs or {}).items()}}
            logger.error("Non-finite loss at epoch %d, batch %d: %s; stopping training",
                         self._epoch + 1, batch, self.failure["logs"])
            self.model.stop_training = True


def monitor_mode(monitor: str, mode: str) -> str:
    """'min' or 'max' for a monitored name: "*loss" is minimised, AP/accuracy/recall maximised."""
    if mode in ("min", "max"):
        return mode
    if mode != "auto":
        raise ValueError(f"mode must be 'min', 'max' or 'auto', got {mode!r}")
    name = monitor.lower()
    if name.endswith("loss"):
        return "min"
    if re.search(r"(^|_)(m?ap\d*|acc\w*|recall|precision|f1)", name):
        return "max"
    raise ValueError(f"cannot tell whether {monitor!r} should go up or down: pass mode='min' "
                     "or mode='max'")


class EarlyStopping(keras.callbacks.EarlyStopping):
    """Keras' EarlyStopping, knowing the direction of our metric names.

    Keras' "auto" mode only knows "loss" and compiled metrics, and raises for "mrcnn_mask_loss"
    or "mAP"; here "*loss" is minimised and AP/accuracy/recall maximised. A monitor missing
    from an epoch's logs (mAP evaluated every N epochs) is skipped without counting toward
    `patience`; it is reported once.
    """

    def __init__(self, monitor: str = "val_loss", min_delta: float = 0.0, patience: int = 0,
                 mode: str = "auto", baseline: float | None = None,
                 restore_best_weights: bool = False, start_from_epoch: int = 0,
                 verbose: int = 0):
        if patience < 0:
            raise ValueError(f"patience must be >= 0, got {patience}")
        super().__init__(monitor=monitor, min_delta=min_delta, patience=patience,
                         mode=monitor_mode(monitor, mode), baseline=baseline,
                         restore_best_weights=restore_best_weights,
                         start_from_epoch=start_from_epoch, verbose=verbose)
        self._warned = False

    def get_monitor_value(self, logs):
        value = (logs or {}).get(self.monitor)
        if value is None:
            log = logger.debug if self._warned else logger.warning
            log("EarlyStopping: %r not in the epoch logs (keys: %s)", self.monitor,
                sorted(logs or {}))
            self._warned = True
        return value
