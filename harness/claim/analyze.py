"""From a claim's stored runs to its tables, verdicts and figures.

Per (setting, protocol): load every result, derive the protocol's measure (a final metric,
or steps to a target), tune the nuisance hyperparameters per scientific value on the
validation split (:func:`best_per_value`), tabulate mean and 95% t-interval over seeds with
diverged runs counted, and apply the claim's verdict rule. One verdict per protocol: no single
headline hides the others.

Optional claim keys used here:

- ``setting_metrics: {setting: {metric, select_metric, direction}}``: a setting scored by its
  own metric (the regression sets by MSE);
- ``chance``: the metric's value for a guess (a number, or per setting), for the sensitivity
  row that scores diverged runs at chance;
- ``grid_extensions``: how many times a nuisance choice on a grid edge extends that grid;

- ``divergence: loss_above_initial``: a run also counts as diverged when its final training
  loss is above its loss at initialisation (besides the harness's non-finite rule);
- ``columns``: extra metrics tabulated next to the main one (mean and CI over the same runs),
  e.g. ``gap/accuracy`` (derived here: ``train/<m> - test/<m>``) or ``weight_sparsity``;
- ``also``: further verdicts on the same selected runs, each ``{name, metric, direction,
  hypothesis}`` (e.g. "L1 makes weights sparse" next to "L1 narrows the gap");
- ``hypothesis.kind``: one of :data:`harness.claim.spec.HYPOTHESIS_KINDS`.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness import store
from harness.claim.run import sweep_dir
from harness.claim.spec import Sweep, scientific_column, scored_as
from harness.folders import distrust
from harness.report import stats, tables

STEPS_TO_TARGET = "steps_to_target"
EXTEND = "extend_"  # <sweep dir>/extend_<round>_<key>_<side>: runs of a grid extension


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


def load_sweep(claim: dict, sweep: Sweep, out_dir: Path, problems: list | None = None) -> pd.DataFrame:
    """Every result of a sweep; with variants, the scientific column is the variant label.
    ``problems`` gets ``(path, why)`` for each record that cannot be read (no row)."""
    root = sweep_dir(out_dir, sweep)
    if not sweep.variants:
        return store.load_results(root, problems, verify=distrust)
    frames = []
    for label, _ in sweep.variants:  # <root>/<label>, and <root>/extend_<k>/<label> of grid extensions
        for base in [root, *sorted(root.glob(f"{EXTEND}*"))]:
            frame = store.load_results(base / label, problems, verify=distrust) if (base / label).is_dir() else pd.DataFrame()
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
    """Table and verdict of one (setting, protocol) sweep (before the claim-wide Holm step)."""
    claim = scored_as(claim, sweep.setting)
    problems: list = []
    runs = load_sweep(claim, sweep, out_dir, problems)
    for bad, why in problems:  # named and counted in the verdict; the other runs are analysed
        print(f"warning: skipped {bad}: {why}", file=sys.stderr)
    if runs.empty:
        raise RuntimeError(f"no readable results under {sweep_dir(out_dir, sweep)}"
                           + (f" ({len(problems)} unreadable, named above)" if problems else ": run the sweep first"))
    runs = derive_gaps(runs)
    if claim.get("divergence") == "loss_above_initial":
        runs = mark_loss_above_initial(runs)
    sci = scientific_column(claim)
    metric, direction = claim["metric"], claim.get("direction", "higher")
    select_metric = claim.get("select_metric")
    statistic = "mean"
    if sweep.measure == STEPS_TO_TARGET:
        runs = add_steps_to_target(runs, sweep)
        # Censored runs (inf) rank worst; the median is defined while at most half are censored.
        metric, direction, select_metric, statistic = STEPS_TO_TARGET, "lower", STEPS_TO_TARGET, "median"
    nuisance = [k for k, v in sweep.nuisance.items() if len(v) > 1]
    # require_all_ok: a setting with a diverged seed never wins on its surviving seeds.
    selected = tables.best_per_value(runs, sci, nuisance, metric, direction, select_metric,
                                     select_direction=direction if metric == STEPS_TO_TARGET else None,
                                     require_all_ok=True, statistic=statistic) if nuisance else runs
    table = tables.ablation_table(selected, [sci], metric, direction=direction)
    table = tables.add_metric_columns(table, selected, metric_columns(claim, sweep, runs))
    verdict = claim_verdict(claim, selected, sci, metric, direction)
    if claim.get("also"):
        verdict["also"] = {}
        for extra in claim["also"]:
            sub = dict(claim, hypothesis=extra["hypothesis"])
            verdict["also"][extra["name"]] = dict(
                claim_verdict(sub, selected, sci, extra["metric"], extra.get("direction", "higher")),
                metric=extra["metric"], statement=extra.get("statement", extra["name"]))
    verdict["grid_edge"] = grid_edges(sweep, runs, selected.attrs.get("selection") or [], sci)
    sensitivity = chance_sensitivity(claim, sweep.setting, selected, sci, metric, direction)
    if sensitivity is not None:
        verdict["sensitivity"] = sensitivity
    verdict.update(batch_analyses(claim, sweep, runs, selected, sci, select_metric))
    verdict["diverged_runs"] = int((runs["status"] == "diverged").sum())
    verdict["failed_runs"] = int((runs["status"] == "failed").sum())
    verdict["runs"] = int(len(runs))
    verdict["unreadable_records"] = [str(bad) for bad, _ in problems]
    verdict["code"] = code_commits(runs)
    return Analysis(sweep, runs, selected, table, metric, direction, verdict, selected.attrs.get("selection"))


def batch_analyses(claim: dict, sweep: Sweep, runs: pd.DataFrame, selected: pd.DataFrame, sci: str,
                   select_metric: str | None) -> dict[str, Any]:
    """The batch-size analyses that apply to this sweep (:mod:`harness.claim.batch`): the
    critical batch size fit and B_simple at the target for steps to target, the stable
    learning-rate band where the learning rate was tuned. Empty for other claims."""
    from harness.claim import batch

    out: dict[str, Any] = {}
    if sweep.measure == STEPS_TO_TARGET:
        fit = batch.critical_batch_fit(selected, sci)
        at_target = batch.b_simple_at_target(selected, sci, sweep.target_metric, float(sweep.target))
        out.update({k: v for k, v in (("critical_batch_fit", fit), ("b_simple_at_target", at_target)) if v is not None})
    elif len(sweep.nuisance.get(batch.LR, [])) > 1 and select_metric:
        # The band ranks the select metric, so by that metric's own direction (as the tuning does).
        band = batch.stable_lr_band(runs, sci, select_metric, tables.default_direction(select_metric),
                                    float(claim.get("lr_band_within", batch.LR_BAND_WITHIN)))
        if band is not None:
            out["lr_band"] = {"within": float(claim.get("lr_band_within", batch.LR_BAND_WITHIN)),
                              "metric": select_metric, "rows": band}
    return out


def code_commits(runs: pd.DataFrame) -> list[str]:
    """The code commits the runs were trained at (``versions.git_commit`` of each result.json;
    ``+dirty`` when the tree had uncommitted changes, ``unknown`` when not recorded): more than
    one means a resumed claim mixes results of different code."""
    commits = set()
    for run_dir in runs["run_dir"]:
        versions = (store.read_result(run_dir) or {}).get("versions") or {}
        commit = versions.get("git_commit") or "unknown"
        commits.add(commit + ("+dirty" if versions.get("git_dirty") else ""))
    return sorted(commits)


def add_steps_to_target(runs: pd.DataFrame, sweep: Sweep) -> pd.DataFrame:
    """``steps_to_target`` (inf: never reached, right-censored at the budget) and
    ``examples_to_target`` (steps x batch size) per ok run; ``reached_target`` is 1 or 0."""
    runs[STEPS_TO_TARGET] = [
        steps_to_target(d, sweep.target_metric, float(sweep.target)) if s == "ok" else float("nan")
        for d, s in zip(runs["run_dir"], runs["status"])
    ]
    steps = runs[STEPS_TO_TARGET].to_numpy(np.float64)
    runs.loc[np.isnan(steps) & (runs["status"] == "ok").to_numpy(), STEPS_TO_TARGET] = np.inf
    runs["reached_target"] = np.where(np.isfinite(runs[STEPS_TO_TARGET]), 1.0, 0.0)
    if "train.batch_size" in runs:
        runs["examples_to_target"] = runs[STEPS_TO_TARGET] * pd.to_numeric(runs["train.batch_size"], errors="coerce")
    return runs


def metric_columns(claim: dict, sweep: Sweep, runs: pd.DataFrame) -> list[str]:
    """Columns beside the main metric: train metrics beside test ones (under-fitting vs a gap),
    the claim's ``columns``, and for steps to target the fraction reached and examples."""
    train = [c for c in ("train/accuracy", "train/loss", "train/mse") if c in runs]
    extra = ["reached_target", "examples_to_target"] if sweep.measure == STEPS_TO_TARGET else []
    return list(dict.fromkeys([*train, *(claim.get("columns") or []), *extra]))


