"""The fused Hydra launcher: every compile group of a multirun as one ``jit(vmap(train))``.

    harness-train -m optim.lr=0.001,0.01,0.1 train.batch_size=10,30 seed='range(8)'

Hydra's sweeper expands the overrides into jobs as usual; this launcher then

1. composes every job's config (Hydra's own ``load_sweep_config`` once per structure, plain
   typed updates for the numbers that differ: :mod:`harness.sweep.compose`) and expands
   quasi-random searches;
2. validates all of them before any compute — a bad job ends the sweep with one line;
3. skips jobs whose folder already holds a result of the same config (resume);
4. groups the rest by static settings, splits groups that would not fit in memory into
   near-equal chunks, and runs each chunk as one XLA program (:func:`run_group`);
5. stores each member through Hydra's ``run_job``, so each job gets its usual folder,
   ``.hydra/`` files, callbacks and ``JobReturn``;
6. hands plots and W&B runs to a background writer process, overlapped with compute.

With ``hydra.launcher.backend=slurm`` steps 1-4 are the same; then each chunk becomes one
SLURM job (submitit) that trains it and writes its members' folders, ``.hydra/`` files and
extras exactly as above (:mod:`harness.sweep.remote`). By default the command waits, with a
progress bar, and returns each job's stored result; ``hydra.launcher.wait=false`` returns
right after submitting, and the same command run again collects (docs/cluster.md).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import os
import shlex
import shutil
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

from hydra.core.utils import JobReturn, JobStatus, configure_log, run_job, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

from harness import store
from harness.config import CONF_DIR
from harness.data.cache import dataset_for
from harness.errors import ConfigError, DataError
from harness.folders import Planned, guard, trusted
from harness.hydra_errors import one_line
from harness.sweep import remote
from harness.sweep.compose import ComposedJob, SweepComposer
from harness.sweep.progress import Display as _progress
from harness.sweep.remote import Tracker, write_hydra_files
from harness.sweep.search import as_overrides, draw
from harness.sweep.writer import MODES, BackgroundWriter, write_group_run, write_member_extras
from harness.track.wandb_logger import already_logged, run_identity, tracking_enabled, varying_keys
from harness.train.hparams import plan_groups

# Hydra imports this module whenever it discovers plugins (every Hydra app, --help), before
# harness.runtime.setup_jax has run: what imports JAX (the job lifecycle, the engine,
# checkpoints, memory estimates, results) is imported inside the methods that use it.

log = logging.getLogger("harness.fused")

# The batch script's line before srun (as in conf/hydra/launcher/slurm.yaml): jobs get the
# submitter's environment and Python; this re-activates the venv for shells that reset PATH.
SETUP = ('if [ -n "$VIRTUAL_ENV" ] && [ -f "$VIRTUAL_ENV/bin/activate" ]; then . "$VIRTUAL_ENV/bin/activate"; fi',)
BACKENDS = ("local", "slurm")
GROUP_RUNS_DIR = "wandb-groups"  # hydra.launcher.wandb=group: <sweep>/wandb-groups/<group key>/
POLL_S = 1.0  # backend=slurm: seconds between looks at the result files
STATE_POLL_S, STATE_POLL_LATER_S = 2.0, 15.0  # between sacct calls: first minute, later


@dataclasses.dataclass
class FusedLauncherConf:
    """Settings of ``hydra/launcher=fused`` (``hydra.launcher.<key>=...``)."""

    _target_: str = "hydra_plugins.harness_fused.fused_launcher.FusedLauncher"
    max_members: Optional[int] = None  # members per chunk; default: estimated from memory
    memory_fraction: float = 0.5  # share of free memory a chunk may use (auto chunking)
    wandb: str = "member"  # member: one W&B run per job | group: one per group | none
    writer: str = "background"  # background: plots + W&B in a separate process | inline
    resume: bool = True  # skip jobs whose folder holds a result of the same config
    precompile: bool = True  # compile the next group's program in the background meanwhile
    progress: bool = True  # rich progress bar and closing summary
    backend: str = "local"  # local: train in this process | slurm: each chunk as one SLURM job
    wait: bool = True  # slurm: wait for the jobs (progress bar) | false: submit, print, return
    # SLURM job settings (backend=slurm), named as in conf/hydra/launcher/slurm.yaml
    partition: Optional[str] = None  # null: the cluster's default partition
    timeout_min: int = 60  # per SLURM job (one chunk); SLURM kills a job that runs longer
    cpus_per_task: int = 2
    gpus_per_node: Optional[int] = None  # e.g. 1 on a GPU partition
    mem_gb: Optional[int] = 8  # also the memory budget of auto chunking (max_members=null)
    account: Optional[str] = None
    qos: Optional[str] = None
    constraint: Optional[str] = None
    exclude: Optional[str] = None
    gres: Optional[str] = None
    setup: List[str] = dataclasses.field(default_factory=lambda: list(SETUP))  # lines run before srun
    additional_parameters: Dict[str, Any] = dataclasses.field(default_factory=dict)  # any other sbatch option
    submitit_folder: str = "${hydra.sweep.dir}/.submitit/%j"  # submitit's pickles and logs, per SLURM job


# One job of the sweep: its overrides, typed task config, hydra node (plain data), run dir.
Job = ComposedJob


class FusedLauncher(Launcher):
    """Hydra launcher that trains each compile group as one vmapped program."""

    def __init__(self, max_members: Optional[int] = None, memory_fraction: float = 0.5, wandb: str = "member",
                 writer: str = "background", resume: bool = True, progress: bool = True, backend: str = "local",
                 precompile: bool = True,
                 wait: bool = True, partition: Optional[str] = None, timeout_min: int = 60, cpus_per_task: int = 2,
                 gpus_per_node: Optional[int] = None, mem_gb: Optional[int] = 8, account: Optional[str] = None,
                 qos: Optional[str] = None, constraint: Optional[str] = None, exclude: Optional[str] = None,
                 gres: Optional[str] = None, setup: Optional[Sequence[str]] = SETUP,
                 additional_parameters: Optional[dict[str, Any]] = None,
                 submitit_folder: str = ".submitit/%j") -> None:
        if wandb not in MODES:
            raise ConfigError("hydra.launcher.wandb", wandb, MODES)
        if writer not in ("background", "inline"):
            raise ConfigError("hydra.launcher.writer", writer, ("background", "inline"))
        if max_members is not None and max_members < 1:
            raise ConfigError("hydra.launcher.max_members", max_members, "null or an integer >= 1")
        if backend not in BACKENDS:
            raise ConfigError("hydra.launcher.backend", backend, BACKENDS)
        if not isinstance(timeout_min, int) or timeout_min < 1:
            raise ConfigError("hydra.launcher.timeout_min", timeout_min, "an integer >= 1 (minutes)")
        if not isinstance(cpus_per_task, int) or cpus_per_task < 1:
            raise ConfigError("hydra.launcher.cpus_per_task", cpus_per_task, "an integer >= 1")
        if gpus_per_node is not None and (not isinstance(gpus_per_node, int) or gpus_per_node < 0):
            raise ConfigError("hydra.launcher.gpus_per_node", gpus_per_node, "null or an integer >= 0")
        if mem_gb is not None and (not isinstance(mem_gb, (int, float)) or not mem_gb > 0):
            raise ConfigError("hydra.launcher.mem_gb", mem_gb, "null or a number > 0 (GB)")
        for key, value in (("partition", partition), ("account", account), ("qos", qos),
                           ("constraint", constraint), ("exclude", exclude), ("gres", gres)):
            if value is not None and not str(value).strip():
                raise ConfigError(f"hydra.launcher.{key}", value, "null or a non-empty name")
        if not str(submitit_folder or "").strip():
            raise ConfigError("hydra.launcher.submitit_folder", submitit_folder, "a folder path")
        self.max_members = max_members
        self.memory_fraction = memory_fraction
        self.wandb = wandb
        self.writer_mode = writer
        self.resume = resume
        self.precompile = bool(precompile)
        self.progress = progress
        self.backend = backend
        self.wait = bool(wait)
        self.slurm = {
            "partition": partition, "timeout_min": timeout_min, "cpus_per_task": cpus_per_task,
            "gpus_per_node": gpus_per_node, "mem_gb": mem_gb, "account": account, "qos": qos,
            "constraint": constraint, "exclude": exclude, "gres": gres,
            "setup": [str(line) for line in (setup or [])],
            "additional_parameters": (OmegaConf.to_container(additional_parameters, resolve=True)
                                      if OmegaConf.is_config(additional_parameters)
                                      else dict(additional_parameters or {})),
        }
        self.submitit_folder = os.path.abspath(str(submitit_folder))
        self.config: Optional[DictConfig] = None
        # Override keys that differed between jobs in any launch so far (a sweeper such as
        # Optuna's launches batch after batch): they name the W&B runs.
        self.varying_keys: set[str] = set()
        self.launched: dict[str, list[str]] = {}  # run dir -> overrides, every launch so far: the ending's table
        self._composer = None  # SweepComposer, made on first use
        self.task_function: Optional[TaskFunction] = None
        self.hydra_context: Optional[HydraContext] = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config = config
        self.hydra_context = hydra_context
        self.task_function = task_function

    # -- composing and checking ------------------------------------------------------------

    def _compose(self, overrides: list[str], idx: int) -> Job:
        from omegaconf.errors import OmegaConfBaseException

        if self._composer is None:
            groups = {p.name for p in CONF_DIR.iterdir() if p.is_dir()}
            self._composer = SweepComposer(self.hydra_context.config_loader, self.config, groups)
        try:
            return self._composer.compose(list(overrides), idx)
        except OmegaConfBaseException as exc:  # a value the schema rejects (Hydra would say the same)

            wrapped = Exception(str(exc))
            wrapped.__cause__ = exc
            raise _JobError(f"job #{idx} [{' '.join(overrides)}]: {one_line(wrapped)}") from exc

    def _compose_all(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> list[Job]:
        """Compose every job; a job with a search space becomes one job per drawn point."""
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
        from harness.job import check

        for job in jobs:
            try:
                check(job.cfg)
            except (ConfigError, DataError) as exc:
                shown = " ".join(job.overrides) or "(no overrides)"
                raise _JobError(f"job #{job.idx} [{shown}]: {exc}") from exc

    def _stored(self, job: Job) -> Optional[dict[str, Any]]:
        """The job's stored result if it is complete and of the same config."""
        from harness.job import stored_result

        return stored_result(job.run_dir, job.cfg) if self.resume else None

    # -- running ---------------------------------------------------------------------------

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        try:
            if self.backend == "slurm" and shutil.which("sbatch") is None:
                raise ConfigError("hydra.launcher.backend", "slurm", "local, or slurm where SLURM's sbatch is on PATH")
            jobs = self._compose_all(job_overrides, initial_job_idx)
            self._validate(jobs)
            # Records of other configs: refused, or moved aside. Left-over job folders can be
            # told only when this call launches the whole sweep (a sweeper such as Optuna
            # launches it batch by batch, and the first batch cannot know the later ones).
            whole = initial_job_idx == 0 and _launches_whole_sweep(self.config.hydra.sweeper)
            _guard_folders(jobs, sweep_dir, whole_sweep=whole)
        except (ConfigError, _JobError) as exc:
            _remove_if_only_multirun_yaml(sweep_dir)
            if os.environ.get("HYDRA_FULL_ERROR") == "1":
                raise
            print(f"error: {exc}", file=sys.stderr)
            raise SystemExit(2)
        except BaseException:  # Hydra's own composition errors (reported in one line by hydra_errors)
            _remove_if_only_multirun_yaml(sweep_dir)
            raise
        sweep_dir.mkdir(parents=True, exist_ok=True)

        self.varying_keys |= varying_keys(job.overrides for job in jobs)
        self.launched.update((str(job.run_dir), list(job.overrides)) for job in jobs)
        return _Run(self, jobs).execute()


