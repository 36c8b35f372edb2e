"""Choosing a `tf.distribute.Strategy` from Config.DISTRIBUTION or an argument, and the
worker facts (chief, replicas per worker) the training loop needs.

`DISTRIBUTION` values:
    None: no strategy (plain Keras `fit` on the default device).
    "mirrored": `tf.distribute.MirroredStrategy` over every local GPU (or the CPU).
    "multi_worker": `tf.distribute.MultiWorkerMirroredStrategy`; the cluster and this
        process's task come from the `TF_CONFIG` environment variable. TensorFlow requires it
        to be created before any other TensorFlow operation of the process runs.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

import tensorflow as tf

logger = logging.getLogger(__name__)

DISTRIBUTIONS = (None, "mirrored", "multi_worker")

# One strategy object per process and kind: a second MultiWorkerMirroredStrategy in the same
# process would try to start a second collective server on the same port.
_CREATED: dict[str, tf.distribute.Strategy] = {}


def _create(kind: str) -> tf.distribute.Strategy:
    if kind not in _CREATED:
        if kind == "mirrored":
            _CREATED[kind] = tf.distribute.MirroredStrategy()
        else:
            if not os.environ.get("TF_CONFIG"):
                raise ValueError("DISTRIBUTION='multi_worker' needs the TF_CONFIG environment "
                                 "variable (cluster and task of this worker); it is not set")
            _CREATED[kind] = tf.distribute.MultiWorkerMirroredStrategy()
        logger.info("Created %s with %d replicas", type(_CREATED[kind]).__name__,
                    _CREATED[kind].num_replicas_in_sync)
    return _CREATED[kind]


def resolve_strategy(strategy: Any = None, distribution: str | None = None
                     ) -> tf.distribute.Strategy | None:
    """The strategy to train under: `strategy` if given, else the one `distribution` names.

    Args:
        strategy: a `tf.distribute.Strategy`, or None.
        distribution: Config.DISTRIBUTION (None, "mirrored" or "multi_worker").

    Returns:
        The strategy, or None for plain single-device training.

    Raises:
        TypeError: `strategy` is not a `tf.distribute.Strategy`.
        ValueError: an unknown `distribution`, or "multi_worker" without TF_CONFIG.
    """
    if strategy is not None:
        if not isinstance(strategy, tf.distribute.Strategy):
            raise TypeError(f"strategy must be a tf.distribute.Strategy, got "
                            f"{type(strategy).__name__}")
        return strategy
    if distribution not in DISTRIBUTIONS:
        raise ValueError(f"DISTRIBUTION must be one of {DISTRIBUTIONS}, got {distribution!r}")
    return None if distribution is None else _create(distribution)


def replicas_per_worker(strategy: tf.distribute.Strategy) -> int:
    """The replicas (devices) this worker process drives."""
    return len(strategy.extended.worker_devices)


def worker_count(strategy: tf.distribute.Strategy) -> int:
    """The worker processes taking part (1 for a single-machine strategy)."""
    return strategy.num_replicas_in_sync // replicas_per_worker(strategy)


def is_chief(strategy: tf.distribute.Strategy | None) -> bool:
    """Whether this process writes checkpoints and logs: always without a strategy or on one
    machine; under MultiWorkerMirroredStrategy the chief task, or worker 0 when the cluster
    has no chief."""
    if strategy is None or worker_count(strategy) == 1:
        return True
    resolver = getattr(strategy, "cluster_resolver", None)
    task_type = getattr(resolver, "task_type", None)
    task_id = getattr(resolver, "task_id", None)
    if task_type is None:  # read TF_CONFIG as TensorFlow does
        task = json.loads(os.environ.get("TF_CONFIG", "{}")).get("task", {})
        task_type, task_id = task.get("type"), task.get("index")
    cluster = json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {})
    if task_type == "chief":
        return True
    return "chief" not in cluster and task_type == "worker" and int(task_id or 0) == 0