def _value_grid(runs: pd.DataFrame, key: str, sci: str, value: Any) -> list[float]:
    """The values of nuisance ``key`` that scientific value ``value`` was run at (the declared
    grid plus any extension it got): after an extension the values' grids differ."""
    mine = runs[runs[sci].map(tables.normalize) == tables.normalize(value)] if sci in runs else runs
    return sorted({float(v) for v in pd.to_numeric(mine[key], errors="coerce").dropna()})


def grid_edges(sweep: Sweep, runs: pd.DataFrame, selection: list[dict], sci: str) -> list[str]:
    """Nuisance keys whose chosen value sits on an edge of the grid that was run.

    The grid is every value of the key that this scientific value was run at (the declared
    grid plus its extensions). A choice at the smallest or largest value means the best
    setting may lie outside: the Tuning Playbook's signal to extend the search. A choice whose
    select value is not finite (every setting of that value censored, e.g. no learning rate
    reached the target, or every one diverged) is a tie broken by grid order, not a signal,
    and is not an edge; nor is an edge choice that ties with a value inside the grid
    (:func:`edge_side`). Returns ``"key=value (low|high edge, sci=...)"`` entries, empty when none.
    """
    out = []
    for key, values in sweep.nuisance.items():
        if len(values) < 2 or key not in runs:
            continue
        for row in selection:
            grid = _value_grid(runs, key, sci, row[sci])
            side = edge_side(row, key, grid)
            if side:
                out.append(f"{key}={tables.format_value(row[key])} ({side} edge, {sci}={tables.format_value(row[sci])})")
    return out


