"""The training model: loss weighting and L2 decay, layer presets, set_trainable, optimizer.

The five Mask R-CNN losses and the L2 weight decay are computed in `TrainingModel.train_step`
(Keras 3 has no `add_loss` on functional outputs), each tracked by its own `keras.metrics.Mean`
so that the progress bar, History and TensorBoard show `loss`, `rpn_class_loss`,
`rpn_bbox_loss`, `mrcnn_class_loss`, `mrcnn_bbox_loss`, `mrcnn_mask_loss` and `l2_loss`
(and their `val_` twins). Because nothing is added to the graph, compiling again (heads, then
all) can never count a loss twice.

The training *run* around this model (generators, callbacks, compile, fit) is
`mrcnn.engine.train_loop`; the graph itself comes from `mrcnn.modeling.builder`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

import keras
import tensorflow as tf

from mrcnn.config import LOSS_NAMES
from mrcnn.modeling import losses as L
from mrcnn.modeling.builder import build_keras_model

logger = logging.getLogger(__name__)

_HEADS = r"(mrcnn\_.*)|(rpn\_.*)|(fpn\_.*)"
# matterport's presets for train(layers=...); any other string is used as a regex.
LAYER_PRESETS = {
    "heads": _HEADS,
    "3+": r"(res3.*)|(bn3.*)|(res4.*)|(bn4.*)|(res5.*)|(bn5.*)|" + _HEADS,
    "4+": r"(res4.*)|(bn4.*)|(res5.*)|(bn5.*)|" + _HEADS,
    "5+": r"(res5.*)|(bn5.*)|" + _HEADS,
    "all": ".*",
}

# The training graph's outputs, in order: matterport's, with the five loss layers last.
TRAIN_OUTPUT_KEYS = ("rpn_class_logits", "rpn_class", "rpn_bbox", "mrcnn_class_logits",
                     "mrcnn_class", "mrcnn_bbox", "mrcnn_mask", "rpn_rois", "output_rois"
                     ) + LOSS_NAMES


def resolve_layers(layers: str) -> str:
    """Map a preset name ('heads', '3+', '4+', '5+', 'all') to its regex; other strings pass.

    Raises:
        TypeError: `layers` is not a string.
        ValueError: `layers` is neither a preset nor a valid regular expression.
    """
    if not isinstance(layers, str):
        raise TypeError(f"layers must be a preset name or a regex string, got {layers!r}")
    regex = LAYER_PRESETS.get(layers, layers)
    try:
        re.compile(regex)
    except re.error as e:
        raise ValueError(f"layers={layers!r} is not a preset {sorted(LAYER_PRESETS)} "
                         f"nor a valid regular expression: {e}") from None
    return regex


def _inner_layer(layer: keras.layers.Layer) -> keras.layers.Layer | None:
    """The wrapped layer of a TimeDistributed-style wrapper, else None."""
    return layer.layer if isinstance(layer, keras.layers.Wrapper) else None


def set_trainable(model: keras.Model, layer_regex: str, verbose: int = 1) -> list[str]:
    """Make the layers whose names fully match `layer_regex` trainable and freeze the rest.

    Reaches into nested models (matterport's `rpn_model`) and wrappers (the heads'
    TimeDistributed layers are matched by the wrapper's name). Layers without weights are
    left alone. A change of `trainable` only takes effect after compiling again.

    Args:
        model: the Keras model.
        layer_regex: a preset name or a regular expression matched with `re.fullmatch`.
        verbose: 1 logs the trainable layers at INFO level.

    Returns:
        The names of the weighted layers that are trainable now.
    """
    regex = resolve_layers(layer_regex)
    selected: list[str] = []

    def visit(container: keras.Model) -> None:
        for layer in container.layers:
            if isinstance(layer, keras.Model):
                layer.trainable = True  # let the inner layers decide
                visit(layer)
                continue
            if not layer.weights:
                continue
            trainable = bool(re.fullmatch(regex, layer.name))
            inner = _inner_layer(layer)
            if inner is not None:
                inner.trainable = trainable
            layer.trainable = trainable
            if trainable:
                selected.append(layer.name)

    visit(model)
    if not selected:
        logger.warning("set_trainable: %r matched no weighted layer; nothing will train",
                       layer_regex)
    elif verbose:
        logger.info("Training %d weighted layers for %r (names at DEBUG level)",
                    len(selected), layer_regex)
        logger.debug("Trainable layers: %s", ", ".join(selected))
    return selected


def l2_regularized_weights(variables: Sequence[Any]) -> list[Any]:
    """The variables that weight decay applies to: all but BatchNorm gamma and beta
    (matterport's rule)."""
    out = []
    for v in variables:
        short = v.path.rsplit("/", 1)[-1] if hasattr(v, "path") else v.name
        short = short.split(":")[0]
        if short not in ("gamma", "beta"):
            out.append(v)
    return out


class TrainingModel(keras.Model):
    """The Mask R-CNN training graph as a functional model that trains on its loss outputs.

    The graph's loss layers give the five unweighted losses; this model weights them, adds
    the L2 weight decay, and reports each through its own Mean tracker.

    Args:
        inputs, outputs: as for a functional `keras.Model`; `outputs` in TRAIN_OUTPUT_KEYS order.
        loss_weights: {loss name: weight}, matterport's LOSS_WEIGHTS.
        weight_decay: matterport's WEIGHT_DECAY (see `losses.l2_weight_decay`).
    """

    def __init__(self, inputs, outputs, *, loss_weights: dict[str, float] | None = None,
                 weight_decay: float = 0.0, **kwargs):
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self.loss_weights_ = {name: float((loss_weights or {}).get(name, 1.0))
                              for name in LOSS_NAMES}
        self.weight_decay = float(weight_decay)
        self.trackers = {name: keras.metrics.Mean(name=name)
                         for name in ("loss",) + LOSS_NAMES + ("l2_loss",)}

    @property
    def metrics(self):
        return list(self.trackers.values())

    def compute_all_losses(self, x, training: bool) -> dict[str, Any]:
        """Run the graph on `x` and return every loss term and the weighted total `loss`."""
        outputs = dict(zip(TRAIN_OUTPUT_KEYS, self(x, training=training)))
        terms = {name: tf.reshape(outputs[name], []) * self.loss_weights_[name]
                 for name in LOSS_NAMES}
        if self.weight_decay > 0:
            terms["l2_loss"] = L.l2_weight_decay(
                l2_regularized_weights(self.trainable_weights), self.weight_decay)
        else:
            terms["l2_loss"] = tf.constant(0.0)
        terms["loss"] = tf.add_n(list(terms.values()))
        return terms

    def _update_trackers(self, terms: dict[str, Any]) -> dict[str, Any]:
        for name, tracker in self.trackers.items():
            tracker.update_state(terms[name])
        return {name: tracker.result() for name, tracker in self.trackers.items()}

    def train_step(self, data):
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        with tf.GradientTape() as tape:
            terms = self.compute_all_losses(x, training=True)
            total = terms["loss"] / replicas
            scaled = self.optimizer.scale_loss(total)
        variables = self.trainable_variables
        grads = tape.gradient(scaled, variables)
        # A non-finite loss must not corrupt the weights: its gradients are zeroed here and
        # NonFiniteLossGuard stops training at the end of the batch.
        finite = tf.math.is_finite(terms["loss"])
        grads = [None if g is None else tf.where(finite, g, tf.zeros_like(g)) for g in grads]
        self.optimizer.apply(grads, variables)
        return self._update_trackers(terms)

    def test_step(self, data):
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        return self._update_trackers(self.compute_all_losses(x, training=False))


def make_optimizer(learning_rate: float, momentum: float,
                   clip_norm: float | None) -> keras.optimizers.Optimizer:
    """SGD with momentum and global-norm clipping (matterport's Keras-2 `clipnorm` clipped by
    the global norm; Keras 3's `clipnorm` clips each tensor, so `global_clipnorm` it is)."""
    return keras.optimizers.SGD(learning_rate=learning_rate, momentum=momentum,
                                global_clipnorm=clip_norm)


def build_training_model(config: Any) -> TrainingModel:
    """The training graph of `config` (mrcnn.modeling.builder) as a `TrainingModel` with the
    config's LOSS_WEIGHTS and WEIGHT_DECAY."""
    return build_keras_model("training", config, TrainingModel,
                             loss_weights=config.LOSS_WEIGHTS, weight_decay=config.WEIGHT_DECAY)
