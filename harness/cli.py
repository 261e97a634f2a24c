"""``harness-train`` / ``python -m harness.train``: one training run per Hydra job.

    harness-train                                  # Playground defaults (spiral, FNN 8-8 tanh)
    harness-train data=circle model.activation=linear
    harness-train -m optim.lr=0.01,0.1 seed=0,1    # a multirun
    harness-train --cfg job                        # print the composed config

A job validates its config before any compute; a bad value prints one line naming the key,
the value and what is allowed, exits with status 2 and leaves no files behind.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from harness.config import CONF_PATH, register_configs
from harness.errors import ConfigError, DataError
from harness.hydra_errors import EXIT_CONFIG_ERROR, EXIT_INTERRUPTED
from harness.runtime import console_command
from harness.store import RESULT_FILE

log = logging.getLogger("harness")


def fail(error: Exception, run_dir: str | None = None) -> None:
    """Report a user error on one line, remove what this job created, exit non-zero."""
    if run_dir:
        remove_job_dir(run_dir)
    if os.environ.get("HYDRA_FULL_ERROR") == "1":
        raise error
    print(f"error: {error}", file=sys.stderr)
    raise SystemExit(EXIT_CONFIG_ERROR)


def remove_job_dir(run_dir: str) -> None:
    """Delete a job folder that holds only what Hydra put there before the job ran."""
    path = Path(run_dir)
    if not path.is_dir():
        return
    hydra_only = all(p.name == ".hydra" or p.suffix == ".log" for p in path.iterdir())
    if hydra_only:
        logging.shutdown()
        shutil.rmtree(path, ignore_errors=True)
        # and the empty folders Hydra made above it (outputs/<date>/), up to the working folder
        cwd, parent = Path.cwd().resolve(), path.resolve().parent
        while cwd in parent.parents:
            try:
                parent.rmdir()  # only if empty
            except OSError:
                break
            parent = parent.parent


def run_job(cfg: DictConfig) -> dict[str, Any] | float:
    """Validate, train (a group of one), store, plot and track one job; return its metrics
    (only ``metrics[optimized_metric]`` when that key is set: a sweeper's objective)."""
    from harness.runtime import setup_jax

    try:
        setup_jax()  # again here: launchers such as submitit call this function without main()
    except ConfigError as exc:  # a JAX_PLATFORMS this machine cannot start
        fail(exc)
    # Imported here, after setup_jax: they import JAX, whose flags setup_jax sets.
    from harness import job
    from harness.results import objective_value
    from harness.sweep.progress import Display
    from harness.sweep.writer import plot_member
    from harness.track.live import live_run
    from hydra.types import RunMode

    hydra_cfg = HydraConfig.get()
    run_dir = hydra_cfg.runtime.output_dir
    # As typed: reading them through OmegaConf would resolve an override such as
    # optim.lr='${oc.env:UNSET}' here, before validation can name it.
    overrides = OmegaConf.to_container(hydra_cfg.overrides.task, resolve=False)
    try:
        dataset = job.check(cfg)
    except (ConfigError, DataError) as exc:
        fail(exc, run_dir)
    stored = job.stored_result(run_dir, cfg)
    if stored is not None:  # rerun into the same folder (hydra.run.dir): the record is complete
        log.info(f"already stored, not trained again: {Path(run_dir) / RESULT_FILE}")
        return objective_value(cfg, stored["metrics"])
    # Trained live, in segments (checkpoints in the job's folder with train.checkpoint_every: a
    # job requeued by SLURM (hydra/launcher=slurm) or rerun into the same folder resumes).
    # After each, the display shows the epoch and metrics and the W&B run gets the new rows.
    identity = wandb_identity(hydra_cfg, overrides)
    live = live_run(run_dir, cfg, identity)
    with Display(True, 1) as progress, live or contextlib.nullcontext():
        _, (result,) = job.run([cfg], [run_dir], [overrides], run_dir, dataset=dataset, live=True)
        progress.advance(1)
    plot_member(run_dir, cfg, result, multirun=hydra_cfg.mode == RunMode.MULTIRUN)  # hydra/launcher=basic etc.
    if live is not None:  # None: logger=none, or a finished W&B run already in the folder (kept)
        live.finish(result)  # the W&B run's media, summary and artifact; finished
    log.info(summary_line(result, run_dir))
    return objective_value(cfg, result["metrics"])


def wandb_identity(hydra_cfg, overrides: list[str]) -> dict[str, Any]:
    """A job's W&B group (its sweep's folder when Hydra runs it in a multirun), name (its
    overrides; this launcher sees one job at a time) and tags."""
    from hydra.types import RunMode

    from harness.track.wandb_logger import run_identity

    group = str(hydra_cfg.sweep.dir) if hydra_cfg.mode == RunMode.MULTIRUN else None
    return run_identity(overrides, None, group)


def summary_line(result: dict[str, Any], run_dir: str) -> str:
    """One line per run: status, headline metrics, timings, backend and devices, and where the record is."""
    from harness.sweep.ending import backend_text

    m = result["metrics"]
    shown = [k for k in ("train/loss", "test/loss", "test/accuracy", "test/mse") if k in m]
    metrics = " ".join(f"{k}={m[k]:.4g}" for k in shown)
    t = result["timings"]
    return (
        f"{result['status']}: {metrics} | {result['budget']['kind']}={result['budget']['size']} "
        f"({result['budget']['steps']} steps) | compile {t['compile_s']:.2f}s run {t['run_s']:.2f}s "
        f"| {backend_text(result)} | {Path(run_dir) / RESULT_FILE}"
    )


@hydra.main(config_path=CONF_PATH, config_name="config", version_base="1.3")
def _hydra_main(cfg: DictConfig) -> dict[str, Any] | float:
    return run_job(cfg)


def main() -> None:
    """Console entry point."""
    from harness.runtime import setup_jax

    try:
        setup_jax()  # before anything imports jax: XLA flags are read when the backend starts
    except ConfigError as exc:
        fail(exc)
    logging.getLogger("jax").setLevel(logging.WARNING)  # no "Unable to initialize backend 'tpu'"
    from harness import hydra_errors
    from harness.sweep.search import register_hydra_functions

    hydra_errors.install()
    hydra_errors.check_override_keys(sys.argv[1:])
    register_configs()
    register_hydra_functions()
    from harness.folders import install_run_guard

    install_run_guard()  # a single run never replaces a stored record of another config
    try:
        _hydra_main()
    except KeyboardInterrupt:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        interrupted()


command = console_command(main)  # harness-train and python -m harness.train


def interrupted() -> None:
    """Ctrl-C: one line and exit status 130 (128 + SIGINT), no traceback. Every record is
    written whole (a temp file renamed), so what is stored is complete."""
    print("interrupted: the results stored so far are complete; rerun the same command to continue "
          "(finished jobs are skipped)", file=sys.stderr)
    raise SystemExit(EXIT_INTERRUPTED)


if __name__ == "__main__":
    command()