def edge_side(row: dict, key: str, grid: list[float]) -> str | None:
    """``"low"``/``"high"`` when a selection row's chosen ``key`` sits on that edge of ``grid``,
    else None. Not an edge: a choice whose select value is not finite (all censored: a tie
    broken by grid order), or one that ties with a setting strictly inside the grid (the
    metric is flat there, so nothing points outward). The one rule for :func:`grid_edges` and :func:`extension_sweeps`."""
    chosen = row.get(key)
    if chosen is None or len(grid) < 2 or not np.isfinite(float(row.get("select_mean", 0.0))):
        return None
    side = "low" if float(chosen) <= grid[0] else "high" if float(chosen) >= grid[-1] else None
    tied = [float(t[key]) for t in row.get("tied") or [] if t.get(key) is not None]
    if side and any(grid[0] < t < grid[-1] for t in tied):
        return None  # as good inside the grid (e.g. every learning rate at 100% accuracy): no edge
    return side


def extended_value(grid: list[float], side: str) -> float:
    """One step beyond the edge of a grid in its own spacing: the ratio of the outermost two
    values when they are positive (a log grid), else their difference."""
    grid = sorted(float(v) for v in grid)
    inner, edge = (grid[1], grid[0]) if side == "low" else (grid[-2], grid[-1])
    if inner > 0 and edge > 0:
        return float(f"{edge * (edge / inner):.4g}")  # as written in the override
    return float(f"{edge + (edge - inner):.4g}")


