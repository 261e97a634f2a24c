"""A job's W&B run while it trains: its curves logged segment by segment (live logging).

A job Hydra runs on its own (a single ``harness-train`` run, a job of ``hydra/launcher=basic``
or ``hydra/launcher=slurm``, a run a ``wandb agent`` starts) trains in about
:data:`harness.train.checkpoint.LIVE_SEGMENTS` segments (or its checkpoint segments). A
:class:`LiveRun` listens to :mod:`harness.train.events`: after each segment it logs the new
evaluations to the job's W&B run at their optimizer steps, so W&B's charts and wall-clock axes
follow the training, and a W&B sweep's early termination (``early_terminate``) sees the metric
as it comes. Once the record is stored, :meth:`LiveRun.finish` adds what the record adds
(media, summary, the ``params.npz`` artifact) and finishes the run.

The run is the one :func:`harness.track.wandb_logger.log_run` would write from the stored record
afterwards (same id, config, history rows, summary and media), only written while it happened.
The failure policy is W&B's everywhere here: one TrackingWarning, the result unaffected; a
run that failed while live is closed, and the job is logged from its stored record afterwards
as a fused sweep's members are (:meth:`LiveRun.finish` returns None).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from harness.track import wandb_logger as wl
from harness.train import events
from harness.train.hparams import config_hash


class LiveRun:
    """Member ``member`` of the group training now, streamed into the W&B run of ``run_dir``.

    Use as a context manager around the training (it listens while inside), then call
    :meth:`finish` with the stored record. Opened at the first segment, when the budget (a
    part of the run's config) is known.
    """

    def __init__(self, run_dir: str | Path, cfg: DictConfig, identity: dict[str, Any] | None = None,
                 member: int = 0):
        self.run_dir = Path(run_dir)
        self.cfg = cfg
        self.identity = identity or {}
        self.member = member
        self.run = None
        self.failed = False
        self.opened = True  # False once wandb.init failed: the record is not logged again either
        self.done = False
        self.logged = 0  # evaluation periods already in the W&B run
        self.last_step: int | None = None
        self.increasing = True

    def __enter__(self) -> "LiveRun":
        events.listen(self)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        events.unlisten(self)
        if exc_type is not None and self.run is not None:  # training failed: no record follows
            wl.finish_failed(self.run)
            self.run = None

    def phase(self, text: str) -> None:
        """Compiling or training: nothing to log."""

    def program_segment(self, program) -> None:
        """A segment is trained: log its evaluations (and any restored from a checkpoint
        before it) as history rows."""
        if self.failed:
            return
        try:
            if self.run is None:
                self._open(program.budget)
            rows = self._new_rows(program)
            wl.log_rows(self.run, rows, self.increasing)
            if rows:
                self.last_step = rows[-1]["step"]
        except Exception as error:  # noqa: BLE001 - the policy: any W&B failure is one warning
            self._fail(error)

    def finish(self, result: dict[str, Any]) -> str | None:
        """Close the run with the stored ``result``'s media, summary and artifact; return its
        id. A run that failed after it opened is logged from the record instead
        (:func:`harness.track.wandb_logger.log_run`, the same run id); one that could not open
        is not tried again (that would only repeat the warning). None when nothing was logged."""
        if self.run is None:
            if self.opened and not self.done:  # failed half-way, or never heard of a segment
                return wl.log_run(self.run_dir, result, self.cfg.logger, identity=self.identity)
            return None
        run, self.run = self.run, None
        try:
            with wl.table_temp_dirs_removed():
                run_id = wl.close_run(run, self.run_dir, result, images=True,
                                      last_step=self.last_step if self.increasing else None)
        except Exception as error:  # noqa: BLE001 - close_run finished the run as failed
            wl.warn_failure("run (live)", self.run_dir, error)
            return None
        self.done = True
        return run_id

    def _open(self, budget) -> None:
        steps = budget.eval_steps()
        self.increasing = bool(np.all(np.diff(steps) > 0))
        config = wl.run_config(OmegaConf.to_container(self.cfg, resolve=True), budget.as_dict())
        try:
            self.run = wl.open_run(self.run_dir, config, config_hash(self.cfg), self.cfg.logger,
                                   identity=self.identity)
        except Exception:
            self.opened = False
            raise
        wl.define_step_axis(self.run)

    def _new_rows(self, program) -> list[dict[str, Any]]:
        """Rows of the periods trained since the last call, shaped as ``curves.csv``'s: ``step``
        first, then the curves by name, as Python numbers."""
        end = program.next_period
        if end <= self.logged:
            return []
        pieces = program.curves  # one per segment since start (or restore): [members, periods]
        names = sorted(pieces[0])
        member = {k: np.concatenate([np.asarray(p[k])[self.member] for p in pieces]) for k in names}
        first = end - len(member[names[0]])  # the period the pieces start at
        steps = program.budget.eval_steps()
        rows = []
        for period in range(max(self.logged, first), end):
            row = {"step": int(steps[period])}
            row.update({k: float(member[k][period - first]) for k in names})
            rows.append(row)
        self.logged = end
        return rows

    def _fail(self, error: BaseException) -> None:
        self.failed = True
        wl.warn_failure("run (live)", self.run_dir, error)
        if self.run is not None:
            wl.finish_failed(self.run)
            self.run = None


def live_run(run_dir: str | Path, cfg: DictConfig, identity: dict[str, Any] | None = None) -> LiveRun | None:
    """The job's :class:`LiveRun`, or None when it logs to no W&B run (``logger=none``, or
    W&B's disabled mode) or its folder already holds a finished one."""
    if not wl.tracking_enabled(cfg.logger) or wl.already_logged(run_dir):
        return None
    return LiveRun(run_dir, cfg, identity)
