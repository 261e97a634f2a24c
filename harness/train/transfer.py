"""Start from pretrained weights: ``train.init_from`` and ``train.freeze``.

``train.init_from`` names a ``params.npz`` written by a run with ``output.save_params=true``
(keys are JAX key paths such as ``['Dense_0']['kernel']``). Every layer but the *head* -- the
model's last Dense layer, whose output size depends on the classes -- is copied from it; the
head keeps its fresh initialisation. ``train.freeze=features`` then trains the head only
(a linear probe on frozen features); ``none`` fine-tunes everything.

The weights are read in Python when the program is built and enter it as constants: the path
is a static setting (one compile group per file), and ``train(hparams, key, data)`` stays pure.
"""

from __future__ import annotations

import os
import zipfile
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from harness.errors import ConfigError

FREEZE = ("none", "features")
HEAD_PREFIX = "Dense_"


def load_params(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The arrays of a ``params.npz`` by key path; ConfigError if it cannot be read."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ConfigError("train.init_from", path, "a params.npz written with output.save_params=true (no such file)")
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):  # a bare .npy array, not an archive
            raise ValueError("a single array")
        with loaded:
            return {k: np.asarray(loaded[k]) for k in loaded.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        # numpy's own message advises allow_pickle=True: unsafe advice, never shown to a user
        raise ConfigError("train.init_from", path, "a params.npz written with output.save_params=true "
                          f"(this file is not an .npz archive of arrays: {type(exc).__name__})") from None


def head_module(params: Any) -> str:
    """The name of the model's last Dense layer (the highest-numbered ``Dense_<i>``)."""
    dense = [k for k in params if str(k).startswith(HEAD_PREFIX) and str(k)[len(HEAD_PREFIX):].isdigit()]
    if not dense:
        raise ConfigError("train.init_from", None, f"a model ending in a Dense layer (found {sorted(params)})")
    return max(dense, key=lambda k: int(str(k)[len(HEAD_PREFIX):]))


def _in_head(path, head: str) -> bool:
    return getattr(path[0], "key", None) == head


def feature_constants(param_shapes: Any, pretrained: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The pretrained arrays of every non-head parameter, checked against the new model's shapes."""
    head = head_module(param_shapes)
    out = {}
    for path, leaf in jax.tree_util.tree_leaves_with_path(param_shapes):
        if _in_head(path, head):
            continue
        name = jax.tree_util.keystr(path)
        if name not in pretrained:
            raise ConfigError("train.init_from", name, f"pretrained weights with this layer ({len(pretrained)} arrays found)")
        if tuple(pretrained[name].shape) != tuple(leaf.shape):
            raise ConfigError("train.init_from", name,
                              f"shape {tuple(leaf.shape)} (the pretrained layer has {tuple(pretrained[name].shape)})")
        out[name] = pretrained[name].astype(leaf.dtype)
    return out


def load_features(params: Any, features: dict[str, np.ndarray]) -> Any:
    """``params`` with every feature (non-head) leaf replaced by its pretrained value."""
    return jax.tree_util.tree_map_with_path(
        lambda path, p: jnp.asarray(features[jax.tree_util.keystr(path)]) if jax.tree_util.keystr(path) in features else p,
        params)


def freeze_labels(params: Any, freeze: str) -> Any:
    """``"frozen"`` / ``"trained"`` per leaf: with ``features``, everything but the head is frozen."""
    if freeze not in FREEZE:
        raise ConfigError("train.freeze", freeze, FREEZE)
    head = head_module(params)
    return jax.tree_util.tree_map_with_path(
        lambda path, _: "trained" if freeze == "none" or _in_head(path, head) else "frozen", params)


def with_freeze(tx: optax.GradientTransformation, params: Any, freeze: str) -> optax.GradientTransformation:
    """``tx`` on the trained parameters, a zero update on the frozen ones (``none``: ``tx``)."""
    if freeze == "none":
        return tx
    return optax.multi_transform({"trained": tx, "frozen": optax.set_to_zero()}, freeze_labels(params, freeze))
