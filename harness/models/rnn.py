"""Recurrent network: stacked (optionally bidirectional) simple / GRU / LSTM layers.

How each layout is read as a sequence of T steps:

- ``signal`` / ``sequence`` [b, T, f]: T steps of f features;
- ``image`` [b, h, w, c]: row by row, T = h steps of w * c features;
- ``tokens`` [b, T] int: through ``nn.Embed(vocab_size, embed_dim)``; padding id 0 is embedded
  like any other token (no masking), which is why the sentiment data pads on the left: the
  ``last`` readout then follows a real token;
- ``vector`` [b, d]: d steps of one feature.

``model.activation`` sets the *simple* cell's activation only. GRU and LSTM cells keep their
standard functions (sigmoid gates, tanh candidate / cell output), so sweeping the activation
changes nothing in a GRU/LSTM model (whose readout goes straight to the linear output layer).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import linen as nn

from harness.models.activations import get_activation
from harness.models.fnn import maybe_dropout
from harness.models.inits import get_init, get_recurrent_init

CELLS = ("simple", "gru", "lstm")
READOUTS = ("last", "mean", "flatten")


class RNN(nn.Module):
    """Embed / reshape -> [RNN layer -> dropout]* -> readout -> dropout -> Dense.

    Readouts (``targets="example"``): ``last`` the output at the last step (bidirectional: the
    forward direction's last step joined with the backward direction's, which is at step 0);
    ``mean`` the mean over steps; ``flatten`` every step's output concatenated
    ([b, T * units * directions]). With ``targets="sequence"`` the readout is ignored and the
    output layer is applied at every step -> [b, T, num_outputs].
    """

    num_outputs: int
    cell: str = "gru"
    units: int = 64
    layers: int = 1
    bidirectional: bool = False
    readout: str = "last"
    activation: str = "tanh"
    init_scheme: str = "default"  # model.init (the name `init` is taken by Module.init)
    dropout: float = 0.0
    layout: str = "signal"
    vocab_size: int = 0
    embed_dim: int = 16
    targets: str = "example"

    def _make_cell(self, name: str) -> nn.RNNCellBase:
        """A fresh cell of the configured kind and init scheme; ``name`` is its params key."""
        kernel_init, bias_init = get_init(self.init_scheme)
        inits = dict(
            kernel_init=kernel_init,
            recurrent_kernel_init=get_recurrent_init(self.init_scheme),
            bias_init=bias_init,
            name=name,
        )
        if self.cell == "simple":
            return nn.SimpleCell(
                features=self.units, activation_fn=get_activation(self.activation), **inits
            )
        if self.cell == "gru":
            return nn.GRUCell(features=self.units, **inits)
        if self.cell == "lstm":
            return nn.OptimizedLSTMCell(features=self.units, **inits)
        raise ValueError(f"unknown cell {self.cell!r}")  # build_model raises ConfigError first

    def _as_steps(self, x: jax.Array) -> jax.Array:
        """The input as [b, T, features] (see the module docstring)."""
        if self.layout == "tokens":
            return nn.Embed(self.vocab_size, self.embed_dim)(x.astype(jnp.int32))
        x = jnp.asarray(x, jnp.float32)
        if x.ndim == 2:  # vector: d steps of one feature
            return x[..., None]
        if x.ndim == 4:  # image: rows are steps
            return x.reshape(x.shape[0], x.shape[1], -1)
        return x

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        """Raw outputs [b, num_outputs], or [b, T, num_outputs] for sequence targets."""
        h = self._as_steps(x)
        for layer in range(self.layers):
            if layer > 0:  # between stacked layers, not on the input
                h = maybe_dropout(h, self.dropout, train)
            if self.bidirectional:
                forward = nn.RNN(self._make_cell(f"layer{layer}_forward"))
                backward = nn.RNN(self._make_cell(f"layer{layer}_backward"))
                h = nn.Bidirectional(forward, backward)(h)
            else:
                h = nn.RNN(self._make_cell(f"layer{layer}"))(h)
        if self.targets != "sequence":
            h = self._read_out(h)
        h = maybe_dropout(h, self.dropout, train)
        kernel_init, bias_init = get_init(self.init_scheme)
        return nn.Dense(self.num_outputs, kernel_init=kernel_init, bias_init=bias_init)(h)

    def _read_out(self, h: jax.Array) -> jax.Array:
        """[b, T, H] -> [b, features] per ``readout``."""
        if self.readout == "mean":
            return h.mean(axis=1)
        if self.readout == "flatten":
            return h.reshape(h.shape[0], -1)
        if self.bidirectional:
            # nn.Bidirectional re-aligns the backward outputs with time, so the backward
            # direction's final state (after reading the whole sequence) sits at step 0.
            return jnp.concatenate([h[:, -1, : self.units], h[:, 0, self.units :]], axis=-1)
        return h[:, -1]
