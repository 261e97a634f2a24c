"""The fused Hydra launcher: every compile group of a multirun as one ``jit(vmap(train))``.

    harness-train -m optim.lr=0.001,0.01,0.1 train.batch_size=10,30 seed='range(8)'

Hydra's sweeper expands the overrides into jobs as usual; this launcher then

1. composes every job's config (Hydra's own ``load_sweep_config``, so interpolations and
   defaults behave exactly as under the basic launcher) and expands quasi-random searches;
2. validates all of them before any compute — a bad job ends the sweep with one line;
3. skips jobs whose folder already holds a result of the same config (resume);
4. groups the rest by static settings, splits groups that would not fit in memory into
   near-equal chunks, and runs each chunk as one XLA program (:func:`run_group`);
5. stores each member through Hydra's ``run_job``, so each job gets its usual folder,
   ``.hydra/`` files, callbacks and ``JobReturn``;
6. hands plots and W&B runs to a background writer process, overlapped with compute.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Optional, Sequence

from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, JobStatus, configure_log, run_job, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict

from harness.errors import ConfigError, DataError

log = logging.getLogger("harness.fused")


@dataclasses.dataclass
class FusedLauncherConf:
    """Settings of ``hydra/launcher=fused`` (``hydra.launcher.<key>=...``)."""

    _target_: str = "hydra_plugins.harness_fused.fused_launcher.FusedLauncher"
    max_members: Optional[int] = None  # members per chunk; default: estimated from memory
    memory_fraction: float = 0.5  # share of free memory a chunk may use (auto chunking)
    wandb: str = "member"  # member: one W&B run per job | group: one per group | none
    writer: str = "background"  # background: plots + W&B in a separate process | inline
    resume: bool = True  # skip jobs whose folder holds a result of the same config
    progress: bool = True  # rich progress bar and closing summary


@dataclasses.dataclass
class Job:
    """One job of the sweep: its overrides, full config (with hydra) and task config."""

    idx: int
    overrides: list[str]
    sweep_config: DictConfig
    cfg: DictConfig
    run_dir: Path


class FusedLauncher(Launcher):
    """Hydra launcher that trains each compile group as one vmapped program."""

    def __init__(self, max_members: Optional[int] = None, memory_fraction: float = 0.5, wandb: str = "member",
                 writer: str = "background", resume: bool = True, progress: bool = True) -> None:
        from harness.sweep.writer import MODES

        if wandb not in MODES:
            raise ConfigError("hydra.launcher.wandb", wandb, MODES)
        if writer not in ("background", "inline"):
            raise ConfigError("hydra.launcher.writer", writer, ("background", "inline"))
        if max_members is not None and max_members < 1:
            raise ConfigError("hydra.launcher.max_members", max_members, "null or an integer >= 1")
        self.max_members = max_members
        self.memory_fraction = memory_fraction
        self.wandb = wandb
        self.writer_mode = writer
        self.resume = resume
        self.progress = progress
        self.config: Optional[DictConfig] = None
        self.task_function: Optional[TaskFunction] = None
        self.hydra_context: Optional[HydraContext] = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config = config
        self.hydra_context = hydra_context
        self.task_function = task_function

    # -- composing and checking ------------------------------------------------------------

    def _compose(self, overrides: list[str], idx: int) -> Job:
        sweep_config = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
        with open_dict(sweep_config):
            sweep_config.hydra.job.id = idx
            sweep_config.hydra.job.num = idx
        HydraConfig.instance().set_config(sweep_config)
        run_dir = Path(str(OmegaConf.select(sweep_config, "hydra.sweep.dir"))) / str(
            OmegaConf.select(sweep_config, "hydra.sweep.subdir")
        )
        cfg = copy.deepcopy(sweep_config)
        with open_dict(cfg):
            del cfg["hydra"]
        return Job(idx, list(overrides), sweep_config, cfg, run_dir.absolute())

    def _compose_all(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> list[Job]:
        """Compose every job; a job with a search space becomes one job per drawn point."""
        from harness.sweep.search import as_overrides, draw

        jobs: list[Job] = []
        for overrides in job_overrides:
            job = self._compose(list(overrides), initial_job_idx + len(jobs))
            points = draw(OmegaConf.to_container(job.cfg.search, resolve=True))
            if not points:
                jobs.append(job)
                continue
            for point in points:
                jobs.append(self._compose(list(overrides) + as_overrides(point), initial_job_idx + len(jobs)))
        return jobs

    @staticmethod
    def _validate(jobs: list[Job]) -> None:
        """Check every job before any compute (datasets are generated once per data config)."""
        from harness.sweep.engine import dataset_for
        from harness.validate import validate_config, validate_with_data

        for job in jobs:
            try:
                validate_config(job.cfg)
                validate_with_data(job.cfg, dataset_for(job.cfg))
            except (ConfigError, DataError) as exc:
                shown = " ".join(job.overrides) or "(no overrides)"
                raise _JobError(f"job #{job.idx} [{shown}]: {exc}") from exc

    def _stored(self, job: Job) -> Optional[dict[str, Any]]:
        """The job's stored result if it is complete and of the same config."""
        from harness import store
        from harness.results import config_hash

        if not self.resume:
            return None
        result = store.read_result(job.run_dir)
        if result and result.get("status") in ("ok", "diverged") and result.get("config_hash") == config_hash(job.cfg):
            return result
        return None

    # -- running ---------------------------------------------------------------------------

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        try:
            jobs = self._compose_all(job_overrides, initial_job_idx)
            self._validate(jobs)
        except (ConfigError, _JobError) as exc:
            _remove_if_only_multirun_yaml(sweep_dir)
            if os.environ.get("HYDRA_FULL_ERROR") == "1":
                raise
            print(f"error: {exc}", file=sys.stderr)
            raise SystemExit(2)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        return _Run(self, jobs).execute()