def extension_depth(grid: list[float], declared: list[float], side: str) -> int:
    """How many times ``grid`` was already extended past the declared grid on ``side``."""
    declared = [float(v) for v in declared]
    return sum(1 for v in grid if (v < min(declared) if side == "low" else v > max(declared)))


def extension_sweeps(claim: dict, analysis: Analysis, limit: int) -> list[Sweep]:
    """The sweeps that extend ``analysis``'s nuisance grid one step past each edge that a
    scientific value chose, for the values extended fewer than ``limit`` times on that side.

    Only that key changes (to the one new value) and only those scientific values run, into
    ``<sweep dir>/extend_<depth>_<key>_<side>_<values>``. The depth and the grid come from the
    runs on disk, not from a round counter, so rerunning a claim resumes its extensions
    instead of running (and overwriting) them again; the values in the folder name keep two
    extensions of different values apart.
    """
    sweep, runs, sci = analysis.sweep, analysis.runs, scientific_column(claim)
    out = []
    for key, values in sweep.nuisance.items():
        if len(values) < 2 or key not in runs:
            continue
        for side in ("low", "high"):
            groups: dict[tuple[int, float], list] = {}
            for row in analysis.selection or []:
                grid = _value_grid(runs, key, sci, row[sci])
                if edge_side(row, key, grid) != side:
                    continue
                depth = extension_depth(grid, values, side)
                if depth < limit:
                    groups.setdefault((depth + 1, extended_value(grid, side)), []).append(row[sci])
            for (depth, new), chose in groups.items():
                out.append(_extension_sweep(claim, sweep, key, side, depth, new, chose))
    return out


def _extension_sweep(claim: dict, sweep: Sweep, key: str, side: str, depth: int, new: float, chose: list) -> Sweep:
    """One extension: ``sweep`` at ``key=new`` for the scientific values ``chose`` only."""
    overrides = [f"{key}={tables.format_value(new)}" if o.startswith(f"{key}=") else o for o in sweep.overrides]
    variants = tuple((label, extra) for label, extra in sweep.variants if label in chose)
    if not sweep.variants:
        sci_key = claim["scientific"]["key"]
        overrides = [f"{sci_key}={','.join(tables.format_value(v) for v in chose)}"
                     if o.startswith(f"{sci_key}=") else o for o in overrides]
    names = "-".join(tables.format_value(v) for v in chose).replace("/", "_")
    return dataclasses.replace(sweep, protocol=f"{sweep.protocol}/{EXTEND}{depth}_{key}_{side}_{names}",
                               label=f"{sweep.label}: {key} extended to {tables.format_value(new)}",
                               overrides=overrides, nuisance={**sweep.nuisance, key: [new]}, variants=variants)


def chance_level(claim: dict, setting: str) -> float | None:
    """The metric value of a guess (``chance: 0.5`` or ``chance: {setting: 0.1}``), if declared."""
    chance = claim.get("chance")
    if isinstance(chance, dict):
        chance = chance.get(setting)
    return None if chance is None else float(chance)


