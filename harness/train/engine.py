"""Train one compile group: ``jit(vmap(...))`` over its members, one compiled path.

This is the only way anything trains. A group's run is cut into segments of evaluation
periods (``harness.train.loop.Segments``: init, advance, finish); a :class:`GroupProgram`
compiles the three once per structure and steps through the segments, so a driver can act
between them (save a checkpoint, stream to a browser, resume). :func:`run_group` is that
program with one segment covering the whole run: a single ``harness-train`` run is a group
of one, the fused launcher hands whole groups (or chunks of them) to it, checkpointed groups
and the playground use shorter segments. One cache holds the compiled programs of a process.
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
from harness.train.loop import Budget, Segments, make_budget, make_segments, prepare_data

WHOLE = 0  # segment_periods meaning "every period in one segment" (run_group)
# XLA options of the programs that run once per group (init, finish, the playground's field):
# codegen effort buys them nothing, and LLVM's level-1 pipeline compiles them 2-4x faster with
# bitwise the same outputs (scripts/bench.py's compile rows; tests/test_reference_results.py
# pins the bits). The segment program, which does the training, keeps XLA's default: level 1
# changed a GRU's results in the last bits and ran it 15% slower.
ONCE = {"xla_backend_optimization_level": 1}

# Counts how often a program is traced and compiled (a test pins "one compilation per group").
TRACE_COUNT = {"n": 0}
# Compiled programs of this process by (group key, member count, segment length, devices),
# as futures of :class:`Program`: a second chunk of the same group, the playground's Reset,
# or new seeds or learning rates reuse the executables instead of compiling again, and a
# program compiling in the background (precompile) is waited for rather than compiled twice.
_COMPILED: dict[tuple, Future] = {}
_USED: set[tuple] = set()  # programs a group has run with (the first one reports the compile)
_COMPILE_LOCK = threading.Lock()
_POOL: ThreadPoolExecutor | None = None


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


@dataclasses.dataclass
class Program:
    """The compiled executables of one structure (group key, padded members, segment
    length, devices): ``init``, ``advance`` (one segment) and ``finish``, and on first use
    the decision-boundary ``field`` (the playground's snapshots)."""

    segments: Segments
    init: Any
    advance: Any
    finish: Any
    segment_periods: int
    compile_s: float
    # Per program ("init", "segment", "finish"): seconds to trace and lower, and to compile
    # (what scripts/profile_compile.py reports).
    phases: dict = dataclasses.field(default_factory=dict)
    field: Any = None


# A group is split over devices only where each gets this many members: from 8 members on, two
# CPU devices cut the run phase (MLP, CNN, GRU); at 2-4 they changed nothing measurable
# (scripts/profile_devices.py, docs/benchmarks.md), and an unsplit group keeps the same bits on
# any device count.
MIN_MEMBERS_PER_DEVICE = 4


def member_devices(num_members: int) -> list:
    """Devices the member axis is sharded over: as many local devices as get
    :data:`MIN_MEMBERS_PER_DEVICE` members each, at least one."""
    devices = jax.local_devices()
    return devices[: max(1, min(len(devices), num_members // MIN_MEMBERS_PER_DEVICE))]


def _pad_rows(tree: dict[str, np.ndarray], multiple: int, at_least: int = 0) -> tuple[dict[str, np.ndarray], int]:
    """Repeat the last member so there are at least ``at_least`` members and the count
    divides evenly over devices; padded members' outputs are dropped."""
    n = len(next(iter(tree.values())))
    padded = math.ceil(max(n, at_least) / multiple) * multiple
    if padded == n:
        return tree, n
    return {k: np.concatenate([v, np.repeat(v[-1:], padded - n, axis=0)]) for k, v in tree.items()}, n


def _segment_periods(cfg0: DictConfig, dataset: Dataset, segment_periods: int) -> tuple[int, int]:
    """(periods of one segment, periods of the whole run) of a group: ``WHOLE`` or any
    length past the run is the whole run."""
    total = make_budget(cfg0.train, len(dataset.x_train)).num_evals + 1
    if segment_periods == WHOLE:
        return total, total
    return max(1, min(int(segment_periods), total)), total


def _program_key(cfgs: Sequence[DictConfig], pad_to: int, segment_periods: int) -> tuple[tuple, int, list]:
    """(cache key, padded member count, devices) of the program that trains ``cfgs``."""
    # By the padded count: every chunk of a group (padded to its largest) gets one program.
    devices = member_devices(max(len(cfgs), pad_to))
    padded = math.ceil(max(len(cfgs), pad_to) / len(devices)) * len(devices)
    return (group_key(cfgs[0]), padded, segment_periods, tuple(d.id for d in devices)), padded, devices


def _compile_program(cfg0: DictConfig, dataset: Dataset, padded: int, devices: list, segment_periods: int) -> Program:
    """Trace, lower and compile a group's init, segment and finish programs for ``padded``
    members (inputs of the right shapes and shardings: the first member repeated)."""
    t0 = time.perf_counter()
    TRACE_COUNT["n"] += 1
    hparams, keys, data, _, _ = _member_inputs([cfg0], dataset, padded, devices=devices)
    segments = make_segments(cfg0, dataset)
    # Every state leaf and curve is member-stacked: pinned to the members' sharding, so the
    # state one program returns is what the next was compiled for (with several devices the
    # compiler would otherwise pick other layouts, and the next call refuses the state).
    members = next(iter(hparams.values())).sharding
    phases: dict[str, dict[str, float]] = {}

    def build(name, fn, args, options=None):
        t1 = time.perf_counter()
        lowered = fn.lower(*args)
        t2 = time.perf_counter()
        compiled = lowered.compile(options)
        phases[name] = {"lower_s": t2 - t1, "compile_s": time.perf_counter() - t2}
        return compiled

    init = build("init", jax.jit(jax.vmap(segments.init, in_axes=(0, 0, None)), out_shardings=members),
                 (hparams, keys, data), ONCE)
    state = init.out_info
    periods = jax.ShapeDtypeStruct((segment_periods,), jnp.int32)
    advance = build("segment", jax.jit(jax.vmap(segments.advance, in_axes=(0, 0, 0, None, None)),
                                       out_shardings=members), (state, hparams, keys, data, periods))
    # finish takes the curves of every period: a segment's, with the whole run's period count.
    whole = segments.num_periods
    curves, confusions = jax.tree_util.tree_map(
        lambda s: jax.ShapeDtypeStruct((s.shape[0], whole) + s.shape[2:], s.dtype, sharding=s.sharding),
        advance.out_info[1])
    finish = build("finish", jax.jit(jax.vmap(segments.finish, in_axes=(0, 0, 0, None, 0, 0))),
                   (state, hparams, keys, data, curves, confusions), ONCE)
    return Program(segments, init, advance, finish, segment_periods, time.perf_counter() - t0, phases)


def _program(cfgs: Sequence[DictConfig], dataset: Dataset, pad_to: int, segment_periods: int, *,
             background: bool) -> tuple[Future, tuple]:
    """The (future of the) compiled program for ``cfgs``: from the cache, from a compile in
    flight, or started now (inline, or on the background compile thread)."""
    periods, _ = _segment_periods(cfgs[0], dataset, segment_periods)
    key, padded, devices = _program_key(cfgs, pad_to, periods)
    with _COMPILE_LOCK:
        future = _COMPILED.get(key)
        if future is not None:
            return future, key
        future = Future()
        _COMPILED[key] = future

    def fill() -> None:
        try:
            future.set_result(_compile_program(cfgs[0], dataset, padded, devices, periods))
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


def precompile(cfgs: Sequence[DictConfig], *, dataset: Dataset | None = None, pad_to: int = 0,
               segment_periods: int = WHOLE) -> None:
    """Start compiling the program of a group that will run next, on a background thread.

    XLA compiles with the GIL released, so this overlaps with whatever the caller does
    meanwhile (running or storing the current group, or compiling it): on a machine with
    idle cores, a sweep's compile time is hidden behind its other work. A no-op when the
    program is compiled or compiling already; the group's :class:`GroupProgram` (or
    :func:`run_group`) picks it up.
    """
    _program(cfgs, dataset or dataset_for(cfgs[0]), pad_to, segment_periods, background=True)


def run_group(cfgs: Sequence[DictConfig], *, dataset: Dataset | None = None, pad_to: int = 0) -> GroupRun:
    """Train every config of one compile group together and return per-member outputs.

    All ``cfgs`` must share their static settings (see :mod:`harness.train.hparams`); the first
    one defines the program. The group's :class:`GroupProgram` with one segment: compile and
    run times are measured separately (see :class:`GroupRun`). ``pad_to`` pads the member axis
    (repeating the last member) so chunks of one group share a program.
    """
    return GroupProgram(cfgs, segment_periods=WHOLE, dataset=dataset, pad_to=pad_to).finish()


def _member_inputs(cfgs: Sequence[DictConfig], dataset: Dataset, pad_to: int, devices: list | None = None):
    """Device-placed (hparams, keys, data, devices, n_members) of a group, as run_group uses."""
    grid = boundary_grid(dataset, int(cfgs[0].output.boundary_resolution))
    data = {k: jnp.asarray(v) for k, v in prepare_data(dataset, grid).items()}
    hparams = stack_hparams(cfgs)
    devices = devices or member_devices(max(len(cfgs), pad_to))
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
    """One group trained in segments of ``segment_periods`` evaluation periods (``WHOLE``:
    one segment, as :func:`run_group`).

    Cutting the run changes nothing, bit for bit (see ``Segments``): a driver can act between
    segments (save a checkpoint, stream a snapshot to a browser, stop early, or resume from a
    stored state). The :class:`Program` is compiled once per structure in a process; the last
    segment is padded with periods past the budget, which do nothing, so every segment shares
    one executable.

    ``state`` is the member-stacked training state (device arrays); ``next_period`` the first
    period not yet run. ``curves``/``confusions`` accumulate on the host.
    """

    def __init__(self, cfgs: Sequence[DictConfig], *, segment_periods: int = WHOLE, dataset: Dataset | None = None,
                 pad_to: int = 0):
        self.cfgs = list(cfgs)
        self.dataset = dataset or dataset_for(self.cfgs[0])
        self.budget = make_budget(self.cfgs[0].train, len(self.dataset.x_train))
        self.segment_periods, self.num_periods = _segment_periods(self.cfgs[0], self.dataset, segment_periods)
        self.pad_to = pad_to
        self.hparams, self.keys, self.data, self.devices, self.n_members = _member_inputs(self.cfgs, self.dataset, pad_to)
        self.compiled: Program | None = None
        self.state = None
        self.next_period = 0
        self.curves: list = []
        self.confusions: list = []
        self.compile_s = 0.0  # the program's compile time (first use in this process), else the wait for it
        self.compile_wait_s = 0.0
        self.first_use = False
        self.run_s = 0.0

    @property
    def done(self) -> bool:
        return self.next_period >= self.num_periods

    def compile(self) -> None:
        """Get the compiled program: from the cache, from a background compile in flight
        (:func:`precompile`), or compiled now."""
        if self.compiled is not None:
            return
        t0 = time.perf_counter()
        future, key = _program(self.cfgs, self.dataset, self.pad_to, self.segment_periods, background=False)
        if not future.done():
            events.phase("compiling (started in the background)")
        self.compiled = future.result()
        self.compile_wait_s = time.perf_counter() - t0
        events.phase("training")
        with _COMPILE_LOCK:
            self.first_use = key not in _USED
            _USED.add(key)
        self.compile_s = self.compiled.compile_s if self.first_use else self.compile_wait_s

    def field(self) -> np.ndarray | None:
        """The model's field on the decision-boundary grid now, ``[members, resolution²]``
        (``finish``'s ``boundary``: class-1 minus class-0 probability, or the prediction), or
        None when the data set has no grid. Compiled once per structure."""
        if "x_grid" not in self.data:
            return None
        if self.state is None:
            self.start()
        program = self.compiled
        if program.field is None:
            no_curves = jnp.zeros((1, 1, 1))  # finish's confusion input; unused for the field

            def field(state, hparams, key, data):
                return program.segments.finish(state, hparams, key, data, {}, no_curves)["boundary"]

            fn = jax.jit(jax.vmap(field, in_axes=(0, 0, 0, None)))
            program.field = fn.lower(self.state, self.hparams, self.keys, self.data).compile(ONCE)
        out = program.field(self.state, self.hparams, self.keys, self.data)
        return np.asarray(jax.device_get(out))[: self.n_members]

    def start(self) -> None:
        """Fresh parameters and optimizer state for every member (period 0 not yet run)."""
        self.compile()
        t0 = time.perf_counter()
        self.state = jax.block_until_ready(self.compiled.init(self.hparams, self.keys, self.data))
        self.run_s += time.perf_counter() - t0
        self.next_period, self.curves, self.confusions = 0, [], []

    def restore(self, state, next_period: int, curves: dict, confusions) -> None:
        """Continue from a stored state (host arrays, member-stacked) after ``next_period - 1``."""
        self.compile()
        self.state = jax.device_put(state, self._member_sharding())
        self.next_period = int(next_period)
        self.curves = [dict(curves)] if curves else []
        self.confusions = [np.asarray(confusions)] if confusions is not None and len(confusions) else []

    def _member_sharding(self):
        # Every state leaf and curve is member-stacked, laid out like the member-sharded hparams.
        return next(iter(self.hparams.values())).sharding

    def step(self) -> None:
        """Run the next segment (no-op when done)."""
        if self.done:
            return
        if self.state is None:
            self.start()
        first = self.next_period
        periods = jnp.arange(first, first + self.segment_periods, dtype=jnp.int32)
        t0 = time.perf_counter()
        state, (curves, confusions) = self.compiled.advance(self.state, self.hparams, self.keys, self.data, periods)
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
        if len(self.curves) > 1:  # one piece from then on: a finished run asks once more
            names = self.curves[0].keys()
            self.curves = [{k: np.concatenate([c[k] for c in self.curves], axis=1) for k in names}]
            self.confusions = [np.concatenate(self.confusions, axis=1)]
        return self.curves[0], self.confusions[0]

    def finish(self) -> GroupRun:
        """Run what is left and return every member's outputs (:func:`harness.train.loop.make_train`)."""
        while not self.done:
            self.step()
        curves, confusions = jax.device_put(self.curves_so_far(), self._member_sharding())
        t0 = time.perf_counter()
        out = self.compiled.finish(self.state, self.hparams, self.keys, self.data, curves, confusions)
        host = jax.tree_util.tree_map(np.asarray, jax.device_get(out))
        self.run_s += time.perf_counter() - t0
        outputs = [jax.tree_util.tree_map(lambda a, i=i: a[i], host) for i in range(self.n_members)]
        return GroupRun(outputs, self.budget, self.dataset, self.compile_s, self.run_s, len(self.devices),
                        self.first_use, self.compile_wait_s)
