"""The training run around a `TrainingModel`: data generators, callbacks in a fixed order,
compiling (with a loaded checkpoint's optimizer state), `fit`, and the NaN check.

`MaskRCNN.train` and `MaskRCNN.compile` delegate here; the model itself (losses, presets,
set_trainable, optimizer) is `mrcnn.engine.trainer`.

Callback order (`training_callbacks`), at every hook:

1. `NonFiniteLossGuard`: stops at the first batch with a NaN or infinite loss.
2. The custom callbacks that are `EpochMetricCallback`s (e.g. `MeanAPCallback`), in the
   order given: they add their values to the epoch logs before anyone reads them.
3. Keras' `TensorBoard` (scalars, in the run directory, once per epoch); a `TensorBoard`
   among the custom callbacks takes its place (e.g. `update_freq=N` for scalars every N steps).
4. `MatterportCheckpoint`: the epoch's `mask_rcnn_{name}_{epoch:04d}.h5`, carrying the config
   and `checkpoint_metadata` (class names, detection settings, the training state).
5. The other custom callbacks, in the order given: they see the added metrics, and the
   epoch's checkpoint file exists (`BestCheckpoint` copies it, `KeepLastCheckpoints` prunes).
6. With config.RANDOM_SEED set, `SamplingSeedReset` (epoch begin only).

Exact resume. With RANDOM_SEED set and one data worker, stopping after epoch k and resuming
from its checkpoint gives bit for bit the weights of the uninterrupted run on CPU (measured:
`tests/test_resume.py`). What makes it so: the batch order is the `DataGenerator`'s, a pure
function of (seed, epoch) (`fit(shuffle=False)`: Keras' own shuffle draws from Python's
global RNG, which no checkpoint records, and made resumed weights differ by up to 4e-3);
the ROI sampling of `proposal_targets` draws from a seed state set per (seed, epoch) here
(TF's stateful shuffle kernels restart with a new process: 1.5e-8); the optimizer state
(momentum, iterations) comes from the checkpoint; the epoch from its name, and a
`WarmupLRSchedule` computes the rate from (epoch, batch).
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np

from mrcnn.data.generator import DataGenerator
from mrcnn.engine.callbacks.base import EpochMetricCallback, NonFiniteLossGuard
from mrcnn.engine.callbacks.checkpoints import MatterportCheckpoint
from mrcnn.engine.callbacks.lr_schedule import WarmupLRSchedule
from mrcnn.engine.trainer import make_optimizer, resolve_layers, set_trainable
from mrcnn.fileio import remove_stale_temp_files

logger = logging.getLogger(__name__)

# The NodeDef attribute by which an op names its entry in TF's gradient registry
# (`Graph.gradient_override_map`, used by `tf.custom_gradient` in graph mode).
_GRADIENT_OP_TYPE = "_gradient_op_type"
# The attribute of TF's global default graph listing the Python functions of `tf.py_function`
# ops made in eager mode (`tf.data.Dataset.from_generator` makes three per dataset).
_PY_FUNCS = "_py_funcs_used_in_graph"

# The settings that decide what detect() returns, stored with the class names in every
# checkpoint so that a checkpoint alone detects as it did in training.
DETECTION_SETTINGS = ("DETECTION_MIN_CONFIDENCE", "DETECTION_NMS_THRESHOLD",
                      "DETECTION_MAX_INSTANCES")


class SamplingSeedReset(keras.callbacks.Callback):
    """At each epoch's start, sets the state of the ROI-sampling seed generators (the
    `sampling_seed` of `DetectionTargetLayer`) to a pure function of (seed, epoch).

    Within an epoch the state advances one step per batch; the uninterrupted run and a run
    resumed at this epoch therefore draw the same ROIs.

    Args:
        seed: config.RANDOM_SEED.
    """

    def __init__(self, seed: int):
        super().__init__()
        self.seed = int(seed)

    @staticmethod
    def generators(model: keras.Model) -> list[Any]:
        """The `sampling_seed` SeedGenerators of `model`'s layers (nested models included)."""
        found = []
        for layer in model.layers:
            if isinstance(layer, keras.Model):
                found.extend(SamplingSeedReset.generators(layer))
            elif getattr(layer, "sampling_seed", None) is not None:
                found.append(layer.sampling_seed)
        return found

    def epoch_state(self, epoch: int) -> int:
        """The first state word of `epoch` (the second, the step, starts at 0)."""
        return int(np.random.SeedSequence([self.seed, epoch]).generate_state(1)[0])

    def on_epoch_begin(self, epoch, logs=None):
        for generator in self.generators(self.model):
            state = np.array([self.epoch_state(epoch), 0], dtype=str(generator.state.dtype))
            generator.state.assign(state)


