"""Per-neuron thumbnails, as the Playground draws them: each hidden neuron's output (and each
input feature) over the input square, on a coarse grid.

The model is the harness's own (``build_model`` with the session's config, via
:func:`harness.play.network.model_of`); the hidden
outputs are its Dense layers' outputs (Flax ``capture_intermediates``) passed through the
configured activation, the same function the layer applies. One small program per structure.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from omegaconf import DictConfig

from harness.data.base import Dataset
from harness.data.playground import FEATURE_NAMES
from harness.play.network import model_of
from harness.data.playground import boundary_grid
from harness.train.hparams import group_key

RESOLUTION = 20  # thumbnails: 20 x 20 values each
_PROGRAMS: dict[str, Callable] = {}


def feature_fields(dataset: Dataset, resolution: int = RESOLUTION) -> dict[str, np.ndarray] | None:
    """Every Playground input feature (used or not) on a ``resolution``² grid, scaled into
    [-1, 1]: ``{name: [resolution²]}``; None for data without a grid."""
    if dataset.input_extent is None or not dataset.feature_names:
        return None
    grid = boundary_grid(dataclasses.replace(dataset, feature_names=FEATURE_NAMES), resolution)
    scale = np.maximum(np.abs(grid).max(axis=0), 1e-6)
    return dict(zip(FEATURE_NAMES, (grid / scale).T))


def _program(cfg: DictConfig, dataset: Dataset) -> Callable:
    key = group_key(cfg)
    if key not in _PROGRAMS:
        from harness.models import get_activation

        model, _ = model_of(cfg, dataset)
        act = get_activation(str(cfg.model.activation))
        layers = len(cfg.model.hidden)

        def hidden(params, x):
            _, state = model.apply({"params": params}, x, train=False, capture_intermediates=True,
                                   mutable=["intermediates"])
            found = state["intermediates"]
            outs = [act(found[f"Dense_{i}"]["__call__"][0]) for i in range(layers)]
            return jnp.concatenate(outs, axis=1).T if outs else jnp.zeros((0, x.shape[0]))

        _PROGRAMS[key] = jax.jit(hidden)  # traced once per grid size (thumbnails, the big field)
    return _PROGRAMS[key]


def neuron_fields(cfg: DictConfig, dataset: Dataset, params, resolution: int = RESOLUTION) -> np.ndarray | None:
    """Every hidden neuron's output on a ``resolution``² grid for one member's ``params``:
    [neurons (layer by layer), resolution²], or None for a model without a grid or not an FNN."""
    grid = boundary_grid(dataset, resolution)
    if grid is None or str(cfg.model.family) != "fnn":
        return None
    return np.asarray(_program(cfg, dataset)(params, jnp.asarray(grid)))
