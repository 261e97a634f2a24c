"""Figures across runs: isolation plots with CI bands, hyperparameter heatmaps, chosen curves,
and a Playground-style grid of decision boundaries (e.g. activation x data set).

Like :mod:`harness.report.plots`, every figure is a bare :class:`matplotlib.figure.Figure` on
an Agg canvas (no pyplot state, nothing to close, safe in threads and headless), written
as PNG atomically (temp file beside the target, then rename, via
:func:`harness.store.atomic_path`). These are report figures, a few per claim, so they use
matplotlib's constrained layout: titles, tick labels and colour bars always fit. Diverged
runs are marked, never hidden.
"""

from __future__ import annotations

import math
import os
import textwrap
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.colors import Normalize
from matplotlib.transforms import blended_transform_factory

from harness import store
from harness.report.plots import FIELD_LABELS, draw_boundary, new_figure, save_figure
from harness.report.tables import ablation_table, default_direction, format_number, format_value, normalize, sort_key

DIVERGED_COLOR = "#9e9e9e"
LINESTYLES = ("-", "--", ":", "-.")
LAYOUT = "constrained"
CATEGORY_SPREAD = 0.25  # a categorical axis: protocols side by side within this width


def _report_figure(width: float, height: float):
    """A report figure with one axes, laid out by matplotlib's constrained layout."""
    fig = new_figure(width, height, layout=LAYOUT)
    return fig, fig.subplots()


def _fitted(title: str, width_in: float, fontsize: float) -> str:
    """``title`` wrapped to lines that fit ``width_in`` inches at ``fontsize`` points (a
    character is about 0.6 em wide): a layout engine moves axes, never shortens a title."""
    chars = max(20, int(width_in * 72 / (0.6 * fontsize)))
    return "\n".join(textwrap.wrap(title, chars, break_on_hyphens=False)) or title


def _numeric_axis(values: Sequence[Any]) -> bool:
    """Whether every value is a real number (then it is plotted on a numeric axis)."""
    return all(isinstance(normalize(v), (int, float)) and not isinstance(normalize(v), bool) for v in values)


def _positions(values: Sequence[Any], order: list) -> np.ndarray:
    """x positions: the values themselves on a numeric axis, else their index in ``order``."""
    if _numeric_axis(order):
        return np.array([float(normalize(v)) for v in values], np.float64)
    index = {v: i for i, v in enumerate(order)}
    return np.array([index[normalize(v)] for v in values], np.float64)


def _troubled(row: Mapping[str, Any]) -> int:
    """Runs of a table row that did not give a value: diverged plus failed."""
    return int(row.get("diverged", 0)) + int(row.get("failed", 0))