def default_workers() -> int:
    """Data-loading workers when train() is given none: one per CPU core, at most 4."""
    return max(1, min(4, os.cpu_count() or 1))


def _tf_functions(function: Any, depth: int = 4) -> list[Any]:
    """The `tf.function`s behind a Keras train/test/predict function: Keras wraps them in
    plain closures (`multi_step_on_iterator` calling `one_step_on_data`)."""
    found, seen, todo = [], set(), [(function, 0)]
    while todo:
        obj, level = todo.pop()
        if id(obj) in seen or level > depth:
            continue
        seen.add(id(obj))
        if hasattr(obj, "_list_all_concrete_functions"):
            found.append(obj)
        inner = getattr(obj, "_python_function", None) or getattr(obj, "__wrapped__", None)
        if inner is not None:
            todo.append((inner, level + 1))
        for cell in getattr(obj, "__closure__", None) or ():
            try:
                todo.append((cell.cell_contents, level + 1))
            except ValueError:  # an empty cell
                continue
    return found


def _traced_graph_keys(function: Any) -> tuple[set[str], set[str]]:
    """What the `tf.function`s behind a Keras function left in TF's global registries.

    Returns:
        (function names, gradient names): the graph functions registered in the eager
        context (each trace and every function nested in it: map_fn/while bodies, cond
        branches), and the `CustomGradient-N` entries of TF's gradient registry their ops
        point to (the `_gradient_op_type` attribute that `tf.custom_gradient` sets in graph
        mode).
    """
    names: set[str] = set()
    gradients: set[str] = set()
    for tf_function in _tf_functions(function):
        for concrete in tf_function._list_all_concrete_functions():
            name = concrete.name
            names.add(name.decode() if isinstance(name, bytes) else str(name))
            graph_def = concrete.graph.as_graph_def()
            nodes = list(graph_def.node)
            for f in graph_def.library.function:
                names.add(f.signature.name)
                nodes.extend(f.node_def)
            for node in nodes:
                if _GRADIENT_OP_TYPE in node.attr:
                    gradients.add(node.attr[_GRADIENT_OP_TYPE].s.decode())
    return names, gradients


def release_compiled_state(keras_model: keras.Model) -> int:
    """Drop what the previous compile built (traced train/test/predict functions, the
    optimizer and its slots) before compiling again, and unregister its graph functions
    and custom gradients.

    TF keeps every traced graph function (and its nested ones) registered in the eager
    context after the Python `tf.function` is gone: each `train()` call in a process
    (heads, then 4+, then all) left ~100 functions behind and RSS grew by 40-550 MiB per
    call on the tiny test config (+230 MiB per call at matterport's sizes, issue 11).

    It also keeps, in its global gradient registry, the gradient closure of every
    `tf.custom_gradient` call traced in graph mode, and that closure holds the traced
    tensors and so the whole train-step graph (forward and backward, ~15,000 Python
    `Operation`s on the tiny config). Keras' optimizer makes one such call per trace (the
    all-reduce of the gradients, even with a single replica), so every compile leaked its
    train graph: +65 MiB per heads call, +450 MiB per heads/4+/all round on the tiny
    config (tensorflow/tensorflow#97697, #27492). The entries named by the released
    graphs' ops are removed here, no others.

    Returns:
        The number of graph functions unregistered.
    """
    from tensorflow.python.eager import context  # no public API lists or removes them
    from tensorflow.python.framework import ops

    names: set[str] = set()
    gradients: set[str] = set()
    for attr in ("train_function", "test_function", "predict_function"):
        function = getattr(keras_model, attr, None)
        if function is not None:
            function_names, gradient_names = _traced_graph_keys(function)
            names |= function_names
            gradients |= gradient_names
            setattr(keras_model, attr, None)
    if getattr(keras_model, "optimizer", None) is not None:
        keras_model.optimizer = None
    function = None
    registry = ops._gradient_registry._registry
    for name in gradients:
        registry.pop(name, None)
    gc.collect()
    ctx = context.context()
    removed = 0
    for name in sorted(names):
        if ctx.has_function(name):
            ctx.remove_function(name)
            removed += 1
    if removed or gradients:
        logger.debug("Unregistered %d graph functions and %d custom gradients of the previous "
                     "compile", removed, len(gradients))
    return removed


