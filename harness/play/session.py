"""One page's training: every member of every compared value, trained by the harness's engine.

A session's members (compared values x seeds) are split into compile groups as a sweep is
(:func:`harness.sweep.plan.plan_groups`): numbers (learning rate, penalty rate, seeds) are
members of one vmapped program; shapes and code (activation, batch size, features) are one
program each. Each group is a :class:`~harness.sweep.engine.GroupProgram`; the session steps
them in lockstep, a chunk of ``chunk`` epochs at a time (an evaluation period is one epoch),
and turns the state into snapshots: the curves since a given epoch, the latest losses and
each member's decision-boundary field on the Playground square. There is no other training
code: what the page shows is what ``harness-train`` computes.
"""

from __future__ import annotations

import base64
import itertools
import math
import threading
import time
from typing import Any

import jax
import numpy as np

from harness.play import neurons
from harness.play.settings import EPOCHS, Member, Settings, member_configs
from harness.sweep.engine import GroupProgram
from harness.sweep.plan import plan_groups

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
    """The training behind one page. Thread-safe: a lock serialises steps and snapshots."""

    def __init__(self, settings: Settings, chunk: int):
        self.id = f"s{next(_IDS)}"
        self.settings = settings
        self.chunk = int(chunk)
        self.members: list[Member] = member_configs(settings)
        cfgs = [m.cfg for m in self.members]
        self.groups: list[tuple[GroupProgram, list[int]]] = [
            (GroupProgram([cfgs[i] for i in g.members], segment_periods=self.chunk), list(g.members))
            for g in plan_groups(cfgs)
        ]
        self.dataset = self.groups[0][0].dataset
        self.lock = threading.Lock()
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

    def step(self) -> None:
        """Train one chunk of epochs, every group (no-op once the budget is spent)."""
        with self.lock:
            for program, _ in self.groups:
                program.step()
            self.used = time.monotonic()

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
            "members": [{"value": m.value, "label": m.label, "seed": m.seed} for m in self.members],
            "values": sorted({m.value: m.label for m in self.members}.items()),
            "groups": len(self.groups),
            "chunk": self.chunk,
            "max_epochs": EPOCHS,
            "resolution": res,
            "extent": list(ds.input_extent or (-6.0, 6.0)),
            "points": {"train": rows("train", ds.y_train), "test": rows("test", ds.y_test)},
            "start_s": round(self.start_s, 3),
            "thumb_resolution": neurons.RESOLUTION,
            "feature_fields": {k: encode_field(f) for k, f in features.items()} if features else None,
        }

    def _neurons(self) -> list[str] | None:
        """The first network's hidden neurons as thumbnails (one network on screen only)."""
        if self.settings.compare != "none":
            return None
        program, idx = next((p, idx) for p, idx in self.groups if 0 in idx)
        j = idx.index(0)
        params = jax.tree_util.tree_map(lambda a: a[j], program.state["params"])
        fields = neurons.neuron_fields(self.members[0].cfg, self.dataset, params)
        return None if fields is None else [encode_field(f) for f in fields]

    def snapshot(self, since: int = 0) -> dict[str, Any]:
        """Curves from period ``since`` on, the latest losses and every member's field."""
        with self.lock:
            n = len(self.members)
            curves = {name: [None] * n for name in CURVES}
            fields: list[str | None] = [None] * n
            diverged = [False] * n
            for program, idx in self.groups:
                got, _ = program.curves_so_far()
                field = program.field()
                flags = np.asarray(program.state["diverged"])[: len(idx)]
                for j, i in enumerate(idx):
                    for name in CURVES:
                        curves[name][i] = _finite(got[name][j, since:]) if name in got else []
                    fields[i] = encode_field(field[j]) if field is not None else None
                    diverged[i] = bool(flags[j])
            self.used = time.monotonic()
            return {
                "id": self.id,
                "epoch": self.epoch,
                "since": int(since),
                "periods": self.periods,
                "done": self.done,
                "curves": {name.split("/")[0]: values for name, values in curves.items()},
                "fields": fields,
                "diverged": diverged,
                "neurons": self._neurons(),
            }
