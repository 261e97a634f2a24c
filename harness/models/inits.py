"""Initialisation schemes by name, the values ``model.init`` may take.

- ``default``: Flax's defaults: LeCun-normal kernels (variance 1/fan_in, truncated normal),
  zero biases, orthogonal recurrent kernels.
- ``playground``: TensorFlow Playground (``nn.ts``): every weight uniform in [-0.5, 0.5] and
  every bias 0.1, recurrent kernels included (the Playground has none, but "every weight" is
  the rule it states).
- ``he``: He / Kaiming normal kernels (variance 2/fan_in, truncated normal), zero biases,
  orthogonal recurrent kernels.
- ``glorot``: Glorot / Xavier uniform kernels, zero biases, orthogonal recurrent kernels.
- ``zero``: every weight and every bias 0, recurrent kernels included: Playground's
  ``initZero`` URL key (``nn.ts`` builds nodes with bias 0 and links with weight 0).

Embedding tables (``nn.Embed``, tokens input of the RNN) keep Flax's default (normal, std 1)
under every scheme. ``model.init_scale`` is *not* applied here: it is a dynamic value, so the
training code multiplies the initial weights by it after ``init`` (``harness.train.loop``),
which lets a sweep over it share one compiled program.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
from flax import linen as nn

from harness.errors import ConfigError

Initializer = Callable[..., jax.Array]

PLAYGROUND_WEIGHT_RANGE = 0.5  # weights ~ U[-0.5, 0.5]  (Math.random() - 0.5)
PLAYGROUND_BIAS = 0.1

INITS = ("default", "playground", "he", "glorot", "zero")

# Parameter leaf names that count as weights (as opposed to biases) in every family here.


def playground_uniform(key: jax.Array, shape: Any, dtype: Any = jnp.float32) -> jax.Array:
    """Uniform in [-0.5, 0.5], whatever the fan-in: the Playground's weight initialiser."""
    return jax.random.uniform(
        key, shape, dtype, minval=-PLAYGROUND_WEIGHT_RANGE, maxval=PLAYGROUND_WEIGHT_RANGE
    )


def _check(name: str) -> None:
    if name not in INITS:
        raise ConfigError("model.init", name, sorted(INITS))


def get_init(name: str) -> tuple[Initializer, Initializer]:
    """``(kernel_init, bias_init)`` for dense, conv and recurrent-input kernels of scheme ``name``.

    Raises ConfigError on ``model.init`` for an unknown name.
    """
    _check(name)
    if name == "playground":
        return playground_uniform, nn.initializers.constant(PLAYGROUND_BIAS)
    if name == "zero":
        return nn.initializers.zeros_init(), nn.initializers.zeros_init()
    kernel = {
        "default": nn.initializers.lecun_normal(),
        "he": nn.initializers.he_normal(),
        "glorot": nn.initializers.glorot_uniform(),
    }[name]
    return kernel, nn.initializers.zeros_init()


def get_recurrent_init(name: str) -> Initializer:
    """Initialiser of hidden-to-hidden (recurrent) kernels for scheme ``name``.

    Orthogonal (Flax's default, which keeps the recurrence's gain near 1 at the start) except
    for ``playground``, whose rule is that every weight is uniform in [-0.5, 0.5], and
    ``zero``, whose rule is that every weight is 0.
    """
    _check(name)
    if name == "zero":
        return nn.initializers.zeros_init()
    return playground_uniform if name == "playground" else nn.initializers.orthogonal()