@contextlib.contextmanager
def releasing_dataset_py_funcs():
    """Within the block, `tf.data.Dataset.from_generator` datasets may be made (Keras' fit
    makes one per PyDataset); on leaving it, TF's global graph lets go of their Python
    functions.

    In eager mode `from_generator` ties its three Python functions to the global default
    graph, which lives as long as the process: each `fit` on a `DataGenerator` kept the
    training and validation adapters and generators (dataset, anchors, enqueuer) alive
    forever (three functions per dataset, six per train() call; the anchors alone are
    261,888 x 4 values per generator at 1024 px). The functions added inside the block by `tf.data`
    are dropped from that list when the block ends (their datasets and iterators are gone
    by then); anything else is left.
    """
    from tensorflow.python.framework import ops  # the list has no public API

    graph = ops.get_default_graph()
    before = {id(f) for f in getattr(graph, _PY_FUNCS, ())}
    try:
        yield
    finally:
        kept = getattr(graph, _PY_FUNCS, None)
        if kept is not None:
            count = len(kept)
            kept[:] = [f for f in kept if id(f) in before or not _is_dataset_py_func(f)]
            if count > len(kept):
                logger.debug("Released %d tf.data Python functions", count - len(kept))


def _is_dataset_py_func(function: Any) -> bool:
    """Whether `function` was registered by tf.data (`from_generator`'s three functions)."""
    return str(getattr(function, "__module__", "")).startswith("tensorflow.python.data")


def computes_in_float16(keras_model: keras.Model) -> bool:
    """Whether the model's layers compute in float16 (a `mixed_float16` build)."""
    return any(getattr(layer.dtype_policy, "name", "") == "mixed_float16"
               for layer in keras_model.layers)


def compile_model(keras_model: keras.Model, learning_rate: float, momentum: float,
                  clip_norm: float | None, optimizer_state_path: str | None = None) -> bool:
    """Compile with a new SGD optimizer (needed after every change of `trainable`).

    Args:
        keras_model: a `TrainingModel`.
        learning_rate, momentum: SGD's.
        clip_norm: the global gradient norm to clip to (GRADIENT_CLIP_NORM), or None.
        optimizer_state_path: a checkpoint carrying an optimizer state (momentum,
            iterations) to restore; the caller's learning rate wins over the saved one.

    Returns:
        True when an optimizer state was restored.
    """
    release_compiled_state(keras_model)
    sgd = make_optimizer(learning_rate, momentum, clip_norm)
    optimizer = sgd
    if computes_in_float16(keras_model):
        # float16 gradients underflow without loss scaling. The model itself was created under
        # the float32 policy (the builder applies the policy to the layers only), so Keras'
        # compile would not wrap the optimizer: do it here (dynamic scale; the gradients are
        # unscaled before the inner SGD clips and applies them).
        optimizer = keras.optimizers.LossScaleOptimizer(sgd)
    # No XLA: it cannot compile the step on CPU (ROIAlign's CropAndResize has no XLA CPU
    # kernel; bench/cpu_settings.py) and was slower where it could run (DESIGN.md).
    keras_model.compile(optimizer=optimizer, jit_compile=False)
    optimizer.build(keras_model.trainable_variables)
    if not optimizer_state_path:
        return False
    from mrcnn.checkpoint import load_optimizer_state

    if not load_optimizer_state(sgd, optimizer_state_path):
        return False
    # The state includes the old learning rate; the caller's rate wins.
    sgd.learning_rate = learning_rate
    logger.info("Restored optimizer state (momentum, iterations) from %s", optimizer_state_path)
    return True


