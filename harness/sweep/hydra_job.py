"""A fused job as Hydra's ``run_job`` would leave it: its folder, ``.hydra/`` files and
``JobReturn``.

The fused launcher trains many jobs in one program, then stores each member as one Hydra
job: sweepers (Optuna, Ax, Nevergrad) read each ``JobReturn``'s value, callbacks see each
job, and each folder holds the ``.hydra/`` files a plain multirun writes.
"""

from __future__ import annotations

import contextlib
import os
import threading
from typing import Any, Callable, Optional

from hydra.core.utils import JobReturn, JobStatus, run_job
from hydra.types import HydraContext
from omegaconf import DictConfig, OmegaConf

from harness.sweep.compose import ComposedJob as Job
from harness.sweep.remote import write_hydra_files


def execute(job: Job, task: Callable[[DictConfig], Any], hydra_context: Optional[HydraContext], *,
        callbacks: bool) -> JobReturn:
    """Run ``task`` (which stores the job's results) as Hydra's ``run_job`` would: the
    job's folder with its ``.hydra/`` files, then the task, then a ``JobReturn``.

    With Hydra callbacks configured (``callbacks``) this *is* ``run_job`` (callbacks see every job, with
    its full config). Without, the same files are written directly from the job's plain
    hydra node: ``run_job`` copies and masks the whole config several times per job
    (~0.1 s), which in a fused sweep of tiny models costs more than the training.
    """
    if callbacks:
        return run_job(hydra_context=hydra_context, task_function=task, config=job.sweep_config(),
                       job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir", configure_logging=False)

    job.run_dir.mkdir(parents=True, exist_ok=True)
    write_hydra_files(str(job.run_dir), job.hydra.get("output_subdir"), job.hydra_files())
    ret = job_return(job)
    with env_set(job.hydra["job"].get("env_set") or {}):
        try:
            ret.return_value = task(job.cfg)
            ret.status = JobStatus.COMPLETED
        except Exception as exc:  # noqa: BLE001 - as run_job: the failure is the job's return
            ret.return_value = exc
            ret.status = JobStatus.FAILED
    return ret


def render_files(jobs: list[Job]) -> threading.Thread:
    """Render the jobs' ``.hydra/`` file texts (:meth:`ComposedJob.hydra_files`) in a started
    background thread, for :func:`execute` to only write them.

    The launcher starts it before a group compiles and trains: XLA releases the GIL while it
    compiles and runs, so the ~1.5 ms of YAML per job is done by then, not after training.
    """
    def render() -> None:
        for job in jobs:
            try:
                job.hydra_files()
            except Exception:  # noqa: BLE001 - execute() renders it again and reports the error
                return

    thread = threading.Thread(target=render, name="hydra-files", daemon=True)
    thread.start()
    return thread


class LazyJobReturn(JobReturn):
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


def job_return(job: Job) -> JobReturn:
    """A fresh return for ``job`` (status and value still to be set)."""
    ret = LazyJobReturn(overrides=list(job.overrides), cfg=job.cfg, working_dir=os.getcwd(),
                     task_name=str(job.hydra["job"]["name"]))
    ret._job = job
    return ret


@contextlib.contextmanager
def env_set(env: dict[str, Any]):
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


def stored_return(job: Job, result: dict[str, Any]) -> JobReturn:
    """A JobReturn for a job skipped on resume, carrying its stored metrics."""
    ret = job_return(job)
    ret.status = JobStatus.COMPLETED
    ret.return_value = objective(job, result)
    return ret


def objective(job: Job, result: dict[str, Any]) -> Any:
    """A job's return value: its metrics, or the one a sweeper optimises (``optimized_metric``)."""
    from harness.results import objective_value

    return objective_value(job.cfg, result.get("metrics") or {})


def submitted_return(job: Job) -> JobReturn:
    """A JobReturn for a job submitted to SLURM and not waited for: completed, no value."""
    ret = stored_return(job, {})
    ret.return_value = None
    return ret


def hydra_files(job: Job) -> tuple[Optional[str], dict[str, str]]:
    """The text of the job's ``.hydra/`` files as Hydra's ``run_job`` writes them
    (``config.yaml``, ``hydra.yaml`` with ``hydra.runtime.output_dir`` set, ``overrides.yaml``),
    and the subfolder they go to (``hydra.output_subdir``; None: no files)."""
    subdir = job.hydra.get("output_subdir")
    return (None if subdir is None else str(subdir)), job.hydra_files()
