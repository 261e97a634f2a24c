"""Convolutional network, 1-D or 2-D by the input's rank.

[b, length, channels] (layouts ``signal``, ``sequence``) -> 1-D convolutions over length;
[b, height, width, channels] (layout ``image``) -> 2-D convolutions.
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
from flax import linen as nn

from harness.errors import ConfigError
from harness.models.activations import get_activation
from harness.models.fnn import hidden_dense, maybe_dropout, output_layer
from harness.models.inits import get_init

POOLS = ("none", "max", "avg")
PADDINGS = ("SAME", "VALID")  # or a non-negative integer: that many zeros on each side
POOL_WINDOW = 2  # pooling window and stride
_PADDING_ALLOWED = "SAME, VALID, or a non-negative integer (zeros on each side)"


def parse_padding(padding: str | int) -> str | int:
    """``model.padding`` as Flax takes it: "SAME" / "VALID" (any case), or an int >= 0.

    An integer (or a string of digits, as Hydra may pass it) pads that many zeros on each side
    of every spatial axis, like PyTorch's ``padding=k``. ConfigError on ``model.padding`` else.
    """
    if isinstance(padding, bool):
        raise ConfigError("model.padding", padding, _PADDING_ALLOWED)
    if isinstance(padding, int):
        if padding < 0:
            raise ConfigError("model.padding", padding, _PADDING_ALLOWED)
        return padding
    text = str(padding).strip()
    if text.isdigit():
        return int(text)
    if text.upper() in PADDINGS:
        return text.upper()
    raise ConfigError("model.padding", padding, _PADDING_ALLOWED)


def check_spatial_sizes(
    spatial: tuple[int, ...],
    channels: tuple[int, ...],
    kernel: int,
    stride: int,
    padding: str | int,
    pool: str,
) -> tuple[int, ...]:
    """Spatial sizes after the conv stack, from an input's ``spatial`` sizes (static shapes).

    Raises ConfigError on ``model.channels`` if a layer would shrink an axis to nothing, so a
    too-deep stack is reported before any tracing instead of as an opaque XLA error.
    ``padding`` is as returned by :func:`parse_padding`.
    """
    sizes = tuple(spatial)
    for i in range(len(channels)):
        out = []
        for n in sizes:
            if padding == "SAME":
                n = -(-n // stride)
            else:
                n += 2 * padding if isinstance(padding, int) else 0
                n = (n - kernel) // stride + 1 if n >= kernel else 0
            out.append(n // POOL_WINDOW if pool != "none" else n)
        if min(out) < 1:
            raise ConfigError(
                "model.channels",
                list(channels),
                f"an input of spatial size {tuple(spatial)} shrinks to nothing at conv layer "
                f"{i + 1} (kernel {kernel}, stride {stride}, padding {padding}, pool {pool}); "
                "use fewer conv layers, a smaller kernel or stride, padding SAME, or pool none",
            )
        sizes = tuple(out)
    return sizes


def _same_padding(size: int, window: int, stride: int) -> tuple[int, int]:
    """XLA's (and Flax's) "SAME" padding of one axis: output ceil(size / stride)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + window - size, 0)
    return total // 2, total - total // 2


