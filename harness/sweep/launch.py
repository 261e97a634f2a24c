"""One launch of the fused launcher, whichever backend trains it: resume, plan, store, extras.

:class:`Launch` holds what a local and a SLURM launch share: skip the jobs whose folder
holds a result of their config (resume), plan the rest into compile groups and chunks that
fit in memory, turn failures into failed records, queue plots and W&B runs, and end with a
summary and the sweep's best settings. :class:`harness.sweep.local.LocalLaunch` trains the
chunks in this process; :class:`harness.sweep.slurm.SlurmLaunch` submits each as a SLURM job.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from pathlib import Path
from typing import Any, Callable

from hydra.core.utils import JobReturn
from omegaconf import DictConfig, OmegaConf

from harness import store
from harness.config import draws_plots, resolved
from harness.data.cache import dataset_for
from harness.sweep import hydra_job
from harness.sweep.compose import ComposedJob as Job
from harness.sweep.writer import granularity, write_group_run, write_member_extras
from harness.track.wandb_logger import run_identity
from harness.train.hparams import plan_groups

# What imports JAX (the job lifecycle, the engine, memory estimates, results) is imported
# inside the methods that use it: Hydra imports the launcher, and so this module, whenever it
# discovers plugins (every Hydra app, --help), before harness.runtime.setup_jax has run.

log = logging.getLogger("harness.fused")
GROUP_RUNS_DIR = "wandb-groups"  # hydra.launcher.wandb=group: <sweep>/wandb-groups/<group key>/


@dataclasses.dataclass
class Chunk:
    """A piece of a compile group that trains as one program (one SLURM job on SLURM)."""

    group: int  # index of the group
    groups: int  # number of groups
    group_size: int  # members of the whole group
    index: int  # index of the chunk in its group
    count: int  # chunks of the group
    jobs: list[Job]
    pad_to: int  # chunks of a group are padded to the largest: one program


class Launch:
    """One launch: resume, plan, compute (:meth:`_compute`, by the backend), store, write
    extras, summarize."""

    def __init__(self, launcher, jobs: list[Job]) -> None:
        self.launcher = launcher
        self.jobs = jobs
        self.returns: dict[int, JobReturn] = {}
        self.stats = {"groups": 0, "chunks": 0, "members": 0, "skipped": 0, "compose_s": 0.0, "validate_s": 0.0, "compile_s": 0.0, "run_s": 0.0, "store_s": 0.0, "compile_wait_s": 0.0,
                      "diverged": 0, "failed": 0}
        self.writer = None
        self.sweep_dir = Path(str(launcher.config.hydra.sweep.dir)).absolute()
        self.not_stored: set[int] = set()  # jobs submitted to SLURM and not waited for
        self.group_runs_queued: set[str] = set()  # compile groups whose W&B group run is queued

    def execute(self) -> list[JobReturn]:
        """Train (or collect) every job of the launch; one return per job, in order."""
        started = time.perf_counter()
        self._compute(self._resume())
        self.stats["wall_s"] = time.perf_counter() - started
        self._summarize()
        self._ending()
        return [self.returns[j.idx] for j in self.jobs]

    def _compute(self, pending: list[Job]) -> None:
        """Train the pending jobs, or have them trained, and set their returns."""
        raise NotImplementedError

    def _summarize(self) -> None:
        """Log the launch's one-line summary."""
        raise NotImplementedError

    def _resume(self) -> list[Job]:
        """Jobs without a stored result of their config; the others get their stored return."""
        pending = []
        for job in self.jobs:
            stored = self.launcher._stored(job)
            if stored is None:
                pending.append(job)
            else:
                self.returns[job.idx] = hydra_job.stored_return(job, stored)
                self.stats["skipped"] += 1
        if self.stats["skipped"]:
            log.info(f"resume: {self.stats['skipped']} of {len(self.jobs)} jobs already have results; skipping them")
        return pending

    def _plan(self, pending: list[Job]) -> list[Chunk]:
        """Compile groups of the pending jobs, each split into chunks that fit in memory."""
        groups = plan_groups([j.cfg for j in pending])
        self.stats["groups"] = len(groups)
        planned = []
        for g, group in enumerate(groups):
            members = [pending[i] for i in group.members]
            chunks = self._chunks(members)
            for k, chunk in enumerate(chunks):
                planned.append(Chunk(g, len(groups), len(members), k, len(chunks), chunk, len(chunks[0])))
        return planned

    def _chunks(self, members: list[Job]) -> list[list[Job]]:
        from harness.sweep.chunking import chunk_sizes, max_members
        from harness.train.memory import member_bytes

        limit = self.launcher.max_members
        mem_gb = self.launcher.slurm["mem_gb"]
        if limit is None and self.launcher.backend == "slurm" and mem_gb:
            # The chunk runs in a SLURM job: budget its memory, not this machine's.
            per_member = max(member_bytes(members[0].cfg, dataset_for(members[0].cfg)), 1)
            limit = max(1, int(mem_gb * 2**30 * self.launcher.memory_fraction // per_member))
        elif limit is None:
            limit = max_members(members[0].cfg, dataset_for(members[0].cfg), self.launcher.memory_fraction)
        chunks, start = [], 0
        for size in chunk_sizes(len(members), limit):
            chunks.append(members[start : start + size])
            start += size
        return chunks

    def _store_failed(self, job: Job, exc: BaseException) -> JobReturn:
        from harness.results import config_hash, versions

        def task(_cfg: DictConfig) -> dict[str, Any]:
            record = {"status": "failed", "error": f"{type(exc).__name__}: {exc}", "metrics": {},
                      "config": resolved(job.cfg), "config_hash": config_hash(job.cfg),
                      "overrides": job.overrides, "seed": int(job.cfg.seed), "versions": versions()}
            store.write_json_atomic(job.run_dir / store.RESULT_FILE, record)
            return hydra_job.objective(job, record)

        self.stats["failed"] += 1
        return self._run_job(job, task)

    def _run_job(self, job: Job, task: Callable[[DictConfig], Any]) -> JobReturn:
        """``task`` (which stores the job's results) run as Hydra's ``run_job`` would."""
        return hydra_job.execute(job, task, self.launcher.hydra_context,
                                 callbacks=bool(self.launcher.config.hydra.callbacks))

    @functools.cached_property
    def wandb_runs(self) -> str:
        """What W&B runs this launch writes: ``member``, ``group`` or ``none``
        (:func:`harness.sweep.writer.granularity`), decided from all its jobs, stored earlier
        or not, so a rerun of the same command decides the same."""
        tracked = sum(1 for j in self.jobs if j.cfg.logger.name == "wandb")
        chosen = granularity(self.launcher.wandb, tracked, self.launcher.wandb_members)
        if self.launcher.wandb == "auto" and chosen == "group":
            log.info(f"W&B: {tracked} members > hydra.launcher.wandb_members={self.launcher.wandb_members}: one run "
                     "per compile group (members table, curves chart per metric); hydra.launcher.wandb=member "
                     "for a run per member")
        return chosen

    def _member_wandb(self, job: Job) -> str:
        """``member`` when the job gets its own W&B run, else ``none``."""
        return "member" if self.wandb_runs == "member" and job.cfg.logger.name == "wandb" else "none"

    @functools.cached_property
    def _wandb_group(self) -> str:
        """The W&B group of this sweep's runs: its folder, as configured (``hydra.sweep.dir``;
        read once: resolving its ``${now:...}`` costs ~5 ms, and a sweep asks once a job)."""
        return str(self.launcher.config.hydra.sweep.dir)

    def _wandb_identity(self, job: Job) -> dict[str, Any]:
        """The job's W&B group (the sweep), name (its overrides that vary in the sweep) and tags."""
        return run_identity(job.overrides, self.launcher.varying_keys, self._wandb_group)

    def _queue_member(self, job: Job) -> None:
        member_wandb = self._member_wandb(job)
        identity = self._wandb_identity(job)
        if self.writer is not None:
            self.writer.member(job.run_dir, resolved(job.cfg), member_wandb, identity)
        elif draws_plots(job.cfg.output.plots, multirun=True) or member_wandb == "member":
            write_member_extras(str(job.run_dir), resolved(job.cfg), member_wandb, identity)

    @functools.cached_property
    def _compile_groups(self) -> list[tuple[str, list[Job]]]:
        """Every compile group of the sweep (all its jobs, stored earlier or not), by key."""
        groups = plan_groups([j.cfg for j in self.jobs])
        return [(g.key, [self.jobs[i] for i in g.members]) for g in groups]

    def _queue_group_runs(self) -> None:
        """Queue one W&B run (``hydra.launcher.wandb=group``, or ``auto`` above its member
        limit) for each compile group whose
        members all have a stored record by now, once per command.

        A group run covers the whole compile group (every chunk, members stored by earlier,
        interrupted commands too) and lives in ``<sweep>/wandb-groups/<group key>/``: its
        ``wandb/`` folder and its marker. Its run id is fixed by that folder and the members'
        config hashes, so a rerun after a kill replaces a half-written run, and a group whose
        run finished is not logged again (:func:`harness.track.wandb_logger.log_group`).
        """
        if self.wandb_runs != "group":
            return
        for key, members in self._compile_groups:
            if key in self.group_runs_queued:
                continue
            if any(j.idx not in self.returns or j.idx in self.not_stored for j in members):
                continue  # still to be trained or collected
            self.group_runs_queued.add(key)
            tracked = [j for j in members if j.cfg.logger.name == "wandb"]
            if not tracked:
                continue
            args = {"group_dir": str(self.sweep_dir / GROUP_RUNS_DIR / key), "run_dirs": [str(j.run_dir) for j in tracked],
                    "logger_container": OmegaConf.to_container(tracked[0].cfg.logger, resolve=True),
                    "name": f"group-{key}", "group": self._wandb_group}
            if self.writer is not None:
                self.writer.group(**args)
            else:
                write_group_run(**args)

    def _ending(self) -> None:
        """The sweep's folder, backend and best settings (:mod:`harness.sweep.ending`), over
        every job launched so far (a sweeper such as Optuna's launches batch after batch)."""
        if not self.launcher.progress:
            return
        from harness.sweep import ending

        try:
            ending.show(self.sweep_dir, list(self.launcher.launched), list(self.launcher.launched.values()),
                        self.launcher.varying_keys, self.jobs[0].cfg.get("optimized_metric") if self.jobs else None)
        except Exception as exc:  # noqa: BLE001 - every result is stored; the ending is a view of them
            log.warning(f"the sweep's closing table failed: {type(exc).__name__}: {exc}")
