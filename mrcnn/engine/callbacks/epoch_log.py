"""`EpochLog`: the run's epoch values (losses, learning rate, mAP) in a JSON file of the run
folder, kept over resumed runs, written atomically; what `mrcnn.vis.curves` draws.

TensorBoard's event files need TensorBoard to read; History covers one `fit` only. This log
covers the whole run: a resumed run reads the records of the earlier epochs and replaces the
ones from its first epoch on (a run resumed from an older checkpoint redoes those epochs).
"""

from __future__ import annotations

import json
import logging
import math
import os
from typing import Any

import keras

from mrcnn.engine.runs import log_dir_of
from mrcnn.fileio import atomic_write

logger = logging.getLogger(__name__)

EPOCH_LOG_FILE = "metrics.json"


def read_epoch_log(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The records of an epoch log: [{"epoch": 1-based epoch, "loss": ..., "lr": ...}, ...],
    ordered by epoch; [] when the file does not exist.

    Raises:
        ValueError: the file is not an epoch log (not JSON, or without a "epochs" list).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        return []
    with open(path) as handle:
        try:
            data = json.load(handle)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: not a JSON epoch log: {err}") from err
    records = data.get("epochs") if isinstance(data, dict) else None
    if not isinstance(records, list) or not all(
            isinstance(r, dict) and isinstance(r.get("epoch"), int) for r in records):
        raise ValueError(f"{path}: expected {{'epochs': [{{'epoch': int, ...}}, ...]}}")
    return sorted(records, key=lambda r: r["epoch"])


def _plain(value: Any) -> float | None:
    try:
        number = float(keras.ops.convert_to_numpy(value))
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


class EpochLog(keras.callbacks.Callback):
    """After each epoch, appends the epoch's logs (and the learning rate) to a JSON file.

    Run it after the callbacks that add values (`MeanAPCallback`, `WarmupLRSchedule`'s "lr"):
    `MaskRCNN.train` runs custom callbacks in the order given, after the metric producers.

    Args:
        log_dir: the run folder, or an object with `log_dir` (MaskRCNN, read at use time).
        filename: the file in the run folder.

    Attributes:
        records: the records written so far, earlier runs' included.
    """

    def __init__(self, log_dir: Any, filename: str = EPOCH_LOG_FILE):
        super().__init__()
        if not filename or os.path.basename(filename) != filename:
            raise ValueError(f"filename must be a plain file name, got {filename!r}")
        self.log_dir = log_dir
        self.filename = filename
        self.records: list[dict[str, Any]] | None = None

    @property
    def path(self) -> str:
        """The log file: `{log_dir}/{filename}`."""
        return os.path.join(log_dir_of(self.log_dir), self.filename)

    def on_epoch_end(self, epoch, logs=None):
        if self.records is None:
            try:
                earlier = read_epoch_log(self.path)
            except ValueError as err:
                logger.warning("Starting a new epoch log: %s", err)
                earlier = []
            # Epochs from this one on are being redone: drop their old records.
            self.records = [r for r in earlier if r["epoch"] <= epoch]
        record: dict[str, Any] = {"epoch": epoch + 1}
        for key, value in sorted((logs or {}).items()):
            record[key] = _plain(value)
        if record.get("lr") is None and self.model is not None:
            record["lr"] = _plain(self.model.optimizer.learning_rate)
        self.records.append(record)
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        with atomic_write(self.path, suffix=".json") as tmp, open(tmp, "w") as handle:
            json.dump({"epochs": self.records}, handle, indent=1)