def _launches_whole_sweep(sweeper_cfg) -> bool:
    """Whether the sweeper hands the launcher every job in one call: the harness's and Hydra's
    basic sweeper without ``max_batch_size``; not Optuna, Ax or Nevergrad (batch by batch)."""
    target = str(sweeper_cfg.get("_target_", ""))
    return target.endswith(("HarnessSweeper", "BasicSweeper")) and sweeper_cfg.get("max_batch_size") is None


def _guard_folders(jobs: list[Job], sweep_dir: Path, *, whole_sweep: bool) -> None:
    """:func:`harness.folders.guard` for the jobs of one launch, before any of them trains;
    with ``whole_sweep``, job folders of the sweep that no job uses count as conflicts too."""
    from harness.results import config_hash

    guard([Planned(j.run_dir, config_hash(j.cfg), list(j.overrides), bool(j.cfg.output.overwrite)) for j in jobs],
          sweep_dir, "hydra.sweep.dir", sweep=whole_sweep)


class _JobError(Exception):
    """A bad job in a multirun: the message names the job and the bad key."""


def _remove_if_only_multirun_yaml(sweep_dir: Path) -> None:
    """Undo the sweep folder Hydra's sweeper made if nothing else is in it."""
    if sweep_dir.is_dir() and {p.name for p in sweep_dir.iterdir()} <= {"multirun.yaml"}:
        shutil.rmtree(sweep_dir, ignore_errors=True)


