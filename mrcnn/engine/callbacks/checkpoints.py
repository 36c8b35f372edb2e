"""The callbacks that write, copy and delete checkpoint files, in one place.

- `MatterportCheckpoint`: `mask_rcnn_{name}_{epoch:04d}.h5` after each epoch (Keras-2 HDF5
  layout, optimizer state and config beside the weights); `MaskRCNN.train` adds it itself.
- `KeepLastCheckpoints`: deletes all but the newest N epoch checkpoints of a run.
- `BestCheckpoint`: keeps `mask_rcnn_{name}_best.h5` and a JSON record of the best epoch.

File names and run folders come from `mrcnn.engine.runs`; the HDF5 reading and writing from
`mrcnn.checkpoint`. `MaskRCNN.train` runs the epoch writer before the custom callbacks, so the
epoch's file exists when `BestCheckpoint` and `KeepLastCheckpoints` run.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
from typing import Any

import keras

from mrcnn.engine.callbacks.base import monitor_mode
from mrcnn.engine.runs import best_checkpoint_path, checkpoint_file_pattern, log_dir_of
from mrcnn.fileio import atomic_write

logger = logging.getLogger(__name__)


# The largest |weight| a checkpoint may hold. Trained Mask R-CNN weights stay many orders of
# magnitude below (the largest are BatchNorm moving variances of ImageNet ResNets, in the
# thousands); weights beyond it have diverged, and float32 overflows to inf at 3.4e38.
MAX_ABS_WEIGHT = 1e8


def unsafe_weights(model: keras.Model, max_abs: float = MAX_ABS_WEIGHT) -> list[str]:
    """Paths of the model weights holding a NaN, an infinity or a value with |w| > max_abs."""
    import numpy as np

    bad = []
    for weight in model.weights:
        value = np.asarray(keras.ops.convert_to_numpy(weight))
        if value.size and not (np.all(np.isfinite(value))
                               and float(np.max(np.abs(value))) <= max_abs):
            bad.append(str(getattr(weight, "path", weight.name)))
    return bad


class MatterportCheckpoint(keras.callbacks.Callback):
    """Writes `{log_dir}/mask_rcnn_{name}_{epoch:04d}.h5` in the Keras-2 HDF5 layout after
    each epoch, atomically, with the epoch, the config and the optimizer state as extras.

    An epoch whose loss is not finite is not saved (its weights are not trustworthy); nor is
    one whose weights hold a NaN, an infinity or a value beyond `max_abs_weight` (exploded
    weights with a finite loss): that stops training and `failure` says why, so the run's
    "last" checkpoint stays the previous, sound one.

    Args:
        path_template: a path with an `{epoch}` field, e.g. MaskRCNN.checkpoint_path.
        config: a dict stored beside the weights (Config.to_dict()).
        save_optimizer: also store the optimizer state for exact resume.
        metadata: a JSON-able dict stored beside the weights (class names, detection
            settings, the training state a resume needs: `mrcnn.engine.train_loop`).
        max_abs_weight: the largest |weight| a checkpoint may hold (MAX_ABS_WEIGHT).

    Attributes:
        saved: the files written.
        failure: None, or {"epoch": 1-based epoch, "weights": the offending weight paths}.
    """

    def __init__(self, path_template: str, config: dict | None = None,
                 save_optimizer: bool = True, metadata: dict | None = None,
                 max_abs_weight: float = MAX_ABS_WEIGHT):
        super().__init__()
        if not max_abs_weight > 0:
            raise ValueError(f"max_abs_weight must be > 0, got {max_abs_weight!r}")
        self.path_template = path_template
        self.config = config
        self.save_optimizer = save_optimizer
        self.metadata = metadata
        self.max_abs_weight = float(max_abs_weight)
        self.saved: list[str] = []
        self.failure: dict[str, Any] | None = None

    def on_epoch_end(self, epoch, logs=None):
        from mrcnn.checkpoint import save_weights_h5

        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            logger.error("Epoch %d ended with loss %s: no checkpoint written", epoch + 1, loss)
            return
        bad = unsafe_weights(self.model, self.max_abs_weight)
        if bad:
            self.failure = {"epoch": epoch + 1, "weights": bad}
            logger.error("Epoch %d: %d weight(s) are not finite or exceed |w| <= %g (%s): no "
                         "checkpoint written; stopping training", epoch + 1, len(bad),
                         self.max_abs_weight, ", ".join(bad[:5]))
            self.model.stop_training = True
            return
        path = self.path_template.format(epoch=epoch + 1)
        save_weights_h5(self.model, path, epoch=epoch + 1, config=self.config,
                        optimizer=self.model.optimizer if self.save_optimizer else None,
                        metadata=self.metadata)
        self.saved.append(path)
        logger.info("Saved checkpoint %s", path)


def _epoch_pattern(name: str | None, pattern: str | re.Pattern | None) -> re.Pattern:
    if pattern is None:
        return checkpoint_file_pattern(name)
    compiled = re.compile(pattern)
    if "epoch" not in compiled.groupindex:
        raise ValueError(f"pattern needs a named group 'epoch', got {compiled.pattern!r}")
    return compiled


def _protected_sources(folder: str) -> set[str]:
    """Basenames of the checkpoints the best-checkpoint records in `folder` point to."""
    found = set()
    for entry in os.listdir(folder):
        if entry.endswith("_best.json"):
            try:
                with open(os.path.join(folder, entry)) as handle:
                    source = json.load(handle).get("source")
            except (OSError, ValueError):
                logger.warning("Unreadable best-checkpoint record %s", entry)
                continue
            if source:
                found.add(os.path.basename(source))
    return found


class KeepLastCheckpoints(keras.callbacks.Callback):
    """After each epoch, deletes all but the newest `keep` epoch checkpoints of a run.

    The checkpoint a `*_best.json` record in the folder names as its source is never deleted.

    Args:
        log_dir: the run folder, or an object with a `log_dir` attribute (MaskRCNN).
        keep: how many of the newest checkpoints to keep (>= 1).
        name: the config NAME (default: any name).
        pattern: a regex with a named group `epoch` replacing the matterport file pattern.
    """

    def __init__(self, log_dir: Any, keep: int = 3, name: str | None = None,
                 pattern: str | re.Pattern | None = None):
        super().__init__()
        if not isinstance(keep, int) or keep < 1:
            raise ValueError(f"keep must be an int >= 1, got {keep!r}")
        self.log_dir = log_dir
        self.keep = keep
        self.name = name
        self.pattern = _epoch_pattern(name, pattern)
        self.deleted: list[str] = []

    def on_epoch_end(self, epoch, logs=None):
        folder = log_dir_of(self.log_dir)
        if not os.path.isdir(folder):
            return
        found = sorted((int(m.group("epoch")), entry) for entry in os.listdir(folder)
                       if (m := self.pattern.match(entry)))
        protected = _protected_sources(folder)
        for _, entry in found[:-self.keep]:
            if entry in protected:
                continue
            path = os.path.join(folder, entry)
            os.remove(path)
            self.deleted.append(path)
            logger.info("Deleted old checkpoint %s", path)


def _atomic_write_json(path: str, record: dict) -> None:
    with atomic_write(path, suffix=".json") as tmp, open(tmp, "w") as handle:
        json.dump(record, handle, indent=2)


class BestCheckpoint(keras.callbacks.Callback):
    """Keeps the best epoch's weights at `path` (atomically) and a JSON record beside it.

    The record (`path` with `.json`) holds monitor, mode, value, epoch (1-based, as checkpoint
    names) and source (the epoch checkpoint copied, or null when the model was written
    directly). With `resume`, an existing record for the same monitor and mode sets the value
    to beat, so a resumed run does not replace a better earlier epoch.

    Args:
        path: e.g. `{log_dir}/mask_rcnn_{name}_best.h5`.
        monitor: a key of the epoch logs ("val_loss", "mAP", ...).
        mode: "min", "max" or "auto" (see `EarlyStopping`).
        checkpoint_template: the epoch checkpoint path with an `{epoch}` field
            (MaskRCNN.checkpoint_path); when that file exists it is copied, otherwise the
            model's weights are written with `mrcnn.checkpoint.save_weights_h5`.
        min_delta: the smallest change that counts as an improvement.
    """

    def __init__(self, path: str, monitor: str = "val_loss", mode: str = "auto",
                 checkpoint_template: str | None = None, min_delta: float = 0.0,
                 resume: bool = True):
        super().__init__()
        if min_delta < 0:
            raise ValueError(f"min_delta must be >= 0, got {min_delta}")
        self.path = os.fspath(path)
        self.monitor = monitor
        self.mode = monitor_mode(monitor, mode)
        self.checkpoint_template = checkpoint_template
        self.min_delta = min_delta
        self.record_path = os.path.splitext(self.path)[0] + ".json"
        self.best: float | None = None
        self.best_epoch: int | None = None
        self._warned = False
        if resume and os.path.isfile(self.record_path):
            with open(self.record_path) as handle:
                record = json.load(handle)
            if record.get("monitor") == monitor and record.get("mode") == self.mode:
                self.best, self.best_epoch = record["value"], record["epoch"]

    @classmethod
    def for_model(cls, model: Any, monitor: str = "val_loss", mode: str = "auto",
                  **kwargs: Any) -> BestCheckpoint:
        """`{model.log_dir}/mask_rcnn_{NAME}_best.h5`, copying `model.checkpoint_path` files."""
        path = best_checkpoint_path(model.log_dir, model.config.NAME)
        return cls(path, monitor=monitor, mode=mode,
                   checkpoint_template=model.checkpoint_path, **kwargs)

    def _improved(self, value: float) -> bool:
        if self.best is None:
            return True
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None:
            log = logger.debug if self._warned else logger.warning
            log("BestCheckpoint: %r not in the logs of epoch %d (keys: %s)", self.monitor,
                epoch + 1, sorted(logs or {}))
            self._warned = True
            return
        value = float(value)
        if not math.isfinite(value) or not self._improved(value):
            return
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        source = None
        if self.checkpoint_template:
            candidate = self.checkpoint_template.format(epoch=epoch + 1)
            if os.path.isfile(candidate):
                source = candidate
        if source is not None:
            with atomic_write(self.path, suffix=".h5") as tmp:
                shutil.copyfile(source, tmp)
        else:
            from mrcnn.checkpoint import save_weights_h5
            if unsafe_weights(self.model):
                logger.error("BestCheckpoint: epoch %d's weights are not finite or exploded; "
                             "%s not written", epoch + 1, self.path)
                return
            save_weights_h5(self.model, self.path, epoch=epoch + 1)
        _atomic_write_json(self.record_path, {
            "monitor": self.monitor, "mode": self.mode, "value": value, "epoch": epoch + 1,
            "source": source, "path": self.path})
        logger.info("Epoch %d: %s improved from %s to %.5g; best weights at %s", epoch + 1,
                    self.monitor, self.best, value, self.path)
        self.best, self.best_epoch = value, epoch + 1
