"""Run one compile group: ``jit(vmap(train))`` over its members, one XLA program.

This is the only way anything trains. A single ``harness-train`` run is a group of one; the
fused launcher hands whole groups (or chunks of them) to the same function.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from omegaconf import DictConfig

from harness.data import load_dataset
from harness.data.base import Dataset
from harness.sweep.plan import group_key, stack_hparams
from harness.train.loop import Budget, make_train, prepare_data

# Counts how often a train function is traced (a test pins "one compilation per group").
TRACE_COUNT = {"n": 0}
# Compiled programs of this process by (group key, member count, devices): a second chunk of
# the same group reuses its executable instead of lowering and compiling again.
_COMPILED: dict[tuple, tuple[Any, Budget]] = {}


@dataclasses.dataclass
class GroupRun:
    """What a group's run gives back: per-member outputs (numpy) and shared facts."""

    outputs: list[dict[str, Any]]
    budget: Budget
    dataset: Dataset
    compile_s: float
    run_s: float
    devices: int
    compiled: bool  # False when an earlier chunk's executable was reused


@functools.lru_cache(maxsize=32)
def _cached_dataset(data_json: str) -> Dataset:
    import json

    from omegaconf import OmegaConf

    return load_dataset(OmegaConf.create(json.loads(data_json)))


def dataset_for(cfg: DictConfig) -> Dataset:
    """Load (once per process) the data set a config asks for."""
    import json

    from omegaconf import OmegaConf

    return _cached_dataset(json.dumps(OmegaConf.to_container(cfg.data, resolve=True), sort_keys=True))


def boundary_grid(dataset: Dataset, resolution: int) -> np.ndarray | None:
    """Input features on a ``resolution``² grid over the Playground square, or None."""
    if dataset.input_extent is None or not dataset.feature_names:
        return None
    from harness.data.playground import feature_map

    lo, hi = dataset.input_extent
    ticks = np.linspace(lo, hi, resolution, dtype=np.float32)
    xx, yy = np.meshgrid(ticks, ticks[::-1])  # row 0 is the top of the picture
    points = np.stack([xx.ravel(), yy.ravel()], axis=1)
    return feature_map(points, list(dataset.feature_names)).astype(np.float32)


def member_devices(num_members: int) -> list:
    """Devices the member axis is sharded over: all local devices that the members fill."""
    devices = jax.local_devices()
    return devices[: max(1, min(len(devices), num_members))]


def _pad_rows(tree: dict[str, np.ndarray], multiple: int, at_least: int = 0) -> tuple[dict[str, np.ndarray], int]:
    """Repeat the last member so there are at least ``at_least`` members and the count
    divides evenly over devices; padded members' outputs are dropped."""
    n = len(next(iter(tree.values())))
    padded = math.ceil(max(n, at_least) / multiple) * multiple
    if padded == n:
        return tree, n
    return {k: np.concatenate([v, np.repeat(v[-1:], padded - n, axis=0)]) for k, v in tree.items()}, n


def run_group(cfgs: Sequence[DictConfig], *, dataset: Dataset | None = None, pad_to: int = 0) -> GroupRun:
    """Train every config of one compile group together and return per-member outputs.

    All ``cfgs`` must share their static settings (see :mod:`harness.sweep.plan`); the first
    one defines the program. Compile and run times are measured separately. ``pad_to`` pads
    the member axis (repeating the last member) so chunks of one group share a program.
    """
    cfg0 = cfgs[0]
    dataset = dataset or dataset_for(cfg0)
    grid = boundary_grid(dataset, int(cfg0.output.boundary_resolution))
    data = {k: jnp.asarray(v) for k, v in prepare_data(dataset, grid).items()}

    hparams = stack_hparams(cfgs)
    devices = member_devices(len(cfgs))
    hparams, n_members = _pad_rows(hparams, len(devices), pad_to)
    keys = np.asarray(jax.vmap(jax.random.PRNGKey)(jnp.asarray(hparams["seed"])))

    mesh = Mesh(np.asarray(devices), ("members",))
    member_sharding = NamedSharding(mesh, PartitionSpec("members"))
    replicated = NamedSharding(mesh, PartitionSpec())
    hparams = jax.device_put({k: jnp.asarray(v) for k, v in hparams.items()}, member_sharding)
    keys = jax.device_put(jnp.asarray(keys), member_sharding)
    data = jax.device_put(data, replicated)

    cache_key = (group_key(cfg0), len(keys), tuple(d.id for d in devices))
    t0 = time.perf_counter()
    compiled_here = cache_key not in _COMPILED
    if compiled_here:
        train, budget = make_train(cfg0, dataset)

        def counted_train(hparams, key, data):
            TRACE_COUNT["n"] += 1  # runs at trace time only
            return train(hparams, key, data)

        fused = jax.jit(jax.vmap(counted_train, in_axes=(0, 0, None)))
        _COMPILED[cache_key] = (fused.lower(hparams, keys, data).compile(), budget)
    compiled, budget = _COMPILED[cache_key]
    compile_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    out = compiled(hparams, keys, data)
    out = jax.block_until_ready(out)
    run_s = time.perf_counter() - t0

    host = jax.tree_util.tree_map(np.asarray, jax.device_get(out))
    outputs = [jax.tree_util.tree_map(lambda a, i=i: a[i], host) for i in range(n_members)]
    return GroupRun(outputs, budget, dataset, compile_s, run_s, len(devices), compiled_here)
