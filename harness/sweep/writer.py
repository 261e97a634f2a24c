"""Plots and W&B runs written off the critical path, from results already stored.

A W&B run costs ~80-120 ms even offline and a run's plots ~0.3-0.7 s, many times a tiny
model's compute. The fused launcher therefore stores each member's ``result.json`` itself
(fast) and hands the folder to a :class:`BackgroundWriter`: a separate process that draws
the plots and writes the W&B runs while the next group computes. Everything it needs is on
disk, so a crash of the writer loses nothing: a rerun logs what has no ``wandb_run_id``
marker yet.
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import warnings
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from harness.config import draws_plots
from harness.report.draw import draw_run

MODES = ("auto", "member", "group", "none")  # hydra.launcher.wandb; auto: see granularity()
# hydra.launcher.wandb=auto writes one W&B run per member up to this many tracked members in
# a launch, one per compile group above. A member run costs 35-80 ms of writer time on two
# cores (docs/benchmarks.md, "extras"), as much as a tiny model's training: at 256 spiral
# members they doubled the sweep (40.3 s against 19.6 s with logger=none). 64 of them cost
# at most ~5 s, less than a cold sweep's start-up and compile alone.
MEMBER_RUNS_LIMIT = 64


def granularity(mode: str, tracked: int, limit: int = MEMBER_RUNS_LIMIT) -> str:
    """The W&B runs a launch writes for ``tracked`` members logged to W&B: ``member`` or
    ``group`` as asked, and for ``auto`` one run per member up to ``limit`` members, one per
    compile group above (``none`` when nothing is tracked)."""
    if mode == "none" or tracked == 0:
        return "none"
    if mode == "auto":
        return "member" if tracked <= limit else "group"
    return mode


def plot_member(run_dir: str | Path, cfg: DictConfig, result: dict[str, Any], *, multirun: bool) -> None:
    """Draw the member's PNGs if its ``output.plots`` asks for them (:func:`harness.config.draws_plots`);
    a plotting failure is a warning, never a lost result."""
    if not draws_plots(cfg.output.plots, multirun):
        return
    try:
        draw_run(run_dir, cfg, result)
    except Exception as exc:  # noqa: BLE001 - plots are a convenience; the record is stored
        warnings.warn(f"plots for {run_dir} failed: {exc}", stacklevel=2)


def track_member(run_dir: str | Path, logger_cfg: DictConfig, result: dict[str, Any],
                 identity: dict[str, Any] | None = None) -> str | None:
    """Log the stored member to W&B (offline by default) unless its logger (the config's
    ``logger`` node) is ``none``; ``identity``: its W&B group, name and tags (default: from
    its overrides alone)."""
    if logger_cfg.name != "wandb":
        return None
    from harness.track.wandb_logger import already_logged, log_run  # wandb: only when logging

    if already_logged(run_dir):
        return None
    return log_run(run_dir, result, logger_cfg, identity=identity)


def write_member_extras(run_dir: str, cfg_container: dict[str, Any], wandb_mode: str,
                        identity: dict[str, Any] | None = None) -> None:
    """Plots, and (``wandb_mode == "member"``) the W&B run, of one stored member
    (``identity``: its W&B group, name and tags, :func:`harness.track.wandb_logger.run_identity`)."""
    from harness import store
    from harness.track.wandb_logger import report_each_problem_once

    report_each_problem_once()  # a sweep: one warning per kind of W&B failure, not one per member
    result = store.read_result(run_dir)
    if result is None:
        return
    store.remove_stale_temps(run_dir)  # plots of a writer killed mid-write: drawn again below
    # Each extra gets a DictConfig of what it reads: one of the whole config costs ~14 ms a
    # member here, a tenth of a member's W&B run, and the W&B run reads only the logger node.
    if draws_plots(cfg_container["output"]["plots"], multirun=True):
        plot_member(run_dir, OmegaConf.create(cfg_container), result, multirun=True)
    if wandb_mode == "member":
        track_member(run_dir, OmegaConf.create(cfg_container["logger"]), result, identity)


def write_group_run(group_dir: str, run_dirs: list[str], logger_container: dict[str, Any], name: str,
                    group: str | None = None) -> None:
    """One W&B run for a whole group: members as a table, their curves as one chart per
    metric (``wandb_mode == "group"``)."""
    from harness import store
    from harness.track.wandb_logger import log_group, report_each_problem_once

    report_each_problem_once()
    stored = [(d, r) for d, r in ((d, store.read_result(d)) for d in run_dirs) if r is not None]
    if stored and logger_container.get("name") == "wandb":
        log_group(group_dir, [r for _, r in stored], OmegaConf.create(logger_container), name=name, group=group,
                  run_dirs=[d for d, _ in stored])


def _die_with_parent() -> None:
    """On Linux, have the kernel SIGKILL this process when the sweep process dies (a W&B run
    half-written by it is replaced by the rerun's); elsewhere the loop's parent check does."""
    import ctypes
    import signal
    import sys

    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass


def _warm_wandb() -> None:
    """Import wandb and start its service now, while the sweep compiles and trains: ~2 s
    (import 1.9 s, service 0.2 s here) that the first W&B run would otherwise add to the tail
    (a group run is queued only once its whole group has trained). A failure here is left to
    that run to report."""
    try:
        import wandb

        wandb.setup()
    except Exception:  # noqa: BLE001 - the run that needs W&B reports its own failure
        pass


def _serve(tasks: "mp.Queue", done: "mp.Queue", parent: int | None = None, wandb: bool = False) -> None:
    """Writer process main loop: run tasks until the ``None`` sentinel, or until the sweep
    process is gone (killed: a rerun writes what is left, so an orphan must not race it).
    ``wandb``: W&B runs will be written (:func:`_warm_wandb` first)."""
    import os
    import signal

    _die_with_parent()
    # Ctrl-C reaches the whole process group: the sweep process answers it (one line, exit
    # 130); this one stops with it, without a traceback of its own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    warnings.simplefilter("default")
    if wandb:
        _warm_wandb()
    while True:
        if parent is not None and os.getppid() != parent:
            break
        try:
            task = tasks.get(timeout=1.0)
        except queue.Empty:
            continue
        if task is None:
            break
        kind, args = task
        try:
            if kind == "member":
                write_member_extras(*args)
            else:
                write_group_run(*args)
        except Exception as exc:  # noqa: BLE001 - extras never stop the sweep
            warnings.warn(f"writing extras for {args[0]} failed: {exc}", stacklevel=1)
        done.put(1)


class BackgroundWriter:
    """Processes that write plots and W&B runs for stored results, each task once.

    One process while the sweep trains (the other cores compute). When the sweep has trained
    everything and many tasks are still queued (:meth:`close`), up to one more process per
    idle core joins: W&B runs are independent, so the tail of a large sweep is written on
    every core (a 256-member spiral sweep spent most of its wall time writing W&B runs after
    training, about 50 ms each, one at a time).
    """

    TAIL_TASKS = 16  # tasks still queued at close() that make extra processes worth starting

    def __init__(self, wandb: bool = False) -> None:
        """``wandb``: the tasks will write W&B runs (each process starts W&B's service first)."""
        import os

        self._ctx = mp.get_context("spawn")  # never fork a process that has started JAX
        self.tasks: mp.Queue = self._ctx.Queue()
        self.done: mp.Queue = self._ctx.Queue()
        self._parent = os.getpid()
        self._wandb = wandb
        self.processes: list = []
        self._start_process()
        self.submitted = 0
        self.finished = 0

    def _start_process(self) -> None:
        process = self._ctx.Process(target=_serve, args=(self.tasks, self.done, self._parent, self._wandb),
                                    daemon=True)
        process.start()
        self.processes.append(process)

    @property
    def process(self):
        """The first writer process (the one that runs from the start)."""
        return self.processes[0]

    def member(self, run_dir: str | Path, cfg_container: dict[str, Any], wandb_mode: str,
               identity: dict[str, Any] | None = None) -> None:
        """Queue a member's plots and W&B run."""
        self.tasks.put(("member", (str(run_dir), cfg_container, wandb_mode, identity)))
        self.submitted += 1

    def group(self, group_dir: str | Path, run_dirs: list[str], logger_container: dict[str, Any], name: str,
              group: str | None = None) -> None:
        """Queue a group's W&B run."""
        self.tasks.put(("group", (str(group_dir), [str(d) for d in run_dirs], logger_container, name, group)))
        self.submitted += 1

    def close(self, on_progress=None, cores: int | None = None) -> None:
        """Finish every queued task (on up to ``cores`` processes, default every core), then
        stop the processes."""
        import os

        self._drain()
        cores = cores or os.cpu_count() or 1
        left = self.submitted - self.finished
        while left >= self.TAIL_TASKS and len(self.processes) < cores:
            self._start_process()
            left -= self.TAIL_TASKS
        for _ in self.processes:
            self.tasks.put(None)  # after every task: each process stops once the queue is empty
        while self.finished < self.submitted and any(p.is_alive() for p in self.processes):
            try:
                self.finished += self.done.get(timeout=0.5)
                if on_progress:
                    on_progress(self.finished, self.submitted)
            except queue.Empty:
                continue
        for process in self.processes:
            process.join(timeout=30)

    def _drain(self) -> None:
        """Count the tasks finished so far (without waiting)."""
        while True:
            try:
                self.finished += self.done.get_nowait()
            except queue.Empty:
                return
