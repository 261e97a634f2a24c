"""Ablation tables over seeds, the Tuning Playbook's isolation step, and table writers.

:func:`ablation_table` turns the runs of :func:`harness.store.load_results` into one row per
setting of the chosen columns: run counts by status, the mean of a metric over the ``ok``
runs with a t-interval (:func:`harness.report.stats.mean_ci`), spread and the seeds. Diverged and failed runs
are counted and shown, never silently dropped; only their metric stays out of the mean
(a diverged run's last value is not a measurement of the setting).

:func:`best_per_value` implements the isolation of the Deep Learning Tuning Playbook: for
each value of the scientific hyperparameter, the nuisance setting is chosen on a
*validation* metric, and the test metric is reported at that setting.

Writers produce Markdown, CSV and LaTeX without ``tabulate`` or ``jinja2``; every file is
written atomically (:func:`harness.store.write_text_atomic`).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Hashable, Iterable, Sequence

import numpy as np
import pandas as pd

from harness import store
from harness.report.stats import mean_ci
from harness.results import LOWER_IS_BETTER  # defined once, beside summarize_curves

OK, DIVERGED, FAILED = "ok", "diverged", "failed"
COUNT_COLUMNS = ("n", "ok", "diverged", "failed", "missing")
STAT_COLUMNS = ("mean", "ci_low", "ci_high", "std", "min", "max", "best", "seeds")
DASH = "\u2014"


# ---------------------------------------------------------------- values and grouping


def default_direction(metric: str) -> str:
    """``"lower"`` for losses and MSEs (``test/loss``, ``best/test/mse``), else ``"higher"``."""
    return "lower" if metric.split("/")[-1] in LOWER_IS_BETTER else "higher"


def _check_direction(direction: str) -> None:
    if direction not in ("higher", "lower"):
        raise ValueError(f"direction={direction!r} is not allowed: one of higher, lower")


def _is_missing(value: Any) -> bool:
    """None, NaN or pandas' NA (a config key absent from some runs)."""
    if value is None or value is pd.NA:
        return True
    return isinstance(value, (float, np.floating)) and math.isnan(value)


def normalize(value: Any) -> Hashable:
    """A hashable, comparable form of a config value: lists become tuples, NaN becomes None.

    Numpy scalars become Python ones, so ``16``, ``np.int64(16)`` and ``16.0`` compare
    (and group) equal.
    """
    if isinstance(value, (list, tuple, np.ndarray)):
        return tuple(normalize(v) for v in value)
    if _is_missing(value):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value


def sort_key(value: Any) -> tuple:
    """Numbers first in numeric order, then strings and tuples as text, missing values last."""
    value = normalize(value)
    if value is None:
        return (2, 0.0, "")
    if isinstance(value, (bool, int, float)):
        return (0, float(value), "")
    return (1, 0.0, str(value))


def _groups(df: pd.DataFrame, columns: Sequence[str]) -> list[tuple[tuple, list]]:
    """``[(key, row labels)]`` for every combination of ``columns`` present, sorted numerically."""
    buckets: dict[tuple, list] = {}
    records = df[list(columns)].itertuples(index=True, name=None) if columns else ((i,) for i in df.index)
    for record in records:
        label, values = record[0], record[1:]
        buckets.setdefault(tuple(normalize(v) for v in values), []).append(label)
    return sorted(buckets.items(), key=lambda item: tuple(sort_key(v) for v in item[0]))


def _require_columns(df: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    """A clear ValueError naming the missing column and a few available ones."""
    for column in columns:
        if column not in df.columns:
            available = ", ".join(map(str, list(df.columns)[:12]))
            raise ValueError(f"{what} {column!r} is not a column of the results; available: {available}, ...")


def _numeric(series: pd.Series) -> np.ndarray:
    """A column as float64, anything unparsable (None, strings) as NaN."""
    # A copy: pandas may hand back a read-only view of its own buffer.
    return np.array(pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan))


def _status(df: pd.DataFrame, status_col: str) -> pd.Series:
    """Run statuses; a run with no status column at all counts as ``ok``."""
    if status_col not in df.columns:
        return pd.Series(OK, index=df.index)
    return df[status_col]


