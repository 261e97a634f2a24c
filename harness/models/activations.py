"""Activation functions by name, the values ``model.activation`` may take.

Modules store the *name* (a string field) and look the function up when called, so a module
stays a plain hashable dataclass that prints readably and is safe as a static jit argument.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from harness.errors import ConfigError

Activation = Callable[[jax.Array], jax.Array]


def linear(x: jax.Array) -> jax.Array:
    """The identity: a "linear" activation (TensorFlow Playground's name for it)."""
    return x


ACTIVATIONS: dict[str, Activation] = {
    "relu": jax.nn.relu,
    "tanh": jnp.tanh,
    "sigmoid": jax.nn.sigmoid,
    "linear": linear,
    "gelu": jax.nn.gelu,  # tanh approximation (jax's default), as in GPT-2 / BERT code
    "elu": jax.nn.elu,
    "leaky_relu": jax.nn.leaky_relu,  # negative slope 0.01
    "softplus": jax.nn.softplus,
    "swish": jax.nn.swish,  # x * sigmoid(x), a.k.a. SiLU
}


def get_activation(name: str) -> Activation:
    """The activation function called ``name``; ConfigError on ``model.activation`` if unknown."""
    try:
        return ACTIVATIONS[name]
    except (KeyError, TypeError):
        raise ConfigError("model.activation", name, sorted(ACTIVATIONS)) from None