def chance_sensitivity(claim: dict, setting: str, selected: pd.DataFrame, sci: str, metric: str,
                       direction: str) -> dict | None:
    """The verdict again with every diverged run scored at chance instead of left out.

    Only where diverged runs were chosen (every nuisance setting of a value lost some seed)
    and the claim declares its metric's ``chance`` level; otherwise None.
    """
    diverged = selected["status"] == "diverged"
    chance = chance_level(claim, setting)
    if not diverged.any() or chance is None:
        return None
    scored = selected.copy()
    scored.loc[diverged, metric] = chance
    scored.loc[diverged, "status"] = "ok"
    result = claim_verdict(claim, scored, sci, metric, direction)
    return {"verdict": result["verdict"], "reason": result["reason"],
            "what": f"{int(diverged.sum())} diverged runs scored at chance ({metric} = {chance:g})"}


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
    """Apply the claim's hypothesis (a kind of :data:`HYPOTHESIS_KINDS`) to the selected runs.

    Kinds with several comparisons keep each in ``pairs`` (each with its own p, adjusted
    later across the claim by :func:`adjust_claim`); the protocol's verdict aggregates them.
    ``interaction`` is a plain ``pairwise`` here; :func:`adjust_claim` turns the setting with
    a control into the interaction verdict.
    """
    hyp = dict(claim.get("hypothesis") or {})
    kind = hyp.get("kind", "ordered")
    alpha = float(claim.get("alpha", 0.05))
    if kind == "best":
        return best_verdict(selected, sci, metric, direction, alpha, select_metric=claim.get("select_metric"))
    if kind == "sweet_spot":
        return sweet_spot_verdict(selected, sci, metric, direction, alpha, select_metric=claim.get("select_metric"))
    if kind == "equivalence":
        return equivalence_verdict(selected, sci, hyp, metric, alpha)
    if kind == "ordered":
        x, y = tables.ordered_values(selected, sci, metric)
        improves_as = "decreasing" if hyp.get("better_when", "smaller") == "smaller" else "increasing"
        evidence = stats.trend_test(x, y, list(selected["seed"]), direction=direction, alpha=alpha)
        return stats.verdict(evidence, kind="ordered", metric=metric, direction=direction,
                             alpha=alpha, axis=sci, improves_as=improves_as)
    better = hyp["better"] if isinstance(hyp["better"], list) else [hyp["better"]]
    pairs = {str(a): _pair(selected, sci, a, hyp["than"], metric, direction, alpha) for a in better}
    rule = next(iter(pairs.values()))["rule"] + (
        f" Applied to each of {better} against {hyp['than']}, one verdict each (Holm-adjusted across the claim); "
        "the protocol is supported if every pair is, refuted if any pair is, inconclusive otherwise.")
    return aggregate({"kind": "pairwise", "rule": rule, "pairs": pairs, "alpha": alpha})


def aggregate(entry: dict[str, Any]) -> dict[str, Any]:
    """Set an entry's verdict, reason, p and n from its ``pairs`` (all must be supported).

    ``best`` names the values tied with the winner; the p of an all-must-hold verdict is the
    largest of its pairs' (an intersection-union test), likewise its adjusted p.
    """
    pairs = entry["pairs"]
    outcomes = [p["verdict"] for p in pairs.values()]
    entry["verdict"] = ("supported" if outcomes and all(o == "supported" for o in outcomes)
                        else "refuted" if "refuted" in outcomes else "inconclusive")
    entry["p"] = max((p["p"] for p in pairs.values()), default=float("nan"))
    entry["p_adjusted"] = max((p.get("p_adjusted", p["p"]) for p in pairs.values()), default=float("nan"))
    entry["n"] = min((p["n"] for p in pairs.values()), default=0)
    entry["method"] = next(iter(pairs.values()))["method"] if pairs else None
    entry["ci"] = next(iter(pairs.values()))["ci"] if len(pairs) == 1 else None
    if entry.get("kind") == "best":
        tied = [v for v, p in pairs.items() if p["verdict"] == "inconclusive"]
        beaten_by = [v for v, p in pairs.items() if p["verdict"] == "refuted"]
        entry["top"] = [entry["winner"], *tied]
        head = f"{entry['sci']}={entry['winner']} is best on {entry['select_metric']}"
        if entry.get("val_ties"):
            head += f" (tied there with {', '.join(entry['val_ties'])}; the first in order is taken)"
        entry["reason"] = head + ("; on test it is better than every other value" if entry["verdict"] == "supported"
                                  else f"; on test it is worse than {', '.join(beaten_by)}" if beaten_by
                                  else f"; on test it is tied with {', '.join(tied)}")
        entry["reason"] += " (" + "; ".join(f"{v}: {p['reason']}" for v, p in pairs.items()) + ")"
    else:
        entry["reason"] = "; ".join(f"{a}: {p['verdict']} ({p['reason']})" for a, p in pairs.items())
    return entry


