"""Write a claim's report folder: tables (md, csv, tex), figures, verdict.json, README.md."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness import store
from harness.claim.analyze import STEPS_TO_TARGET, Analysis, budget_text, critical_batch
from harness.claim.run import sweep_dir
from harness.claim.spec import Sweep, scientific_column, scientific_values
from harness.report import figures, tables
from harness.report.plots import DEFAULT_EXTENT, plot_confusion


def _caption(a: Analysis, claim: dict) -> str:
    extra = f", target {a.sweep.target_metric} >= {a.sweep.target}" if a.sweep.measure == STEPS_TO_TARGET else ""
    return (f"{a.sweep.setting} -- {a.sweep.label}: {a.metric} ({a.direction} is better) by "
            f"{scientific_column(claim)}; {budget_text(a.runs)}{extra}; mean and 95% t-interval over seeds"
            + ("; missing = ok runs that never reached the target (right-censored; the verdict ranks them last)"
               if a.sweep.measure == STEPS_TO_TARGET else "")
            + (f" at the {', '.join(k for k, v in a.sweep.nuisance.items() if len(v) > 1)} chosen on validation"
               if any(len(v) > 1 for v in a.sweep.nuisance.values()) else ""))


def write_tables(analyses: list[Analysis], claim: dict, out: Path) -> None:
    """table.md, table.csv and table.tex with every (setting, protocol) table."""
    md = [f"# {claim['name']}: {claim['statement']}\n"]
    tex, frames = [], []
    for a in analyses:
        md.append(f"## {a.sweep.setting} / {a.sweep.protocol}\n")
        md.append(f"**Verdict: {a.verdict['verdict']}** -- {a.verdict['reason']} "
                  f"(runs: {a.verdict['runs']}, diverged: {a.verdict['diverged_runs']}, "
                  f"failed: {a.verdict['failed_runs']}"
                  + (f", unreadable records skipped: {len(a.verdict['unreadable_records'])}"
                     if a.verdict.get("unreadable_records") else "") + ")\n")
        for name, extra in (a.verdict.get("also") or {}).items():
            md.append(f"**Also, {extra['statement']}: {extra['verdict']}** -- {extra['reason']}\n")
        md.append(tables.markdown_text(a.table, _caption(a, claim)))
        tex.append(tables.latex_text(a.table, _caption(a, claim)))
        frames.append(a.table.assign(setting=a.sweep.setting, protocol=a.sweep.protocol, metric=a.metric))
    store.write_text_atomic(out / "table.md", "\n".join(md) + "\n")
    store.write_text_atomic(out / "table.tex", "\n\n".join(tex) + "\n")
    combined = pd.concat(frames, ignore_index=True)
    front = ["setting", "protocol", "metric"]
    combined = combined[front + [c for c in combined.columns if c not in front]]
    buffer = io.StringIO()
    combined.to_csv(buffer, index=False)
    store.write_text_atomic(out / "table.csv", buffer.getvalue())


def write_figures(analyses: list[Analysis], claim: dict, out: Path) -> dict[str, Path]:
    """Isolation plots, an lr x scientific heatmap, best curves and, per setting and scientific value, the
    confusion matrix summed over seeds."""
    sci = scientific_column(claim)
    values = scientific_values(claim)
    numeric = all(isinstance(v, (int, float)) for v in values)
    logx = numeric and min(values) > 0 and max(values) / min(values) >= 8
    paths: dict[str, Path] = {}
    for setting in dict.fromkeys(a.sweep.setting for a in analyses):
        mine = [a for a in analyses if a.sweep.setting == setting]
        for measure in dict.fromkeys(a.metric for a in mine):
            group = {a.sweep.label: a.table for a in mine if a.metric == measure}
            name = f"isolation_{setting}" + ("_steps" if measure == STEPS_TO_TARGET else "")
            paths[name] = figures.isolation_plot(group, sci, out / f"{name}.png", logx=logx, ylabel=measure,
                                                 title=f"{claim['name']} on {setting}: best {measure} per {sci}")
        tuned = next((a for a in mine if len(a.sweep.nuisance.get("optim.lr", [])) > 1 and a.metric != STEPS_TO_TARGET), None)
        if tuned is not None and sci != "optim.lr":
            paths[f"heatmap_{setting}"] = figures.heatmap(tuned.runs, sci, "optim.lr", tuned.metric, out / f"heatmap_{setting}.png",
                                                          logx=logx, logy=True, direction=tuned.direction,
                                                          title=f"{setting} ({tuned.sweep.protocol}): mean {tuned.metric}")
        first = mine[0]
        best = first.selected[first.selected["status"] == "ok"]
        if not best.empty:
            picks = best.sort_values("seed").groupby(sci, sort=True).head(1)
            labels = [f"{sci}={v}" for v in picks[sci]]
            paths[f"curves_{setting}"] = figures.curves_plot(list(picks["run_dir"]), labels, out / f"curves_{setting}.png",
                                                             metric=("test/loss",), title=f"{setting}: best run per {sci} (test loss)")
            for value, (matrix, seeds) in confusion_by_value(best, sci).items():
                name = f"confusion_{setting}_{value}".replace("/", "_")
                paths[name] = plot_confusion(matrix, out / f"{name}.png",
                                             title=f"{setting}, {sci}={value}: summed over {seeds} seeds")
    for a in analyses:
        if a.verdict.get("critical_batch_fit") is None:
            continue
        ok = a.selected[a.selected["status"] == "ok"]
        name = f"steps_to_target_loglog_{a.sweep.setting}"
        paths[name] = figures.steps_to_target_plot(
            pd.to_numeric(ok[sci]), pd.to_numeric(ok[STEPS_TO_TARGET]), out / f"{name}.png", fit=a.verdict["critical_batch_fit"],
            title=f"{a.sweep.setting}: steps to {a.sweep.target_metric} >= {a.sweep.target} (learning rate chosen per batch size)")
    grid = _boundary_cells(analyses, sci)
    if grid:
        rows = list(dict.fromkeys(r for r, _ in grid))
        found = list(dict.fromkeys(c for _, c in grid))
        columns = values if all(any(str(c) == str(v) for v in values) for c in found) else found
        grid = {(r, next((v for v in columns if str(v) == str(c)), c)): cell for (r, c), cell in grid.items()}
        paths["boundaries"] = figures.boundary_grid(
            grid, rows, columns, out / "boundaries.png", row_label="data", column_label=sci,
            title=f"{claim['name']}: decision boundaries (chosen setting, lowest seed; test points)")
    return paths


def _boundary_cells(analyses: list[Analysis], sci: str) -> dict[tuple, dict]:
    """Per (setting, scientific value): the stored decision boundary of the lowest-seed ok run
    of the chosen setting in the setting's first protocol, with its test points."""
    import numpy as np
    from omegaconf import OmegaConf

    from harness.data.cache import points_dataset
    from harness.report.plots import raw_test_points

    cells: dict[tuple, dict] = {}
    seen = set()
    for a in analyses:
        if a.sweep.setting in seen:
            continue
        seen.add(a.sweep.setting)
        ok = a.selected[a.selected["status"] == "ok"].sort_values("seed")
        for value, runs in ok.groupby(sci, sort=False):
            run_dir = Path(str(runs.iloc[0]["run_dir"]))
            if not (run_dir / "boundary.npz").is_file():
                continue
            with np.load(run_dir / "boundary.npz", allow_pickle=False) as npz:
                field = np.asarray(npz["boundary"])
            result = store.read_result(run_dir) or {}
            points = labels = None
            extent = DEFAULT_EXTENT
            try:
                dataset = points_dataset(OmegaConf.create(result["config"]))
                extent = dataset.input_extent or DEFAULT_EXTENT
                points = raw_test_points(dataset)
                labels = dataset.y_test if points is not None else None
            except Exception:  # noqa: BLE001 - the field alone is still worth drawing
                pass
            metric = a.metric if a.metric in runs else None
            caption = f"{a.metric} {float(runs.iloc[0][metric]):.3f} (seed {int(runs.iloc[0]['seed'])})" if metric else ""
            cells[(a.sweep.setting, value)] = {"field": field, "extent": extent, "points": points,
                                               "labels": labels, "caption": caption}
    return cells


