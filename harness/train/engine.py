"""Run one compile group: ``jit(vmap(train))`` over its members, one XLA program.

This is the only way anything trains. A single ``harness-train`` run is a group of one; the
fused launcher hands whole groups (or chunks of them) to the same function.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from omegaconf import DictConfig

from harness.data.base import Dataset
from harness.data.cache import dataset_for
from harness.data.playground import boundary_grid
from harness.train import events
from harness.train.hparams import group_key, stack_hparams
from harness.train.loop import Budget, Segments, make_segments, make_train, prepare_data

# Counts how often a train function is traced (a test pins "one compilation per group").
TRACE_COUNT = {"n": 0}
# Compiled programs of this process by (group key, member count, devices), as futures of
# (executable, budget, compile seconds): a second chunk of the same group reuses its
# executable instead of lowering and compiling again, and a program compiling in the
# background (precompile) is waited for rather than compiled twice.
_COMPILED: dict[tuple, Future] = {}
_USED: set[tuple] = set()  # programs a group has run with (the first one reports the compile)
_COMPILE_LOCK = threading.Lock()
_POOL: ThreadPoolExecutor | None = None
# The same for GroupProgram, by (group key, member count, segment length, devices): a new
# program of a known structure (the playground's Reset, new seeds or learning rates) reuses
# the compiled init and segment programs (and the field program, once built).
_SEGMENT_COMPILED: dict[tuple, list] = {}


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
    compile_wait_s: float = 0.0  # how long the run waited for its program (less when precompiled)


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


def _program_key(cfgs: Sequence[DictConfig], pad_to: int) -> tuple[tuple, int, list]:
    """(cache key, padded member count, devices) of the program that trains ``cfgs``."""
    devices = member_devices(len(cfgs))
    padded = math.ceil(max(len(cfgs), pad_to) / len(devices)) * len(devices)
    return (group_key(cfgs[0]), padded, tuple(d.id for d in devices)), padded, devices


def _compile_program(cfg0: DictConfig, dataset: Dataset, padded: int, devices: list) -> tuple[Any, Budget, float]:
    """Trace, lower and compile the group's ``jit(vmap(train))`` for ``padded`` members."""
    t0 = time.perf_counter()
    # Inputs of the right shapes and shardings: the first member repeated.
    hparams, keys, data, _, _ = _member_inputs([cfg0], dataset, padded, devices=devices)
    train, budget = make_train(cfg0, dataset)

    def counted_train(hparams, key, data):
        TRACE_COUNT["n"] += 1  # runs at trace time only
        return train(hparams, key, data)

    fused = jax.jit(jax.vmap(counted_train, in_axes=(0, 0, None)))
    compiled = fused.lower(hparams, keys, data).compile()
    return compiled, budget, time.perf_counter() - t0


def _program(cfgs: Sequence[DictConfig], dataset: Dataset, pad_to: int, *, background: bool) -> tuple[Future, tuple]:
    """The (future of the) compiled program for ``cfgs``: from the cache, from a compile in
    flight, or started now (inline, or on the background compile thread)."""
    key, padded, devices = _program_key(cfgs, pad_to)
    with _COMPILE_LOCK:
        future = _COMPILED.get(key)
        if future is not None:
            return future, key
        future = Future()
        _COMPILED[key] = future

    def fill() -> None:
        try:
            future.set_result(_compile_program(cfgs[0], dataset, padded, devices))
        except BaseException as exc:  # noqa: BLE001 - handed to whoever runs the group
            with _COMPILE_LOCK:
                _COMPILED.pop(key, None)  # a later attempt compiles again
            future.set_exception(exc)

    if background:
        _compile_pool().submit(fill)
    else:
        events.phase("compiling")
        fill()
    return future, key


def _compile_pool() -> ThreadPoolExecutor:
    global _POOL
    with _COMPILE_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=1, thread_name_prefix="harness-compile")
        return _POOL


def precompile(cfgs: Sequence[DictConfig], *, dataset: Dataset | None = None, pad_to: int = 0) -> None:
    """Start compiling the program of a group that will run next, on a background thread.

    XLA compiles with the GIL released, so this overlaps with whatever the caller does
    meanwhile (running or storing the current group, or compiling it): on a machine with
    idle cores, a sweep's compile time is hidden behind its other work. A no-op when the
    program is compiled or compiling already; :func:`run_group` picks it up.
    """
    _program(cfgs, dataset or dataset_for(cfgs[0]), pad_to, background=True)


