"""The network on screen as the Playground draws it: its weights and biases, editing one of
them, and the Playground's own loss.

The model is the harness's FNN (Flax ``Dense_0`` ... ``Dense_L``, kernels ``[in, out]``).
The Playground has one output unit, ``tanh(w·h + b)`` for classes and ``w·h + b`` for
regression. The harness's output layer is that unit for ``train.loss=tanh_squared`` and
``mse``; with cross-entropy it has two logits ``z0, z1`` and its field is
``p1 - p0 = tanh((z1 - z0) / 2)``, so the Playground's unit is the half difference of the
two logits' weights and biases. The page shows (and edits) that one unit.

The Playground's loss (``getLoss`` in its ``playground.ts``) is the mean of
``½ (output - label)²`` with classes as -1/+1; here ``output`` is the harness's field value
(:func:`harness.train.objective.boundary_value`), which is the Playground's output unit.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from omegaconf import DictConfig

from harness.data.base import Dataset
from harness.errors import ConfigError
from harness.train.hparams import group_key

_MODELS: dict[str, tuple[Any, str]] = {}
_LOSS_PROGRAMS: dict[str, Callable] = {}


def model_of(cfg: DictConfig, dataset: Dataset) -> tuple[Any, str]:
    """(the harness's Flax model, the concrete loss) of a config, built once per structure."""
    key = group_key(cfg)
    if key not in _MODELS:
        from harness.models import build_model
        from harness.train import objective

        loss = objective.resolve_loss(str(cfg.train.loss), dataset.task)
        model = build_model(cfg.model, layout=dataset.layout, input_shape=dataset.input_shape,
                            num_outputs=objective.num_model_outputs(loss, dataset.task, dataset.num_classes),
                            vocab_size=dataset.vocab_size, targets=dataset.targets)
        _MODELS[key] = (model, loss)
    return _MODELS[key]


def _two_logits(loss: str) -> bool:
    """Whether the output layer is two softmax logits (shown as one Playground unit)."""
    return loss == "cross_entropy"


def layer_names(params: dict) -> list[str]:
    """The Dense layers in order, input side first."""
    return sorted((k for k in params if k.startswith("Dense_")), key=lambda k: int(k.split("_")[1]))


def weights_view(params: dict, loss: str) -> list[dict[str, list]]:
    """One member's weights as the Playground draws them: per layer, input side first,
    ``{"weights": [in][out], "biases": [out]}``; the last layer has one output unit."""
    view = []
    names = layer_names(params)
    for name in names:
        kernel = np.asarray(params[name]["kernel"], np.float64)
        bias = np.asarray(params[name]["bias"], np.float64)
        if name == names[-1] and _two_logits(loss):
            kernel = (kernel[:, 1:2] - kernel[:, 0:1]) / 2
            bias = (bias[1:2] - bias[0:1]) / 2
        view.append({"weights": np.round(kernel, 6).tolist(), "biases": np.round(bias, 6).tolist()})
    return view


def _index(name: str, raw: Any, size: int) -> int:
    try:
        value = int(raw)
    except (TypeError, ValueError):
        value = -1
    if not 0 <= value < size:
        raise ConfigError(name, raw, f"an integer from 0 to {size - 1}")
    return value


def finite_value(raw: Any) -> float:
    """A weight or bias typed by a user: a finite number, else ConfigError on ``value``."""
    try:
        value = float(raw)
    except (TypeError, ValueError):
        value = math.nan
    if not math.isfinite(value):
        raise ConfigError("value", raw, "a finite number")
    return value


def node_name(column: int, unit: int, inputs: Sequence[str], columns: int) -> str:
    """The page's name of a node: an input feature, ``h<layer>-<unit>``, or ``out``."""
    if column == 0:
        return inputs[unit]
    return "out" if column == columns - 1 else f"h{column - 1}-{unit}"


def edit(params: dict, loss: str, member: int, layer: Any, dest: Any, source: Any, value: float,
         inputs: Sequence[str]) -> tuple[dict, str]:
    """``params`` (member-stacked host arrays) with one member's weight (``source`` given)
    or bias (``source`` None) set to ``value``, in the Playground's form of
    :func:`weights_view`; and a line saying what changed, naming nodes as the page does
    (``inputs``: the network's input features). Raises ConfigError naming a bad ``layer``,
    ``dest`` or ``source``.

    For two logits the unit's weight is their half difference: it is set to ``value``
    keeping their mean, which the field does not depend on.
    """
    names = layer_names(params)
    layer = _index("layer", layer, len(names))
    name = names[layer]
    kernel = np.array(params[name]["kernel"])  # writable copies
    bias = np.array(params[name]["bias"])
    two = name == names[-1] and _two_logits(loss)
    dest = _index("dest", dest, 1 if two else kernel.shape[2])
    columns = len(names) + 1
    to = node_name(layer + 1, dest, inputs, columns)
    if source is None:
        row, what = bias[member], f"bias of {to}"
    else:
        source = _index("source", source, kernel.shape[1])
        row, what = kernel[member, source], f"weight {node_name(layer, source, inputs, columns)} -> {to}"
    if two:  # row is a view: [logit 0, logit 1] of this member
        mean = (row[0] + row[1]) / 2
        row[0], row[1] = mean - value, mean + value
    else:
        row[dest] = value
    new = dict(params)
    new[name] = {**params[name], "kernel": kernel, "bias": bias}
    return new, f"{what} = {value:g}"


def playground_loss_program(cfg: DictConfig, dataset: Dataset) -> Callable:
    """``(member-stacked params) -> [members, 2]``: the Playground's training and test loss
    of every member (one program per structure)."""
    key = group_key(cfg)
    if key not in _LOSS_PROGRAMS:
        from harness.train import objective

        model, loss = model_of(cfg, dataset)
        task = dataset.task

        def targets(y):
            y = jnp.asarray(y, jnp.float32)
            return 2.0 * y - 1.0 if task == "classification" else y  # classes as -1/+1

        splits = [(jnp.asarray(dataset.x_train), targets(dataset.y_train)),
                  (jnp.asarray(dataset.x_test), targets(dataset.y_test))]

        def losses(params):
            values = []
            for x, y in splits:
                out = objective.boundary_value(loss, model.apply({"params": params}, x, train=False), task)
                values.append(jnp.mean(0.5 * jnp.square(out - y)))
            return jnp.stack(values)

        _LOSS_PROGRAMS[key] = jax.jit(jax.vmap(losses))
    return _LOSS_PROGRAMS[key]