def confusion_by_value(ok: pd.DataFrame, sci: str) -> dict[str, tuple[list, int]]:
    """Per scientific value: the confusion matrix summed over its chosen ok runs (every seed),
    and how many runs it sums. Values whose runs stored no matrix are left out."""
    import numpy as np

    out = {}
    for value, runs in ok.groupby(sci, sort=True):
        matrices = [np.asarray(r["confusion_matrix"]) for r in map(store.read_result, runs["run_dir"])
                    if r and r.get("confusion_matrix")]
        if matrices and all(m.shape == matrices[0].shape for m in matrices):
            out[tables.format_value(value)] = (np.sum(matrices, axis=0).tolist(), len(matrices))
    return out


EVIDENCE_SCALES = ("full",)  # a verdict at any other scale (small, smoke) is a test of the machinery


def is_evidence(claim: dict) -> bool:
    """Whether a claim's verdicts are evidence: full scale only."""
    return claim.get("scale", "full") in EVIDENCE_SCALES


def variance_text(claim: dict) -> str:
    """Which run-to-run variance the intervals cover."""
    if claim.get("vary_data_seed"):
        return "init, data order and the data set itself (data.seed varies with the seed: a new sample and split each)"
    return "init and data order only (data.seed is fixed: one data set and one test set)"