def _pair(selected, sci, a, b, metric, direction, alpha) -> dict[str, Any]:
    va, vb, _ = tables.paired_by_seed(selected, sci, a, b, metric)
    evidence = stats.paired_difference(va, vb, confidence=1 - alpha)
    return stats.verdict(evidence, kind="pairwise", metric=metric, direction=direction, alpha=alpha,
                         a=f"{sci}={a}", b=f"{sci}={b}")


def _means(selected: pd.DataFrame, sci: str, metric: str, direction: str) -> pd.DataFrame:
    table = tables.ablation_table(selected, [sci], metric, direction=direction)
    return table.sort_values(sci, key=lambda c: c.map(tables.sort_key)).reset_index(drop=True)


def best_verdict(selected: pd.DataFrame, sci: str, metric: str, direction: str, alpha: float,
                 select_metric: str | None = None) -> dict[str, Any]:
    """Which value is best? Picked on ``select_metric`` (validation), tested on ``metric`` (test).

    ``supported``: the validation winner is better on test than every other value (paired by
    seed, interval and test agree); ``refuted``: some value is better than it on test;
    ``inconclusive``: tied with some values (listed in ``top``).
    """
    pick_on = select_metric if select_metric and select_metric in selected else metric
    pick_direction = tables.default_direction(pick_on) if pick_on != metric else direction
    table = _means(selected, sci, pick_on, pick_direction)
    best_rows = table[table["best"].astype(bool)]
    rule = (f"Best-value rule: the value of {sci} with the best mean {pick_on} (validation) is the winner; on "
            f"{metric} ({direction} is better) it is compared with every other value, paired by seed "
            f"({100 * (1 - alpha):g}% t-interval and paired t-test, Holm-adjusted across the claim); supported if "
            "it is better than every other value, refuted if some value is better than it, inconclusive if it is "
            "tied with some (listed).")
    base = {"kind": "best", "rule": rule, "sci": sci, "select_metric": pick_on, "alpha": alpha}
    if best_rows.empty:
        return {**base, "verdict": "inconclusive", "reason": "no value has a finite mean", "winner": None, "top": [],
                "pairs": {}, "p": float("nan"), "n": 0, "ci": None, "method": None}
    winner = best_rows.iloc[0][sci]
    # Values as good on validation (e.g. several at 100%): the first in order is the winner,
    # and the reason says that the pick was a tie.
    level = best_rows.iloc[0]["mean"]
    val_ties = [str(v) for v, m in zip(table[sci], table["mean"]) if m == level and str(v) != str(winner)]
    pairs = {str(v): _pair(selected, sci, winner, v, metric, direction, alpha) for v in table[sci] if str(v) != str(winner)}
    return aggregate({**base, "winner": str(winner), "pairs": pairs, "val_ties": val_ties})


def equivalence_verdict(selected: pd.DataFrame, sci: str, hyp: dict, metric: str, alpha: float) -> dict[str, Any]:
    """``a`` and ``b`` equivalent within ``margin`` on ``metric`` (TOST, paired by seed)."""
    va, vb, _ = tables.paired_by_seed(selected, sci, hyp["a"], hyp["b"], metric)
    evidence = stats.tost(va, vb, float(hyp["margin"]), alpha)
    return stats.verdict(evidence, kind="equivalence", metric=metric, alpha=alpha, a=f"{sci}={hyp['a']}",
                         b=f"{sci}={hyp['b']}")