def _ok_values(df: pd.DataFrame, metric: str, status_col: str) -> np.ndarray:
    """The metric per row, NaN for runs that are not ``ok`` (their value is not a measurement)."""
    values = _numeric(df[metric])
    values[(_status(df, status_col) != OK).to_numpy()] = np.nan
    return values


def _seed_list(seeds: pd.Series) -> str:
    """The seeds of a group's runs, sorted: ``"0,1,2"``.

    Repeats stay visible (several runs per seed means some other column still varies
    inside the group): ``"0,1,2 (x4 each)"`` when every seed repeats equally, else
    ``"0x2,1,2"``.
    """
    counts: dict[Any, int] = {}
    for seed in seeds:
        seed = normalize(seed)
        if seed is not None:
            counts[seed] = counts.get(seed, 0) + 1
    ordered = sorted(counts, key=sort_key)
    repeats = set(counts.values())
    if repeats <= {1}:
        return ",".join(format_value(s) for s in ordered)
    if len(repeats) == 1:
        return ",".join(format_value(s) for s in ordered) + f" (x{repeats.pop()} each)"
    return ",".join(format_value(s) + (f"x{counts[s]}" if counts[s] > 1 else "") for s in ordered)


# ---------------------------------------------------------------- the ablation table


def ablation_table(
    df: pd.DataFrame,
    by: list[str],
    metric: str,
    *,
    direction: str = "higher",
    seed_col: str = "seed",
    status_col: str = "status",
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """One row per combination of the ``by`` columns: counts, mean, t-interval, spread.

    Columns: the ``by`` columns, then ``n`` (runs), ``ok``, ``diverged``, ``failed`` (any
    status other than ok/diverged), ``missing`` (ok runs without a finite metric value),
    ``mean``, ``ci_low``, ``ci_high`` (t-interval of the mean, :func:`mean_ci`, at
    ``confidence``), ``std`` (sample std, ddof=1), ``min``, ``max`` over the finite metric
    values of ``ok`` runs; ``best`` (True on the row with the best mean by ``direction``,
    the first in sort order on ties) and ``seeds`` (every run's seed, e.g. ``"0,1,2"``).
    Rows are sorted by the ``by`` columns, numbers numerically. A list-valued config column
    (e.g. hidden sizes) groups by its contents. ``table.attrs`` records ``metric``,
    ``direction``, ``by`` and ``confidence`` for the writers.
    """
    by = list(by)
    _check_direction(direction)
    df = df.reset_index(drop=True)  # concatenated frames may repeat index labels
    _require_columns(df, by, "--by")
    _require_columns(df, [metric], "--metric")
    status = _status(df, status_col)
    values = pd.Series(_ok_values(df, metric, status_col), index=df.index)
    rows = []
    for key, labels in _groups(df, by):
        rows.append(_table_row(by, key, labels, df, status, values, seed_col, confidence, n_resamples, seed))
    columns = [*by, *COUNT_COLUMNS, *STAT_COLUMNS]
    table = pd.DataFrame(rows, columns=columns)
    _mark_best(table, direction)
    table.attrs.update(metric=metric, direction=direction, by=by, confidence=confidence)
    return table


def _table_row(by, key, labels, df, status, values, seed_col, confidence, n_resamples, seed) -> dict[str, Any]:
    """The counts and statistics of one group of runs."""
    group_status = status.loc[labels]
    n_ok = int((group_status == OK).sum())
    n_diverged = int((group_status == DIVERGED).sum())
    finite = values.loc[labels].to_numpy()
    finite = finite[np.isfinite(finite)]
    mean, low, high = mean_ci(finite, confidence, n_resamples, seed)
    row: dict[str, Any] = {column: _display_key(df, column, labels, k) for column, k in zip(by, key)}
    row.update(
        n=len(labels),
        ok=n_ok,
        diverged=n_diverged,
        failed=len(labels) - n_ok - n_diverged,
        missing=n_ok - int(finite.size),
        mean=mean,
        ci_low=low,
        ci_high=high,
        std=float(np.std(finite, ddof=1)) if finite.size > 1 else math.nan,
        min=float(finite.min()) if finite.size else math.nan,
        max=float(finite.max()) if finite.size else math.nan,
        best=False,
        seeds=_seed_list(df.loc[labels, seed_col]) if seed_col in df.columns else "",
    )
    return row


def add_metric_columns(table: pd.DataFrame, df: pd.DataFrame, columns: Sequence[str], *,
                       status_col: str = "status", confidence: float | None = None,
                       n_resamples: int = 1000, seed: int = 0) -> pd.DataFrame:
    """``table`` with, per extra metric ``c``, columns ``c`` (mean over the ok runs of the
    row) and ``c ci_low`` / ``c ci_high`` (t-interval), e.g. the train-test gap and the
    weight sparsity next to the test accuracy. The rows are matched on ``table.attrs["by"]``;
    a metric missing from ``df`` is skipped. The writers show them after the main metric."""
    by = list(table.attrs.get("by") or [])
    confidence = confidence or float(table.attrs.get("confidence", 0.95))
    out = table.copy()
    out.attrs.update(table.attrs)
    extra = list(out.attrs.get("extra") or [])
    work = df.reset_index(drop=True)
    status = _status(work, status_col)
    groups = dict(_groups(work, by))
    for column in columns:
        if column not in work.columns or column in extra:
            continue
        values = pd.Series(_ok_values(work, column, status_col), index=work.index)
        means, lows, highs = [], [], []
        for record in out.to_dict(orient="records"):
            key = tuple(normalize(record[c]) for c in by)
            labels = groups.get(key, [])
            finite = values.loc[labels].to_numpy() if labels else np.array([])
            finite = finite[np.isfinite(finite) & (status.loc[labels] == OK).to_numpy()] if labels else finite
            mean, low, high = mean_ci(finite, confidence, n_resamples, seed)
            means.append(mean), lows.append(low), highs.append(high)
        out[column], out[f"{column} ci_low"], out[f"{column} ci_high"] = means, lows, highs
        extra.append(column)
    out.attrs["extra"] = extra
    return out


def _display_key(df: pd.DataFrame, column: str, labels: list, key: Any) -> Any:
    """The group's value as stored (a list stays a list), None when missing."""
    if key is None:
        return None
    value = df.at[labels[0], column]
    return list(value) if isinstance(value, (list, tuple, np.ndarray)) else normalize(value)


def _mark_best(table: pd.DataFrame, direction: str) -> None:
    """Set ``best`` on the row with the best finite mean (the first of equals)."""
    means = table["mean"].to_numpy(dtype=np.float64)
    if not np.isfinite(means).any():
        return
    filled = np.where(np.isfinite(means), means, -np.inf if direction == "higher" else np.inf)
    index = int(np.argmax(filled) if direction == "higher" else np.argmin(filled))
    table.loc[table.index[index], "best"] = True


# ---------------------------------------------------------------- Playbook isolation


def validation_metric(metric: str) -> str:
    """The validation twin of a test metric: ``test/accuracy`` -> ``val/accuracy``."""
    parts = metric.split("/")
    return "/".join("val" if p == "test" else p for p in parts)


def best_per_value(
    df: pd.DataFrame,
    scientific: str,
    nuisance: list[str],
    metric: str,
    direction: str,
    select_metric: str | None = None,
    *,
    select_direction: str | None = None,
    require_all_ok: bool = True,
    statistic: str = "mean",
    seed_col: str = "seed",
    status_col: str = "status",
) -> pd.DataFrame:
    """For each value of ``scientific``, all runs (every seed) of its best nuisance setting.

    The Deep Learning Tuning Playbook's isolation: the nuisance hyperparameters (e.g. the
    learning rate) are tuned separately for each value of the scientific one (e.g. batch
    size), choosing by a *validation* metric so that the reported test metric is not
    selected on itself. ``select_metric`` defaults to the validation twin of ``metric``
    (``test/accuracy`` -> ``val/accuracy``); a select metric naming ``test`` is refused.
    ``select_direction`` defaults to the usual one for its name (lower for loss/mse).
    ``direction`` is the reported metric's direction (kept in ``attrs`` for the table).

    Ranking of the nuisance settings of one scientific value: the best mean select metric
    over the settings' ``ok`` runs. With ``require_all_ok`` (default), a setting in which
    any seed diverged or failed ranks below every setting whose seeds all finished (fewest
    non-ok runs first): an edge-of-stability setting must not win on its surviving seeds.
    Ties go to the first setting in numeric sort order (``tied`` in each selection entry lists
    every setting that ranked as well as the chosen one). ``statistic="median"`` ranks by the
    median instead (for a right-censored measure such as steps to a target, where ``inf``
    marks a run that never got there: the median is finite while at most half are censored).

    Returns the chosen rows of ``df`` (diverged ones included, so tables count them), sorted
    by the scientific value; ``attrs["selection"]`` lists each choice with its select mean.
    """
    _check_direction(direction)
    nuisance = list(nuisance)
    select_metric = select_metric or (validation_metric(metric) if "test" in metric.split("/") else metric)
    if "test" in select_metric.split("/"):
        raise ValueError(f"select_metric={select_metric!r} is a test metric; choose settings on a validation metric")
    select_direction = select_direction or default_direction(select_metric)
    _check_direction(select_direction)
    _require_columns(df, [scientific, *nuisance], "column")
    _require_columns(df, [select_metric], "select_metric")
    work = df.reset_index(drop=True)  # positions as labels: the caller's index may repeat
    select_values = pd.Series(_ok_values(work, select_metric, status_col), index=work.index)
    status = _status(work, status_col)
    chosen, selection = [], []
    for value, labels in _groups(work, [scientific]):
        best = _best_setting(work.loc[labels], nuisance, select_values, status, select_direction, require_all_ok,
                             statistic)
        chosen.extend(best["labels"])
        selection.append({scientific: value[0], **dict(zip(nuisance, best["key"])),
                          "select_mean": best["mean"], "ok": best["ok"], "n": len(best["labels"]),
                          "tied": [dict(zip(nuisance, key)) for key in best["tied"]]})
    out = df.iloc[chosen].copy()
    out.attrs.update(metric=metric, direction=direction, select_metric=select_metric,
                     select_direction=select_direction, selection=selection)
    return out


def _best_setting(sub, nuisance, select_values, status, select_direction, require_all_ok,
                  statistic="mean") -> dict[str, Any]:
    """The best nuisance setting among the runs ``sub`` of one scientific value."""
    candidates = []
    for order, (key, labels) in enumerate(_groups(sub, nuisance)):
        values = select_values.loc[labels].to_numpy()
        if statistic == "median":
            values = values[~np.isnan(values)]  # inf (censored) stays: it ranks last
            mean = float(np.median(values)) if values.size else math.nan
        else:
            values = values[np.isfinite(values)]
            mean = float(values.mean()) if values.size else math.nan
        not_ok = int((status.loc[labels] != OK).sum()) if require_all_ok else 0
        # Lower rank tuple is better: stable settings first, then the best mean, then order.
        score = -mean if select_direction == "higher" else mean
        rank = (not_ok, score if math.isfinite(mean) else math.inf, order)
        candidates.append((rank, {"key": key, "labels": labels, "mean": mean, "ok": int((status.loc[labels] == OK).sum())}))
    rank, best = min(candidates, key=lambda c: c[0])
    # Every setting as good as the best (the tie the grid order broke): a choice on a grid
    # edge that ties with a setting inside the grid is no sign that the optimum lies outside.
    best["tied"] = [c[1]["key"] for c in candidates if c[0][:2] == rank[:2]]
    return best


# ---------------------------------------------------------------- pairing helpers for claims


def paired_by_seed(
    df: pd.DataFrame,
    column: str,
    a: Any,
    b: Any,
    metric: str,
    *,
    seed_col: str = "seed",
    status_col: str = "status",
) -> tuple[np.ndarray, np.ndarray, list]:
    """Metric values at ``column == a`` and ``column == b``, aligned by seed.

    Returns ``(values_a, values_b, seeds)`` over the seeds present at both values; a run
    that is not ``ok`` contributes NaN (so :func:`harness.report.stats.paired_difference`
    leaves that pair out and its ``n`` shows it). Several runs of one seed at one value
    (other columns still varying) is an error: select a setting first, e.g. with
    :func:`best_per_value`.
    """
    _require_columns(df, [column, seed_col, metric], "column")
    df = df.reset_index(drop=True)
    values = pd.Series(_ok_values(df, metric, status_col), index=df.index)
    by_seed = {}
    for side, target in (("a", normalize(a)), ("b", normalize(b))):
        rows = df.index[[normalize(v) == target for v in df[column]]]
        seeds = [normalize(s) for s in df.loc[rows, seed_col]]
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"{column}={target!r} has several runs per seed; select one setting per seed first")
        by_seed[side] = dict(zip(seeds, values.loc[rows]))
    common = sorted(set(by_seed["a"]) & set(by_seed["b"]), key=sort_key)
    return (np.array([by_seed["a"][s] for s in common], np.float64),
            np.array([by_seed["b"][s] for s in common], np.float64), common)


