"""Model families (Flax Linen) and the one entry point the training code uses, build_model.

    model = build_model(cfg.model, layout=ds.layout, input_shape=ds.input_shape,
                        num_outputs=ds.num_outputs, vocab_size=ds.vocab_size,
                        targets=ds.targets)
    variables = model.init({"params": key, "dropout": key2}, x_batch, train=False)
    out = model.apply({"params": params}, x, train=True, rngs={"dropout": key})

Outputs are raw: logits or regression values, [b, num_outputs] or, for
``targets="sequence"``, [b, T, num_outputs]. Every model setting is static (a module field);
a new value is a new program. Only ``model.init_scale`` is dynamic and is applied by the
caller after init (``harness.train.loop``: weights, not biases, times the scale).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any

import jax
from flax import linen as nn

from harness.config import ModelConfig
from harness.data.base import LAYOUTS
from harness.errors import ConfigError
from harness.models.activations import ACTIVATIONS, get_activation
from harness.models.cnn import CNN, POOLS, check_spatial_sizes, parse_padding
from harness.models.fnn import FNN, TOKEN_MODES
from harness.models.inits import get_init
from harness.models.rnn import CELLS, READOUTS, RNN

MODEL_FAMILIES: dict[str, type[nn.Module]] = {"fnn": FNN, "cnn": CNN, "rnn": RNN}

TARGETS = ("example", "sequence")
GRID_LAYOUTS = ("signal", "image", "sequence")  # what a CNN can convolve over
# Rank of one example (no batch axis) in each layout, per harness.data.base.
LAYOUT_RANKS = {"vector": 1, "signal": 2, "image": 3, "sequence": 2, "tokens": 1}

_DEFAULTS = ModelConfig()

__all__ = [
    "ACTIVATIONS",
    "CNN",
    "FNN",
    "MODEL_FAMILIES",
    "RNN",
    "build_model",
    "count_params",
    "get_activation",
    "get_init",
    "validate_model_config",
    "validate_model_for_data",
]


def _get(cfg: Any, key: str) -> Any:
    """``cfg.key`` for a DictConfig / dataclass / mapping; ModelConfig's default if absent."""
    if isinstance(cfg, Mapping):
        return cfg.get(key, getattr(_DEFAULTS, key))
    return getattr(cfg, key, getattr(_DEFAULTS, key))


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _positive_int(cfg: Any, key: str) -> int:
    value = _get(cfg, key)
    if not _is_int(value) or value < 1:
        raise ConfigError(f"model.{key}", value, "an integer >= 1")
    return int(value)


def _widths(cfg: Any, key: str, allowed: str) -> tuple[int, ...]:
    value = _get(cfg, key)
    try:
        widths = tuple(value)
    except TypeError:
        raise ConfigError(f"model.{key}", value, allowed) from None
    if not all(_is_int(w) and w >= 1 for w in widths):
        raise ConfigError(f"model.{key}", list(widths), allowed)
    return tuple(int(w) for w in widths)


def _choice(cfg: Any, key: str, allowed: tuple[str, ...]) -> str:
    value = _get(cfg, key)
    if value not in allowed:
        raise ConfigError(f"model.{key}", value, sorted(allowed))
    return str(value)


def validate_model_config(cfg: Any, layout: str | None = None) -> dict[str, Any]:
    """Check every model value without building anything; ConfigError names the bad key.

    Checks all keys, whatever the family (defaults are always valid, so only a value someone
    set can fail). With ``layout`` it also checks that the family can read that layout.
    Returns the values normalised (lists -> tuples of int, padding parsed), as the modules
    take them.
    """
    family = _choice(cfg, "family", tuple(MODEL_FAMILIES))
    values: dict[str, Any] = {"family": family}
    values["activation"] = _get(cfg, "activation")
    get_activation(values["activation"])
    values["init"] = _get(cfg, "init")
    get_init(values["init"])
    dropout = _get(cfg, "dropout")
    if not _is_real(dropout) or not 0.0 <= dropout < 1.0:
        raise ConfigError("model.dropout", dropout, "a rate in [0, 1)")
    values["dropout"] = float(dropout)
    scale = _get(cfg, "init_scale")
    if not _is_real(scale) or not math.isfinite(scale):
        raise ConfigError("model.init_scale", scale, "a finite number")
    values["hidden"] = _widths(cfg, "hidden", "a list of widths >= 1 ([] = linear model)")
    values["tokens"] = _choice(cfg, "tokens", TOKEN_MODES)
    values["channels"] = _widths(cfg, "channels", "a list of conv channel counts >= 1")
    values["dense"] = _widths(cfg, "dense", "a list of widths >= 1 (may be empty)")
    values["kernel"] = _positive_int(cfg, "kernel")
    values["stride"] = _positive_int(cfg, "stride")
    values["padding"] = parse_padding(_get(cfg, "padding"))
    values["pool"] = _choice(cfg, "pool", POOLS)
    values["cell"] = _choice(cfg, "cell", CELLS)
    values["units"] = _positive_int(cfg, "units")
    values["layers"] = _positive_int(cfg, "layers")
    values["embed_dim"] = _positive_int(cfg, "embed_dim")
    values["readout"] = _choice(cfg, "readout", READOUTS)
    bidirectional = _get(cfg, "bidirectional")
    if not isinstance(bidirectional, bool):
        raise ConfigError("model.bidirectional", bidirectional, "true or false")
    values["bidirectional"] = bidirectional
    if layout is not None and family == "cnn" and layout not in GRID_LAYOUTS:
        raise ConfigError(
            "model.family",
            "cnn",
            f"grid-like data: layouts signal, image or sequence (this data set is {layout}); "
            "use fnn or rnn",
        )
    return values