def sweet_spot_verdict(selected: pd.DataFrame, sci: str, metric: str, direction: str, alpha: float,
                       select_metric: str | None = None) -> dict[str, Any]:
    """"Too small underfits, too large diverges" along a numeric axis (e.g. the learning rate).

    Underfitting: the best value, picked on ``select_metric`` (validation; ``metric`` when the
    runs have none), is better on ``metric`` than the smallest one (paired by seed, interval
    and test agree; the pair is kept in ``pairs`` for the claim's Holm step). Divergence: some
    value above the best has more than half of its runs diverged. ``supported`` if both hold;
    ``refuted`` if the best value is the smallest (nothing underfits) or no value above the
    best has any diverged run; ``inconclusive`` otherwise.
    """
    pick_on = select_metric if select_metric and select_metric in selected else metric
    pick_direction = tables.default_direction(pick_on) if pick_on != metric else direction
    table = _means(selected, sci, metric, direction)
    picked = _means(selected, sci, pick_on, pick_direction)
    rule = (f"Sweet-spot rule along {sci}: (1) too small underfits -- the value with the best mean {pick_on} "
            f"({'validation' if pick_on != metric else 'no validation split'}) is better on {metric} "
            f"than the smallest value, paired by seed ({100 * (1 - alpha):g}% t-interval and paired t-test agree); "
            "(2) too large diverges -- some value above the best has more than half of its runs diverged. Supported "
            "if both hold; refuted if the best is the smallest value or no run above the best diverged; "
            "inconclusive otherwise.")
    per_value = {str(r[sci]): {"runs": int(r["n"]), "diverged": int(r["diverged"]), "mean": float(r["mean"])}
                 for r in table.to_dict(orient="records")}
    base = {"kind": "sweet_spot", "rule": rule, "per_value": per_value, "p": float("nan"), "n": 0, "ci": None,
            "method": None, "pairs": {}}
    best_rows = picked[picked["best"].astype(bool)]
    if best_rows.empty:
        return {**base, "verdict": "inconclusive", "reason": "no value has a finite mean"}
    best_i = int(best_rows.index[0])  # picked and table list the same values in the same order
    best, smallest = table.loc[best_i, sci], table.loc[0, sci]
    base["select_metric"] = pick_on
    above = table.iloc[best_i + 1:]
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
    entry = {**base, "best": str(best), "diverges": high, "diverges_text": high_text}
    if best_i > 0:
        entry["pairs"] = {"underfit": _pair(selected, sci, best, smallest, metric, direction, alpha)}
    else:
        entry["underfit_text"] = f"the smallest value {sci}={smallest} is best: nothing underfits"
    return sweet_spot_outcome(entry)


def sweet_spot_outcome(entry: dict[str, Any]) -> dict[str, Any]:
    """The sweet-spot verdict from its underfit pair (after any adjustment) and its divergence part."""
    pair = entry["pairs"].get("underfit")
    low = pair["verdict"] if pair else "refuted"
    low_text = pair["reason"] if pair else entry["underfit_text"]
    high = entry["diverges"]
    entry.update(underfit=low, verdict=("supported" if low == high == "supported"
                                        else "refuted" if "refuted" in (low, high) else "inconclusive"),
                 reason=f"too small: {low} ({low_text}); too large: {high} ({entry['diverges_text']})")
    if pair:
        entry.update(p=pair["p"], p_adjusted=pair.get("p_adjusted", pair["p"]), n=pair["n"], ci=pair["ci"],
                     method=pair["method"])
    return entry


