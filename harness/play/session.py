"""One page's training: every member of every compared value, trained by the harness's engine.

A session's members (compared values x seeds) are split into compile groups as a sweep is
(:func:`harness.train.hparams.plan_groups`): numbers (learning rate, penalty rate, seeds) are
members of one vmapped program; shapes and code (activation, batch size, features) are one
program each. Each group is a :class:`~harness.train.engine.GroupProgram`; the session steps
them in lockstep, a chunk of ``chunk`` epochs at a time (an evaluation period is one epoch),
and turns the state into snapshots: the curves since a given epoch, the latest losses and
each member's decision-boundary field on the Playground square. There is no other training
code: what the page shows is what ``harness-train`` computes.

A program's segment is one epoch (one evaluation period), so the page's Step can train one
epoch, as the Playground's does; a chunk is ``chunk`` segments. Between segments the
Playground's live changes apply: a new learning or regularization rate (new numbers for the
same compiled program, :meth:`~harness.train.engine.GroupProgram.set_numbers`) and a weight
or bias typed into the page (:mod:`harness.play.network`). Each is listed in ``changes``
with the epoch it took effect at: a screen with changes is no longer one ``harness-train``
run of its URL's settings.
"""

from __future__ import annotations

import base64
import itertools
import math
import threading
import time
from typing import Any, Callable

import jax
import numpy as np

from harness.data.playground import FEATURE_NAMES, INPUT_EXTENT
from harness.errors import ConfigError
from harness.play import network, neurons
from harness.play.settings import EPOCHS, Member, Settings, live_change, member_configs
from harness.train import engine
from harness.train.engine import GroupProgram
from harness.train.hparams import plan_groups

_IDS = itertools.count(1)
CURVES = ("train/loss", "test/loss")


def _finite(values) -> list:
    """Floats for JSON: non-finite values (a diverged member) become null."""
    return [round(float(v), 6) if math.isfinite(v) else None for v in np.asarray(values, np.float64).ravel()]


def encode_field(field: np.ndarray) -> str:
    """A field in [-1, 1] (clipped: a regression prediction may leave it) as base64 bytes 0..255."""
    scaled = np.round((np.clip(np.nan_to_num(field, nan=0.0), -1.0, 1.0) + 1.0) * 127.5)
    return base64.b64encode(scaled.astype(np.uint8).tobytes()).decode("ascii")