def validate_model_for_data(
    model_cfg: Any,
    layout: str,
    input_shape: tuple[int, ...],
    num_outputs: int = 1,
    vocab_size: int = 0,
    targets: str = "example",
) -> dict[str, Any]:
    """Every check :func:`build_model` makes, without building or tracing anything.

    :func:`validate_model_config` plus what needs the data: the family can read ``layout``,
    a CNN's conv stack does not shrink ``input_shape`` to nothing (ConfigError naming the key),
    and the data arguments agree with each other (ValueError). Returns the normalised values.
    """
    v = validate_model_config(model_cfg, layout)
    input_shape = tuple(int(n) for n in input_shape)
    if layout not in LAYOUTS:
        raise ValueError(f"layout {layout!r} is not one of {LAYOUTS}")
    if len(input_shape) != LAYOUT_RANKS[layout]:
        raise ValueError(
            f"layout {layout!r} expects examples of rank {LAYOUT_RANKS[layout]}, "
            f"got input_shape {input_shape}"
        )
    if targets not in TARGETS:
        raise ValueError(f"targets {targets!r} is not one of {TARGETS}")
    if not _is_int(num_outputs) or num_outputs < 1:
        raise ValueError(f"num_outputs must be >= 1, got {num_outputs!r}")
    if layout == "tokens" and (not _is_int(vocab_size) or vocab_size < 1):
        raise ValueError(f"tokens layout needs vocab_size >= 1, got {vocab_size!r}")
    if v["family"] == "cnn":
        check_spatial_sizes(
            input_shape[:-1], v["channels"], v["kernel"], v["stride"], v["padding"], v["pool"]
        )
    return v


def build_model(
    model_cfg: Any,
    layout: str,
    input_shape: tuple[int, ...],
    num_outputs: int,
    vocab_size: int = 0,
    targets: str = "example",
) -> nn.Module:
    """The Linen module for ``model_cfg`` (DictConfig, ModelConfig or mapping) and this data.

    ``input_shape`` is one example's shape (no batch axis), ``layout`` one of
    harness.data.base.LAYOUTS, ``vocab_size`` the token count for ``tokens`` data, and
    ``targets`` "example" or "sequence". Config values that are not allowed raise
    ConfigError naming the key; inconsistent data arguments raise ValueError (see
    :func:`validate_model_for_data`, which makes the same checks without building).
    """
    v = validate_model_for_data(model_cfg, layout, input_shape, num_outputs, vocab_size, targets)
    common = dict(
        num_outputs=int(num_outputs),
        activation=v["activation"],
        init_scheme=v["init"],
        dropout=v["dropout"],
        targets=targets,
    )
    family = v["family"]
    if family == "fnn":
        return FNN(
            hidden=v["hidden"],
            layout=layout,
            vocab_size=int(vocab_size),
            tokens=v["tokens"],
            embed_dim=v["embed_dim"],
            **common,
        )
    if family == "cnn":
        return CNN(
            channels=v["channels"],
            kernel=v["kernel"],
            stride=v["stride"],
            padding=v["padding"],
            pool=v["pool"],
            dense=v["dense"],
            **common,
        )
    return RNN(
        cell=v["cell"],
        units=v["units"],
        layers=v["layers"],
        bidirectional=v["bidirectional"],
        readout=v["readout"],
        layout=layout,
        vocab_size=int(vocab_size),
        embed_dim=v["embed_dim"],
        **common,
    )


def count_params(tree: Any) -> int:
    """Number of scalars in a params (or variables) pytree."""
    return sum(int(x.size) for x in jax.tree_util.tree_leaves(tree))
