"""The distributed training loop: `strategy.run` over a distributed dataset, for every
`tf.distribute.Strategy` (MirroredStrategy, MultiWorkerMirroredStrategy).

Why not Keras `fit`: under a strategy, fit's `_maybe_symbolic_build` takes the first
distributed batch and mean-reduces *every* input across replicas (`strategy.reduce("MEAN",
...)`) just to learn shapes and dtypes; that AddN has no kernel for the boolean
`input_gt_masks` (`InvalidArgumentError ... AddN ... bool`). Fit with
MultiWorkerMirroredStrategy also fails upstream (keras-team/keras#20585). Keras' optimizer
also clips each replica's gradients before summing them, while matterport clipped the global
norm of the whole batch's gradient. One loop for all strategies keeps one code path.

Per step, on every replica: the losses of its IMAGES_PER_GPU images
(`TrainingModel.compute_all_losses`), divided by the number of replicas so that summed
gradients are those of the mean over the global batch; the gradients are summed over all
replicas (`ReplicaContext.all_reduce`), zeroed if the global loss is not finite, clipped to
GRADIENT_CLIP_NORM by their global norm, and applied by the model's optimizer (whose own
all-reduce then sums the identical per-replica shares `g / replicas` back to `g`). The logged
losses are the means over the replicas.

Around the loop run the callbacks of `mrcnn.engine.train_loop.training_callbacks` in the
same order, through a Keras `CallbackList`: the NaN guard, metric producers, TensorBoard, the
matterport checkpoint (`mask_rcnn_{name}_{epoch:04d}.h5`), the other custom callbacks. Only
the chief worker gets TensorBoard and the checkpoint writer; every worker runs the NaN guard
and the custom callbacks (a custom callback that writes files should check
`mrcnn.distribute.is_chief`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from typing import Any

import keras
import tensorflow as tf

from mrcnn.distribute.data import ShardedGenerator, distributed_dataset, input_signature
from mrcnn.distribute.strategy import is_chief
from mrcnn.engine.callbacks.base import NonFiniteLossGuard
from mrcnn.engine.train_loop import compile_model, training_callbacks
from mrcnn.engine.trainer import resolve_layers, set_trainable

logger = logging.getLogger(__name__)


def _check_batch(config: Any, strategy: tf.distribute.Strategy) -> int:
    replicas = strategy.num_replicas_in_sync
    expected = config.IMAGES_PER_GPU * replicas
    if config.BATCH_SIZE != expected:
        raise ValueError(
            f"Config BATCH_SIZE={config.BATCH_SIZE} but the strategy has {replicas} replicas "
            f"of IMAGES_PER_GPU={config.IMAGES_PER_GPU}: set GPU_COUNT={replicas} (MaskRCNN "
            "does that when it is given the strategy)")
    return replicas


def make_step_functions(keras_model: keras.Model, strategy: tf.distribute.Strategy,
                        clip_norm: float | None, jit_compile: bool = False
                        ) -> tuple[Callable, Callable]:
    """The compiled train and validation steps: `step(distributed_batch) -> {name: loss}`
    with every loss term averaged over the replicas.

    Args:
        keras_model: a compiled `TrainingModel` (its optimizer must not clip: clipping is
            done here on the summed gradients).
        strategy: the strategy it was built under.
        clip_norm: the global gradient norm to clip to, or None.
        jit_compile: XLA for the replica step. Off by default: XLA measured ~1.9x slower
            than plain tf.function on CPU (DESIGN.md); bench/gpu_check.py measures both on GPU.
    """
    replicas = strategy.num_replicas_in_sync
    optimizer = keras_model.optimizer
    sum_op = tf.distribute.ReduceOp.SUM

    def replica_train(inputs):
        with tf.GradientTape() as tape:
            terms = keras_model.compute_all_losses(inputs, training=True)
            scaled = optimizer.scale_loss(terms["loss"] / replicas)
        variables = keras_model.trainable_variables
        grads = tape.gradient(scaled, variables)
        context = tf.distribute.get_replica_context()
        index = [i for i, g in enumerate(grads) if g is not None]
        summed = context.all_reduce(sum_op, [grads[i] for i in index])
        global_loss = context.all_reduce(sum_op, terms["loss"])
        finite = tf.math.is_finite(global_loss)
        summed = [tf.where(finite, g, tf.zeros_like(g)) for g in summed]
        if clip_norm:
            # The loss scale (mixed_float16) is taken out before clipping and put back after.
            scale = tf.cast(optimizer.scale_loss(tf.constant(1.0)), tf.float32)
            summed, _ = tf.clip_by_global_norm([g / scale for g in summed], clip_norm)
            summed = [g * scale for g in summed]
        shares = [None] * len(grads)
        for i, g in zip(index, summed):
            shares[i] = g / replicas  # the optimizer sums the replicas' shares again
        optimizer.apply(shares, variables)
        return terms

    def replica_test(inputs):
        return keras_model.compute_all_losses(inputs, training=False)

    def reduce(per_replica):
        return {k: strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None)
                for k, v in per_replica.items()}

    if jit_compile:
        replica_train = tf.function(replica_train, jit_compile=True)
        replica_test = tf.function(replica_test, jit_compile=True)

    @tf.function(jit_compile=False)
    def train_step(batch):
        return reduce(strategy.run(replica_train, args=(batch,)))

    @tf.function(jit_compile=False)
    def test_step(batch):
        return reduce(strategy.run(replica_test, args=(batch,)))

    return train_step, test_step


class _Means:
    """Running means of the logged loss terms over an epoch."""

    def __init__(self):
        self.sums: dict[str, float] = {}
        self.count = 0

    def add(self, terms: dict[str, Any]) -> dict[str, float]:
        self.count += 1
        for k, v in terms.items():
            self.sums[k] = self.sums.get(k, 0.0) + float(v)
        return self.result()

    def result(self, prefix: str = "") -> dict[str, float]:
        return {prefix + k: v / max(1, self.count) for k, v in self.sums.items()}


def _run_epoch(step: Callable, dataset: Any, steps: int, callbacks: Any, model: keras.Model,
               hooks: bool) -> dict[str, float]:
    means = _Means()
    iterator = iter(dataset)
    for batch in range(steps):
        if hooks:
            callbacks.on_train_batch_begin(batch)
        logs = means.add(step(next(iterator)))
        if hooks:
            callbacks.on_train_batch_end(batch, logs)
            if model.stop_training:
                break
    return means.result()


def train_distributed(keras_model: keras.Model, config: Any, strategy: tf.distribute.Strategy,
                      train_dataset: Any, val_dataset: Any, learning_rate: float, epochs: int,
                      layers: str, *, initial_epoch: int, log_dir: str, checkpoint_path: str,
                      compile_fn: Callable[[float, float], Any] | None = None,
                      augmentation: Any = None,
                      custom_callbacks: Sequence[keras.callbacks.Callback] | None = None,
                      no_augmentation_sources: Sequence[str] | None = None,
                      workers: int | None = None, use_multiprocessing: bool = False,
                      verbose: int | str = "auto") -> keras.callbacks.History:
    """Train under `strategy` from `initial_epoch` up to epoch `epochs` (cumulative).

    The arguments are those of `mrcnn.engine.train_loop.train`, plus the strategy the model
    was built under. `workers` and `use_multiprocessing` are accepted for the same call
    signature; the data is loaded by tf.data's generator thread.

    Returns:
        The Keras History (epoch logs: loss terms and their `val_` twins).

    Raises:
        ValueError: config.BATCH_SIZE is not IMAGES_PER_GPU times the replicas.
        TypeError, ValueError: `layers` is not a preset or a valid regex.
        FloatingPointError: the loss became NaN or infinite (no checkpoint of that epoch).
    """
    del workers, use_multiprocessing  # the generator runs inside tf.data
    regex = resolve_layers(layers)
    _check_batch(config, strategy)
    chief = is_chief(strategy)
    with strategy.scope():
        set_trainable(keras_model, regex, verbose=int(chief))
        if compile_fn is None:
            compile_model(keras_model, learning_rate, config.LEARNING_MOMENTUM,
                          config.GRADIENT_CLIP_NORM)
        else:
            compile_fn(learning_rate, config.LEARNING_MOMENTUM)
        optimizer = keras_model.optimizer
        inner = getattr(optimizer, "inner_optimizer", optimizer)
        clip_norm = inner.global_clipnorm
        inner.global_clipnorm = None  # clipped here, on the summed gradients
        train_step, test_step = make_step_functions(keras_model, strategy, clip_norm)

    seed = config.RANDOM_SEED
    signature = input_signature(keras_model)

    def make_generator(steps: int, dataset: Any, shuffle_aug: bool):
        def make(shard: int, num_shards: int) -> ShardedGenerator:
            return ShardedGenerator(
                dataset, config, shard=shard, num_shards=num_shards, shuffle=True,
                augmentation=augmentation if shuffle_aug else None,
                no_augmentation_sources=no_augmentation_sources if shuffle_aug else None,
                seed=seed, steps=steps)
        return make

    make_train = make_generator(config.STEPS_PER_EPOCH, train_dataset, True)
    val_steps = config.VALIDATION_STEPS if val_dataset is not None else 0
    make_val = make_generator(val_steps, val_dataset, False) if val_steps else None

    if chief:
        os.makedirs(log_dir, exist_ok=True)
        guard, callbacks = training_callbacks(log_dir, checkpoint_path, config.to_dict(),
                                              custom_callbacks)
    else:
        guard = NonFiniteLossGuard()
        callbacks = [guard] + list(custom_callbacks or [])
    show = chief and verbose not in (0, "0")
    callback_list = keras.callbacks.CallbackList(
        callbacks, add_history=True, add_progbar=show, verbose=1 if verbose == "auto" else
        verbose, epochs=epochs, steps=config.STEPS_PER_EPOCH, model=keras_model)
    logger.info("Distributed training (%s, %d replicas, chief=%s) from epoch %d, LR=%s",
                type(strategy).__name__, strategy.num_replicas_in_sync, chief, initial_epoch,
                learning_rate)
    per_replica = config.IMAGES_PER_GPU
    keras_model.stop_training = False
    callback_list.on_train_begin()
    for epoch in range(initial_epoch, epochs):
        callback_list.on_epoch_begin(epoch)
        data = distributed_dataset(strategy, make_train, signature, epoch, per_replica,
                                   config.STEPS_PER_EPOCH)
        logs = _run_epoch(train_step, data, config.STEPS_PER_EPOCH, callback_list,
                          keras_model, hooks=True)
        if make_val is not None and not keras_model.stop_training:
            val = distributed_dataset(strategy, make_val, signature, epoch, per_replica,
                                      val_steps)
            val_logs = _run_epoch(test_step, val, val_steps, callback_list, keras_model,
                                  hooks=False)
            logs.update({"val_" + k: v for k, v in val_logs.items()})
        callback_list.on_epoch_end(epoch, logs)
        if keras_model.stop_training:
            break
    callback_list.on_train_end()
    if guard.failure:
        raise FloatingPointError(
            f"Training stopped: non-finite loss at epoch {guard.failure['epoch']}, batch "
            f"{guard.failure['batch']} ({guard.failure['logs']}); no checkpoint was written "
            "for that epoch. Lower the learning rate or check the data.")
    return keras_model.history