@dataclasses.dataclass
class _Chunk:
    """A piece of a compile group that trains as one program (one SLURM job on SLURM)."""

    group: int  # index of the group
    groups: int  # number of groups
    group_size: int  # members of the whole group
    index: int  # index of the chunk in its group
    count: int  # chunks of the group
    jobs: list[Job]
    pad_to: int  # chunks of a group are padded to the largest: one program


@dataclasses.dataclass
class _Submitted:
    """A SLURM job that trains some jobs of this sweep."""

    handle: Any  # submitit's SlurmJob
    jobs: list[Job]
    label: str
    earlier: bool = False  # submitted by an earlier command (found in slurm_jobs.json)
    done: bool = False


class _Run:
    """One launch: resume, plan, compute, store, write extras, summarize."""

    def __init__(self, launcher: FusedLauncher, jobs: list[Job]) -> None:
        self.launcher = launcher
        self.jobs = jobs
        self.returns: dict[int, JobReturn] = {}
        self.stats = {"groups": 0, "chunks": 0, "members": 0, "skipped": 0, "compile_s": 0.0, "run_s": 0.0, "store_s": 0.0, "compile_wait_s": 0.0,
                      "diverged": 0, "failed": 0}
        self.writer = None
        self.sweep_dir = Path(str(launcher.config.hydra.sweep.dir)).absolute()
        self.not_stored: set[int] = set()  # jobs submitted to SLURM and not waited for
        self.group_runs_queued: set[str] = set()  # compile groups whose W&B group run is queued

    def execute(self) -> list[JobReturn]:
        started = time.perf_counter()
        pending = self._resume()
        if self.launcher.backend == "slurm":
            self.tracker = Tracker(self.sweep_dir)
            earlier, pending = self._attach(pending)
            self._execute_slurm(self._plan(pending), earlier)
        else:
            self._execute_local(self._plan(pending))
        self.stats["wall_s"] = time.perf_counter() - started
        self._summarize()
        self._ending()
        return [self.returns[j.idx] for j in self.jobs]

    def _resume(self) -> list[Job]:
        """Jobs without a stored result of their config; the others get their stored return."""
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
        return pending

    def _plan(self, pending: list[Job]) -> list[_Chunk]:
        """Compile groups of the pending jobs, each split into chunks that fit in memory."""
        groups = plan_groups([j.cfg for j in pending])
        self.stats["groups"] = len(groups)
        planned = []
        for g, group in enumerate(groups):
            members = [pending[i] for i in group.members]
            chunks = self._chunks(members)
            for k, chunk in enumerate(chunks):
                planned.append(_Chunk(g, len(groups), len(members), k, len(chunks), chunk, len(chunks[0])))
        return planned

    def _execute_local(self, chunks: list[_Chunk]) -> None:
        pending = [job for chunk in chunks for job in chunk.jobs]
        unfinished = self._extras_missing()
        self._start_writer(pending + unfinished)
        for job in unfinished:  # stored before a crash, its W&B run or plots not yet written
            self._queue_member(job)
        self._queue_group_runs()  # groups stored in full by an earlier, interrupted command
        with _progress(self.launcher.progress, len(pending)) as progress:
            for i, chunk in enumerate(chunks):
                progress.group(f"group {chunk.group + 1}/{chunk.groups} ({chunk.group_size} members)"
                               + (f" chunk {chunk.index + 1}/{chunk.count}" if chunk.count > 1 else ""))
                if self.launcher.precompile and i + 1 < len(chunks):
                    self._precompile(chunks[i + 1])  # compiles while this chunk compiles, runs, stores
                self._run_chunk(chunk.jobs, pad_to=chunk.pad_to)
                progress.advance(len(chunk.jobs))
                self._queue_group_runs()
            if self.writer is not None:
                progress.describe("writing plots and W&B runs")
                self.writer.close(on_progress=lambda done, total: progress.writer(done, total))

    def _extras_missing(self) -> list[Job]:
        """Jobs skipped on resume whose W&B run (no ``wandb_run_id`` marker) or plots (no PNG,
        or a temp file left among them) an interrupted command never finished."""
        missing = []
        for job in self.jobs:
            if job.idx not in self.returns:
                continue  # not skipped: trained now, and queued when stored
            no_run = (self._member_wandb(job) == "member" and tracking_enabled(job.cfg.logger)
                      and not already_logged(job.run_dir))  # WANDB_MODE=disabled: never a marker
            # A temp file left beside the plots means the writer was killed while drawing them.
            no_plots = bool(job.cfg.output.plots) and (not any(job.run_dir.glob("*.png"))
                                                       or bool(store.stale_temps(job.run_dir)))
            if no_run or no_plots:
                missing.append(job)
        return missing

    def _start_writer(self, pending: list[Job]) -> None:
        cfg0 = pending[0].cfg if pending else None
        needed = cfg0 is not None and (
            any(j.cfg.output.plots for j in pending)
            or (self.launcher.wandb != "none" and any(j.cfg.logger.name == "wandb" for j in pending))
        )
        if needed and self.launcher.writer_mode == "background":
            self.writer = BackgroundWriter()

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

    def _precompile(self, chunk: _Chunk) -> None:
        """Start compiling a later chunk's program in the background."""
        from harness import job as lifecycle

        try:
            lifecycle.precompile([j.cfg for j in chunk.jobs], self.sweep_dir, pad_to=chunk.pad_to)
        except Exception as exc:  # noqa: BLE001 - the chunk's own run reports any real problem
            log.debug(f"precompiling failed: {exc}")

    def _run_chunk(self, chunk: list[Job], pad_to: int) -> None:
        from harness import job as lifecycle

        self.stats["chunks"] += 1
        try:  # run_group, or in segments with checkpoints when train.checkpoint_every is set
            group = lifecycle.train([j.cfg for j in chunk], self.sweep_dir, pad_to=pad_to)
        except Exception as exc:  # noqa: BLE001 - one broken group must not sink the sweep
            log.error(f"group failed ({type(exc).__name__}: {exc}); its {len(chunk)} jobs are marked failed")
            for job in chunk:
                self.returns[job.idx] = self._store_failed(job, exc)
            return
        self.stats["compile_s"] += group.compile_s
        self.stats["compile_wait_s"] += group.compile_wait_s if group.compiled else 0.0
        self.stats["run_s"] += group.run_s
        self.stats["members"] += len(chunk)
        started = time.perf_counter()
        # Hydra callbacks get each job's files complete when they fire: no deferred sync then.
        returns = lifecycle.store_members(group, lambda i, output: self._store(chunk[i], output, group),
                                          defer_sync=not self.launcher.config.hydra.callbacks)
        for job, ret in zip(chunk, returns):
            self.returns[job.idx] = ret
        self.stats["store_s"] += time.perf_counter() - started
        for job in chunk:  # plots and W&B runs are drawn from the records, now on disk
            self._queue_member(job)
        lifecycle.finish([j.cfg for j in chunk], self.sweep_dir, pad_to=pad_to)  # results stored

    def _store(self, job: Job, output: dict[str, Any], group) -> JobReturn:
        from harness.job import store_member

        def task(_cfg: DictConfig) -> dict[str, Any]:
            result = store_member(job.run_dir, job.cfg, output, group, job.overrides)
            self.stats["diverged"] += result["status"] == "diverged"
            return _objective(job, result)

        return self._run_job(job, task)

    def _store_failed(self, job: Job, exc: BaseException) -> JobReturn:
        from harness.results import config_hash, versions

        def task(_cfg: DictConfig) -> dict[str, Any]:
            record = {"status": "failed", "error": f"{type(exc).__name__}: {exc}", "metrics": {},
                      "config": OmegaConf.to_container(job.cfg, resolve=True), "config_hash": config_hash(job.cfg),
                      "overrides": job.overrides, "seed": int(job.cfg.seed), "versions": versions()}
            store.write_json_atomic(job.run_dir / store.RESULT_FILE, record)
            return _objective(job, record)

        self.stats["failed"] += 1
        return self._run_job(job, task)

    def _run_job(self, job: Job, task: Callable[[DictConfig], Any]) -> JobReturn:
        """Run ``task`` (which stores the job's results) as Hydra's ``run_job`` would: the
        job's folder with its ``.hydra/`` files, then the task, then a ``JobReturn``.

        With Hydra callbacks configured this *is* ``run_job`` (callbacks see every job, with
        its full config). Without, the same files are written directly from the job's plain
        hydra node: ``run_job`` copies and masks the whole config several times per job
        (~0.1 s), which in a fused sweep of tiny models costs more than the training.
        """
        if self.launcher.config.hydra.callbacks:
            return run_job(hydra_context=self.launcher.hydra_context, task_function=task, config=job.sweep_config(),
                           job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir", configure_logging=False)

        job.run_dir.mkdir(parents=True, exist_ok=True)
        write_hydra_files(str(job.run_dir), job.hydra.get("output_subdir"), job.hydra_files())
        ret = _job_return(job)
        with _env_set(job.hydra["job"].get("env_set") or {}):
            try:
                ret.return_value = task(job.cfg)
                ret.status = JobStatus.COMPLETED
            except Exception as exc:  # noqa: BLE001 - as run_job: the failure is the job's return
                ret.return_value = exc
                ret.status = JobStatus.FAILED
        return ret

    def _member_wandb(self, job: Job) -> str:
        """``member`` when the job gets its own W&B run, else ``none``."""
        return "member" if self.launcher.wandb == "member" and job.cfg.logger.name == "wandb" else "none"

    @property
    def _wandb_group(self) -> str:
        """The W&B group of this sweep's runs: its folder, as configured (``hydra.sweep.dir``)."""
        return str(self.launcher.config.hydra.sweep.dir)

    def _wandb_identity(self, job: Job) -> dict[str, Any]:
        """The job's W&B group (the sweep), name (its overrides that vary in the sweep) and tags."""
        return run_identity(job.overrides, self.launcher.varying_keys, self._wandb_group)

    def _queue_member(self, job: Job) -> None:
        member_wandb = self._member_wandb(job)
        identity = self._wandb_identity(job)
        if self.writer is not None:
            self.writer.member(job.run_dir, OmegaConf.to_container(job.cfg, resolve=True), member_wandb, identity)
        elif job.cfg.output.plots or member_wandb == "member":
            write_member_extras(str(job.run_dir), OmegaConf.to_container(job.cfg, resolve=True), member_wandb, identity)

    @functools.cached_property
    def _compile_groups(self) -> list[tuple[str, list[Job]]]:
        """Every compile group of the sweep (all its jobs, stored earlier or not), by key."""
        groups = plan_groups([j.cfg for j in self.jobs])
        return [(g.key, [self.jobs[i] for i in g.members]) for g in groups]

    def _queue_group_runs(self) -> None:
        """Queue one W&B run (``hydra.launcher.wandb=group``) for each compile group whose
        members all have a stored record by now, once per command.

        A group run covers the whole compile group (every chunk, members stored by earlier,
        interrupted commands too) and lives in ``<sweep>/wandb-groups/<group key>/``: its
        ``wandb/`` folder and its marker. Its run id is fixed by that folder and the members'
        config hashes, so a rerun after a kill replaces a half-written run, and a group whose
        run finished is not logged again (:func:`harness.track.wandb_logger.log_group`).
        """
        if self.launcher.wandb != "group":
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

    # -- SLURM (backend=slurm) --------------------------------------------------------------

    def _attach(self, pending: list[Job]) -> tuple[list[_Submitted], list[Job]]:
        """Split off jobs that an earlier command submitted and that are still pending or
        running on the cluster (``slurm_jobs.json``): they are waited for, not resubmitted."""
        self.baseline = {job.idx: _result_mtime(job) for job in pending}  # stale records do not count
        self.hashes: dict[int, str] = {}
        if not self.launcher.resume or not self.tracker.jobs:
            return [], pending
        by_slurm_job: dict[tuple[str, str], list[Job]] = {}
        for job in pending:
            entry = self.tracker.get(job.idx)
            if entry and entry.get("config_hash") == self._hash(job):
                by_slurm_job.setdefault((str(entry["folder"]), str(entry["slurm_job_id"])), []).append(job)
        if not by_slurm_job:
            return [], pending
        handles = {key: remote.slurm_job(*key) for key in by_slurm_job}
        remote.refresh_states(next(iter(handles.values())))  # one sacct call for all of them
        earlier = [_Submitted(handle, by_slurm_job[key], f"SLURM job {key[1]} (submitted earlier)", earlier=True)
                   for key, handle in handles.items() if remote.in_flight(handle)]
        taken = {job.idx for s in earlier for job in s.jobs}
        if earlier:
            log.info(f"{len(taken)} jobs are still pending or running in SLURM jobs "
                     f"{', '.join(s.handle.job_id for s in earlier)} from an earlier command; "
                     "waiting for them instead of submitting them again")
        return earlier, [job for job in pending if job.idx not in taken]

    def _execute_slurm(self, chunks: list[_Chunk], earlier: list[_Submitted]) -> None:
        self.stats["chunks"] = len(chunks)
        submitted = self._submit(chunks) if chunks else []
        self.stats["submitted"], self.stats["earlier"] = len(submitted), len(earlier)
        waiting = earlier + (submitted if self.launcher.wait else [])
        if waiting:
            self._wait(waiting)
        if not self.launcher.wait:
            for s in submitted:
                for job in s.jobs:
                    self.returns[job.idx] = _submitted_return(job)
                    self.not_stored.add(job.idx)
            if submitted:
                self._tell_how_to_collect(submitted)
        self._queue_group_runs()  # here, from the records the SLURM jobs stored

    def _submit(self, chunks: list[_Chunk]) -> list[_Submitted]:
        """One SLURM job per chunk, recorded in ``slurm_jobs.json`` as soon as it is submitted."""
        name = str(self.launcher.config.hydra.job.name)
        from harness.train.checkpoint import every

        # With checkpoints, a job that times out is requeued (submitit) and resumes from them.
        executor = remote.executor(self.launcher.submitit_folder, self.launcher.slurm, name,
                                   checkpoints=any(every(job.cfg) for chunk in chunks for job in chunk.jobs))
        submitted: list[_Submitted] = []
        for chunk in chunks:
            several = chunk.count > 1
            where = f"group {chunk.group + 1}/{chunk.groups}"
            where += f" chunk {chunk.index + 1}/{chunk.count}" if several else ""
            executor.update_parameters(name=f"{name}-g{chunk.group + 1}" + (f"c{chunk.index + 1}" if several else ""))
            spec = self._chunk_spec(chunk)
            try:
                handle = executor.submit(remote.run_chunk, spec)
            except Exception as exc:  # noqa: BLE001 - sbatch refused (partition, limits, ...)
                if os.environ.get("HYDRA_FULL_ERROR") == "1":
                    raise
                detail = " ".join(str(exc).split())
                message = f"error: submitting {where} to SLURM failed: {type(exc).__name__}: {detail}"
                if submitted:
                    message += (f" (SLURM jobs {', '.join(s.handle.job_id for s in submitted)} were submitted "
                                "before and keep running; rerun the command to collect them)")
                print(message, file=sys.stderr)
                raise SystemExit(1)
            self.tracker.record({job.idx: {"slurm_job_id": handle.job_id, "folder": self.launcher.submitit_folder,
                                           "config_hash": self._hash(job)} for job in chunk.jobs})
            label = f"SLURM job {handle.job_id} ({where}, {len(chunk.jobs)} jobs)"
            submitted.append(_Submitted(handle, chunk.jobs, label))
        log.info(f"submitted {len(submitted)} SLURM jobs for {sum(len(c.jobs) for c in chunks)} jobs: "
                 + ", ".join(s.label[len("SLURM job "):] for s in submitted))
        return submitted

    def _chunk_spec(self, chunk: _Chunk) -> dict[str, Any]:
        """Everything the SLURM job needs, as plain data (see :func:`harness.sweep.remote.train_chunk`)."""
        members = []
        for job in chunk.jobs:
            output_subdir, files = _hydra_files(job)
            members.append({"idx": job.idx, "run_dir": str(job.run_dir), "overrides": list(job.overrides),
                            "cfg": OmegaConf.to_container(job.cfg, resolve=True), "hydra_files": files,
                            "output_subdir": output_subdir, "wandb": self._member_wandb(job),
                            "wandb_identity": self._wandb_identity(job)})
        return {"members": members, "pad_to": chunk.pad_to, "checkpoint_root": str(self.sweep_dir)}

    def _wait(self, waiting: list[_Submitted]) -> None:
        """Poll until every SLURM job has ended: members done (result files) and job states
        on a progress bar; then one return per job from its stored result."""
        left = {job.idx: job for s in waiting for job in s.jobs}
        started, refreshed = time.monotonic(), float("-inf")
        with _progress(self.launcher.progress, len(left)) as progress:
            try:
                while True:
                    for idx, job in list(left.items()):
                        if self._new_result(job) is not None:
                            del left[idx]
                            progress.advance(1)
                    now = time.monotonic()
                    if now - refreshed >= (STATE_POLL_S if now - started < 60 else STATE_POLL_LATER_S):
                        remote.refresh_states(waiting[0].handle)  # one sacct call for all jobs
                        refreshed = now
                    for s in waiting:
                        if not s.done and remote.ended(s.handle):
                            s.done = True
                            self._finish(s)
                            for job in s.jobs:
                                if left.pop(job.idx, None) is not None:
                                    progress.advance(1)
                    running = [s for s in waiting if not s.done]
                    if not running:
                        progress.describe(f"SLURM jobs {len(waiting)}/{len(waiting)} done")
                        break
                    states = Counter(remote.state(s.handle).lower() for s in running)
                    progress.describe(f"SLURM jobs {len(waiting) - len(running)}/{len(waiting)} done, "
                                      + ", ".join(f"{n} {state}" for state, n in sorted(states.items())))
                    time.sleep(POLL_S)
            except KeyboardInterrupt:
                log.warning("stopped waiting; the SLURM jobs keep running. The same command collects them:\n  "
                            + _collect_command(self.sweep_dir))
                raise
        for s in waiting:
            for job in s.jobs:
                if job.idx in self.returns:
                    continue
                result = self._new_result(job)
                if result is None:
                    self.returns[job.idx] = self._store_failed(job, RuntimeError(f"{s.label} ended without a result"))
                    continue
                self.stats["diverged"] += result.get("status") == "diverged"
                self.stats["failed"] += result.get("status") == "failed"
                self.returns[job.idx] = _stored_return(job, result)

    def _finish(self, s: _Submitted) -> None:
        """A SLURM job has ended: take its timings, or log its error and mark its jobs that
        have no result as failed."""
        try:
            out = s.handle.result()
        except Exception as exc:  # noqa: BLE001 - one failed SLURM job must not sink the sweep

            state = remote.state(s.handle)
            state = "" if state == "FINISHED" else f" (state {state})"  # FINISHED: an exception in the job
            log.error(f"{s.label} failed{state}; its jobs without a result are marked failed. submitit says: {exc}")
            lines = [ln for ln in str(exc).splitlines()
                     if ln.strip() and not ln.startswith((" ", "-", "\t", "You can check", "Traceback", "Job "))]
            reason = lines[-1] if lines else type(exc).__name__
            error = RuntimeError(f"{s.label} failed{state}: {reason}; logs: {s.handle.paths.stderr}")
            for job in s.jobs:
                if self._new_result(job) is None:
                    self.returns[job.idx] = self._store_failed(job, error)
            return
        self.stats["compile_s"] += float(out.get("compile_s", 0.0))
        self.stats["run_s"] += float(out.get("run_s", 0.0))
        self.stats["members"] += len(out.get("statuses", {}))
        log.info(f"{s.label} done on {out.get('host')}: compile {out.get('compile_s', 0):.1f}s "
                 f"run {out.get('run_s', 0):.1f}s, in the job {out.get('wall_s', 0):.1f}s")

    def _hash(self, job: Job) -> str:
        from harness.results import config_hash

        if job.idx not in self.hashes:
            self.hashes[job.idx] = config_hash(job.cfg)
        return self.hashes[job.idx]

    def _new_result(self, job: Job) -> Optional[dict[str, Any]]:
        """The job's result if one of its config was stored since this command started."""
        mtime = _result_mtime(job)
        if mtime is None or mtime == self.baseline.get(job.idx):
            return None
        result = trusted(job.run_dir)  # its hash recomputed from its config, as resume does
        return result if result and result.get("config_hash") == self._hash(job) else None

    def _tell_how_to_collect(self, submitted: list[_Submitted]) -> None:
        ids = [s.handle.job_id for s in submitted]
        n = sum(len(s.jobs) for s in submitted)
        log.info(f"not waiting (hydra.launcher.wait=false): {n} jobs are in SLURM jobs {', '.join(ids)} "
                 f"(squeue -j {','.join(ids)}); their results land in {self.sweep_dir}/<job num>/")
        log.info("collect them with the same command (it skips finished jobs, waits for the SLURM jobs still "
                 "pending or running, and submits only what failed):\n  " + _collect_command(self.sweep_dir))

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

    def _summarize(self) -> None:
        s = self.stats
        rate = s["members"] / s["wall_s"] if s["wall_s"] > 0 else float("nan")
        if self.launcher.backend == "slurm":
            earlier = f", {s['earlier']} from an earlier command" if s["earlier"] else ""
            waited = "" if self.launcher.wait or not s["submitted"] else " (not waited for)"
            log.info(
                f"fused sweep on SLURM: {len(self.jobs)} jobs | {s['groups']} groups in {s['chunks']} chunks | "
                f"SLURM jobs: {s['submitted']} submitted{waited}{earlier} | {s['members']} trained, "
                f"{s['skipped']} skipped | diverged {s['diverged']}, failed {s['failed']} | "
                f"compile {s['compile_s']:.1f}s run {s['run_s']:.1f}s (in the jobs) wall {s['wall_s']:.1f}s"
            )
            return
        log.info(
            f"fused sweep: {len(self.jobs)} jobs | {s['groups']} groups in {s['chunks']} chunks | "
            f"{s['members']} trained, {s['skipped']} skipped | diverged {s['diverged']}, failed {s['failed']} | "
            f"compile {s['compile_s']:.1f}s run {s['run_s']:.1f}s store {s['store_s']:.1f}s wall {s['wall_s']:.1f}s | "
            f"{rate:.1f} members/s | waited for compiles {s['compile_wait_s']:.1f}s (the rest overlapped)"
        )


class _JobReturn(JobReturn):
    """A ``JobReturn`` whose ``hydra_cfg`` (the job's hydra node as a ``DictConfig``, ~60 ms
    to build) is made on first access: nothing in a plain multirun reads it."""

    _job: Optional[Job] = None

    @property
    def hydra_cfg(self) -> Optional[DictConfig]:
        if self._hydra_cfg is None and self._job is not None:
            self._hydra_cfg = OmegaConf.create({"hydra": self._job.hydra})
        return self._hydra_cfg

    @hydra_cfg.setter
    def hydra_cfg(self, value: Optional[DictConfig]) -> None:
        self._hydra_cfg = value


def _job_return(job: Job) -> JobReturn:
    ret = _JobReturn(overrides=list(job.overrides), cfg=job.cfg, working_dir=os.getcwd(),
                     task_name=str(job.hydra["job"]["name"]))
    ret._job = job
    return ret


@contextlib.contextmanager
def _env_set(env: dict[str, Any]):
    """``hydra.job.env_set`` while a job's task runs (as ``run_job`` does)."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update({str(k): str(v) for k, v in env.items()})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _stored_return(job: Job, result: dict[str, Any]) -> JobReturn:
    """A JobReturn for a job skipped on resume, carrying its stored metrics."""
    ret = _job_return(job)
    ret.status = JobStatus.COMPLETED
    ret.return_value = _objective(job, result)
    return ret


def _objective(job: Job, result: dict[str, Any]) -> Any:
    """A job's return value: its metrics, or the one a sweeper optimises (``optimized_metric``)."""
    from harness.results import objective_value

    return objective_value(job.cfg, result.get("metrics") or {})


def _submitted_return(job: Job) -> JobReturn:
    """A JobReturn for a job submitted to SLURM and not waited for: completed, no value."""
    ret = _stored_return(job, {})
    ret.return_value = None
    return ret


def _result_mtime(job: Job) -> Optional[int]:
    try:
        return (job.run_dir / store.RESULT_FILE).stat().st_mtime_ns
    except OSError:
        return None


def _hydra_files(job: Job) -> tuple[Optional[str], dict[str, str]]:
    """The text of the job's ``.hydra/`` files as Hydra's ``run_job`` writes them
    (``config.yaml``, ``hydra.yaml`` with ``hydra.runtime.output_dir`` set, ``overrides.yaml``),
    and the subfolder they go to (``hydra.output_subdir``; None: no files)."""
    subdir = job.hydra.get("output_subdir")
    return (None if subdir is None else str(subdir)), job.hydra_files()


def _collect_command(sweep_dir: Path) -> str:
    """This command line again, into the same sweep folder (resolved, so ``${now:...}`` does
    not make a new one)."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if spec is not None and spec.name:
        module = spec.name[: -len(".__main__")] if spec.name.endswith(".__main__") else spec.name
        python = shutil.which("python")
        same = python is not None and os.path.realpath(python) == os.path.realpath(sys.executable)
        head = ["python" if same else sys.executable, "-m", module]
    else:
        program = sys.argv[0]
        found = shutil.which(os.path.basename(program))
        same = found is not None and os.path.exists(program) and os.path.samefile(found, program)
        head = [os.path.basename(program) if same else program]
    args = [a for a in sys.argv[1:] if a.split("=", 1)[0].lstrip("+") != "hydra.sweep.dir"]
    return " ".join(shlex.quote(a) for a in head + args + [f"hydra.sweep.dir={sweep_dir}"])