def _patches(x: jax.Array, window: tuple[int, ...], strides: tuple[int, ...], padding: str | int) -> jax.Array:
    """im2col by strided slices: [b, *spatial, c] -> [b, *out, prod(window) * c], features
    ordered (*window position, channel). Slices, not a convolution with a one-hot filter
    (``lax.conv_general_dilated_patches``), which costs window-times more FLOPs on CPU."""
    spatial = x.shape[1:-1]
    if padding == "SAME":
        pads = [_same_padding(n, k, s) for n, k, s in zip(spatial, window, strides)]
    elif padding == "VALID":
        pads = [(0, 0)] * len(spatial)
    else:
        pads = [(int(padding), int(padding))] * len(spatial)
    x = jnp.pad(x, [(0, 0), *pads, (0, 0)])
    outs = [(n + lo + hi - k) // s + 1 for n, (lo, hi), k, s in zip(spatial, pads, window, strides)]
    pieces = []
    for offset in itertools.product(*(range(k) for k in window)):
        index = tuple(slice(o, o + (m - 1) * s + 1, s) for o, m, s in zip(offset, outs, strides))
        pieces.append(x[(slice(None), *index, slice(None))])
    return jnp.concatenate(pieces, axis=-1)


class PatchConv(nn.Module):
    """A convolution computed as patches @ kernel (im2col), with ``nn.Conv``'s parameters.

    Same parameters (``kernel`` [*window, in, out], ``bias`` [out]), initialisers and output
    as ``nn.Conv`` (up to float rounding). Why: a sweep vmaps the model over members, each
    with its own kernel, and XLA:CPU turns a convolution whose kernel is batched into a
    grouped convolution that runs several times slower than the unbatched one. Here the
    patch extraction takes no parameters (one shared, unbatched op) and the member-batched
    part is a plain batched matrix product, which XLA:CPU runs well (docs/benchmarks.md).
    """

    features: int
    kernel_size: tuple[int, ...]
    strides: tuple[int, ...]
    padding: str | int
    kernel_init: object = nn.initializers.lecun_normal()
    bias_init: object = nn.initializers.zeros

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        in_features = x.shape[-1]
        kernel = self.param("kernel", self.kernel_init, (*self.kernel_size, in_features, self.features))
        bias = self.param("bias", self.bias_init, (self.features,))
        patches = _patches(x, self.kernel_size, self.strides, self.padding)  # [b, *out, prod(window) * in]
        matrix = kernel.reshape(-1, self.features)  # rows ordered (*window, in), as the patches
        return patches @ matrix + bias


class CNN(nn.Module):
    """[Conv -> act -> pool?]* -> flatten -> dropout -> [Dense -> act -> dropout]* -> Dense.

    Every conv layer uses the same ``kernel``, ``stride`` and ``padding`` along each spatial
    axis; ``pool`` ("max" / "avg", window 2, stride 2, no padding) follows each activation.
    Dropout (if any) is applied to the flattened conv features and after each head layer.
    With ``targets="sequence"`` the output layer gives T * num_outputs values reshaped to
    [b, T, num_outputs], T being the input's axis 1 (as in the FNN).
    """

    num_outputs: int
    channels: tuple[int, ...] = (25, 25, 25)
    kernel: int = 5
    stride: int = 2
    padding: str | int = "SAME"
    pool: str = "none"
    dense: tuple[int, ...] = ()
    activation: str = "relu"
    init_scheme: str = "default"  # model.init (the name `init` is taken by Module.init)
    dropout: float = 0.0
    targets: str = "example"

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        """Raw outputs for a batch ``x`` of rank 3 (1-D) or 4 (2-D)."""
        spatial = x.ndim - 2
        if spatial not in (1, 2):
            raise ValueError(
                f"CNN input must be [b, length, channels] or [b, h, w, c]; got shape {x.shape}"
            )
        act = get_activation(self.activation)
        kernel_init, bias_init = get_init(self.init_scheme)
        padding = parse_padding(self.padding)
        h = jnp.asarray(x, jnp.float32)
        # Shapes are static: this check costs nothing under jit (build_model runs it too).
        check_spatial_sizes(
            x.shape[1:-1], self.channels, self.kernel, self.stride, padding, self.pool
        )
        for i, features in enumerate(self.channels):
            h = PatchConv(
                features,
                kernel_size=(self.kernel,) * spatial,
                strides=(self.stride,) * spatial,
                padding=padding,
                kernel_init=kernel_init,
                bias_init=bias_init,
                name=f"Conv_{i}",  # nn.Conv's names: stored params keep their keys
            )(h)
            h = act(h)
            if self.pool != "none":
                pool_fn = nn.max_pool if self.pool == "max" else nn.avg_pool
                window = (POOL_WINDOW,) * spatial
                h = pool_fn(h, window, strides=window, padding="VALID")
        h = maybe_dropout(h.reshape(h.shape[0], -1), self.dropout, train)
        h = hidden_dense(h, self.dense, self.activation, self.init_scheme, self.dropout, train)
        return output_layer(h, self.num_outputs, self.init_scheme, self.targets, x.shape[1])
