"""Fully connected network (MLP) of any widths; ``hidden=()`` is a linear / logistic model.

Also holds the small pieces the other families share: the hidden dense stack, optional
dropout, and the output layer that handles ``targets="sequence"``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import linen as nn

from harness.models.activations import get_activation
from harness.models.inits import get_init


def maybe_dropout(x: jax.Array, rate: float, train: bool) -> jax.Array:
    """Dropout at a static ``rate``; rate 0 adds no op (and needs no ``dropout`` rng).

    Call only inside a compact ``__call__`` (it creates an ``nn.Dropout`` submodule).
    """
    if rate > 0.0:
        x = nn.Dropout(rate=rate, deterministic=not train)(x)
    return x


def hidden_dense(
    h: jax.Array,
    widths: tuple[int, ...],
    activation: str,
    init: str,
    dropout: float,
    train: bool,
) -> jax.Array:
    """Dense -> activation -> dropout for each width. Call inside a compact ``__call__``."""
    act = get_activation(activation)
    kernel_init, bias_init = get_init(init)
    for width in widths:
        h = nn.Dense(width, kernel_init=kernel_init, bias_init=bias_init)(h)
        h = maybe_dropout(act(h), dropout, train)
    return h


def output_layer(
    h: jax.Array, num_outputs: int, init: str, targets: str, time_steps: int
) -> jax.Array:
    """The last (linear) layer from flat features ``h`` [b, d].

    ``targets="example"`` -> [b, num_outputs]; ``"sequence"`` -> one Dense to
    ``time_steps * num_outputs`` reshaped to [b, time_steps, num_outputs] (used by the FNN and
    CNN, which have no notion of time of their own).
    """
    kernel_init, bias_init = get_init(init)
    width = num_outputs * (time_steps if targets == "sequence" else 1)
    out = nn.Dense(width, kernel_init=kernel_init, bias_init=bias_init)(h)
    if targets == "sequence":
        out = out.reshape(h.shape[0], time_steps, num_outputs)
    return out


def bag_of_words(tokens: jax.Array, vocab_size: int) -> jax.Array:
    """Counts of each token id over time: int [b, T] -> float32 [b, vocab_size].

    Padding id 0 is not counted (its column stays 0). A scatter-add rather than a one-hot sum
    keeps memory at b * vocab_size, not b * T * vocab_size, when whole splits are evaluated.
    """
    tokens = tokens.astype(jnp.int32)
    counts = jnp.zeros((tokens.shape[0], vocab_size), jnp.float32)
    rows = jnp.arange(tokens.shape[0])[:, None]
    return counts.at[rows, tokens].add((tokens != 0).astype(jnp.float32))


# How an FNN reads ``tokens`` [b, T] int (model.tokens): "bag" = counts of each id, so word
# order is lost; "flatten" = each position embedded (nn.Embed(vocab_size, embed_dim)) and the
# [b, T, embed_dim] result flattened, so every position has its own weights -- an order-aware
# baseline with no recurrence, the fair opponent of an RNN on tasks where order matters.
TOKEN_MODES = ("bag", "flatten")


class FNN(nn.Module):
    """MLP: flatten (or read ``tokens`` per ``tokens``) -> [Dense -> act -> dropout]* -> Dense.

    Any layout is flattened to one vector per example, except ``tokens`` [b, T] int: with
    ``tokens="bag"`` it becomes counts of each token id (a bag of words of size
    ``vocab_size``, padding id 0 ignored); with ``tokens="flatten"`` each token is embedded
    to ``embed_dim`` values and the sequence flattened to ``T * embed_dim`` (positions kept;
    padding id 0 has an embedding like any token). With ``targets="sequence"`` the last layer
    outputs ``T * num_outputs`` values, reshaped to [b, T, num_outputs], where T is the
    input's axis 1.
    """

    num_outputs: int
    hidden: tuple[int, ...] = (8, 8)
    activation: str = "tanh"
    init_scheme: str = "default"  # model.init (the name `init` is taken by Module.init)
    dropout: float = 0.0
    layout: str = "vector"
    vocab_size: int = 0
    tokens: str = "bag"
    embed_dim: int = 16
    targets: str = "example"

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        """Raw outputs (logits or regression values) for a batch ``x`` in this layout."""
        if self.layout == "tokens" and self.tokens == "flatten":
            h = nn.Embed(self.vocab_size, self.embed_dim)(x.astype(jnp.int32))
            h = h.reshape(x.shape[0], -1)
        elif self.layout == "tokens":
            h = bag_of_words(x, self.vocab_size)
        else:
            h = jnp.asarray(x, jnp.float32).reshape(x.shape[0], -1)
        h = hidden_dense(h, self.hidden, self.activation, self.init_scheme, self.dropout, train)
        time_steps = x.shape[1] if x.ndim > 1 else 1
        return output_layer(h, self.num_outputs, self.init_scheme, self.targets, time_steps)
