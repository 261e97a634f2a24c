"""From a claim's stored runs to its tables, verdicts and figures.

Per (setting, protocol): load every result, derive the protocol's measure (a final metric,
or steps to a target), tune the nuisance hyperparameters per scientific value on the
validation split (:func:`best_per_value`), tabulate mean and 95% bootstrap CI over seeds with
diverged runs counted, and apply the claim's verdict rule. One verdict per protocol: no single
headline hides the others.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness import store
from harness.claim.run import sweep_dir
from harness.claim.spec import Sweep, scientific_column
from harness.report import stats, tables

STEPS_TO_TARGET = "steps_to_target"


@dataclasses.dataclass
class Analysis:
    """The analysed result of one sweep."""

    sweep: Sweep
    runs: pd.DataFrame  # every run
    selected: pd.DataFrame  # runs of the validation-chosen nuisance setting per value
    table: pd.DataFrame
    metric: str
    direction: str
    verdict: dict[str, Any]
    selection: Any


def steps_to_target(run_dir: str, metric: str, target: float, direction: str = "higher") -> float:
    """First evaluated step at which ``metric`` reaches ``target`` (NaN if never)."""
    curves = store.read_curves(run_dir)
    if metric not in curves:
        return float("nan")
    values = curves[metric].to_numpy(np.float64)
    reached = values >= target if direction == "higher" else values <= target
    hits = np.flatnonzero(reached & np.isfinite(values))
    return float(curves["step"].iloc[hits[0]]) if hits.size else float("nan")


def analyze_sweep(claim: dict, sweep: Sweep, out_dir: Path) -> Analysis:
    """Table and verdict of one (setting, protocol) sweep."""
    runs = store.load_results(sweep_dir(out_dir, sweep))
    if runs.empty:
        raise RuntimeError(f"no results under {sweep_dir(out_dir, sweep)}: run the sweep first")
    sci = scientific_column(claim)
    metric, direction = claim["metric"], claim.get("direction", "higher")
    select_metric = claim.get("select_metric")
    if sweep.measure == STEPS_TO_TARGET:
        runs[STEPS_TO_TARGET] = [
            steps_to_target(d, sweep.target_metric, float(sweep.target)) if s == "ok" else float("nan")
            for d, s in zip(runs["run_dir"], runs["status"])
        ]
        # A run that never reaches the target is shown as "missing", not averaged in.
        metric, direction, select_metric = STEPS_TO_TARGET, "lower", STEPS_TO_TARGET
    nuisance = [k for k, v in sweep.nuisance.items() if len(v) > 1]
    selected = tables.best_per_value(runs, sci, nuisance, metric, direction, select_metric,
                                     select_direction=direction if metric == STEPS_TO_TARGET else None,
                                     require_all_ok=False) if nuisance else runs
    table = tables.ablation_table(selected, [sci], metric, direction=direction)
    verdict = claim_verdict(claim, selected, sci, metric, direction)
    verdict["diverged_runs"] = int((runs["status"] == "diverged").sum())
    verdict["failed_runs"] = int((runs["status"] == "failed").sum())
    verdict["runs"] = int(len(runs))
    return Analysis(sweep, runs, selected, table, metric, direction, verdict, selected.attrs.get("selection"))


def budget_text(runs: pd.DataFrame) -> str:
    """The budget the runs were compared under, in words."""
    kinds = runs["budget.kind"].dropna().unique() if "budget.kind" in runs else []
    sizes = runs["budget.size"].dropna().unique() if "budget.size" in runs else []
    if len(kinds) == 1 and len(sizes) == 1:
        return f"{int(sizes[0])} {kinds[0]} per run"
    return "mixed budgets"


def critical_batch(runs: pd.DataFrame) -> float | None:
    """Median of the runs' measured gradient noise scale B_simple, if measured."""
    col = "gns/b_simple_median"
    if col not in runs:
        return None
    values = pd.to_numeric(runs[col], errors="coerce").to_numpy(np.float64)
    values = values[np.isfinite(values) & (values > 0)]
    return float(np.median(values)) if values.size else None


def claim_verdict(claim: dict, selected: pd.DataFrame, sci: str, metric: str, direction: str) -> dict[str, Any]:
    """Apply the claim's hypothesis to the selected runs.

    ``ordered``: one trend test along the scientific axis (``better_when: smaller|larger``).
    ``pairwise``: every value in ``better`` against ``than``, paired by seed; the protocol's
    verdict is ``supported`` only if every pair is, ``refuted`` if any pair is, else
    ``inconclusive`` -- and every pair's result is kept in ``pairs``.
    """
    hyp = claim.get("hypothesis") or {}
    alpha = float(claim.get("alpha", 0.05))
    if hyp.get("kind", "ordered") == "ordered":
        x, y = tables.ordered_values(selected, sci, metric)
        improves_as = "decreasing" if hyp.get("better_when", "smaller") == "smaller" else "increasing"
        return stats.verdict(stats.trend_test(x, y), kind="ordered", metric=metric, direction=direction,
                             alpha=alpha, axis=sci, improves_as=improves_as)
    pairs = []
    for a in hyp["better"]:
        va, vb, _ = tables.paired_by_seed(selected, sci, a, hyp["than"], metric)
        evidence = stats.paired_difference(va, vb, confidence=1 - alpha)
        pairs.append(stats.verdict(evidence, kind="pairwise", metric=metric, direction=direction, alpha=alpha,
                                   a=f"{sci}={a}", b=f"{sci}={hyp['than']}"))
    outcomes = [p["verdict"] for p in pairs]
    overall = "supported" if all(o == "supported" for o in outcomes) else (
        "refuted" if "refuted" in outcomes else "inconclusive")
    return {
        "verdict": overall,
        "reason": "; ".join(f"{a}: {p['verdict']} ({p['reason']})" for a, p in zip(hyp["better"], pairs)),
        "rule": pairs[0]["rule"] + f" Applied to each of {list(hyp['better'])} against {hyp['than']}: "
                "supported if every pair is supported, refuted if any pair is refuted, inconclusive otherwise.",
        "pairs": {str(a): p for a, p in zip(hyp["better"], pairs)},
    }