def verdicts(analyses: list[Analysis], claim: dict, code: dict[str, Any] | None = None) -> dict[str, Any]:
    """verdict.json: provenance (scale, evidence, code, seeds, variance covered, the commits
    the results were trained at), then per setting and protocol the verdict with its method,
    ci, p, p_adjusted, n, grid_edge, reason, rule and counts."""
    mixed = sorted({c for a in analyses for c in a.verdict.get("code", [])})
    out: dict[str, Any] = {"claim": claim["name"], "statement": claim["statement"],
                           "scale": claim.get("scale", "full"), "evidence": is_evidence(claim),
                           "code": code or {}, "result_commits": mixed, "seeds": int(claim["seeds"]),
                           "variance": variance_text(claim), "multiple_comparisons": "Holm across the claim's comparisons",
                           "settings": {}}
    for a in analyses:
        entry = dict(a.verdict)
        entry.update(label=a.sweep.label, budget=budget_text(a.runs), seeds=int(claim["seeds"]),
                     measure=a.sweep.measure, metric=a.metric)
        for key in ("method", "ci", "p", "p_adjusted", "n", "grid_edge"):
            entry.setdefault(key, None if key != "grid_edge" else [])
        b = critical_batch(a.runs)
        if b is not None:
            entry["gradient_noise_scale_b_simple"] = b
        if a.selection:  # the nuisance setting chosen on validation for each scientific value
            entry["chosen"] = [{k: ([{tk: _plain(tv) for tk, tv in t.items()} for t in v] if k == "tied" else _plain(v))
                                for k, v in row.items()} for row in a.selection]
        out["settings"].setdefault(a.sweep.setting, {})[a.sweep.protocol] = entry
    return out


def _p_text(entry: dict[str, Any]) -> str:
    p, adjusted = entry.get("p"), entry.get("p_adjusted")
    if p is None or p != p:
        return ""
    return f"{p:.3g} ({adjusted:.3g})" if adjusted is not None and adjusted == adjusted else f"{p:.3g}"


def _code_lines(analyses: list[Analysis]) -> list[str]:
    """Which code commits the results were trained at; a warning when a resume mixed several."""
    commits = sorted({c for a in analyses for c in a.verdict.get("code", [])})
    if len(commits) > 1:
        return [f"**These results mix {len(commits)} code versions** (a resumed run reused older results): "
                + ", ".join(f"`{c}`" for c in commits) + ".", ""]
    return [f"Results trained at code `{commits[0]}`." if commits else "Results' code version not recorded.", ""]


