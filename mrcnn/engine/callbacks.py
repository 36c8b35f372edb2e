"""Training-control Keras callbacks, composable through `MaskRCNN.train(custom_callbacks=...)`.

- `WarmupLRSchedule`: linear warmup, then step or cosine decay, set per batch and logged as "lr"
  (`lr_at` is the pure function behind it).
- `KeepLastCheckpoints`: deletes all but the newest N `mask_rcnn_{name}_{epoch:04d}.h5` of a run.
- `BestCheckpoint`: keeps `mask_rcnn_{name}_best.h5` and a JSON record of the best epoch.
- `EarlyStopping`: Keras' own, with the direction of our metric names ("*loss", "mAP") known.
- `TensorBoardDetections`: draws a few validation detections into TensorBoard each epoch.

`MaskRCNN.train` runs its own checkpoint writer before the custom callbacks, so at the end of an
epoch the epoch's checkpoint already exists when these run. A callback that adds a metric to the
logs (the mAP callback) must come before the callbacks that monitor it in the list.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np

from mrcnn.fileio import atomic_write

logger = logging.getLogger(__name__)

_DECAYS = ("constant", "step", "cosine")
_UNITS = ("epoch", "step")


def lr_at(step: int, base_lr: float, *, warmup_steps: int = 0, warmup_factor: float = 0.001,
          decay: str = "constant", milestones: Sequence[int] = (), gamma: float = 0.1,
          total_steps: int | None = None, min_lr: float = 0.0) -> float:
    """The learning rate at a global step (0-based) under warmup and decay.

    lr = warmup(step) * decayed(step), where warmup rises linearly from `warmup_factor` at step
    0 to 1 at `warmup_steps`, and decayed is `base_lr` ("constant"), `base_lr * gamma**k` with
    k the number of milestones <= step ("step"), or a half cosine from `base_lr` at step 0 to
    `min_lr` at `total_steps`, flat after ("cosine").

    Raises:
        ValueError: a negative step or count, a factor outside (0, 1], an unknown decay,
            unsorted milestones, or cosine decay without a positive `total_steps`.
    """
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    if base_lr <= 0:
        raise ValueError(f"base_lr must be > 0, got {base_lr}")
    if warmup_steps < 0:
        raise ValueError(f"warmup_steps must be >= 0, got {warmup_steps}")
    if not 0 < warmup_factor <= 1:
        raise ValueError(f"warmup_factor must be in (0, 1], got {warmup_factor}")
    if decay not in _DECAYS:
        raise ValueError(f"decay must be one of {_DECAYS}, got {decay!r}")
    if decay == "step":
        if list(milestones) != sorted(milestones) or any(m < 0 for m in milestones):
            raise ValueError(f"milestones must be non-negative and sorted, got {milestones}")
        if gamma <= 0:
            raise ValueError(f"gamma must be > 0, got {gamma}")
        lr = base_lr * gamma ** sum(1 for m in milestones if step >= m)
    elif decay == "cosine":
        if not total_steps or total_steps <= 0:
            raise ValueError(f"cosine decay needs total_steps > 0, got {total_steps}")
        if not 0 <= min_lr <= base_lr:
            raise ValueError(f"min_lr must be in [0, base_lr={base_lr}], got {min_lr}")
        progress = min(step, total_steps) / total_steps
        lr = min_lr + (base_lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))
    else:
        lr = base_lr
    if step < warmup_steps:
        alpha = step / warmup_steps
        lr *= warmup_factor * (1.0 - alpha) + alpha
    return float(lr)


class WarmupLRSchedule(keras.callbacks.Callback):
    """Sets `model.optimizer.learning_rate` before every batch from `lr_at`, logs it as "lr".

    The global step is `epoch * steps_per_epoch + batch`, so a resumed run (`initial_epoch`)
    continues the schedule where it stopped.

    Args:
        base_lr: the peak rate; default: the optimizer's rate when training starts (the rate
            given to `MaskRCNN.train`).
        warmup_steps, warmup_factor: linear warmup, in steps.
        decay: "constant", "step" or "cosine".
        milestones: step-decay boundaries, in `unit`.
        gamma: step-decay factor.
        total: cosine-decay length, in `unit`.
        min_lr: the cosine floor.
        unit: "epoch" or "step", for `milestones` and `total`.
        steps_per_epoch: default: the `steps` Keras passes to callbacks.
    """

    def __init__(self, base_lr: float | None = None, warmup_steps: int = 0,
                 warmup_factor: float = 0.001, decay: str = "constant",
                 milestones: Sequence[int] = (), gamma: float = 0.1, total: int | None = None,
                 min_lr: float = 0.0, unit: str = "epoch", steps_per_epoch: int | None = None):
        super().__init__()
        if unit not in _UNITS:
            raise ValueError(f"unit must be one of {_UNITS}, got {unit!r}")
        if steps_per_epoch is not None and steps_per_epoch <= 0:
            raise ValueError(f"steps_per_epoch must be > 0, got {steps_per_epoch}")
        self.base_lr = base_lr
        self.warmup_steps = warmup_steps
        self.warmup_factor = warmup_factor
        self.decay = decay
        self.milestones = tuple(milestones)
        self.gamma = gamma
        self.total = total
        self.min_lr = min_lr
        self.unit = unit
        self.steps_per_epoch = steps_per_epoch
        self.last_lr: float | None = None
        self._epoch = 0
        self._base = base_lr
        # Validate every argument now rather than at the first batch.
        lr_at(0, base_lr or 1.0, **self._schedule_kwargs(1))

    def _schedule_kwargs(self, steps_per_epoch: int) -> dict:
        scale = steps_per_epoch if self.unit == "epoch" else 1
        return {"warmup_steps": self.warmup_steps, "warmup_factor": self.warmup_factor,
                "decay": self.decay, "milestones": [m * scale for m in self.milestones],
                "gamma": self.gamma,
                "total_steps": None if self.total is None else self.total * scale,
                "min_lr": self.min_lr}

    def _spe(self) -> int:
        spe = self.steps_per_epoch or (self.params or {}).get("steps")
        if not spe:
            raise ValueError("WarmupLRSchedule needs steps_per_epoch (Keras passed none)")
        return int(spe)

    def on_train_begin(self, logs=None):
        self._base = self.base_lr
        if self._base is None:
            self._base = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        spe = self._spe()
        lr = lr_at(self._epoch * spe + batch, self._base, **self._schedule_kwargs(spe))
        self.model.optimizer.learning_rate = lr
        self.last_lr = lr

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and self.last_lr is not None:
            logs["lr"] = self.last_lr


def _log_dir(source: Any) -> str:
    """A folder given as a path or as an object with `log_dir` (MaskRCNN), read at use time."""
    return os.fspath(getattr(source, "log_dir", source))


def _epoch_pattern(name: str | None, pattern: str | re.Pattern | None) -> re.Pattern:
    if pattern is not None:
        compiled = re.compile(pattern)
        if "epoch" not in compiled.groupindex:
            raise ValueError(f"pattern needs a named group 'epoch', got {compiled.pattern!r}")
        return compiled
    stem = re.escape(name.lower()) if name else r"[\w-]+"
    return re.compile(rf"^mask_rcnn_{stem}_(?P<epoch>\d{{4}})\.h5$")


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
        folder = _log_dir(self.log_dir)
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


def _resolve_mode(monitor: str, mode: str) -> str:
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
        self.mode = _resolve_mode(monitor, mode)
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
        path = os.path.join(model.log_dir, f"mask_rcnn_{model.config.NAME.lower()}_best.h5")
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
            save_weights_h5(self.model, self.path, epoch=epoch + 1)
        _atomic_write_json(self.record_path, {
            "monitor": self.monitor, "mode": self.mode, "value": value, "epoch": epoch + 1,
            "source": source, "path": self.path})
        logger.info("Epoch %d: %s improved from %s to %.5g; best weights at %s", epoch + 1,
                    self.monitor, self.best, value, self.path)
        self.best, self.best_epoch = value, epoch + 1


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
                         mode=_resolve_mode(monitor, mode), baseline=baseline,
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


class TensorBoardDetections(keras.callbacks.Callback):
    """Every `every` epochs, draws `detect_fn(images)` and writes it as TensorBoard images.

    Args:
        log_dir: the run folder (or an object with `log_dir`, e.g. MaskRCNN); images go to
            `{log_dir}/{subdir}`, beside Keras' TensorBoard scalars.
        images: a few [H, W, 3] uint8 images.
        detect_fn: images -> one result dict per image with "rois" [N, (y1, x1, y2, x2)]
            pixels, "masks" [H, W, N], "class_ids" [N] and optionally "scores" [N]
            (MaskRCNN.detect of an inference model sharing the weights).
        class_names: names indexed by class id.
        every: the epoch interval.
        tag: the image summary name.
        figsize: the size of each drawing in inches (at 100 dpi).
    """

    def __init__(self, log_dir: Any, images: Sequence[np.ndarray],
                 detect_fn: Callable[[list[np.ndarray]], Sequence[dict]],
                 class_names: Sequence[str], every: int = 1, tag: str = "detections",
                 subdir: str = "validation", figsize: tuple[float, float] = (4.0, 4.0)):
        super().__init__()
        if len(images) == 0:
            raise ValueError("TensorBoardDetections needs at least one image")
        if not callable(detect_fn):
            raise TypeError(f"detect_fn must be callable, got {type(detect_fn)}")
        if not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be an int >= 1, got {every!r}")
        self.log_dir = log_dir
        self.images = [np.asarray(image) for image in images]
        self.detect_fn = detect_fn
        self.class_names = list(class_names)
        self.every = every
        self.tag = tag
        self.subdir = subdir
        self.figsize = figsize
        self.written_epochs: list[int] = []
        self._writer = None

    def render(self, results: Sequence[dict]) -> np.ndarray:
        """The drawings of `results` on the images: [n_images, height, width, 3] uint8."""
        import matplotlib.pyplot as plt

        from mrcnn.vis import drawing as visualize
        if len(results) != len(self.images):
            raise ValueError(f"detect_fn returned {len(results)} results for "
                             f"{len(self.images)} images")
        drawings = []
        for image, r in zip(self.images, results, strict=True):
            fig, ax = plt.subplots(1, figsize=self.figsize, dpi=100)
            visualize.display_instances(image, r["rois"], r["masks"], r["class_ids"],
                                        self.class_names, r.get("scores"), ax=ax)
            drawings.append(visualize.figure_to_array(fig))
        return np.stack(drawings)

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every:
            return
        import tensorflow as tf

        batch = self.render(self.detect_fn(list(self.images)))
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(
                os.path.join(_log_dir(self.log_dir), self.subdir))
        with self._writer.as_default():
            tf.summary.image(self.tag, batch, step=epoch, max_outputs=len(batch))
        self._writer.flush()
        self.written_epochs.append(epoch)

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None
