"""Learning-rate warmup and decay: `lr_at`, the pure schedule, and `WarmupLRSchedule`, the
callback that sets it on the optimizer before every batch."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import keras

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

    def get_config(self) -> dict:
        """The constructor arguments, JSON-able: `WarmupLRSchedule(**get_config())` makes the
        same schedule (stored in checkpoints so that a resumed run continues it)."""
        return {"base_lr": self.base_lr, "warmup_steps": self.warmup_steps,
                "warmup_factor": self.warmup_factor, "decay": self.decay,
                "milestones": list(self.milestones), "gamma": self.gamma, "total": self.total,
                "min_lr": self.min_lr, "unit": self.unit,
                "steps_per_epoch": self.steps_per_epoch}

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