def ordered_values(df: pd.DataFrame, axis: str, metric: str, *, status_col: str = "status") -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` per run for :func:`harness.report.stats.trend_test`; y is NaN for non-ok runs."""
    _require_columns(df, [axis, metric], "column")
    return _numeric(df[axis]), _ok_values(df, metric, status_col)


# ---------------------------------------------------------------- formatting


def format_number(value: Any, digits: int = 4, *, trailing_zeros: bool = True) -> str:
    """A number to ``digits`` significant digits (``0.9120``, ``1.200e-05``); a dash if missing.

    Trailing zeros are kept by default so a column of metrics lines up digit for digit.
    """
    if _is_missing(value):
        return DASH
    value = float(value)
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    text = f"{value:#.{digits}g}" if trailing_zeros else f"{value:.{digits}g}"
    return text.rstrip(".")


def format_value(value: Any) -> str:
    """A config value as text: whole numbers exactly (``60000``), others to 4 digits, lists as ``[8, 8]``."""
    value = normalize(value)
    if value is None:
        return DASH
    if isinstance(value, tuple):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return format_number(value, trailing_zeros=False)
    return str(value)


def format_ci(mean: Any, low: Any, high: Any) -> str:
    """``0.9123 [0.9011, 0.9234]``; the bare mean when there is no interval (one run)."""
    if _is_missing(mean):
        return DASH
    if _is_missing(low) or _is_missing(high):
        return format_number(mean)
    return f"{format_number(mean)} [{format_number(low)}, {format_number(high)}]"


def _shown_counts(table: pd.DataFrame) -> list[str]:
    """Count columns to show: n, ok and diverged always; failed and missing when non-zero."""
    shown = ["n", "ok", "diverged"]
    shown += [c for c in ("failed", "missing") if c in table.columns and (table[c] != 0).any()]
    return shown


def display_rows(table: pd.DataFrame) -> tuple[list[str], list[list[str]], list[bool]]:
    """Header, text cells and the best flags of a table, as every writer shows them."""
    by = list(table.attrs.get("by") or [c for c in table.columns if c not in (*COUNT_COLUMNS, *STAT_COLUMNS)])
    metric = table.attrs.get("metric", "metric")
    level = 100 * float(table.attrs.get("confidence", 0.95))
    counts = _shown_counts(table)
    extra = list(table.attrs.get("extra") or [])
    header = [*by, *counts, f"{metric} mean [{level:g}% CI]", "std", "min", "max",
              *(f"{c} mean [{level:g}% CI]" for c in extra), "seeds"]
    rows, best = [], []
    for record in table.to_dict(orient="records"):
        cells = [format_value(record[c]) for c in by]
        cells += [str(int(record[c])) for c in counts]
        cells.append(format_ci(record["mean"], record["ci_low"], record["ci_high"]))
        cells += [format_number(record[c]) for c in ("std", "min", "max")]
        cells += [format_ci(record[c], record[f"{c} ci_low"], record[f"{c} ci_high"]) for c in extra]
        cells.append(str(record.get("seeds", "")))
        rows.append(cells)
        best.append(bool(record.get("best", False)))
    return header, rows, best


def default_caption(table: pd.DataFrame) -> str:
    """What the table shows, in one sentence."""
    metric = table.attrs.get("metric", "metric")
    direction = table.attrs.get("direction", "higher")
    level = 100 * float(table.attrs.get("confidence", 0.95))
    by = ", ".join(table.attrs.get("by") or [])
    return (
        f"{metric} ({direction} is better) by {by}: mean over ok runs with {level:g}% t-interval; "
        f"diverged and failed runs are counted, their metric excluded; best mean in bold."
    )


# ---------------------------------------------------------------- writers


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|")


def markdown_text(table: pd.DataFrame, caption: str | None = None) -> str:
    """The table as GitHub Markdown: a caption paragraph, then a pipe table (best mean in bold)."""
    header, rows, best = display_rows(table)
    n_by = len(table.attrs.get("by") or [])
    lines = [caption if caption is not None else default_caption(table), ""]
    lines.append("| " + " | ".join(_md_cell(h) for h in header) + " |")
    # Configuration columns left-aligned, numbers right-aligned.
    lines.append("|" + "|".join("---" if i < n_by else "---:" for i in range(len(header))) + "|")
    mean_col = header.index(next(h for h in header if h.endswith("CI]")))
    for cells, is_best in zip(rows, best):
        shown = [_md_cell(c) for c in cells]
        if is_best:
            shown[mean_col] = f"**{shown[mean_col]}**"
        lines.append("| " + " | ".join(shown) + " |")
    return "\n".join(lines) + "\n"


def to_markdown(table: pd.DataFrame, path: str | os.PathLike, caption: str | None = None) -> Path:
    """Write :func:`markdown_text` to ``path`` atomically."""
    store.write_text_atomic(path, markdown_text(table, caption))
    return Path(path)


def to_csv(table: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write every column of the table as CSV atomically, numbers at full precision (for machines)."""
    frame = table.copy()
    for column in frame.columns:
        # Lists (hidden sizes) as "[8, 8]" rather than Python's repr with numpy types.
        if frame[column].map(lambda v: isinstance(v, (list, tuple))).any():
            frame[column] = frame[column].map(format_value)
    store.write_text_atomic(path, frame.to_csv(index=False))
    return Path(path)


LATEX_SPECIAL = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
}


def latex_escape(text: str) -> str:
    """Escape LaTeX's special characters (``_`` in ``train.batch_size``, ``%``, ``&``...)."""
    return "".join(LATEX_SPECIAL.get(ch, ch) for ch in str(text))


def latex_text(table: pd.DataFrame, caption: str | None = None, label: str | None = None) -> str:
    """The table as a LaTeX ``table`` float with a booktabs ``tabular`` (best mean in bold)."""
    header, rows, best = display_rows(table)
    n_by = len(table.attrs.get("by") or [])
    spec = "l" * n_by + "r" * (len(header) - n_by)
    dash = "--"  # an en dash in LaTeX, for missing numbers
    lines = [
        "% requires \\usepackage{booktabs}",
        "\\begin{table}[htbp]",
        "\\centering",
        f"\\caption{{{latex_escape(caption if caption is not None else default_caption(table))}}}",
    ]
    if label:
        lines.append(f"\\label{{{label}}}")
    lines += [f"\\begin{{tabular}}{{{spec}}}", "\\toprule", " & ".join(latex_escape(h) for h in header) + " \\\\", "\\midrule"]
    mean_col = header.index(next(h for h in header if h.endswith("CI]")))
    for cells, is_best in zip(rows, best):
        shown = [dash if c == DASH else latex_escape(c) for c in cells]
        if is_best:
            shown[mean_col] = f"\\textbf{{{shown[mean_col]}}}"
        lines.append(" & ".join(shown) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}", "\\end{table}"]
    return "\n".join(lines) + "\n"


def to_latex(table: pd.DataFrame, path: str | os.PathLike, caption: str | None = None) -> Path:
    """Write :func:`latex_text` to ``path`` atomically."""
    store.write_text_atomic(path, latex_text(table, caption))
    return Path(path)