class _JobError(Exception):
    """A bad job in a multirun: the message names the job and the bad key."""


def _remove_if_only_multirun_yaml(sweep_dir: Path) -> None:
    """Undo the sweep folder Hydra's sweeper made if nothing else is in it."""
    if sweep_dir.is_dir() and {p.name for p in sweep_dir.iterdir()} <= {"multirun.yaml"}:
        shutil.rmtree(sweep_dir, ignore_errors=True)


class _Run:
    """One launch: resume, plan, compute, store, write extras, summarize."""

    def __init__(self, launcher: FusedLauncher, jobs: list[Job]) -> None:
        self.launcher = launcher
        self.jobs = jobs
        self.returns: dict[int, JobReturn] = {}
        self.stats = {"groups": 0, "chunks": 0, "members": 0, "skipped": 0, "compile_s": 0.0, "run_s": 0.0,
                      "diverged": 0, "failed": 0}
        self.writer = None

    def execute(self) -> list[JobReturn]:
        from harness.sweep.plan import plan_groups

        started = time.perf_counter()
        pending = []
        for job in self.jobs:
            stored = self.launcher._stored(job)
            if stored is None:
                pending.append(job)
            else:
                self.returns[job.idx] = _stored_return(job, stored)
                self.stats["skipped"] += 1
        if self.stats["skipped"]:
            log.info(f"resume: {self.stats['skipped']} of {len(self.jobs)} jobs already have results; skipping them")
        groups = plan_groups([j.cfg for j in pending])
        self.stats["groups"] = len(groups)
        self._start_writer(pending)
        with _progress(self.launcher.progress, len(pending)) as progress:
            for g, group in enumerate(groups):
                members = [pending[i] for i in group.members]
                chunks = self._chunks(members)
                for chunk in chunks:
                    progress.describe(f"group {g + 1}/{len(groups)} ({len(members)} members)")
                    # Chunks differ by at most one member: pad to the largest, one program.
                    self._run_chunk(chunk, pad_to=len(chunks[0]))
                    progress.advance(len(chunk))
            if self.writer is not None:
                progress.describe("writing plots and W&B runs")
                self.writer.close(on_progress=lambda done, total: progress.writer(done, total))
        self.stats["wall_s"] = time.perf_counter() - started
        self._summarize()
        return [self.returns[j.idx] for j in self.jobs]

    def _start_writer(self, pending: list[Job]) -> None:
        cfg0 = pending[0].cfg if pending else None
        needed = cfg0 is not None and (
            any(j.cfg.output.plots for j in pending)
            or (self.launcher.wandb != "none" and any(j.cfg.logger.name == "wandb" for j in pending))
        )
        if needed and self.launcher.writer_mode == "background":
            from harness.sweep.writer import BackgroundWriter

            self.writer = BackgroundWriter()

    def _chunks(self, members: list[Job]) -> list[list[Job]]:
        from harness.sweep.chunking import chunk_sizes, max_members
        from harness.sweep.engine import dataset_for

        limit = self.launcher.max_members
        if limit is None:
            limit = max_members(members[0].cfg, dataset_for(members[0].cfg), self.launcher.memory_fraction)
        chunks, start = [], 0
        for size in chunk_sizes(len(members), limit):
            chunks.append(members[start : start + size])
            start += size
        return chunks

    def _run_chunk(self, chunk: list[Job], pad_to: int) -> None:
        from harness.sweep.engine import run_group

        self.stats["chunks"] += 1
        try:
            group = run_group([j.cfg for j in chunk], pad_to=pad_to)
        except Exception as exc:  # noqa: BLE001 - one broken group must not sink the sweep
            log.error(f"group failed ({type(exc).__name__}: {exc}); its {len(chunk)} jobs are marked failed")
            for job in chunk:
                self.returns[job.idx] = self._store_failed(job, exc)
            return
        self.stats["compile_s"] += group.compile_s
        self.stats["run_s"] += group.run_s
        self.stats["members"] += len(chunk)
        for job, output in zip(chunk, group.outputs):
            self.returns[job.idx] = self._store(job, output, group)
        self._queue_group_run(chunk)

    def _store(self, job: Job, output: dict[str, Any], group) -> JobReturn:
        from harness.job import store_member

        def task(_cfg: DictConfig) -> dict[str, Any]:
            result = store_member(job.run_dir, job.cfg, output, group, job.overrides)
            self.stats["diverged"] += result["status"] == "diverged"
            return result["metrics"]

        ret = run_job(hydra_context=self.launcher.hydra_context, task_function=task, config=job.sweep_config,
                      job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir", configure_logging=False)
        self._queue_member(job)
        return ret

    def _store_failed(self, job: Job, exc: BaseException) -> JobReturn:
        from harness import store
        from harness.results import config_hash, versions

        def task(_cfg: DictConfig) -> dict[str, Any]:
            record = {"status": "failed", "error": f"{type(exc).__name__}: {exc}", "metrics": {},
                      "config": OmegaConf.to_container(job.cfg, resolve=True), "config_hash": config_hash(job.cfg),
                      "overrides": job.overrides, "seed": int(job.cfg.seed), "versions": versions()}
            store.write_json_atomic(job.run_dir / store.RESULT_FILE, record)
            return {}

        self.stats["failed"] += 1
        return run_job(hydra_context=self.launcher.hydra_context, task_function=task, config=job.sweep_config,
                       job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir", configure_logging=False)

    def _queue_member(self, job: Job) -> None:
        wandb = self.launcher.wandb if job.cfg.logger.name == "wandb" else "none"
        member_wandb = "member" if wandb == "member" else "none"
        if self.writer is not None:
            self.writer.member(job.run_dir, OmegaConf.to_container(job.cfg, resolve=True), member_wandb)
        elif job.cfg.output.plots or member_wandb == "member":
            from harness.sweep.writer import write_member_extras

            write_member_extras(str(job.run_dir), OmegaConf.to_container(job.cfg, resolve=True), member_wandb)

    def _queue_group_run(self, chunk: list[Job]) -> None:
        if self.launcher.wandb != "group" or chunk[0].cfg.logger.name != "wandb":
            return
        from harness.sweep.plan import group_key

        logger = OmegaConf.to_container(chunk[0].cfg.logger, resolve=True)
        group_dir = chunk[0].run_dir.parent
        name = f"group-{group_key(chunk[0].cfg)}-{chunk[0].idx}"
        run_dirs = [str(j.run_dir) for j in chunk]
        if self.writer is not None:
            self.writer.group(group_dir, run_dirs, logger, name)
        else:
            from harness.sweep.writer import write_group_run

            write_group_run(str(group_dir), run_dirs, logger, name)

    def _summarize(self) -> None:
        s = self.stats
        rate = s["members"] / s["wall_s"] if s["wall_s"] > 0 else float("nan")
        log.info(
            f"fused sweep: {len(self.jobs)} jobs | {s['groups']} groups in {s['chunks']} chunks | "
            f"{s['members']} trained, {s['skipped']} skipped | diverged {s['diverged']}, failed {s['failed']} | "
            f"compile {s['compile_s']:.1f}s run {s['run_s']:.1f}s wall {s['wall_s']:.1f}s | {rate:.1f} members/s"
        )


def _stored_return(job: Job, result: dict[str, Any]) -> JobReturn:
    """A JobReturn for a job skipped on resume, carrying its stored metrics."""
    HydraConfig.instance().set_config(job.sweep_config)
    ret = JobReturn(overrides=job.overrides, cfg=job.cfg, hydra_cfg=copy.deepcopy(HydraConfig.instance().cfg),
                    working_dir=os.getcwd(), task_name=str(job.sweep_config.hydra.job.name))
    ret.status = JobStatus.COMPLETED
    ret.return_value = result.get("metrics", {})
    return ret


class _progress:
    """A rich progress bar over members (or nothing when disabled or not a terminal)."""

    def __init__(self, enabled: bool, total: int) -> None:
        self.enabled = enabled and total > 0
        self.total = total

    def __enter__(self) -> "_progress":
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), transient=False)
            self.bar.start()
            self.task = self.bar.add_task("members", total=self.total)
            self.extras = None
        return self

    def describe(self, text: str) -> None:
        if self.enabled:
            self.bar.update(self.task, description=text)

    def advance(self, n: int) -> None:
        if self.enabled:
            self.bar.advance(self.task, n)

    def writer(self, done: int, total: int) -> None:
        if self.enabled:
            if self.extras is None:
                self.extras = self.bar.add_task("plots and W&B runs", total=total)
            self.bar.update(self.extras, completed=done, total=total)

    def __exit__(self, *exc) -> None:
        if self.enabled:
            self.bar.stop()
