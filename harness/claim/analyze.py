"""From a claim's stored runs to its tables, verdicts and figures.

Per (setting, protocol): load every result, derive the protocol's measure (a final metric,
or steps to a target), tune the nuisance hyperparameters per scientific value on the
validation split (:func:`best_per_value`), tabulate mean and 95% bootstrap CI over seeds with
diverged runs counted, and apply the claim's verdict rule. One verdict per protocol: no single
headline hides the others.

Optional claim keys used here:

- ``divergence: loss_above_initial``: a run also counts as diverged when its final training
  loss is above its loss at initialisation (besides the harness's non-finite rule);
- ``columns``: extra metrics tabulated next to the main one (mean and CI over the same runs),
  e.g. ``gap/accuracy`` (derived here: ``train/<m> - test/<m>``) or ``weight_sparsity``;
- ``also``: further verdicts on the same selected runs, each ``{name, metric, direction,
  hypothesis}`` (e.g. "L1 makes weights sparse" next to "L1 narrows the gap");
- ``hypothesis.kind``: ``ordered``, ``pairwise``, ``best`` (which value is best, and is it
  better than every other) or ``sweet_spot`` (too small underfits, too large diverges).
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


def load_sweep(claim: dict, sweep: Sweep, out_dir: Path) -> pd.DataFrame:
    """Every result of a sweep; with variants, the scientific column is the variant label."""
    root = sweep_dir(out_dir, sweep)
    if not sweep.variants:
        return store.load_results(root)
    frames = []
    for label, _ in sweep.variants:
        frame = store.load_results(root / label)
        if not frame.empty:
            frames.append(frame.assign(**{scientific_column(claim): label}))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def derive_gaps(runs: pd.DataFrame) -> pd.DataFrame:
    """Add ``gap/<m> = train/<m> - test/<m>`` for every metric measured on both splits."""
    for column in list(runs.columns):
        if column.startswith("train/"):
            name = column.split("/", 1)[1]
            if f"test/{name}" in runs:
                runs[f"gap/{name}"] = (pd.to_numeric(runs[column], errors="coerce")
                                       - pd.to_numeric(runs[f"test/{name}"], errors="coerce"))
    return runs


def mark_loss_above_initial(runs: pd.DataFrame, metric: str = "train/loss") -> pd.DataFrame:
    """Mark ok runs whose final ``metric`` is above its value at step 0 as diverged.

    Cross-entropy with a bounded activation rarely overflows: a too-large learning rate shows
    as a loss that ends higher than it started. ``diverged_by`` says which rule applied.
    """
    runs["diverged_by"] = np.where(runs["status"] == "diverged", "non-finite", "")
    for i, (run_dir, status) in enumerate(zip(runs["run_dir"], runs["status"])):
        if status != "ok":
            continue
        curves = store.read_curves(run_dir)
        if metric not in curves or len(curves) < 2:
            continue
        values = curves[metric].to_numpy(np.float64)
        if not np.isfinite(values[-1]) or values[-1] > values[0]:
            runs.iloc[i, runs.columns.get_loc("status")] = "diverged"
            runs.iloc[i, runs.columns.get_loc("diverged_by")] = "loss_above_initial"
    return runs


def analyze_sweep(claim: dict, sweep: Sweep, out_dir: Path) -> Analysis:
    """Table and verdict of one (setting, protocol) sweep."""
    runs = load_sweep(claim, sweep, out_dir)
    if runs.empty:
        raise RuntimeError(f"no results under {sweep_dir(out_dir, sweep)}: run the sweep first")
    runs = derive_gaps(runs)
    if claim.get("divergence") == "loss_above_initial":
        runs = mark_loss_above_initial(runs)
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
    if claim.get("columns"):
        table = tables.add_metric_columns(table, selected, list(claim["columns"]))
    verdict = claim_verdict(claim, selected, sci, metric, direction)
    if claim.get("also"):
        verdict["also"] = {}
        for extra in claim["also"]:
            sub = dict(claim, hypothesis=extra["hypothesis"])
            verdict["also"][extra["name"]] = dict(
                claim_verdict(sub, selected, sci, extra["metric"], extra.get("direction", "higher")),
                metric=extra["metric"], statement=extra.get("statement", extra["name"]))
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
    if hyp.get("kind") == "best":
        return best_verdict(selected, sci, metric, direction, alpha)
    if hyp.get("kind") == "sweet_spot":
        return sweet_spot_verdict(selected, sci, metric, direction, alpha)
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


def _means(selected: pd.DataFrame, sci: str, metric: str, direction: str) -> pd.DataFrame:
    table = tables.ablation_table(selected, [sci], metric, direction=direction, n_resamples=200)
    return table.sort_values(sci, key=lambda c: c.map(tables.sort_key)).reset_index(drop=True)


def _pair(selected, sci, a, b, metric, direction, alpha) -> dict[str, Any]:
    va, vb, _ = tables.paired_by_seed(selected, sci, a, b, metric)
    evidence = stats.paired_difference(va, vb, confidence=1 - alpha)
    return stats.verdict(evidence, kind="pairwise", metric=metric, direction=direction, alpha=alpha,
                         a=f"{sci}={a}", b=f"{sci}={b}")


def best_verdict(selected: pd.DataFrame, sci: str, metric: str, direction: str, alpha: float) -> dict[str, Any]:
    """Which value is best, and is it better than every other (paired by seed)?

    ``supported``: one value (the best mean) beats every other with a CI that excludes 0;
    ``inconclusive``: some value cannot be told apart from it (they are listed as tied).
    No outcome refutes a "which is best" question; ``top`` lists the winner and its ties.
    """
    table = _means(selected, sci, metric, direction)
    best_rows = table[table["best"].astype(bool)]
    rule = (f"Best-value rule: the value of {sci} with the best mean {metric} ({direction} is better) is compared "
            f"with every other value, paired by seed ({100 * (1 - alpha):g}% bootstrap CI of the difference); "
            "supported if it is better than every other value (each CI excludes 0 on its side), inconclusive "
            "if some value is tied with it (CI contains 0; the tied values are listed).")
    if best_rows.empty:
        return {"verdict": "inconclusive", "reason": "no value has a finite mean", "rule": rule, "winner": None, "top": []}
    winner = best_rows.iloc[0][sci]
    pairs = {str(v): _pair(selected, sci, winner, v, metric, direction, alpha) for v in table[sci] if str(v) != str(winner)}
    tied = [v for v, p in pairs.items() if p["verdict"] != "supported"]
    mean = float(best_rows.iloc[0]["mean"])
    outcome = "supported" if not tied else "inconclusive"
    reason = (f"{sci}={winner} is best ({metric} {mean:.4g})"
              + (" and better than every other value" if not tied else f"; tied with {', '.join(tied)}"))
    return {"verdict": outcome, "reason": reason, "rule": rule, "winner": str(winner),
            "top": [str(winner), *tied], "pairs": pairs}


def sweet_spot_verdict(selected: pd.DataFrame, sci: str, metric: str, direction: str, alpha: float) -> dict[str, Any]:
    """"Too small underfits, too large diverges" along a numeric axis (e.g. the learning rate).

    Underfitting: the best value is better than the smallest one (paired by seed, CI excludes
    0). Divergence: some value above the best has more than half of its runs diverged.
    ``supported`` if both hold; ``refuted`` if the best value is the smallest (nothing
    underfits) or no value above the best has any diverged run; ``inconclusive`` otherwise.
    """
    table = _means(selected, sci, metric, direction)
    rule = (f"Sweet-spot rule along {sci}: (1) too small underfits -- the value with the best mean {metric} is better "
            f"than the smallest value, paired by seed ({100 * (1 - alpha):g}% bootstrap CI excludes 0); (2) too large "
            "diverges -- some value above the best has more than half of its runs diverged. Supported if both hold; "
            "refuted if the best is the smallest value or no run above the best diverged; inconclusive otherwise.")
    per_value = {str(r[sci]): {"runs": int(r["n"]), "diverged": int(r["diverged"]), "mean": float(r["mean"])}
                 for r in table.to_dict(orient="records")}
    best_rows = table[table["best"].astype(bool)]
    if best_rows.empty:
        return {"verdict": "inconclusive", "reason": "no value has a finite mean", "rule": rule, "per_value": per_value}
    best_i = int(best_rows.index[0])
    best, smallest = table.loc[best_i, sci], table.loc[0, sci]
    above = table.iloc[best_i + 1:]
    if best_i == 0:
        low, low_text = "refuted", f"the smallest value {sci}={smallest} is best: nothing underfits"
    else:
        pair = _pair(selected, sci, best, smallest, metric, direction, alpha)
        low, low_text = pair["verdict"], f"best {sci}={best} vs smallest {smallest}: {pair['reason']}"
    worst = max(((int(r["diverged"]) / max(int(r["n"]), 1), r[sci]) for r in above.to_dict(orient="records")),
                default=(0.0, None), key=lambda t: t[0])
    n_div = int(above["diverged"].sum()) if len(above) else 0
    if len(above) == 0 or n_div == 0:
        high, high_text = "refuted", f"no run above {sci}={best} diverged"
    elif worst[0] > 0.5:
        high, high_text = "supported", (f"above {sci}={best}, {n_div} runs diverged; at {sci}={worst[1]} "
                                        f"{worst[0]:.0%} of the runs did")
    else:
        high, high_text = "inconclusive", f"above {sci}={best}, {n_div} runs diverged, but at no value more than half"
    outcome = ("supported" if low == high == "supported" else "refuted" if "refuted" in (low, high) else "inconclusive")
    return {"verdict": outcome, "reason": f"too small: {low} ({low_text}); too large: {high} ({high_text})",
            "rule": rule, "best": str(best), "underfit": low, "diverges": high, "per_value": per_value}
