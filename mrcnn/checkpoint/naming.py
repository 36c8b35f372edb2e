"""How the layers and variables of a Keras 3 model map to Keras-2 HDF5 groups and weight names.

The mapping follows the layout that Keras 2 (and matterport's Mask R-CNN) wrote:

- every entry of `model.layers` is one group named after the layer;
- a weighted layer stores its variables as `"{layer.name}/{short}:0"`, where `short` is the
  variable's own name (`kernel`, `bias`, `gamma`, `beta`, `moving_mean`, `moving_variance`);
- a wrapper layer (one with an inner `.layer`, like matterport's TimeDistributed heads) stores
  its variables under the wrapper's name, not the inner layer's;
- a nested `keras.Model` (e.g. `rpn_model`) is one group whose weight names are the inner
  layers' names, `"{inner.name}/{short}:0"`, in Keras 2's legacy order (trainable weights, then
  non-trainable weights).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import keras


@dataclass
class LayerEntry:
    """One top-level layer of a model seen as an HDF5 group.

    Attributes:
        name: Group name (the top-level layer's name).
        layer: The Keras layer.
        variables: The layer's weight variables in Keras-2 legacy order.
        weight_names: Keras-2 style names, one per variable (`"conv1/kernel:0"`).
        keys: Alternative lookup keys per variable (Keras-2 name without `:0`, Keras 3 path).
    """

    name: str
    layer: Any
    variables: list = field(default_factory=list)
    weight_names: list[str] = field(default_factory=list)
    keys: list[tuple[str, ...]] = field(default_factory=list)


def _owner_names(layer: Any, owner: str | None, out: dict[int, str]) -> None:
    """Fill `out` with id(variable) -> the name of the layer that stores it in a Keras-2 file."""
    if isinstance(layer, keras.Model):
        for inner in layer.layers:
            _owner_names(inner, None, out)
        # Variables created directly on the model itself (rare) belong to the model.
        for v in layer.weights:
            out.setdefault(id(v), owner or layer.name)
        return
    name = owner or layer.name
    for v in layer.weights:
        out.setdefault(id(v), name)


def short_name(variable: Any) -> str:
    """The variable's own name without scope or `:0` suffix (`kernel`, `moving_mean`)."""
    name = str(getattr(variable, "name", "") or getattr(variable, "path", ""))
    name = name.rsplit("/", 1)[-1]
    return re.sub(r":\d+$", "", name)


def legacy_variables(layer: Any) -> list:
    """A layer's weights in Keras 2's save order: trainable weights, then non-trainable ones."""
    return list(layer.trainable_weights) + list(layer.non_trainable_weights)


def layer_entry(layer: Any) -> LayerEntry:
    """Build the `LayerEntry` (group name, variables, weight names) of one top-level layer."""
    variables = legacy_variables(layer)
    owners: dict[int, str] = {}
    _owner_names(layer, layer.name, owners)
    names: list[str] = []
    keys: list[tuple[str, ...]] = []
    seen: set[str] = set()
    for v in variables:
        base = f"{owners.get(id(v), layer.name)}/{short_name(v)}"
        name, k = f"{base}:0", 1
        while name in seen:  # two variables with the same short name in one layer
            name = f"{base}_{k}:0"
            k += 1
        seen.add(name)
        names.append(name)
        keys.append((name[:-2], str(getattr(v, "path", base))))
    return LayerEntry(layer.name, layer, variables, names, keys)


def model_entries(model: Any) -> list[LayerEntry]:
    """One `LayerEntry` per entry of `model.layers`, weighted or not, in model order."""
    layers = getattr(model, "layers", None)
    if layers is None:
        raise TypeError(f"Expected a Keras model with `.layers`, got {type(model).__name__}")
    return [layer_entry(layer) for layer in layers]


def weighted_entries(model: Any) -> list[LayerEntry]:
    """The entries of `model_entries(model)` that hold at least one weight."""
    return [e for e in model_entries(model) if e.variables]


def normalize_exclude(exclude: str | Iterable[str] | None) -> list[str]:
    """Turn `exclude` (None, one name, or a list of names/regexes) into a list of strings."""
    if exclude is None:
        return []
    if isinstance(exclude, str):
        return [exclude]
    items = list(exclude)
    for item in items:
        if not isinstance(item, str):
            raise TypeError(f"exclude entries must be layer names or regexes, got {item!r}")
    return items


def is_excluded(name: str, patterns: Sequence[str]) -> bool:
    """True when `name` equals one of `patterns` or fully matches one as a regex."""
    for pattern in patterns:
        if name == pattern:
            return True
        try:
            if re.fullmatch(pattern, name):
                return True
        except re.error:
            continue
    return False