def interaction_verdict(claim: dict, main: Analysis, control: Analysis) -> dict[str, Any]:
    """(better - than) in ``main``'s setting minus the same in ``control``'s, paired by seed."""
    hyp, sci, alpha = claim["hypothesis"], scientific_column(claim), float(claim.get("alpha", 0.05))
    better = hyp["better"][0] if isinstance(hyp["better"], list) else hyp["better"]
    deltas = []
    for a in (main, control):
        va, vb, seeds = tables.paired_by_seed(a.selected, sci, better, hyp["than"], a.metric)
        deltas.append(dict(zip(seeds, va - vb)))
    common = sorted(set(deltas[0]) & set(deltas[1]), key=tables.sort_key)
    evidence = stats.paired_difference([deltas[0][s] for s in common], [deltas[1][s] for s in common],
                                       confidence=1 - alpha)
    out = stats.verdict(evidence, kind="interaction", metric=main.metric, direction=main.direction, alpha=alpha,
                        a=f"{sci}={better}", b=f"{sci}={hyp['than']}")
    out["reason"] = out["reason"].replace(" = ", f" in {main.sweep.setting} minus in {control.sweep.setting} = ", 1)
    return out


def units(entry: dict[str, Any]) -> list[dict[str, Any]]:
    """The tested comparisons of a verdict entry: its pairs, or itself when it has a p."""
    if entry.get("pairs"):
        return list(entry["pairs"].values())
    return [entry] if np.isfinite(float(entry.get("p", float("nan")))) else []


def adjust_claim(analyses: list[Analysis], claim: dict) -> None:
    """Claim-wide steps after every sweep is analysed, in place on each ``verdict``:

    1. ``interaction``: the setting with a control gets the interaction verdict; the control
       setting keeps its pairwise comparison as a description (``role: control``), untested.
    2. Holm across every tested comparison of the claim (each pair of each protocol and each
       ``also``): ``p_adjusted`` on each; a supported or refuted comparison whose adjusted p
       is not below alpha becomes inconclusive; aggregates are recomputed.
    3. A nuisance choice on a grid edge (``grid_edge``) makes the verdict inconclusive.
    """
    hyp = claim.get("hypothesis") or {}
    alpha = float(claim.get("alpha", 0.05))
    if hyp.get("kind") == "interaction":
        by_key = {(a.sweep.setting, a.sweep.protocol): a for a in analyses}
        for setting, control in (hyp.get("controls") or {}).items():
            for a in analyses:
                if a.sweep.setting == setting and (control, a.sweep.protocol) in by_key:
                    keep = {k: a.verdict[k] for k in ("also", "grid_edge", "sensitivity", "diverged_runs",
                                                      "failed_runs", "runs", "code") if k in a.verdict}
                    described = a.verdict
                    a.verdict = {**interaction_verdict(claim, a, by_key[(control, a.sweep.protocol)]), **keep,
                                 "in_setting": {"verdict": described["verdict"], "reason": described["reason"]}}
                    by_key[(control, a.sweep.protocol)].verdict["role"] = "control"
    family = []
    for a in analyses:
        if a.verdict.get("role") != "control":
            family += units(a.verdict)
            for extra in (a.verdict.get("also") or {}).values():
                family += units(extra)
    for unit, adjusted in zip(family, stats.holm([u["p"] for u in family])):
        unit["p_adjusted"] = adjusted
        if unit["verdict"] != "inconclusive" and not adjusted < alpha:
            unit["reason"] = (f"inconclusive after Holm over {len(family)} comparisons (p_adjusted = {adjusted:.3g}): "
                              + unit["reason"])
            unit["verdict"] = "inconclusive"
    for a in analyses:
        for entry in [a.verdict, *(a.verdict.get("also") or {}).values()]:
            _reaggregate(entry)
            entry.setdefault("p_adjusted", entry.get("p"))
        if a.verdict.get("grid_edge") and a.verdict["verdict"] != "inconclusive":
            a.verdict["reason"] = (f"inconclusive: the chosen {'; '.join(a.verdict['grid_edge'])} lies on the edge of "
                                   f"its grid (extend the grid); unadjusted: {a.verdict['verdict']} -- "
                                   + a.verdict["reason"])
            a.verdict["verdict"] = "inconclusive"


def _reaggregate(entry: dict[str, Any]) -> None:
    """Recompute a verdict from its (adjusted) pairs, by its kind."""
    if entry.get("kind") == "sweet_spot":
        sweet_spot_outcome(entry)
    elif entry.get("pairs"):
        aggregate(entry)