class Session:
    """The training behind one page. Thread-safe: a lock serialises steps, changes and snapshots."""

    def __init__(self, settings: Settings, chunk: int):
        self.id = f"s{next(_IDS)}"
        self.settings = settings
        self.chunk = int(chunk)
        self.members: list[Member] = member_configs(settings)
        cfgs = [m.cfg for m in self.members]
        self.groups: list[tuple[GroupProgram, list[int]]] = [
            (GroupProgram([cfgs[i] for i in g.members], segment_periods=1), list(g.members))
            for g in plan_groups(cfgs)
        ]
        self.dataset = self.groups[0][0].dataset
        self.changes: list[dict[str, Any]] = []  # live changes: {"epoch", "change"}
        self.focus: str | None = None  # the node whose field the big heatmap shows (None: the output)
        # The Playground's loss per group and period: [members, 2] (train, test) each.
        self.playground: list[list[np.ndarray]] = [[] for _ in self.groups]
        self.lock = threading.Lock()
        self._pending: list[Callable[[], None]] = []  # changes waiting for the next segment
        self._pending_lock = threading.Lock()
        self.used = time.monotonic()
        t0 = time.perf_counter()
        for program, _ in self.groups:
            program.start()  # compiles (once per structure in this process) and initialises
        self.start_s = time.perf_counter() - t0

    @property
    def periods(self) -> int:
        """Evaluation periods run so far (period 0 is the initial evaluation)."""
        return self.groups[0][0].next_period

    @property
    def epoch(self) -> int:
        """Epochs trained so far."""
        return max(self.periods - 1, 0)

    @property
    def done(self) -> bool:
        return all(p.done for p, _ in self.groups)

    def step(self, epochs: int | None = None) -> None:
        """Train one chunk of epochs (``chunk`` periods), or ``epochs`` epochs (the initial
        evaluation, period 0, comes first if not run yet); a no-op once the budget is spent.

        The lock is taken per segment, and changes waiting for it are applied first: a
        change made while a chunk trains takes effect at the next segment (epoch)."""
        with self.lock:
            periods = self.chunk if epochs is None else int(epochs) + (self.periods == 0)
        for _ in range(periods):
            with self.lock:
                self._apply_pending()
                for g, (program, _) in enumerate(self.groups):
                    if program.done:
                        continue
                    program.step()
                    self.playground[g].append(self._playground_loss(program))
                self.used = time.monotonic()

    def _playground_loss(self, program: GroupProgram) -> np.ndarray:
        """The Playground's (train, test) loss of every member now: [members, 2]."""
        losses = network.playground_loss_program(program.cfgs[0], self.dataset)(program.state["params"])
        return np.asarray(jax.device_get(losses))[: program.n_members]

    # --- live changes (between segments) --------------------------------------------------

    def _later(self, apply: Callable[[], None]) -> None:
        """Apply a change before the next segment: now if nothing trains, else as soon as
        the training thread finishes its segment (whichever takes the lock first)."""
        with self._pending_lock:
            self._pending.append(apply)
        with self.lock:
            self._apply_pending()

    def _apply_pending(self) -> None:
        """Run the waiting changes, in order (the caller holds ``lock``)."""
        with self._pending_lock:
            pending, self._pending = self._pending, []
        for apply in pending:
            apply()

    def change(self, update: dict[str, Any]) -> None:
        """Set learning or regularization rates from the next segment on (no recompile).
        Raises ConfigError (nothing changes) for a bad value or a setting that needs a restart."""
        with self.lock:
            base = self.settings
        new = live_change(base, update)
        members = member_configs(new)

        def apply() -> None:
            for program, idx in self.groups:
                program.set_numbers([members[i].cfg for i in idx])
            for name in update:
                old, value = getattr(self.settings, name), getattr(new, name)
                if old != value:
                    self.changes.append({"epoch": self.epoch, "change": f"{name} {old:g} -> {value:g}"})
            self.settings, self.members = new, members

        self._later(apply)

    def _shown(self) -> tuple[GroupProgram, int]:
        """The program and row of the network on screen (member 0); only one is on screen
        when not comparing."""
        if self.settings.compare != "none":
            raise ConfigError("compare", self.settings.compare,
                              "none (weights and neurons are those of the one network on screen)")
        program, idx = next((p, idx) for p, idx in self.groups if 0 in idx)
        return program, idx.index(0)

    def edit(self, layer: Any, dest: Any, source: Any, value: Any) -> None:
        """Set one weight (``source`` given) or bias of the network on screen, in the
        Playground's form (:func:`harness.play.network.edit`), from the next segment on."""
        value = network.finite_value(value)
        with self.lock:
            program, row = self._shown()
            _, loss = network.model_of(program.cfgs[0], self.dataset)
            inputs = self.settings.features
            network.edit(jax.device_get(program.state["params"]), loss, row, layer, dest, source, value, inputs)  # checks

        def apply() -> None:
            old = program.state["params"]
            new, what = network.edit(jax.device_get(old), loss, row, layer, dest, source, value, inputs)
            params = jax.tree_util.tree_map(lambda a, o: jax.device_put(np.asarray(a, o.dtype), o.sharding), new, old)
            program.state = {**program.state, "params": params}
            self.changes.append({"epoch": self.epoch, "change": what})

        self._later(apply)

    def set_focus(self, node: str | None) -> None:
        """The node whose field the big heatmap shows: an input feature's name,
        ``h<layer>-<unit>`` for a hidden neuron, or None for the output."""
        node = node or None
        with self.lock:
            if node is not None:
                self._node_field(node)  # checks the name
            self.focus = node

    def _node_field(self, node: str) -> np.ndarray:
        """A node's field at the big heatmap's resolution (see :meth:`set_focus`)."""
        res = int(self.members[0].cfg.output.boundary_resolution)
        if node in FEATURE_NAMES:  # an input (used or not) is the same picture for every network
            return neurons.feature_fields(self.dataset, res)[node]
        program, row = self._shown()
        sizes = list(self.settings.hidden)
        allowed = f"an input feature ({', '.join(FEATURE_NAMES)}) or h<layer>-<unit> for a hidden neuron (0-based)"
        try:
            layer, unit = (int(v) for v in node.removeprefix("h").split("-"))
        except ValueError:
            raise ConfigError("node", node, allowed) from None
        if not node.startswith("h") or not (0 <= layer < len(sizes) and 0 <= unit < sizes[layer]):
            raise ConfigError("node", node, allowed)
        params = jax.tree_util.tree_map(lambda a: a[row], program.state["params"])
        fields = neurons.neuron_fields(program.cfgs[0], self.dataset, params, res)
        return fields[sum(sizes[:layer]) + unit]

    # --- what the page draws ------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        """What does not change while training: settings, members, data points, grid."""
        ds = self.dataset
        points = ds.info.get("points", {})

        def rows(split: str, labels) -> list:
            xy = np.asarray(points.get(split, np.zeros((0, 2))), np.float64)
            return [[round(float(x), 3), round(float(y), 3), round(float(v), 3)] for (x, y), v in zip(xy, labels)]

        res = int(self.members[0].cfg.output.boundary_resolution)
        features = neurons.feature_fields(ds)
        return {
            "id": self.id,
            "settings": self.settings.as_dict(),
            "query": self.settings.query(),
            "problem": self.settings.problem,
            "loss": network.model_of(self.members[0].cfg, ds)[1],  # the loss trained (train.loss, resolved)
            "members": [{"value": m.value, "label": m.label, "seed": m.seed} for m in self.members],
            "values": sorted({m.value: m.label for m in self.members}.items()),
            "groups": len(self.groups),
            "chunk": self.chunk,
            "max_epochs": EPOCHS,
            "resolution": res,
            "extent": list(ds.input_extent or INPUT_EXTENT),
            "points": {"train": rows("train", ds.y_train), "test": rows("test", ds.y_test)},
            "start_s": round(self.start_s, 3),
            "thumb_resolution": neurons.RESOLUTION,
            "feature_fields": {k: encode_field(f) for k, f in features.items()} if features else None,
        }

    def _neurons(self) -> list[str] | None:
        """The first network's hidden neurons as thumbnails (one network on screen only)."""
        if self.settings.compare != "none":
            return None
        program, j = self._shown()
        params = jax.tree_util.tree_map(lambda a: a[j], program.state["params"])
        fields = neurons.neuron_fields(self.members[0].cfg, self.dataset, params)
        return None if fields is None else [encode_field(f) for f in fields]

    def _network(self) -> list[dict[str, list]] | None:
        """The first network's weights and biases as the Playground draws them (one network
        on screen only)."""
        if self.settings.compare != "none":
            return None
        program, j = self._shown()
        _, loss = network.model_of(program.cfgs[0], self.dataset)
        params = jax.device_get(jax.tree_util.tree_map(lambda a: a[j], program.state["params"]))
        return network.weights_view(params, loss)

    def snapshot(self, since: int = 0) -> dict[str, Any]:
        """Curves from period ``since`` on, the latest losses and every member's field."""
        with self.lock:
            n = len(self.members)
            curves = {name: [None] * n for name in CURVES}
            playground = {split: [None] * n for split in ("train", "test")}
            fields: list[str | None] = [None] * n
            diverged = [False] * n
            for g, (program, idx) in enumerate(self.groups):
                got, _ = program.curves_so_far()
                pg = np.stack(self.playground[g], axis=1) if self.playground[g] else np.zeros((len(idx), 0, 2))
                field = program.field()
                flags = np.asarray(program.state["diverged"])[: len(idx)]
                for j, i in enumerate(idx):
                    for name in CURVES:
                        curves[name][i] = _finite(got[name][j, since:]) if name in got else []
                    for s, split in enumerate(("train", "test")):
                        playground[split][i] = _finite(pg[j, since:, s])
                    fields[i] = encode_field(field[j]) if field is not None else None
                    diverged[i] = bool(flags[j])
            focus = None
            if self.focus is not None:
                focus = {"node": self.focus, "field": encode_field(self._node_field(self.focus))}
            self.used = time.monotonic()
            return {
                "id": self.id,
                "epoch": self.epoch,
                "since": int(since),
                "periods": self.periods,
                "done": self.done,
                "curves": {name.split("/")[0]: values for name, values in curves.items()},
                "playground": playground,
                "fields": fields,
                "diverged": diverged,
                "neurons": self._neurons(),
                "network": self._network(),
                "focus": focus,
                "query": self.settings.query(),
                "changes": list(self.changes),
                # Training programs this server process has compiled so far (a live change
                # compiles nothing: the page and its tests read this).
                "compiled": engine.TRACE_COUNT["n"],
            }
