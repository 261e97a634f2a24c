"""Fused groups as SLURM jobs: what runs on the cluster, and the submitter's bookkeeping.

With ``hydra.launcher.backend=slurm`` the fused launcher composes, validates, resumes, plans
and chunks exactly as it does locally, then submits each chunk as one SLURM job through
submitit. That job runs :data:`run_chunk` (:func:`train_chunk`), which gets plain data only (the members' resolved
configs as dicts, their folders, overrides and the text of their ``.hydra/`` files), never a
live Hydra object, and writes each member's folder exactly as a local run does.

The submitter keeps ``<sweep dir>/slurm_jobs.json``, which maps each job number to the SLURM
job that trains it. A rerun of the same multirun skips finished jobs (resume) and waits for
jobs still pending or running on the cluster instead of submitting them again.

This module is imported on the cluster node by unpickling :data:`run_chunk`: it imports
nothing heavy at module level, so :func:`harness.runtime.setup_jax` runs before JAX starts.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import warnings
from pathlib import Path
from typing import Any, Optional

log = logging.getLogger("harness.fused")

TRACK_FILE = "slurm_jobs.json"
# SLURM states of a job that may still write results (anything else has ended).
ACTIVE_STATES = frozenset({
    "PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED", "REQUEUE_FED",
    "REQUEUE_HOLD", "RESIZING", "SIGNALING", "STAGE_OUT", "READY", "PREEMPTED",
})


# -- on the cluster -----------------------------------------------------------------------


def write_hydra_files(run_dir: str, output_subdir: Optional[str], files: dict[str, str]) -> None:
    """Write a job's ``.hydra/`` files from the text the launcher composed (as ``run_job`` does)."""
    if output_subdir is None:  # hydra.output_subdir=null: Hydra writes none either
        return
    from harness.store import write_text_atomic

    folder = Path(run_dir) / output_subdir
    for name, text in files.items():
        write_text_atomic(folder / name, text)


def train_chunk(spec: dict[str, Any]) -> dict[str, Any]:
    """Train one chunk of a compile group and store every member (runs in the SLURM job).

    ``spec`` holds plain data: ``members`` (each with ``idx``, ``run_dir``, ``cfg`` (the
    resolved config as a dict), ``overrides``, ``hydra_files``, ``output_subdir`` and
    ``wandb`` (member | none)), ``pad_to`` and ``checkpoint_root`` (the sweep folder: with
    ``train.checkpoint_every`` set the chunk saves checkpoints under it and, started again,
    resumes from them). Returns the members' statuses and the chunk's timings. W&B group runs
    (``hydra.launcher.wandb=group``) cover whole compile groups, not chunks: the launcher
    writes them from the stored records once a group's SLURM jobs have ended.
    """
    from harness.runtime import setup_jax

    setup_jax()  # before JAX starts: compile cache, XLA flags (submitit never runs main())
    logging.getLogger("jax").setLevel(logging.WARNING)
    if not logging.getLogger().handlers:
        logging.basicConfig(format="%(levelname)s:%(name)s:%(message)s")
    logging.getLogger("harness").setLevel(logging.INFO)  # e.g. "resumed ... from checkpoint" in the job's log
    started = time.perf_counter()
    from omegaconf import OmegaConf

    from harness import job
    from harness.config import draws_plots
    from harness.sweep.writer import write_member_extras

    members = spec["members"]
    for m in members:
        write_hydra_files(m["run_dir"], m["output_subdir"], m["hydra_files"])
    cfgs = [OmegaConf.create(m["cfg"]) for m in members]
    root, pad_to = spec.get("checkpoint_root"), int(spec["pad_to"])
    # As the local launcher: records only once the rest is on disk, checkpoints dropped after.
    group, results = job.run(cfgs, [m["run_dir"] for m in members], [m["overrides"] for m in members], root,
                             pad_to=pad_to)
    statuses = {m["idx"]: result["status"] for m, result in zip(members, results)}
    stored_s = time.perf_counter() - started
    # Plots and W&B runs come after every record is stored: a failure there loses no result.
    for m in members:
        if draws_plots(m["cfg"]["output"]["plots"], multirun=True) or m["wandb"] == "member":
            try:
                write_member_extras(m["run_dir"], m["cfg"], m["wandb"], m.get("wandb_identity"))
            except Exception as exc:  # noqa: BLE001 - extras never fail the job
                warnings.warn(f"writing extras for {m['run_dir']} failed: {exc}", stacklevel=1)
    return {
        "statuses": statuses,
        "compile_s": group.compile_s,
        "run_s": group.run_s,
        "compiled": group.compiled,
        "devices": group.devices,
        "stored_s": stored_s,
        "wall_s": time.perf_counter() - started,
        "host": socket.gethostname(),
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
    }


