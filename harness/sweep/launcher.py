"""The fused Hydra launcher: every compile group of a multirun as one ``jit(vmap(train))``.

    harness-train -m optim.lr=0.001,0.01,0.1 train.batch_size=10,30 seed='range(8)'

Hydra's sweeper expands the overrides into jobs as usual. This module is the adapter between
Hydra and the harness: it takes the ``hydra.launcher.*`` settings (checked, one line for a
bad one), composes every job's config (:mod:`harness.sweep.compose`, quasi-random searches
expanded by :mod:`harness.sweep.search`), validates all of them before any compute, refuses
or moves aside records of other configs in the sweep's folders (:mod:`harness.folders`), and
hands the jobs to a launch:

- :class:`harness.sweep.local.LocalLaunch` (``backend=local``) trains each chunk of a compile
  group as one program in this process;
- :class:`harness.sweep.slurm.SlurmLaunch` (``backend=slurm``) submits each chunk as one
  SLURM job.

Both resume, plan and store alike (:class:`harness.sweep.launch.Launch`), and every job ends
with its usual folder, ``.hydra/`` files and ``JobReturn`` (:mod:`harness.sweep.hydra_job`).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from hydra.core.utils import JobReturn, configure_log, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

from harness.config import CONF_DIR
from harness.errors import ConfigError, DataError
from harness.folders import Planned, guard
from harness.hydra_errors import one_line
from harness.sweep.compose import ComposedJob, SweepComposer
from harness.sweep.local import LocalLaunch
from harness.sweep.search import as_overrides, draw
from harness.sweep.slurm import SlurmLaunch
from harness.sweep.writer import MEMBER_RUNS_LIMIT, MODES
from harness.track.wandb_logger import varying_keys

# Hydra imports this module whenever it discovers plugins (every Hydra app, --help), before
# harness.runtime.setup_jax has run: what imports JAX (the job lifecycle, results) is
# imported inside the functions that use it.

log = logging.getLogger("harness.fused")

# The batch script's line before srun (as in conf/hydra/launcher/slurm.yaml): jobs get the
# submitter's environment and Python; this re-activates the venv for shells that reset PATH.
SETUP = ('if [ -n "$VIRTUAL_ENV" ] && [ -f "$VIRTUAL_ENV/bin/activate" ]; then . "$VIRTUAL_ENV/bin/activate"; fi',)
BACKENDS = ("local", "slurm")


@dataclasses.dataclass
class FusedLauncherConf:
    """Settings of ``hydra/launcher=fused`` (``hydra.launcher.<key>=...``)."""

    _target_: str = "hydra_plugins.harness_fused.fused_launcher.FusedLauncher"
    max_members: Optional[int] = None  # members per chunk; default: estimated from memory
    memory_fraction: float = 0.5  # share of free memory a chunk may use (auto chunking)
    wandb: str = "auto"  # auto: member up to wandb_members members, else group | member: one W&B run per job | group: one per compile group | none
    wandb_members: int = MEMBER_RUNS_LIMIT  # wandb=auto: the most members that get a W&B run each
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

    def __init__(self, max_members: Optional[int] = None, memory_fraction: float = 0.5, wandb: str = "auto",
                 wandb_members: int = MEMBER_RUNS_LIMIT,
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
        if isinstance(wandb_members, bool) or not isinstance(wandb_members, int) or wandb_members < 0:
            raise ConfigError("hydra.launcher.wandb_members", wandb_members, "an integer >= 0")
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
        self.wandb_members = wandb_members
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
            started = time.perf_counter()
            jobs = self._compose_all(job_overrides, initial_job_idx)
            composed = time.perf_counter()
            self._validate(jobs)
            prepared = {"compose_s": composed - started, "validate_s": time.perf_counter() - composed}
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
        launch = (SlurmLaunch if self.backend == "slurm" else LocalLaunch)(self, jobs)
        launch.stats.update(prepared)
        return launch.execute()


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
