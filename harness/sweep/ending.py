"""The lines a sweep ends with: where its outputs are, what ran it, and its best settings.

    sweep folder: /home/me/multirun/2026-12-02/18-35-02 (8 results)
    backend: cpu, 1 device
    top 2 of 2 settings by val/loss (lower is better) over seeds:
    <the harness-table table of those settings>

The table is ``harness-table``'s own (:func:`harness.report.tables.ablation_table` printed
by :func:`harness.report.cli.print_table`): one row per setting of the overrides that vary
in the sweep, other than the seed, with its mean over seeds, confidence interval and run
counts (diverged runs are counted, never dropped). The objective is ``optimized_metric``
when the config sets one, else the validation loss, else the training loss: a sweep's
ending never ranks by a test metric unless asked to.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Iterable, Sequence

log = logging.getLogger("harness.fused")

TOP = 5  # settings shown
FALLBACK_OBJECTIVES = ("val/loss", "train/loss")  # when optimized_metric is not set
NOT_COMPARED = ("seed",)  # varying override keys averaged over, not compared


def objective(optimized_metric: str | None, columns: Iterable[str]) -> str | None:
    """The metric the ending ranks by: ``optimized_metric``, else the first fallback the
    results have (None: none of them)."""
    if optimized_metric:
        return str(optimized_metric)
    columns = set(columns)
    return next((m for m in FALLBACK_OBJECTIVES if m in columns), None)


def backend_text(result: dict[str, Any] | None) -> str:
    """``cpu, 1 device``: the JAX backend a result was trained on and its group's devices."""
    result = result or {}
    backend = (result.get("versions") or {}).get("backend", "?")
    devices = int((result.get("timings") or {}).get("devices", 1) or 1)
    return f"{backend}, {devices} device{'s' if devices != 1 else ''}"


def _override_columns(df, overrides_by_dir: dict[str, Sequence[str]], keys: Sequence[str]) -> list[str]:
    """The result columns for the varying override keys: the config column of the same name
    (typed) when there is one, else a column of the override's value as typed (``data=xor``)."""
    from harness.overrides import override_key

    columns = []
    for key in keys:
        if key not in df.columns:
            values = {}
            for run_dir, overrides in overrides_by_dir.items():
                for item in overrides:
                    if override_key(item) == key and "=" in item:
                        values[run_dir] = item.split("=", 1)[1]
            df[key] = df["run_dir"].map(values)
        columns.append(key)
    return columns


def top_table(df, by: list[str], metric: str, top: int = TOP):
    """The ``top`` best rows of the ablation table of ``df`` by ``metric`` (its default
    direction), best first, and the number of settings in all."""
    from harness.report.tables import ablation_table, default_direction

    table = ablation_table(df, by, metric, direction=default_direction(metric))
    ascending = table.attrs["direction"] == "lower"
    ranked = table.sort_values("mean", ascending=ascending, na_position="last", kind="stable").head(top)
    ranked.attrs.update(table.attrs)
    return ranked.reset_index(drop=True), len(table)


def show(sweep_dir: str | Path, run_dirs: Sequence[str | Path], overrides: Sequence[Sequence[str]],
         varying: Iterable[str], optimized_metric: str | None) -> None:
    """Log the sweep's folder and backend, and print its top settings (see the module)."""
    from harness import store
    from harness.folders import distrust
    from harness.report.draw import FIGURES

    run_dirs = [str(Path(d)) for d in run_dirs]
    stored = [d for d in run_dirs if (Path(d) / store.RESULT_FILE).is_file()]
    log.info(f"sweep folder: {Path(sweep_dir).absolute()} ({len(stored)} results)")
    if not stored:
        return  # submitted to SLURM and not waited for, or every job failed before storing
    log.info(f"backend: {backend_text(store.read_result(stored[0]))}")
    if not any((Path(d) / name).is_file() for d in stored[:1] for name in FIGURES):
        # output.plots=auto: a sweep's jobs draw no PNGs; say how to get them.
        log.info(f"per-run plots (curves, boundary, confusion): harness-plot {sweep_dir}")
    keys = sorted(k for k in varying if k not in NOT_COMPARED)
    if not keys:
        return  # one setting (seeds only): nothing to rank, and no need to read every result
    # The same reader as harness-table: a tampered record is named, not ranked.
    problems: list = []
    df = store.load_results(sweep_dir, problems, verify=distrust)
    for bad, why in problems:
        log.warning(f"skipped {bad}: {why}")
    df = df[df["run_dir"].isin(run_dirs)].copy()
    metric = objective(optimized_metric, df.columns)
    if metric is None or metric not in df.columns:
        return  # no metric to rank by
    by = _override_columns(df, dict(zip(run_dirs, overrides)), keys)
    from harness.report.cli import print_table

    table, settings = top_table(df, by, metric)
    direction = table.attrs["direction"]
    if not optimized_metric:
        log.info(f"ranked by {metric}, the default; optimized_metric=<metric> ranks by another")
    title = f"top {len(table)} of {settings} settings by {metric} ({direction} is better), over seeds"
    print_table(table, title, f"the top {len(table)} settings in {sweep_dir}")
