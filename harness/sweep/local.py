"""A launch trained in this process (``hydra.launcher.backend=local``, the default).

Each chunk trains as one compiled program through the job lifecycle (:mod:`harness.job`)
while the next chunk's program compiles in the background; each member is stored as a Hydra
job; plots and W&B runs go to a background writer process, overlapped with compute.
"""

from __future__ import annotations

import time
from typing import Any

from hydra.core.utils import JobReturn
from omegaconf import DictConfig

from harness import store
from harness.config import draws_plots
from harness.sweep import hydra_job
from harness.sweep.compose import ComposedJob as Job
from harness.sweep.launch import Launch, Chunk, log
from harness.sweep.progress import Display as _progress
from harness.sweep.writer import BackgroundWriter
from harness.track.wandb_logger import already_logged, tracking_enabled


class LocalLaunch(Launch):
    """Train the chunks here, one after another, and store their members."""

    def _compute(self, pending: list[Job]) -> None:
        chunks = self._plan(pending)
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
            no_plots = draws_plots(job.cfg.output.plots, multirun=True) and (not any(job.run_dir.glob("*.png"))
                                                       or bool(store.stale_temps(job.run_dir)))
            if no_run or no_plots:
                missing.append(job)
        return missing

    def _start_writer(self, pending: list[Job]) -> None:
        tracked = self.wandb_runs != "none" and any(j.cfg.logger.name == "wandb" for j in pending)
        needed = tracked or any(draws_plots(j.cfg.output.plots, multirun=True) for j in pending)
        if needed and self.launcher.writer_mode == "background":
            self.writer = BackgroundWriter(wandb=tracked)

    def _precompile(self, chunk: Chunk) -> None:
        """Start compiling a later chunk's program in the background."""
        from harness import job as lifecycle

        try:
            lifecycle.precompile([j.cfg for j in chunk.jobs], self.sweep_dir, pad_to=chunk.pad_to)
        except Exception as exc:  # noqa: BLE001 - the chunk's own run reports any real problem
            log.debug(f"precompiling failed: {exc}")

    def _run_chunk(self, chunk: list[Job], pad_to: int) -> None:
        from harness import job as lifecycle

        self.stats["chunks"] += 1
        # Hydra's run_job writes the files itself when callbacks are configured.
        rendering = None if self.launcher.config.hydra.callbacks else hydra_job.render_files(chunk)
        try:  # run_group, or in segments with checkpoints when train.checkpoint_every is set
            group = lifecycle.train([j.cfg for j in chunk], self.sweep_dir, pad_to=pad_to)
        except Exception as exc:  # noqa: BLE001 - one broken group must not sink the sweep
            group, failure = None, exc
        if rendering is not None:
            rendering.join()
        if group is None:
            log.error(f"group failed ({type(failure).__name__}: {failure}); its {len(chunk)} jobs are marked failed")
            for job in chunk:
                self.returns[job.idx] = self._store_failed(job, failure)
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
            return hydra_job.objective(job, result)

        return self._run_job(job, task)

    def _summarize(self) -> None:
        s = self.stats
        rate = s["members"] / s["wall_s"] if s["wall_s"] > 0 else float("nan")
        log.info(
            f"fused sweep: {len(self.jobs)} jobs | {s['groups']} groups in {s['chunks']} chunks | "
            f"{s['members']} trained, {s['skipped']} skipped | diverged {s['diverged']}, failed {s['failed']} | "
            f"compose {s['compose_s']:.1f}s validate {s['validate_s']:.1f}s compile {s['compile_s']:.1f}s run {s['run_s']:.1f}s store {s['store_s']:.1f}s wall {s['wall_s']:.1f}s | "
            f"{rate:.1f} members/s | waited for compiles {s['compile_wait_s']:.1f}s (the rest overlapped)"
        )