def write_readme(analyses: list[Analysis], claim: dict, out: Path, command: str, timings: dict[str, float],
                 figure_paths: dict[str, Path], stage_sweeps: list[Sweep] = ()) -> None:
    """README.md: the claim, protocol, budgets, seeds, rule, commands, verdicts and tables."""
    sci = claim["scientific"]
    sci_text = (f"`{scientific_column(claim)}`, one multirun per variant: "
                + "; ".join(f"`{k}`: `{' '.join(v)}`" for k, v in sci["values"].items())
                if isinstance(sci["values"], dict) else f"`{sci['key']}` in {sci['values']}")
    lines = [
        f"# Claim `{claim['name']}`: \"{claim['statement']}\"",
        "",
        f"Source: {claim['source']}. Scale: `{claim.get('scale', 'full')}`.",
        "",
        "## Reproduce",
        "",
        "```",
        command,
        "```",
        "",
        "It runs these Hydra multiruns (fused launcher; rerunning skips finished jobs)"
        + (", stages first:" if stage_sweeps else ":"),
        "",
        "```",
        *[s.shell(str(sweep_dir(out, s))) for s in stage_sweeps],
        *[a.sweep.shell(str(sweep_dir(out, a.sweep))) for a in analyses],
        "```",
        "",
        "## Protocol",
        "",
        f"- Scientific hyperparameter: {sci_text}.",
        *[f"- Stage `{s.protocol}` (run first, one folder per seed): `{' '.join(s.overrides)}`" for s in stage_sweeps],
        (f"- Nuisance hyperparameters, tuned separately for every value on `{claim.get('select_metric')}` "
         f"(validation, never test): {json.dumps(claim.get('nuisance'))}." if claim.get("nuisance")
         else "- Nuisance hyperparameters: none (nothing is tuned)."),
        f"- Fixed: `{' '.join(claim.get('fixed', []))}`.",
        f"- Seeds: {claim['seeds']} per configuration (init and data order); "
        f"intervals cover {variance_text(claim)}; 95% t-intervals.",
        (f"- Scale `{claim.get('scale', 'full')}`: **not evidence** -- a small run that tests the machinery, not the claim."
         if not is_evidence(claim) else "- Scale `full`: the claim's protocol as written."),
        "- Multiple comparisons: Holm across every comparison of the claim (adjusted p in verdict.json).",
        f"- Metric: `{claim['metric']}` ({claim.get('direction', 'higher')} is better).",
        "- Diverged or failed runs are counted in every table and never averaged in; a nuisance setting with a "
        "diverged seed never wins (it ranks below every setting whose seeds all finished).",
        "",
        "Settings (data and model):",
        "",
        *[f"- `{name}`: `{' '.join(o)}`" for name, o in claim["settings"].items()],
        "",
        "Protocols (budgets):",
        "",
        *[f"- `{name}`: {(p or {}).get('label', name)} -- `{' '.join((p or {}).get('overrides', []))}`"
          + (f"; its own nuisance grid {json.dumps(p['nuisance'])}" if (p or {}).get("nuisance") else "")
          for name, p in claim["protocols"].items()],
        "",
        "## Verdict rule",
        "",
        analyses[0].verdict["rule"] if analyses else "",
        *[f"\nAlso, {e['statement']}: {e['rule']}" for e in ((analyses[0].verdict.get("also") or {}).values() if analyses else [])],
        *(["", "A run counts as diverged when its loss or parameters become non-finite, or when its final training "
           "loss is above its loss at initialisation (`divergence: loss_above_initial`)."]
          if claim.get("divergence") == "loss_above_initial" else []),
        "",
        "## Verdicts",
        "",
        *_code_lines(analyses),
        "| setting | protocol | verdict | reason | p (Holm-adjusted) | runs | diverged | B_simple (median) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for a in analyses:
        b = critical_batch(a.runs)
        shown = a.verdict["verdict"] + (" (not evidence)" if not is_evidence(claim) else "")
        if a.verdict.get("role") == "control":
            shown = f"control: {a.verdict['verdict']}"
        lines.append(f"| {a.sweep.setting} | {a.sweep.label} | **{shown}** | {a.verdict['reason']} | "
                     f"{_p_text(a.verdict)} | {a.verdict['runs']} | {a.verdict['diverged_runs']} | "
                     f"{'' if b is None else f'{b:.3g}'} |")
        if a.verdict.get("sensitivity"):
            sens = a.verdict["sensitivity"]
            lines.append(f"| {a.sweep.setting} | {a.sweep.label}: sensitivity, {sens['what']} | {sens['verdict']} | "
                         f"{sens['reason']} |  |  |  |  |")
        for name, extra in (a.verdict.get("also") or {}).items():
            lines.append(f"| {a.sweep.setting} | {a.sweep.label}: {extra['statement']} | **{extra['verdict']}** | "
                         f"{extra['reason']} | {a.verdict['runs']} | {a.verdict['diverged_runs']} |  |")
    lines += batch_lines(analyses)
    chosen = [(a, row) for a in analyses for row in (a.selection or [])]
    if chosen:
        lines += ["", "## Nuisance settings chosen on validation", "",
                  "| setting | protocol | choice | validation mean |", "|---|---|---|---|"]
        for a, row in chosen:
            choice = ", ".join(f"{k}={v}" for k, v in row.items() if k not in ("select_mean", "ok", "n", "tied"))
            ties = len(row.get("tied") or []) - 1
            tie_text = f" (tied with {ties} other setting{'s' if ties > 1 else ''}; the first in grid order)" if ties > 0 else ""
            lines.append(f"| {a.sweep.setting} | {a.sweep.protocol} | {choice}{tie_text} | {float(row['select_mean']):.4g} |")
    lines += ["", "B_simple is the gradient noise scale (McCandlish et al. 2018), measured during training: the "
              "predicted critical batch size, above which larger batches stop paying off in steps.", "",
              "## Tables", "", "See `table.md` (also `table.csv`, `table.tex`).", "", "## Figures", ""]
    lines += [f"![{name}]({path.name})" for name, path in figure_paths.items()]
    lines += ["", "## Wall time", "", *[f"- {k}: {v:.1f} s" for k, v in timings.items()], ""]
    store.write_text_atomic(out / "README.md", "\n".join(lines))


def _plain(value: Any) -> Any:
    """A JSON-native scalar (numpy numbers to Python; anything else as its text)."""
    if isinstance(value, np.generic):
        return value.item()
    return value if isinstance(value, (str, int, float, bool)) or value is None else str(value)


def _g(value: Any, digits: int = 3) -> str:
    return tables.format_number(value, digits, trailing_zeros=False)


def batch_lines(analyses: list[Analysis]) -> list[str]:
    """README lines for the batch-size analyses (:mod:`harness.claim.batch`), if any: the
    critical batch size fitted to steps to target beside B_simple (over whole runs and at the
    target), and the stable learning-rate band per batch size."""
    lines: list[str] = []
    fits = [a for a in analyses if a.verdict.get("critical_batch_fit")]
    if fits:
        lines += ["", "## Critical batch size", "",
                  "B_crit fitted to steps to target, S = S_min (1 + B_crit / B) (McCandlish et al. 2018), per seed "
                  "by least squares in 1/B, with a 95% t-interval of log B_crit over seeds; runs that never reached "
                  "the target are censored and left out of their seed's fit. B_simple is the measured gradient noise "
                  "scale: at the evaluation where each steps-to-target run first reached the target, and (last "
                  "column) its median over whole equal-examples runs.", "",
                  "| setting | B_crit [95% CI] | S_min | seeds fitted (excluded) | censored runs | "
                  "B_simple at target: median [quartiles] (runs) | B_simple at target by batch size | "
                  "B_simple, whole equal-examples runs (median) |",
                  "|---|---|---|---|---|---|---|---|"]
        for a in fits:
            fit = a.verdict["critical_batch_fit"]
            at = a.verdict.get("b_simple_at_target") or {}
            whole = next((critical_batch(b.runs) for b in analyses
                          if b.sweep.setting == a.sweep.setting and critical_batch(b.runs) is not None
                          and b.sweep.measure != STEPS_TO_TARGET), None)
            lines.append(
                f"| {a.sweep.setting} | {_g(fit['b_crit'])} [{_g(fit['ci'][0])}, {_g(fit['ci'][1])}] | {_g(fit['s_min'])} | "
                f"{fit['n']} ({fit['excluded']}) | {fit['censored_runs']} of {fit['runs']} | "
                + (f"{_g(at['median'])} [{_g(at['quartiles'][0])}, {_g(at['quartiles'][1])}] ({at['n']})" if at else "not measured")
                + " | " + (", ".join(f"B={b}: {_g(v)}" for b, v in at.get("by_batch", {}).items()) if at else "")
                + f" | {'' if whole is None else _g(whole)} |")
    bands = [a for a in analyses if a.verdict.get("lr_band")]
    if bands:
        within = bands[0].verdict["lr_band"]["within"]
        lines += ["", "## Stable learning-rate band (Masters & Luschi 2018)", "",
                  f"Per batch size, the learning rates whose seeds all finished (none diverged) and whose mean "
                  f"`{bands[0].verdict['lr_band']['metric']}` is within {within:g} of the best such learning rate; "
                  "decades = log10(high / low) of that band. Grid extensions included.", "",
                  "| setting | protocol | batch size | learning rates tried | stable (no divergence) | "
                  "within tolerance of best | band | decades |", "|---|---|---|---|---|---|---|---|"]
        for a in bands:
            for row in a.verdict["lr_band"]["rows"]:
                lines.append(f"| {a.sweep.setting} | {a.sweep.protocol} | {_g(row['batch'])} | "
                             f"{', '.join(_g(v) for v in row['tried'])} | {', '.join(_g(v) for v in row['stable']) or 'none'} | "
                             f"{', '.join(_g(v) for v in row['good']) or 'none'} | "
                             f"{_g(row['low'])} .. {_g(row['high'])} | {_g(row['decades'], 2)} |")
    return lines
