"""A launch trained on a SLURM cluster (``hydra.launcher.backend=slurm``).

Resume, plan and chunks are the same as locally (:class:`harness.sweep.launch.Launch`); then
each chunk becomes one SLURM job (submitit) that trains it and writes its members' folders,
``.hydra/`` files and extras exactly as a local run does (:mod:`harness.sweep.remote`). By
default the command waits, with a progress bar, and returns each job's stored result;
``hydra.launcher.wait=false`` returns right after submitting, and the same command run again
collects: finished jobs are skipped, jobs still pending or running are waited for, only what
failed is submitted again (docs/cluster.md).
"""

from __future__ import annotations

import dataclasses
import os
import shlex
import shutil
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, Optional

from harness import store
from harness.config import resolved
from harness.folders import trusted
from harness.sweep import hydra_job, remote
from harness.sweep.compose import ComposedJob as Job
from harness.sweep.launch import Launch, Chunk, log
from harness.sweep.progress import Display as _progress
from harness.sweep.remote import Tracker

POLL_S = 1.0  # seconds between looks at the result files
STATE_POLL_S, STATE_POLL_LATER_S = 2.0, 15.0  # between sacct calls: first minute, later


@dataclasses.dataclass
class _Submitted:
    """A SLURM job that trains some jobs of this sweep."""

    handle: Any  # submitit's SlurmJob
    jobs: list[Job]
    label: str
    earlier: bool = False  # submitted by an earlier command (found in slurm_jobs.json)
    done: bool = False


class SlurmLaunch(Launch):
    """Submit each chunk as one SLURM job; wait for them (or not) and collect their records."""

    def _compute(self, pending: list[Job]) -> None:
        self.tracker = Tracker(self.sweep_dir)
        earlier, pending = self._attach(pending)
        self._submit_and_wait(self._plan(pending), earlier)

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

    def _submit_and_wait(self, chunks: list[Chunk], earlier: list[_Submitted]) -> None:
        """Submit the chunks; wait for them and for ``earlier`` SLURM jobs, unless told not to."""
        self.stats["chunks"] = len(chunks)
        submitted = self._submit(chunks) if chunks else []
        self.stats["submitted"], self.stats["earlier"] = len(submitted), len(earlier)
        waiting = earlier + (submitted if self.launcher.wait else [])
        if waiting:
            self._wait(waiting)
        if not self.launcher.wait:
            for s in submitted:
                for job in s.jobs:
                    self.returns[job.idx] = hydra_job.submitted_return(job)
                    self.not_stored.add(job.idx)
            if submitted:
                self._tell_how_to_collect(submitted)
        self._queue_group_runs()  # here, from the records the SLURM jobs stored

    def _submit(self, chunks: list[Chunk]) -> list[_Submitted]:
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

    def _chunk_spec(self, chunk: Chunk) -> dict[str, Any]:
        """Everything the SLURM job needs, as plain data (see :func:`harness.sweep.remote.train_chunk`)."""
        members = []
        for job in chunk.jobs:
            output_subdir, files = hydra_job.hydra_files(job)
            members.append({"idx": job.idx, "run_dir": str(job.run_dir), "overrides": list(job.overrides),
                            "cfg": resolved(job.cfg), "hydra_files": files,
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
                self.returns[job.idx] = hydra_job.stored_return(job, result)

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

    def _summarize(self) -> None:
        s = self.stats
        earlier = f", {s['earlier']} from an earlier command" if s["earlier"] else ""
        waited = "" if self.launcher.wait or not s["submitted"] else " (not waited for)"
        log.info(
            f"fused sweep on SLURM: {len(self.jobs)} jobs | {s['groups']} groups in {s['chunks']} chunks | "
            f"SLURM jobs: {s['submitted']} submitted{waited}{earlier} | {s['members']} trained, "
            f"{s['skipped']} skipped | diverged {s['diverged']}, failed {s['failed']} | "
            f"compose {s['compose_s']:.1f}s validate {s['validate_s']:.1f}s compile {s['compile_s']:.1f}s run {s['run_s']:.1f}s (in the jobs) wall {s['wall_s']:.1f}s"
        )


def _result_mtime(job: Job) -> Optional[int]:
    try:
        return (job.run_dir / store.RESULT_FILE).stat().st_mtime_ns
    except OSError:
        return None


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
