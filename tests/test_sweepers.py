"""Hydra's sweepers over the fused launcher: ``optimized_metric`` names the number each job
returns (Optuna, Ax, Nevergrad need one float), checked against the metrics runs store before
any compute; a real hydra-optuna-sweeper study (slow) ends with the stored results' best."""

from __future__ import annotations

import math

import pytest
import yaml
from conftest import compose_config, run_cli

from harness import store
from harness.errors import ConfigError
from harness.results import make_result, metric_names, objective_value
from harness.data.cache import dataset_for
from harness.train.engine import run_group
from harness.validate import validate_config, validate_with_data

TINY = ["data=xor", "data.num_samples=40", "train.epochs=2", "model.hidden=[2]"]


def test_metric_names_are_the_metrics_a_run_stores():
    """What validation accepts for optimized_metric is exactly what result.json gets."""
    cfg = compose_config(TINY + ["data.val_fraction=0.25"])
    dataset = dataset_for(cfg)
    group = run_group([cfg], dataset=dataset)
    result = make_result(cfg, group.outputs[0], group.budget, overrides=[], timings={})
    assert metric_names(cfg, dataset) == set(result["metrics"])
    assert "val/accuracy" in result["metrics"]


def test_optimized_metric_that_runs_do_not_store_is_one_line_error():
    cfg = compose_config(TINY + ["optimized_metric=val/accuracy"])  # no validation split
    validate_config(cfg)
    with pytest.raises(ConfigError) as error:
        validate_with_data(cfg, dataset_for(cfg))
    message = str(error.value)
    assert message.startswith("optimized_metric='val/accuracy' is not allowed: null or a metric these runs store: ")
    assert "test/accuracy" in message and "\n" not in message
    ok = compose_config(TINY + ["data.val_fraction=0.25", "optimized_metric=val/accuracy"])
    validate_with_data(ok, dataset_for(ok))


def test_a_job_returns_its_optimized_metric_as_a_float():
    metrics = {"val/accuracy": 0.75, "test/accuracy": 0.5}
    assert objective_value(compose_config(["optimized_metric=val/accuracy"]), metrics) == 0.75
    assert objective_value(compose_config([]), metrics) is metrics  # no key: every metric, as before
    assert math.isnan(objective_value(compose_config(["optimized_metric=val/accuracy"]), {}))  # a failed job


@pytest.mark.slow  # a real Optuna study of 6 trials in 3 fused batches, in a subprocess (~20 s)
def test_optuna_sweeper_over_the_fused_launcher_finds_the_stored_best(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper", reason="pip install hydra-optuna-sweeper (dev extra)")
    sweep_dir = tmp_path / "study"
    proc = run_cli(["-m", "hydra/sweeper=optuna", "hydra.sweeper.n_trials=6", "hydra.sweeper.n_jobs=2",
                    "hydra.sweeper.direction=maximize", "hydra.sweeper.sampler.seed=0",
                    "optim.lr=interval(0.001,1.0)", "optimized_metric=val/accuracy", "data=spiral",
                    "data.val_fraction=0.2", "train.epochs=3", "logger=none", "output.plots=false",
                    "hydra.launcher.progress=false", f"hydra.sweep.dir={sweep_dir}"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    output = proc.stdout + proc.stderr
    # n_jobs is the fusion width: each batch of 2 trials ran as one fused launch.
    assert output.count("fused sweep: 2 jobs") == 3, output[-3000:]
    study = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    results = [store.read_result(d) for d in sorted(store.find_results(sweep_dir))]
    assert len(results) == 6
    stored = {r["config"]["optim"]["lr"]: r["metrics"]["val/accuracy"] for r in results}
    assert study["best_value"] == max(stored.values())
    assert stored[study["best_params"]["optim.lr"]] == study["best_value"]