class RunChunk:
    """The callable a SLURM job runs: :func:`train_chunk`, requeued on preemption or timeout.

    submitit calls ``checkpoint(spec)`` when the job gets its signal (USR2, sent
    ``signal_delay_s`` before the time limit, or by ``scancel --signal=USR2``) and requeues
    what it returns: the same call. The requeued job restores the chunk from its last
    checkpoint (``train.checkpoint_every``), or starts it again without one. How many
    timeouts are requeued is the executor's ``max_num_timeout`` (see :func:`executor`);
    preemptions always are.
    """

    def __call__(self, spec: dict[str, Any]) -> dict[str, Any]:
        return train_chunk(spec)

    def checkpoint(self, spec: dict[str, Any]):
        import submitit

        return submitit.helpers.DelayedSubmission(self, spec)


run_chunk = RunChunk()  # what the launcher submits (one SLURM job per chunk)


# -- on the submitting side ---------------------------------------------------------------

TIMEOUT_REQUEUES = 3  # with checkpoints: a chunk may run into its time limit this many times


def executor(folder: str, params: dict[str, Any], name: str, checkpoints: bool = False):
    """A submitit executor for SLURM with the launcher's settings (keys as in slurm.yaml).

    With ``checkpoints`` a job that reaches its time limit is requeued (up to
    :data:`TIMEOUT_REQUEUES` times) and resumes from its checkpoint; without, a timeout ends it.
    """
    import submitit

    ex = submitit.AutoExecutor(folder=folder, cluster="slurm",
                               slurm_max_num_timeout=TIMEOUT_REQUEUES if checkpoints else 0)
    generic = {"timeout_min", "cpus_per_task", "gpus_per_node", "mem_gb", "nodes", "tasks_per_node"}
    update: dict[str, Any] = {"name": name, "nodes": 1, "tasks_per_node": 1}
    for key, value in params.items():
        if value is None or (key in ("additional_parameters", "setup") and not value):
            continue
        update[key if key in generic else f"slurm_{key}"] = value
    ex.update_parameters(**update)
    return ex


def slurm_job(folder: str, job_id: str):
    """A submitit handle on a job submitted earlier (by this or an earlier command)."""
    from submitit.slurm.slurm import SlurmJob

    return SlurmJob(folder=folder, job_id=str(job_id))


def refresh_states(job) -> None:
    """One ``sacct`` call for every job this process watches (submitit shares one watcher)."""
    job.watcher.update()


def state(job) -> str:
    """The job's last known SLURM state (no cluster call); FINISHED once its result file is there."""
    if job.paths.result_pickle.exists():
        return "FINISHED"
    return job.watcher.get_state(job.job_id, mode="cache")


def in_flight(job) -> bool:
    """Whether a job submitted earlier may still write results: no result file yet and a
    pending/running state (call :func:`refresh_states` first). A job the cluster has
    forgotten (UNKNOWN) has ended."""
    return not job.paths.result_pickle.exists() and job.watcher.get_state(job.job_id, mode="cache") in ACTIVE_STATES


def ended(job) -> bool:
    """Whether a job has ended: its result file is there, or SLURM says it has (as of the
    last :func:`refresh_states`). UNKNOWN (not yet listed) does not count as ended."""
    if job.paths.result_pickle.exists():
        return True
    current = job.watcher.get_state(job.job_id, mode="cache")
    return current not in ACTIVE_STATES and current != "UNKNOWN"


class Tracker:
    """``<sweep dir>/slurm_jobs.json``: job number -> the SLURM job that trains it.

    Each entry also holds the submitit folder and the job's config hash, so a rerun waits
    only for a job that trains the same config.
    """

    def __init__(self, sweep_dir: Path) -> None:
        self.path = Path(sweep_dir) / TRACK_FILE
        self.jobs: dict[str, dict[str, Any]] = {}
        if self.path.is_file():
            import json

            try:
                self.jobs = dict(json.loads(self.path.read_text()).get("jobs", {}))
            except (OSError, ValueError, AttributeError):
                log.warning(f"{self.path} is unreadable; jobs it tracked are submitted again if unfinished")

    def get(self, idx: int) -> Optional[dict[str, Any]]:
        return self.jobs.get(str(idx))

    def record(self, entries: dict[int, dict[str, Any]]) -> None:
        from harness import store

        self.jobs.update({str(k): v for k, v in entries.items()})
        store.write_json_atomic(self.path, {"jobs": dict(sorted(self.jobs.items(), key=lambda kv: int(kv[0])))})
