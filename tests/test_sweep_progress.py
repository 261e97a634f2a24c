"""What a user sees while training runs and when a sweep ends, read from real commands.

A real fused sweep and a real single run (subprocesses, output piped as in CI or a SLURM
log): the phase of each compile group, epochs with the latest metric, no carriage returns,
the sweep's folder, backend and top settings (harness-table's table), and no stray
ResourceWarning from the harness's own processes (the W&B writer included). The terminal
display (a rich bar) is checked in-process on a forced-terminal console.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pytest

from conftest import run_cli

from harness import store
from harness.sweep import progress
from harness.train.loop import Budget


def _wandb_home(tmp_path: Path) -> dict[str, str]:
    return {name: str(tmp_path / "wandb-home" / sub)
            for name, sub in (("WANDB_CACHE_DIR", "cache"), ("WANDB_DATA_DIR", "data"), ("WANDB_CONFIG_DIR", "config"))}


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """A 4-job sweep (2 learning rates x 2 seeds) with W&B runs, plots and segments of one epoch."""
    tmp = tmp_path_factory.mktemp("sweep")
    sweep_dir = tmp / "multirun"
    proc = run_cli(["-m", "optim.lr=0.003,0.3", "seed=0,1", "data=xor", "data.num_samples=60",
                    "model.hidden=[3]", "train.epochs=2", "train.checkpoint_every=1",
                    f"hydra.sweep.dir={sweep_dir}"], cwd=tmp, env=_wandb_home(tmp))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc, sweep_dir


def test_sweep_shows_each_groups_phase_and_epochs_with_the_latest_metric(sweep):
    proc, _ = sweep
    assert "group 1/1 (4 members): compiling" in proc.stdout
    # The last segment always gets its line: the final epoch, the training loss averaged over members.
    assert re.search(r"group 1/1 \(4 members\): epoch 2/2  train/loss [0-9.]+ \(mean of 4\)", proc.stdout), proc.stdout


def test_piped_output_has_no_carriage_returns(sweep):
    proc, _ = sweep
    assert "\r" not in proc.stdout and "\r" not in proc.stderr


def test_sweep_ends_with_its_folder_backend_and_devices(sweep):
    proc, sweep_dir = sweep
    result = store.read_result(store.find_results(sweep_dir)[0])
    devices = result["timings"]["devices"]
    assert f"sweep folder: {sweep_dir} (4 results)" in proc.stdout
    assert f"backend: {result['versions']['backend']}, {devices} device{'s' if devices != 1 else ''}" in proc.stdout


def test_sweep_ends_with_its_settings_ranked_by_the_objective(sweep):
    proc, sweep_dir = sweep
    # No optimized_metric and no validation split: ranked by the training loss, best first.
    means = {}
    for run_dir in store.find_results(sweep_dir):
        result = store.read_result(run_dir)
        means.setdefault(result["config"]["optim"]["lr"], []).append(result["metrics"]["train/loss"])
    ranked = sorted(means, key=lambda lr: np.mean(means[lr]))
    tail = proc.stdout[proc.stdout.index("sweep folder:"):]
    assert "top 2 of 2 settings by train/loss (lower is better), over seeds" in tail
    rows = [line for line in tail.splitlines() if line.startswith("│")]
    assert [float(row.split("│")[1]) for row in rows] == ranked
    best = ranked[0]
    assert f"{np.mean(means[best]):.4f}" in rows[0]  # harness-table's cell: the mean over both seeds
    assert "4 runs from the top 2 settings" in tail


def test_sweep_with_wandb_runs_prints_no_resource_warning(sweep):
    proc, sweep_dir = sweep
    assert len(list(sweep_dir.glob("*/wandb_run_id"))) == 4  # every W&B run was written
    assert "ResourceWarning" not in proc.stderr, proc.stderr[-3000:]


def test_single_run_shows_compiling_then_epochs_before_its_summary(tmp_path):
    proc = run_cli(["data=xor", "data.num_samples=60", "model.hidden=[3]", "train.epochs=2",
                    "train.checkpoint_every=1", "logger=none", "output.plots=false",
                    f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    where = {key: next(i for i, line in enumerate(lines) if key in line)
             for key in ("- compiling", "- epoch 2/2  train/loss", "- ok: ")}
    assert where["- compiling"] < where["- epoch 2/2  train/loss"] < where["- ok: "], proc.stdout
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert f"| {result['versions']['backend']}, 1 device |" in lines[where["- ok: "]]


def test_terminal_display_is_one_bar_whose_description_follows_the_phase():
    from rich.console import Console

    console = Console(file=io.StringIO(), force_terminal=True, width=120)
    with progress.Display(True, 6, console=console) as shown:
        assert shown.bar is not None
        shown.group("group 2/3 (6 members)")
        progress.phase("compiling")  # as the engine reports it
        assert shown.bar.tasks[0].description == "group 2/3 (6 members): compiling"
        shown.segment("epoch 3/10", {"train/loss": 0.5, "val/loss": 0.625}, 6)
        assert shown.bar.tasks[0].description == "group 2/3 (6 members): epoch 3/10  train/loss 0.5  val/loss 0.625 (mean of 6)"
        shown.advance(6)
        assert shown.bar.tasks[0].completed == 6
    progress.phase("compiling")  # no display active: nothing happens


def test_position_counts_the_periods_already_run():
    budget = Budget(kind="epochs", size=10, batch_size=10, steps_per_epoch=4, total_steps=40, eval_every=4)
    assert progress.position(budget, 1) == "epoch 0/10"  # only the evaluation before training
    assert progress.position(budget, 4) == "epoch 3/10"
    steps = Budget(kind="steps", size=100, batch_size=10, steps_per_epoch=30, total_steps=100, eval_every=30)
    assert progress.position(steps, 5) == "step 100/100"  # the last period stops at the budget


def test_latest_metrics_average_the_members_that_did_not_diverge():
    curves = {"train/loss": np.array([[0.9, 0.4], [0.9, np.inf], [0.9, 0.6]]),
              "val/loss": np.array([[1.0, np.nan], [1.0, np.nan], [1.0, np.nan]]),
              "test/loss": np.array([[1.0, 0.1]] * 3)}
    # The padded fourth member is not one of the 3; test metrics are never shown while training.
    assert progress.latest_metrics(curves, 3) == {"train/loss": pytest.approx(0.5)}


@pytest.mark.slow  # a real Optuna study of 4 trials in 2 fused batches, in a subprocess (~15 s)
def test_optuna_study_ends_with_a_table_of_every_trial_ranked_by_the_optimized_metric(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper", reason="pip install hydra-optuna-sweeper (dev extra)")
    import yaml

    study_dir = tmp_path / "study"
    proc = run_cli(["-m", "hydra/sweeper=optuna", "hydra.sweeper.n_trials=4", "hydra.sweeper.n_jobs=2",
                    "hydra.sweeper.direction=maximize", "hydra.sweeper.sampler.seed=0",
                    "optim.lr=interval(0.001,1.0)", "optimized_metric=val/accuracy", "data=spiral",
                    "data.val_fraction=0.2", "train.epochs=3", "logger=none", "output.plots=false",
                    f"hydra.sweep.dir={study_dir}"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # One ending per batch; the last covers every trial launched so far, not just its batch.
    last = proc.stdout[proc.stdout.rindex("sweep folder:"):]
    assert last.startswith(f"sweep folder: {study_dir} (4 results)")
    assert "top 4 of 4 settings by val/accuracy (higher is better), over seeds" in last
    best = yaml.safe_load((study_dir / "optimization_results.yaml").read_text())["best_value"]
    first_row = next(line for line in last.splitlines() if line.startswith("│"))
    assert f"{best:.4f}" in first_row  # the study's best value heads the table