def run_group(cfgs: Sequence[DictConfig], *, dataset: Dataset | None = None, pad_to: int = 0) -> GroupRun:
    """Train every config of one compile group together and return per-member outputs.

    All ``cfgs`` must share their static settings (see :mod:`harness.train.hparams`); the first
    one defines the program. Compile and run times are measured separately: ``compile_s`` is
    how long the program took to compile (for the first group that uses it; also when it was
    compiled in the background by :func:`precompile`), ``compile_wait_s`` how long this call
    waited for it. ``pad_to`` pads the member axis (repeating the last member) so chunks of
    one group share a program.
    """
    cfg0 = cfgs[0]
    dataset = dataset or dataset_for(cfg0)
    t0 = time.perf_counter()
    future, key = _program(cfgs, dataset, pad_to, background=False)
    if not future.done():
        events.phase("compiling (started in the background)")
    compiled, budget, compile_seconds = future.result()
    waited = time.perf_counter() - t0
    events.phase("training")
    with _COMPILE_LOCK:
        first_use = key not in _USED
        _USED.add(key)
    hparams, keys, data, devices, n_members = _member_inputs(cfgs, dataset, pad_to)

    t0 = time.perf_counter()
    out = compiled(hparams, keys, data)
    out = jax.block_until_ready(out)
    run_s = time.perf_counter() - t0

    host = jax.tree_util.tree_map(np.asarray, jax.device_get(out))
    outputs = [jax.tree_util.tree_map(lambda a, i=i: a[i], host) for i in range(n_members)]
    compile_s = compile_seconds if first_use else waited
    return GroupRun(outputs, budget, dataset, compile_s, run_s, len(devices), first_use, waited)


def _member_inputs(cfgs: Sequence[DictConfig], dataset: Dataset, pad_to: int, devices: list | None = None):
    """Device-placed (hparams, keys, data, devices, n_members) of a group, as run_group uses."""
    grid = boundary_grid(dataset, int(cfgs[0].output.boundary_resolution))
    data = {k: jnp.asarray(v) for k, v in prepare_data(dataset, grid).items()}
    hparams = stack_hparams(cfgs)
    devices = devices or member_devices(len(cfgs))
    hparams, n_members = _pad_rows(hparams, len(devices), pad_to)
    keys = np.asarray(jax.vmap(jax.random.PRNGKey)(jnp.asarray(hparams["seed"])))
    mesh = Mesh(np.asarray(devices), ("members",))
    member_sharding = NamedSharding(mesh, PartitionSpec("members"))
    replicated = NamedSharding(mesh, PartitionSpec())
    hparams = jax.device_put({k: jnp.asarray(v) for k, v in hparams.items()}, member_sharding)
    keys = jax.device_put(jnp.asarray(keys), member_sharding)
    data = jax.device_put(data, replicated)
    return hparams, keys, data, devices, n_members