def make_generators(config: Any, train_dataset: Any, val_dataset: Any, *, epoch: int,
                    augmentation: Any = None,
                    no_augmentation_sources: Sequence[str] | None = None,
                    workers: int = 1, use_multiprocessing: bool = False
                    ) -> tuple[DataGenerator, DataGenerator | None]:
    """The training generator (shuffled, augmented, STEPS_PER_EPOCH batches, continuing the
    shuffling sequence at `epoch`) and the validation one (VALIDATION_STEPS batches; None
    without a validation set or with VALIDATION_STEPS=0). Both are seeded by RANDOM_SEED."""
    seed = config.RANDOM_SEED
    train_gen = DataGenerator(train_dataset, config, shuffle=True, augmentation=augmentation,
                              no_augmentation_sources=no_augmentation_sources, seed=seed,
                              steps=config.STEPS_PER_EPOCH, workers=workers,
                              use_multiprocessing=use_multiprocessing)
    train_gen.epoch = epoch  # a resumed run continues the shuffling sequence
    val_gen = None
    if val_dataset is not None and config.VALIDATION_STEPS:
        val_gen = DataGenerator(val_dataset, config, shuffle=True, seed=seed,
                                steps=config.VALIDATION_STEPS, workers=workers,
                                use_multiprocessing=use_multiprocessing)
    return train_gen, val_gen


def checkpoint_metadata(config: Any, train_dataset: Any, *, layers: str, learning_rate: float,
                        epochs: int,
                        callbacks: Sequence[keras.callbacks.Callback] | None = None) -> dict:
    """What every checkpoint of a `train()` call stores beside the config.

    Returns:
        {"class_names": the training set's names (index = class id) or None,
        "detection": {DETECTION_SETTINGS: value}, "training": {"layers", "learning_rate",
        "epochs" (the target epoch of the call), "lr_schedule" (a `WarmupLRSchedule`'s
        get_config() among `callbacks`, or None)}}: enough for `mrcnn train --resume` to go
        on as the run did, and for `detect` to label and filter as in training.
    """
    names = getattr(train_dataset, "class_names", None)
    schedules = [cb for cb in callbacks or [] if isinstance(cb, WarmupLRSchedule)]
    return {
        "class_names": [str(n) for n in names] if names is not None else None,
        "detection": {key: getattr(config, key) for key in DETECTION_SETTINGS},
        "training": {"layers": layers, "learning_rate": float(learning_rate),
                     "epochs": int(epochs),
                     "lr_schedule": schedules[0].get_config() if schedules else None},
    }


def training_callbacks(log_dir: str, checkpoint_path: str, config_dict: dict | None,
                       custom_callbacks: Sequence[keras.callbacks.Callback] | None = None,
                       metadata: dict | None = None
                       ) -> tuple[NonFiniteLossGuard, list[keras.callbacks.Callback]]:
    """The callbacks of a training run in the order of the module docstring.

    Args:
        log_dir: the run directory (TensorBoard logs).
        checkpoint_path: the epoch checkpoint template, with an `{epoch}` field.
        config_dict: stored in every checkpoint (Config.to_dict()).
        custom_callbacks: the user's callbacks.
        metadata: stored in every checkpoint (`checkpoint_metadata`).

    Returns:
        The NaN guard (to read its `failure` after fit) and the full list.
    """
    guard = NonFiniteLossGuard()
    custom = list(custom_callbacks or [])
    producers = [cb for cb in custom if isinstance(cb, EpochMetricCallback)]
    for cb in producers:
        logger.debug("%s adds %s to the epoch logs", type(cb).__name__, cb.metric_names)
    boards = [cb for cb in custom if isinstance(cb, keras.callbacks.TensorBoard)]
    board = boards[0] if boards else keras.callbacks.TensorBoard(
        log_dir=log_dir, histogram_freq=0, write_graph=False)
    callbacks = [guard] + producers + [
        board, MatterportCheckpoint(checkpoint_path, config=config_dict, metadata=metadata),
    ] + [cb for cb in custom if cb not in producers and cb is not board]
    return guard, callbacks


