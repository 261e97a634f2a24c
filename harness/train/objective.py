"""Losses, penalties and evaluation metrics: pure functions of outputs, targets and params."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from harness.errors import ConfigError

LOSSES = ("auto", "playground", "cross_entropy", "mse", "half_mse", "tanh_squared")
# The losses a name stands for, per task: auto is the usual choice, playground is
# TensorFlow Playground's (nn.ts Errors.SQUARE on a tanh output for classes, on a linear
# output for regression).
ALIASES = {
    "auto": {"classification": "cross_entropy", "regression": "mse"},
    "playground": {"classification": "tanh_squared", "regression": "half_mse"},
}


def resolve_loss(loss: str, task: str) -> str:
    """The concrete loss for a task (``auto`` and ``playground`` name one loss per task)."""
    if loss not in LOSSES:
        raise ConfigError("train.loss", loss, LOSSES)
    if loss in ALIASES:
        return ALIASES[loss][task]
    if loss == "cross_entropy" and task != "classification":
        raise ConfigError("train.loss", loss, "mse, half_mse, tanh_squared or playground for a regression data set")
    if loss == "half_mse" and task == "classification":
        raise ConfigError("train.loss", loss, "cross_entropy, tanh_squared or playground for a classification data set")
    return loss


def num_model_outputs(loss: str, task: str, num_classes: int) -> int:
    """Width of the output layer: one tanh unit for Playground's loss, else classes or 1."""
    if loss == "tanh_squared":
        if task == "classification" and num_classes != 2:
            raise ConfigError("train.loss", loss, "tanh_squared needs two classes or a regression target")
        return 1
    return num_classes if task == "classification" else 1


def per_example_loss(loss: str, outputs: jax.Array, targets: jax.Array, task: str) -> jax.Array:
    """Loss per example (per step for sequence targets), same leading shape as ``targets``."""
    if loss == "cross_entropy":
        return optax.softmax_cross_entropy_with_integer_labels(outputs, targets)
    out = outputs[..., 0]
    if loss == "mse":
        return jnp.square(out - targets)
    if loss == "half_mse":  # Playground's regression: 0.5 (out - target)^2, linear output
        return 0.5 * jnp.square(out - targets)
    # Playground: squared error 0.5 (tanh(out) - target)^2, classes as -1/+1.
    target = 2.0 * targets - 1.0 if task == "classification" else targets
    return 0.5 * jnp.square(jnp.tanh(out) - target)


def predict_class(loss: str, outputs: jax.Array) -> jax.Array:
    """Predicted class index from raw outputs."""
    if loss == "tanh_squared":
        return (outputs[..., 0] >= 0).astype(jnp.int32)
    return jnp.argmax(outputs, axis=-1).astype(jnp.int32)


def regression_prediction(loss: str, outputs: jax.Array) -> jax.Array:
    """Predicted scalar target from raw outputs."""
    out = outputs[..., 0]
    return jnp.tanh(out) if loss == "tanh_squared" else out


def boundary_value(loss: str, outputs: jax.Array, task: str) -> jax.Array:
    """A Playground-style field value in [-1, 1] (classes) or the prediction (regression)."""
    if task == "regression":
        return regression_prediction(loss, outputs)
    if loss == "tanh_squared":
        return jnp.tanh(outputs[..., 0])
    probs = jax.nn.softmax(outputs, axis=-1)
    return probs[..., 1] - probs[..., 0]


def is_weight(path, leaf) -> bool:
    """Weights are kernels and embeddings (rank >= 2); biases and norms (rank 1) are not."""
    del path
    return leaf.ndim >= 2


def weighted_mean(values: jax.Array, weights: jax.Array) -> jax.Array:
    """Mean of ``values`` [b, ...] over examples weighted by ``weights`` [b] (0 = not in the batch)."""
    per_example = values.reshape(values.shape[0], -1).mean(axis=1)
    return jnp.sum(per_example * weights) / jnp.sum(weights)


def penalty(params, l1_rate: jax.Array, l2_rate: jax.Array) -> jax.Array:
    """Playground's penalties on weights only: l1 * sum|w| + l2 * sum(w^2) / 2."""
    leaves = [leaf for path, leaf in jax.tree_util.tree_leaves_with_path(params) if is_weight(path, leaf)]
    if not leaves:
        return jnp.zeros((), jnp.float32)
    abs_sum = sum(jnp.sum(jnp.abs(w)) for w in leaves)
    sq_sum = sum(jnp.sum(jnp.square(w)) for w in leaves)
    return l1_rate * abs_sum + 0.5 * l2_rate * sq_sum


def weight_sparsity(params, threshold: float = 1e-3) -> jax.Array:
    """Fraction of weights whose magnitude is below ``threshold`` (L1 makes weights sparse)."""
    leaves = [leaf for path, leaf in jax.tree_util.tree_leaves_with_path(params) if is_weight(path, leaf)]
    if not leaves:
        return jnp.zeros((), jnp.float32)
    small = sum(jnp.sum(jnp.abs(w) < threshold) for w in leaves)
    total = sum(w.size for w in leaves)
    return small / total
