"""The batch-size analyses beside small_batch's verdicts (harness.claim.batch)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from harness.claim import batch


def _runs(rows):
    return pd.DataFrame(rows, columns=["train.batch_size", "optim.lr", "seed", "status", "val/accuracy"])


def test_lr_band_keeps_only_learning_rates_with_every_seed_stable_and_near_the_best():
    rows = []
    for seed in range(3):
        rows += [(8, 0.01, seed, "ok", 0.80), (8, 0.1, seed, "ok", 0.90), (8, 1.0, seed, "ok", 0.89)]
        # batch 512: lr 1.0 diverged on one seed (not stable), lr 0.01 too far below the best
        rows += [(512, 0.01, seed, "ok", 0.70), (512, 0.1, seed, "ok", 0.88),
                 (512, 1.0, seed, "diverged" if seed == 0 else "ok", float("nan") if seed == 0 else 0.95)]
    band = batch.stable_lr_band(_runs(rows), "train.batch_size", "val/accuracy", within=0.02)
    small, large = band
    assert small["good"] == [0.1, 1.0] and small["decades"] == 1.0
    assert large["stable"] == [0.01, 0.1] and large["good"] == [0.1] and large["decades"] == 0.0


def test_lr_band_is_none_when_the_scientific_key_is_not_the_batch_size():
    assert batch.stable_lr_band(_runs([(8, 0.1, 0, "ok", 0.9)]), "optim.lr", "val/accuracy") is None


def test_b_simple_is_read_at_the_step_where_the_target_was_reached(tmp_path):
    selected = []
    for seed, (b, reached) in enumerate([(2, 100.0), (64, 50.0), (64, math.inf)]):
        run = tmp_path / f"run{seed}"
        run.mkdir()
        pd.DataFrame({"step": [0, 50, 100], "gns/b_simple": [np.nan, 10.0 * (seed + 1), 99.0]}).to_csv(run / "curves.csv", index=False)
        selected.append({"train.batch_size": b, "seed": seed, "status": "ok", "steps_to_target": reached, "run_dir": str(run)})
    at = batch.b_simple_at_target(pd.DataFrame(selected), "train.batch_size", "val/accuracy", 0.9)
    # run0 reached at step 100 (99), run1 at step 50 (20), run2 never (left out)
    assert at["n"] == 2 and at["by_batch"] == {"2": 99.0, "64": 20.0} and at["median"] == 59.5


def test_critical_batch_fit_counts_censored_runs():
    sizes = [2, 8, 32]
    rows = [{"train.batch_size": b, "seed": s, "status": "ok", "steps_to_target": 100 * (1 + 16 / b) * (1 + 0.01 * s)}
            for s in range(4) for b in sizes]
    rows[0]["steps_to_target"] = math.inf
    fit = batch.critical_batch_fit(pd.DataFrame(rows), "train.batch_size")
    assert fit["censored_runs"] == 1 and fit["runs"] == 12 and fit["n"] == 4
    assert fit["ci"][0] < fit["b_crit"] < fit["ci"][1]