def train(keras_model: keras.Model, config: Any, train_dataset: Any, val_dataset: Any,
          learning_rate: float, epochs: int, layers: str, *, initial_epoch: int, log_dir: str,
          checkpoint_path: str, compile_fn: Callable[[float, float], Any] | None = None,
          augmentation: Any = None,
          custom_callbacks: Sequence[keras.callbacks.Callback] | None = None,
          no_augmentation_sources: Sequence[str] | None = None, workers: int | None = None,
          use_multiprocessing: bool = False, verbose: int | str = "auto"
          ) -> keras.callbacks.History:
    """Train the layers selected by `layers` from `initial_epoch` up to epoch `epochs`.

    Args:
        keras_model: a `TrainingModel`.
        config: its Config.
        train_dataset, val_dataset: prepared `mrcnn.data.dataset.Dataset` objects
            (`val_dataset` may be None).
        learning_rate: the SGD learning rate.
        epochs: the epoch number to train up to (cumulative, as matterport).
        layers: "heads", "3+", "4+", "5+", "all" or a regex of layer names.
        initial_epoch: the epochs already done (MaskRCNN.epoch).
        log_dir, checkpoint_path: the run directory and the epoch checkpoint template.
        compile_fn: `(learning_rate, momentum) -> None`, called after `set_trainable`
            (MaskRCNN.compile, which restores a loaded checkpoint's optimizer state);
            default: `compile_model` without a saved state.
        augmentation, no_augmentation_sources: see `mrcnn.data.generator.DataGenerator`.
        custom_callbacks: extra Keras callbacks (order: see the module docstring).
        workers, use_multiprocessing: data loading (default: `default_workers()` threads).
        verbose: Keras' fit verbosity.

    Returns:
        The Keras History.

    Raises:
        TypeError, ValueError: `layers` is not a preset or a valid regex.
        FloatingPointError: the loss became NaN or infinite (no checkpoint of that epoch
            is written).
    """
    regex = resolve_layers(layers)
    if workers is None:
        workers = default_workers()
    c = config
    remove_stale_temp_files(log_dir)  # what writes killed in an earlier run left behind
    train_gen, val_gen = make_generators(
        c, train_dataset, val_dataset, epoch=initial_epoch, augmentation=augmentation,
        no_augmentation_sources=no_augmentation_sources, workers=workers,
        use_multiprocessing=use_multiprocessing)
    os.makedirs(log_dir, exist_ok=True)
    metadata = checkpoint_metadata(c, train_dataset, layers=layers,
                                   learning_rate=learning_rate, epochs=epochs,
                                   callbacks=custom_callbacks)
    guard, callbacks = training_callbacks(log_dir, checkpoint_path, c.to_dict(),
                                          custom_callbacks, metadata=metadata)
    if c.RANDOM_SEED is not None:
        callbacks.append(SamplingSeedReset(c.RANDOM_SEED))
    logger.info("Starting at epoch %d, LR=%s, checkpoints %s", initial_epoch, learning_rate,
                checkpoint_path)
    set_trainable(keras_model, regex)
    if compile_fn is None:
        compile_model(keras_model, learning_rate, c.LEARNING_MOMENTUM, c.GRADIENT_CLIP_NORM)
    else:
        compile_fn(learning_rate, c.LEARNING_MOMENTUM)
    with releasing_dataset_py_funcs():
        history = keras_model.fit(
            train_gen, initial_epoch=initial_epoch, epochs=epochs,
            steps_per_epoch=c.STEPS_PER_EPOCH, callbacks=callbacks, validation_data=val_gen,
            validation_steps=c.VALIDATION_STEPS if val_gen is not None else None,
            shuffle=False, verbose=verbose)
    checkpoint = next(cb for cb in callbacks if isinstance(cb, MatterportCheckpoint))
    if checkpoint.failure:
        raise FloatingPointError(
            f"Training stopped: the weights at the end of epoch {checkpoint.failure['epoch']} "
            f"are not finite or exceed |w| <= {checkpoint.max_abs_weight:g} "
            f"({', '.join(checkpoint.failure['weights'][:5])}); no checkpoint was written for "
            "that epoch. Lower the learning rate or check the data.")
    if guard.failure:
        raise FloatingPointError(
            f"Training stopped: non-finite loss at epoch {guard.failure['epoch']}, batch "
            f"{guard.failure['batch']} ({guard.failure['logs']}); no checkpoint was written "
            "for that epoch. Lower the learning rate or check the data.")
    return history