def isolation_plot(
    tables: dict[str, pd.DataFrame],
    x: str,
    path: str | os.PathLike,
    *,
    logx: bool = False,
    ylabel: str | None = None,
    title: str | None = None,
) -> Path:
    """Metric versus the scientific axis ``x``, one series per protocol.

    ``tables`` maps a protocol name (e.g. ``"best lr per batch size"``, ``"fixed lr"``) to an
    :func:`harness.report.tables.ablation_table` grouped by ``[x]``. On a numeric axis a
    line joins the means and a band spans ``ci_low``..``ci_high``; on a non-numeric one
    (activations: linear, relu) nothing lies between the values, so each mean is a point
    with its interval as an error bar, the protocols side by side at each category. A point
    with diverged or failed runs is labelled ``k/n div``, and a value where every run
    diverged gets an ``x`` on the axis floor.
    """
    if not tables:
        raise ValueError("isolation_plot needs at least one table")
    order = sorted({normalize(v) for t in tables.values() for v in t[x]}, key=sort_key)
    numeric = _numeric_axis(order)
    fig, ax = _report_figure(6.4, 4.2)
    floor = blended_transform_factory(ax.transData, ax.transAxes)
    any_dead = False
    for i, (name, table) in enumerate(tables.items()):
        table = table.sort_values(x, key=lambda s: s.map(sort_key))
        xs = _positions(list(table[x]), order)
        color = f"C{i % 10}"
        mean = table["mean"].astype(float).to_numpy()
        low, high = table["ci_low"].astype(float).to_numpy(), table["ci_high"].astype(float).to_numpy()
        if numeric:
            ax.plot(xs, mean, marker="o", color=color, label=name)
            ax.fill_between(xs, low, high, color=color, alpha=0.2, linewidth=0)
        else:
            if len(tables) > 1:
                xs = xs + CATEGORY_SPREAD * (i / (len(tables) - 1) - 0.5)
            # No interval (a single run): no bar, rather than a bar of length zero.
            yerr = np.nan_to_num(np.stack([mean - low, high - mean]), nan=0.0)
            ax.errorbar(xs, mean, yerr=yerr, fmt="o", capsize=4, color=color, label=name)
        for pos, row in zip(xs, table.to_dict(orient="records")):
            bad = _troubled(row)
            if not bad:
                continue
            if math.isfinite(float(row["mean"])):
                ax.annotate(f"{bad}/{row['n']} div", (pos, row["mean"]), textcoords="offset points", xytext=(4, 6), fontsize=7, color=color)
            else:
                ax.plot([pos], [0.03], marker="x", color=color, markersize=9, transform=floor, clip_on=False)
                any_dead = True
    if any_dead:
        # A legend entry for the floor markers, so an "x" is not read as a measurement.
        ax.plot([], [], marker="x", linestyle="none", color="black", label="all runs diverged/failed")
    if logx and numeric:
        ax.set_xscale("log")
    if numeric:
        ax.set_xticks([float(v) for v in order], [format_value(v) for v in order])
        ax.minorticks_off()
    else:
        ax.set_xticks(range(len(order)), [format_value(v) for v in order])
    metric = next(iter(tables.values())).attrs.get("metric", "metric")
    level = 100 * float(next(iter(tables.values())).attrs.get("confidence", 0.95))
    ax.set_xlabel(x)
    ax.set_ylabel(ylabel or metric)
    ax.set_title(_fitted(title or f"{ylabel or metric} vs {x} (mean, {level:g}% CI)", 6.0, 10), fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def _edges(values: list, log: bool) -> np.ndarray:
    """Cell edges around sorted axis values: midpoints (geometric on a log axis)."""
    if not _numeric_axis(values):
        return np.arange(len(values) + 1, dtype=np.float64) - 0.5
    v = np.array([float(normalize(x)) for x in values], np.float64)
    if log:
        if np.any(v <= 0):
            raise ValueError("a log axis needs positive values")
        return 10.0 ** _edges([float(x) for x in np.log10(v)], log=False)
    if v.size == 1:
        half = 0.5 * abs(v[0]) if v[0] else 0.5
        return np.array([v[0] - half, v[0] + half])
    mid = (v[1:] + v[:-1]) / 2
    return np.concatenate([[v[0] - (mid[0] - v[0])], mid, [v[-1] + (v[-1] - mid[-1])]])


def _centres(values: list, edges: np.ndarray) -> np.ndarray:
    """Where each cell's ticks and labels go: the value itself, or the category's index."""
    if _numeric_axis(values):
        return np.array([float(normalize(v)) for v in values], np.float64)
    return (edges[1:] + edges[:-1]) / 2


def heatmap(
    df: pd.DataFrame,
    x: str,
    y: str,
    metric: str,
    path: str | os.PathLike,
    *,
    logx: bool = False,
    logy: bool = False,
    direction: str | None = None,
    title: str | None = None,
) -> Path:
    """Mean ``metric`` over seeds on the ``x`` by ``y`` grid (e.g. learning rate by batch size).

    Each cell shows its mean (ok runs) and, when some runs diverged or failed, ``k/n div``;
    a cell whose runs all diverged is grey and hatched; a combination never run stays blank.
    Cells are centred on the values with edges at the (geometric, for a log axis)
    midpoints; colours run so that brighter is better for ``direction`` (default by name).
    """
    direction = direction or default_direction(metric)
    table = ablation_table(df, [y, x], metric, direction=direction, n_resamples=200)
    xs = sorted({normalize(v) for v in table[x]}, key=sort_key)
    ys = sorted({normalize(v) for v in table[y]}, key=sort_key)
    grid = np.full((len(ys), len(xs)), np.nan)
    cells: dict[tuple[int, int], dict[str, Any]] = {}
    for row in table.to_dict(orient="records"):
        i, j = ys.index(normalize(row[y])), xs.index(normalize(row[x]))
        grid[i, j] = row["mean"]
        cells[(i, j)] = row
    x_edges, y_edges = _edges(xs, logx), _edges(ys, logy)
    width = 1.2 + 1.0 * len(xs) + 1.6
    fig, ax = _report_figure(width, 1.2 + 0.6 * len(ys) + 0.6)
    cmap = colormaps["viridis" if direction == "higher" else "viridis_r"]
    finite = grid[np.isfinite(grid)]
    norm = Normalize(*(finite.min(), finite.max()) if finite.size else (0, 1))
    mesh = ax.pcolormesh(x_edges, y_edges, np.ma.masked_invalid(grid), cmap=cmap, norm=norm)
    for (i, j), row in cells.items():
        _annotate_cell(ax, row, x_edges[j:j + 2], y_edges[i:i + 2], grid[i, j], cmap, norm, logx, logy)
    if logx and _numeric_axis(xs):
        ax.set_xscale("log")
    if logy and _numeric_axis(ys):
        ax.set_yscale("log")
    ax.set_xticks(_centres(xs, x_edges), [format_value(v) for v in xs])
    ax.set_yticks(_centres(ys, y_edges), [format_value(v) for v in ys])
    ax.minorticks_off()
    ax.set_xlim(x_edges[0], x_edges[-1])
    ax.set_ylim(y_edges[0], y_edges[-1])
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.set_title(_fitted(title or f"{metric} ({direction} is better), mean over seeds", width - 1.6, 10), fontsize=10)
    colorbar = fig.colorbar(mesh, ax=ax)
    colorbar.set_label(metric)
    return save_figure(fig, path)


def _centre(edges: np.ndarray, log: bool) -> float:
    return float(np.sqrt(edges[0] * edges[1])) if log else float((edges[0] + edges[1]) / 2)


def _annotate_cell(ax, row, x_edges, y_edges, value, cmap, norm, logx, logy) -> None:
    """The text of one heatmap cell, and the grey hatch of an all-diverged cell."""
    cx, cy = _centre(x_edges, logx and x_edges[0] > 0), _centre(y_edges, logy and y_edges[0] > 0)
    bad, n = _troubled(row), int(row["n"])
    if not math.isfinite(value):
        ax.fill_between(x_edges, y_edges[0], y_edges[1], facecolor=DIVERGED_COLOR, hatch="xx", edgecolor="white", linewidth=0)
        ax.text(cx, cy, f"div\n{bad}/{n}", ha="center", va="center", fontsize=8, color="black")
        return
    text = format_number(value, 3)
    if bad:
        text += f"\n{bad}/{n} div"
    r, g, b, _ = cmap(norm(value))
    # Dark text on bright cells, white on dark ones (relative luminance).
    color = "black" if 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.5 else "white"
    ax.text(cx, cy, text, ha="center", va="center", fontsize=8, color=color)


def curves_plot(
    run_dirs: list,
    labels: Sequence[str] | None,
    path: str | os.PathLike,
    metric: str | Sequence[str] = ("train/loss", "test/loss"),
    *,
    logy: bool = False,
    title: str | None = None,
) -> Path:
    """Curves of chosen runs from their ``curves.csv``: one colour per run, one line style per metric.

    ``metric`` is a column name or several (``"train/loss"``, ``("train/loss",
    "test/loss")``); ``labels`` name the runs (default: their folder names). A run whose
    ``result.json`` says it diverged gets an ``x`` at its last finite point. A run without
    ``curves.csv`` raises FileNotFoundError; no requested column in any run, ValueError.
    """
    metrics = [metric] if isinstance(metric, str) else list(metric)
    run_dirs = [Path(d) for d in run_dirs]
    labels = list(labels) if labels is not None else [d.name for d in run_dirs]
    if len(labels) != len(run_dirs):
        raise ValueError(f"curves_plot got {len(run_dirs)} runs but {len(labels)} labels")
    fig, ax = _report_figure(6.4, 4.2)
    drawn = False
    for i, (run_dir, label) in enumerate(zip(run_dirs, labels)):
        if not (run_dir / store.CURVES_FILE).is_file():
            raise FileNotFoundError(f"no {store.CURVES_FILE} in {run_dir}")
        curves = store.read_curves(run_dir)
        result = store.read_result(run_dir) or {}
        for k, name in enumerate(metrics):
            if name not in curves.columns:
                continue
            steps = curves["step"].to_numpy(np.float64)
            values = curves[name].to_numpy(np.float64)
            shown = label if len(metrics) == 1 else f"{label} {name}"
            ax.plot(steps, values, color=f"C{i % 10}", linestyle=LINESTYLES[k % len(LINESTYLES)], label=shown)
            drawn = True
            finite = np.flatnonzero(np.isfinite(values))
            if result.get("status") == "diverged" and finite.size:
                ax.plot([steps[finite[-1]]], [values[finite[-1]]], marker="x", color=f"C{i % 10}", markersize=9)
    if not drawn:
        raise ValueError(f"none of the runs has a curve named {', '.join(metrics)}")
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel(metrics[0] if len(metrics) == 1 else ", ".join(metrics))
    ax.set_title(_fitted(title or ("curves: " + ", ".join(metrics)), 6.0, 10), fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def boundary_grid(
    cells: Mapping[tuple[Any, Any], Mapping[str, Any]],
    rows: Sequence[Any],
    columns: Sequence[Any],
    path: str | os.PathLike,
    *,
    row_label: str = "",
    column_label: str = "",
    title: str | None = None,
) -> Path:
    """A grid of decision boundaries as TensorFlow Playground draws them: one panel per
    (row, column), e.g. data set x activation.

    ``cells[(row, column)]`` holds ``field`` (flat ``[G*G]`` in [-1, 1], row 0 at the top),
    ``extent`` (lo, hi), and optionally ``points`` ([n, 2]), ``labels`` ([n]), ``task`` and
    ``caption`` (written under the panel, e.g. the test accuracy). A missing cell is an empty
    panel marked so (every run diverged, or none ran); a cell with ``diverged`` set is labelled so.
    """
    if not rows or not columns:
        raise ValueError("boundary_grid needs at least one row and one column")
    side = 2.0
    width = max(1.6 + side * len(columns), 4.0)
    fig = new_figure(width, 0.9 + (side + 0.35) * len(rows), layout=LAYOUT)
    grid = fig.subplots(len(rows), len(columns), squeeze=False)
    mappable, task = None, "classification"
    for i, row in enumerate(rows):
        for j, column in enumerate(columns):
            ax = grid[i][j]
            ax.set_xticks([])
            ax.set_yticks([])
            cell = cells.get((row, column))
            if cell is None:
                ax.text(0.5, 0.5, "no finished run\n(diverged or not run)", ha="center", va="center", transform=ax.transAxes, fontsize=8)
            else:
                task = cell.get("task", "classification")
                mappable = draw_boundary(ax, cell["field"], cell["extent"], cell.get("points"), cell.get("labels"),
                                         task, point_size=4)
                if cell.get("caption"):
                    ax.set_xlabel(str(cell["caption"]), fontsize=7, labelpad=2)
            if i == 0:
                ax.set_title(f"{column_label}={format_value(column)}" if column_label else format_value(column), fontsize=9)
            if j == 0:
                ax.set_ylabel(format_value(row), fontsize=9)
    if mappable is not None:
        colorbar = fig.colorbar(mappable, ax=grid, ticks=[-1, 0, 1], shrink=min(1.0, 0.9 / len(rows) + 0.5))
        colorbar.set_label(FIELD_LABELS.get(task, "model output"), fontsize=8)
    fig.suptitle(_fitted(title or f"decision boundaries: {row_label} x {column_label}", width, 9), fontsize=9)
    return save_figure(fig, path)


def steps_to_target_plot(
    batch: Sequence[float],
    steps: Sequence[float],
    path: str | os.PathLike,
    *,
    fit: Mapping[str, Any] | None = None,
    title: str | None = None,
) -> Path:
    """Shallue et al.'s figure: steps to a target versus batch size, log-log.

    Each run is a faint point (a run that never reached the target, ``inf``, is drawn as a
    triangle at the top edge, censored), the median per batch size is joined by a line, a
    dashed line of slope -1 through the smallest batch size's median shows perfect scaling
    (doubling the batch halves the steps), and ``fit`` (from
    :func:`harness.report.stats.critical_batch_fit`) adds S = S_min (1 + B_crit / B) with
    B_crit and its interval in the legend.
    """
    b = np.asarray(batch, np.float64)
    s = np.asarray(steps, np.float64)
    keep = np.isfinite(b) & (b > 0) & ~np.isnan(s)
    b, s = b[keep], s[keep]
    sizes = np.unique(b)
    if sizes.size == 0:
        raise ValueError("steps_to_target_plot needs at least one run")
    fig = new_figure(6.4, 4.4)
    ax = fig.add_axes((0.12, 0.13, 0.84, 0.77))
    ax.set_xscale("log")
    ax.set_yscale("log")
    reached = np.isfinite(s) & (s > 0)
    ax.plot(b[reached], s[reached], "o", color="C0", alpha=0.3, markersize=4, label="one run (seed)")
    medians = np.array([np.median(s[b == v]) for v in sizes])  # inf while over half are censored
    finite = np.isfinite(medians) & (medians > 0)
    ax.plot(sizes[finite], medians[finite], "-o", color="C0", label="median over seeds")
    top = float(np.max(s[reached])) * 1.5 if reached.any() else 1.0
    if (~reached).any():
        floor = blended_transform_factory(ax.transData, ax.transAxes)
        ax.plot(b[~reached], np.full((~reached).sum(), 0.97), "^", color="C3", transform=floor, clip_on=False,
                markersize=6, linestyle="none", label="never reached (censored)")
    if finite.any():
        first = int(np.flatnonzero(finite)[0])
        line = medians[first] * sizes[first] / sizes
        ax.plot(sizes, line, "--", color="gray", label="slope -1 (perfect scaling)")
    if fit and math.isfinite(float(fit.get("b_crit", math.nan))):
        grid = np.geomspace(sizes.min(), sizes.max(), 100)
        low, high = fit.get("ci", [math.nan, math.nan])
        ax.plot(grid, float(fit["s_min"]) * (1 + float(fit["b_crit"]) / grid), "-", color="C1",
                label=f"S_min(1 + B_crit/B): B_crit = {format_number(fit['b_crit'], 3)} "
                      f"[{format_number(low, 3)}, {format_number(high, 3)}], S_min = {format_number(fit['s_min'], 3)}")
    ax.set_ylim(top=top)
    ax.set_xticks([float(v) for v in sizes], [format_value(v) for v in sizes])
    ax.minorticks_off()
    ax.set_xlabel("batch size")
    ax.set_ylabel("steps to target")
    ax.set_title(title or "steps to target vs batch size", fontsize=10)
    ax.grid(True, alpha=0.3, which="both")
    ax.legend(fontsize=7)
    return save_figure(fig, path)