class GroupProgram:
    """One group trained in segments of ``segment_periods`` evaluation periods.

    The same computation as :func:`run_group` (bitwise, see ``Segments``), cut into pieces so
    a driver can act between them: save a checkpoint, stream a snapshot to a browser, stop
    early, or resume from a stored state. Three programs are compiled once each (init, one
    segment, finish); the last segment is padded with periods past the budget, which do
    nothing, so every segment shares one program.

    ``state`` is the member-stacked training state (device arrays); ``next_period`` the first
    period not yet run. ``curves``/``confusions`` accumulate on the host.
    """

    def __init__(self, cfgs: Sequence[DictConfig], *, segment_periods: int, dataset: Dataset | None = None, pad_to: int = 0):
        self.cfgs = list(cfgs)
        self.dataset = dataset or dataset_for(self.cfgs[0])
        self.segments: Segments = make_segments(self.cfgs[0], self.dataset)
        self.budget = self.segments.budget
        self.num_periods = self.segments.num_periods
        self.segment_periods = max(1, min(int(segment_periods), self.num_periods))
        self.hparams, self.keys, self.data, self.devices, self.n_members = _member_inputs(self.cfgs, self.dataset, pad_to)
        seg = self.segments
        self._init = jax.jit(jax.vmap(seg.init, in_axes=(0, 0, None)))
        self._advance = jax.jit(jax.vmap(seg.advance, in_axes=(0, 0, 0, None, None)))
        self._finish = jax.jit(jax.vmap(seg.finish, in_axes=(0, 0, 0, None, 0, 0)))
        self._compiled = None
        self.state = None
        self.next_period = 0
        self.curves: list = []
        self.confusions: list = []
        self.compile_s = 0.0
        self.run_s = 0.0

    @property
    def done(self) -> bool:
        return self.next_period >= self.num_periods

    def compile(self) -> None:
        """Compile the init and segment programs (once; timed as ``compile_s``)."""
        if self._compiled is not None:
            return
        cache_key = self._cache_key()
        if cache_key in _SEGMENT_COMPILED:
            self._compiled = _SEGMENT_COMPILED[cache_key]
            return
        events.phase("compiling")
        t0 = time.perf_counter()
        TRACE_COUNT["n"] += 1
        args = (self.hparams, self.keys, self.data)
        init = self._init.lower(*args).compile()
        state = jax.eval_shape(self._init, *args)
        periods = jax.ShapeDtypeStruct((self.segment_periods,), jnp.int32)
        advance = self._advance.lower(state, self.hparams, self.keys, self.data, periods).compile()
        self._compiled = _SEGMENT_COMPILED[cache_key] = [init, advance, None]
        self.compile_s += time.perf_counter() - t0

    def _cache_key(self) -> tuple:
        return (group_key(self.cfgs[0]), len(self.keys), self.segment_periods, tuple(d.id for d in self.devices))

    def field(self) -> np.ndarray | None:
        """The model's field on the decision-boundary grid now, ``[members, resolution²]``
        (``finish``'s ``boundary``: class-1 minus class-0 probability, or the prediction), or
        None when the data set has no grid. Compiled once per structure."""
        if "x_grid" not in self.data:
            return None
        if self.state is None:
            self.start()
        if self._compiled[2] is None:
            no_curves = jnp.zeros((1, 1, 1))  # finish's confusion input; unused for the field

            def field(state, hparams, key, data):
                return self.segments.finish(state, hparams, key, data, {}, no_curves)["boundary"]

            fn = jax.jit(jax.vmap(field, in_axes=(0, 0, 0, None)))
            self._compiled[2] = fn.lower(self.state, self.hparams, self.keys, self.data).compile()
        out = self._compiled[2](self.state, self.hparams, self.keys, self.data)
        return np.asarray(jax.device_get(out))[: self.n_members]

    def start(self) -> None:
        """Fresh parameters and optimizer state for every member (period 0 not yet run)."""
        self.compile()
        self.state = jax.block_until_ready(self._compiled[0](self.hparams, self.keys, self.data))
        self.next_period, self.curves, self.confusions = 0, [], []

    def restore(self, state, next_period: int, curves: dict, confusions) -> None:
        """Continue from a stored state (host arrays, member-stacked) after ``next_period - 1``."""
        self.compile()
        # Every state leaf is member-stacked, laid out like the member-sharded hparams.
        members = next(iter(self.hparams.values())).sharding
        self.state = jax.device_put(state, members)
        self.next_period = int(next_period)
        self.curves = [dict(curves)] if curves else []
        self.confusions = [np.asarray(confusions)] if confusions is not None and len(confusions) else []

    def step(self) -> None:
        """Run the next segment (no-op when done)."""
        if self.done:
            return
        if self.state is None:
            self.start()
        first = self.next_period
        periods = jnp.arange(first, first + self.segment_periods, dtype=jnp.int32)
        t0 = time.perf_counter()
        state, (curves, confusions) = self._compiled[1](self.state, self.hparams, self.keys, self.data, periods)
        state = jax.block_until_ready(state)
        self.run_s += time.perf_counter() - t0
        keep = min(self.segment_periods, self.num_periods - first)  # drop periods past the budget
        host = jax.tree_util.tree_map(lambda a: np.asarray(a)[:, :keep], jax.device_get((curves, confusions)))
        self.state = state
        self.curves.append(host[0])
        self.confusions.append(host[1])
        self.next_period = first + keep

    def set_numbers(self, cfgs: Sequence[DictConfig]) -> None:
        """Give the members new dynamic numbers (learning rate, penalty rates, ...: the
        hparams) from the next segment on, without compiling: the compiled segment takes
        them as arguments, so new arrays of the same shapes and shardings reuse it.

        ``cfgs`` must be this group's members, one each, in order, with the same seeds
        (the parameters in ``state`` were drawn from them); raises ValueError otherwise.
        """
        cfgs = list(cfgs)
        if len(cfgs) != len(self.cfgs) or any(group_key(c) != group_key(self.cfgs[0]) for c in cfgs):
            raise ValueError("set_numbers needs one config per member, all of this program's group")
        hparams = stack_hparams(cfgs)
        for name in ("seed", "order_seed"):
            if not np.array_equal(hparams[name], stack_hparams(self.cfgs)[name]):
                raise ValueError(f"set_numbers cannot change the members' {name}: their state was drawn from it")
        hparams, _ = _pad_rows(hparams, len(self.devices), len(self.keys))
        self.hparams = {k: jax.device_put(jnp.asarray(v), self.hparams[k].sharding) for k, v in hparams.items()}
        self.cfgs = cfgs

    def curves_so_far(self) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Curves ``{name: [members, periods]}`` and confusions ``[members, periods, C, C]`` so far."""
        if not self.curves:
            return {}, np.zeros((len(self.cfgs), 0))
        names = self.curves[0].keys()
        curves = {k: np.concatenate([c[k] for c in self.curves], axis=1) for k in names}
        return curves, np.concatenate(self.confusions, axis=1)

    def finish(self) -> GroupRun:
        """Run what is left and return the same outputs as :func:`run_group`."""
        while not self.done:
            self.step()
        curves, confusions = self.curves_so_far()
        out = self._finish(self.state, self.hparams, self.keys, self.data, curves, confusions)
        host = jax.tree_util.tree_map(np.asarray, jax.device_get(out))
        outputs = [jax.tree_util.tree_map(lambda a, i=i: a[i], host) for i in range(self.n_members)]
        return GroupRun(outputs, self.budget, self.dataset, self.compile_s, self.run_s, len(self.devices), True)
