"""Batch-size analyses beside a claim's verdicts (the small_batch claim's published comparisons).

- :func:`critical_batch_fit`: Shallue et al.'s steps-to-target curve fitted as
  S = S_min (1 + B_crit / B) (McCandlish et al. 2018), per seed, with a t-interval over seeds;
- :func:`b_simple_at_target`: the measured gradient noise scale B_simple read at the
  evaluation where each run first reached the target (not a median over the whole run);
- :func:`stable_lr_band`: Masters & Luschi's band of learning rates that neither diverged nor
  fell more than a tolerance below the best, per batch size.

They apply to sweeps whose scientific key is the batch size; for any other claim they return
None. Each is descriptive: none of them turns into a verdict.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from harness import store
from harness.report import stats

BATCH = "train.batch_size"
LR = "optim.lr"
B_SIMPLE_CURVE = "gns/b_simple"
LR_BAND_WITHIN = 0.02  # default `lr_band_within`: the validation metric may be this far below the best


def _batch_runs(runs: pd.DataFrame, sci: str) -> bool:
    return sci == BATCH and BATCH in runs and "seed" in runs


def critical_batch_fit(selected: pd.DataFrame, sci: str) -> dict[str, Any] | None:
    """The critical batch size fitted to steps to target of the chosen runs (one learning
    rate per batch size, chosen on validation), with the count of runs left out because they
    never reached the target (right-censored: a fit cannot use them)."""
    if not _batch_runs(selected, sci) or "steps_to_target" not in selected:
        return None
    ok = selected[selected["status"] == "ok"]
    steps = pd.to_numeric(ok["steps_to_target"], errors="coerce").to_numpy(np.float64)
    fit = stats.critical_batch_fit(pd.to_numeric(ok[BATCH]).to_numpy(np.float64), steps, list(ok["seed"]))
    fit["censored_runs"] = int(np.isinf(steps).sum())
    fit["runs"] = int(len(ok))
    return fit


def b_simple_at_target(selected: pd.DataFrame, sci: str, target_metric: str, target: float) -> dict[str, Any] | None:
    """B_simple at the first evaluation where each chosen ok run reached the target.

    The harness measures B_simple at every evaluation (``train.grad_noise_scale=true``); at
    the target the runs of every batch size have the same validation accuracy, so their
    values estimate the same quantity (its median over all runs, and per batch size).
    None when the runs did not measure it.
    """
    if not _batch_runs(selected, sci) or "steps_to_target" not in selected:
        return None
    values: dict[float, list[float]] = {}
    for _, row in selected[selected["status"] == "ok"].iterrows():
        step = float(row["steps_to_target"])
        if not math.isfinite(step):
            continue
        curves = store.read_curves(row["run_dir"])
        if B_SIMPLE_CURVE not in curves:
            return None
        at = curves.loc[curves["step"] == step, B_SIMPLE_CURVE].to_numpy(np.float64)
        if at.size and np.isfinite(at[0]) and at[0] > 0:
            values.setdefault(float(row[BATCH]), []).append(float(at[0]))
    pooled = [v for vs in values.values() for v in vs]
    if not pooled:
        return None
    return {"median": float(np.median(pooled)), "quartiles": [float(np.percentile(pooled, 25)), float(np.percentile(pooled, 75))],
            "n": len(pooled), "by_batch": {f"{b:g}": float(np.median(v)) for b, v in sorted(values.items())},
            "where": f"first evaluation with {target_metric} >= {target:g}"}


def stable_lr_band(runs: pd.DataFrame, sci: str, select_metric: str, direction: str = "higher",
                   within: float = LR_BAND_WITHIN) -> list[dict[str, Any]] | None:
    """Per batch size, the learning rates of the grid (extensions included) whose seeds all
    finished and whose mean validation metric is within ``within`` of the best such mean.

    Each row: ``batch``, ``stable`` (learning rates with no diverged or failed seed),
    ``good`` (the stable ones within ``within`` of the best), their ``low``/``high`` ends and
    ``decades`` = log10(high / low) of the good band, and ``tried`` (the grid). A band with
    gaps is reported by its ends and its members.
    """
    if not _batch_runs(runs, sci) or LR not in runs or select_metric not in runs:
        return None
    sign = 1.0 if direction == "higher" else -1.0
    out = []
    for batch, sub in sorted(runs.groupby(pd.to_numeric(runs[BATCH])), key=lambda kv: kv[0]):
        means = {}
        stable = []
        for lr, cell in sorted(sub.groupby(pd.to_numeric(sub[LR])), key=lambda kv: kv[0]):
            if (cell["status"] == "ok").all():
                stable.append(float(lr))
                means[float(lr)] = float(pd.to_numeric(cell[select_metric], errors="coerce").mean())
        finite = {lr: m for lr, m in means.items() if math.isfinite(m)}
        best = max((sign * m for m in finite.values()), default=math.nan)
        good = [lr for lr, m in finite.items() if sign * m >= best - within]
        out.append({"batch": float(batch), "tried": sorted(float(v) for v in pd.to_numeric(sub[LR]).unique()),
                    "stable": stable, "good": good, "best": sign * best if math.isfinite(best) else math.nan,
                    "low": min(good) if good else math.nan, "high": max(good) if good else math.nan,
                    "decades": math.log10(max(good) / min(good)) if good else math.nan})
    return out
