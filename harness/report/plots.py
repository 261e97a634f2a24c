"""Figures of one run: learning curves, a Playground-style decision boundary, a confusion matrix.

Every figure is a bare :class:`matplotlib.figure.Figure` drawn by the Agg canvas, never a
pyplot figure: nothing registers in pyplot's global figure list (so a sweep of a thousand
runs cannot leak figures), no GUI backend is ever touched, and the module works in threads
and on headless machines. Files are written atomically (temp file beside the target, then
rename), so a reader never sees half a PNG.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LinearSegmentedColormap
from matplotlib.figure import Figure

from harness import store
from harness.data.playground import INPUT_EXTENT
from harness.overrides import describing_overrides

# TensorFlow Playground's colour scale (src/heatmap.ts, src/playground.ts): orange for -1
# (class 0), a near-white grey for 0, blue for +1 (class 1). Playground quantises the scale
# into NUM_SHADES + 1 colours (d3.range(0, 1 + 1e-9, 1 / 30)), so 0 gets its own exact shade.
PLAYGROUND_ORANGE = "#f59322"
PLAYGROUND_WHITE = "#e8eaeb"
PLAYGROUND_BLUE = "#0877bd"
NUM_SHADES = 30
PLAYGROUND_CMAP = LinearSegmentedColormap.from_list(
    "playground", [PLAYGROUND_ORANGE, PLAYGROUND_WHITE, PLAYGROUND_BLUE], N=NUM_SHADES + 1
)
# Playground's square, used when no Dataset is given.
DEFAULT_EXTENT = INPUT_EXTENT
DPI = 100

SPLIT_COLORS = {"train": "#1f77b4", "val": "#2ca02c", "test": "#d62728"}
# Points on a decision boundary: Playground's edges (white for training points, black for
# test points) and, so the two splits differ in shape too, circles and triangles.
POINT_STYLES = {"train": {"marker": "o", "edgecolors": "white"}, "test": {"marker": "^", "edgecolors": "black"}}
# What the boundary's colour scale shows (the field of harness.train.loop's finish).
FIELD_LABELS = {"classification": "P(class 1) - P(class 0)", "regression": "prediction"}
TITLE_CHARS = 70  # per-run titles wrap at about this many characters


def new_figure(width: float, height: float, *, layout: str | None = None) -> Figure:
    """A figure on an Agg canvas, outside pyplot (never needs closing, never leaks).

    Per-run figures (this module, drawn for every member of a sweep) fix their margins
    themselves: constrained layout draws the figure twice and costs about 40% of the render
    time. Report figures (:mod:`harness.report.figures`, a few per claim) pass
    ``layout="constrained"`` so titles, labels and colour bars always fit.
    """
    fig = Figure(figsize=(width, height), dpi=DPI, layout=layout)
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, path: str | os.PathLike) -> Path:
    """Render ``fig`` as PNG to a temp file beside ``path`` and rename it into place."""
    path = Path(path)
    try:
        with store.atomic_path(path) as tmp:
            # The temp name ends in ".tmp": say the format, or matplotlib would guess from it.
            fig.savefig(tmp, format="png", dpi=DPI)
    finally:
        # Drop the renderer's buffers now rather than at garbage collection.
        fig.clear()
    return path


def _split_and_metric(column: str) -> tuple[str, str] | None:
    """``"test/loss"`` -> ``("test", "loss")``; None for other columns (step, gns/*)."""
    parts = column.split("/")
    if len(parts) != 2 or parts[0] not in SPLIT_COLORS:
        return None
    return parts[0], parts[1]


def _plot_metric(ax, curves, metric: str) -> bool:
    """Draw ``<split>/<metric>`` for every split present; True if anything was drawn."""
    steps = np.asarray(curves["step"], np.float64)
    drawn = False
    for column in curves.columns:
        parsed = _split_and_metric(column)
        if parsed is None or parsed[1] != metric:
            continue
        values = np.asarray(curves[column], np.float64)
        values = np.where(np.isfinite(values), values, np.nan)  # a diverged run: gap, not a spike to inf
        ax.plot(steps, values, label=parsed[0], color=SPLIT_COLORS[parsed[0]], lw=1.5)
        drawn = True
    if drawn:
        ax.set_xlabel("optimizer step")
        ax.set_ylabel(metric)
        ax.grid(True, alpha=0.3)
        ax.legend(frameon=False)
    return drawn


def plot_curves(curves, path: str | os.PathLike, title: str | None = None) -> Path:
    """Loss curves (train/val/test vs step) and, beside them, accuracy or mse curves.

    ``curves`` is a pandas DataFrame as in ``curves.csv``: a ``step`` column and columns
    named ``<split>/<metric>``; other columns (``gns/*``) are ignored.
    """
    if "step" not in curves.columns:
        raise ValueError("curves needs a 'step' column")
    metrics = {m for c in curves.columns if (p := _split_and_metric(c)) for m in [p[1]]}
    second = "accuracy" if "accuracy" in metrics else "mse" if "mse" in metrics else None
    fig = new_figure(10.0 if second else 5.5, 4.0)
    axes = fig.subplots(1, 2 if second else 1, squeeze=False)[0]
    lines = title.count("\n") + 1 if title else 1
    fig.subplots_adjust(left=0.08 if second else 0.14, right=0.98, bottom=0.13, top=0.84 - 0.05 * (lines - 1), wspace=0.22)
    _plot_metric(axes[0], curves, "loss")
    axes[0].set_title("loss")
    if second:
        _plot_metric(axes[1], curves, second)
        axes[1].set_title(second)
    if title:
        fig.suptitle(title, fontsize=11)
    return save_figure(fig, path)


def _field_image(field: np.ndarray) -> np.ndarray:
    """The flat [G*G] field as a [G, G] image (row 0 = top); ValueError if not square."""
    field = np.asarray(field, np.float64).ravel()
    side = int(round(np.sqrt(field.size)))
    if side < 1 or side * side != field.size:
        raise ValueError(f"boundary field of {field.size} values is not a square grid")
    return field.reshape(side, side)


def discretized(field: np.ndarray) -> np.ndarray:
    """Playground's "Discretize output" (heatmap.ts): every value drawn as +1 if >= 0, else -1."""
    return np.where(np.asarray(field) >= 0, 1.0, -1.0)


def _label_values(labels: np.ndarray, task: str) -> np.ndarray:
    """Point labels on the field's [-1, 1] scale: class 0 -> -1, class 1 -> +1; regression as is."""
    labels = np.asarray(labels, np.float64).ravel()
    if task == "classification":
        return np.where(labels > 0, 1.0, -1.0)
    return np.clip(labels, -1.0, 1.0)


def plot_boundary(
    field: np.ndarray,
    extent: tuple[float, float],
    path: str | os.PathLike,
    points_xy: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    task: str = "classification",
    title: str | None = None,
    *,
    train_xy: np.ndarray | None = None,
    train_labels: np.ndarray | None = None,
    discretize: bool = False,
) -> Path:
    """The decision boundary as TensorFlow Playground draws it.

    ``field`` is flat ``[G*G]`` in [-1, 1] (row 0 = top of the picture, x left to right) over
    the square ``extent = (lo, hi)``; for regression it is the prediction, drawn with the same
    palette (clipped to [-1, 1]); the colour bar says which (:data:`FIELD_LABELS`). Test
    points (``points_xy``, ``labels``) and training points (``train_xy``, ``train_labels``),
    if given, go on top coloured by label, in the styles of :data:`POINT_STYLES`, with a
    legend. ``discretize`` draws the field in two colours (``output.discretize``,
    :func:`discretized`).
    """
    if discretize:
        field = discretized(field)
    lines = title.count("\n") + 1 if title else 0
    fig = new_figure(5.0, 4.4 + 0.2 * max(lines - 1, 0))
    top = 0.89 - 0.2 * max(lines - 1, 0) / fig.get_figheight()
    ax = fig.add_axes((0.12, 0.11, 0.64, top - 0.11))
    cax = fig.add_axes((0.8, 0.2, 0.03, 0.6))
    mappable = draw_boundary(ax, field, extent, task=task)
    for split, xy, values in (("train", train_xy, train_labels), ("test", points_xy, labels)):
        draw_points(ax, xy, values, task, split)
    if ax.collections:
        ax.legend(handles=[_point_handle(c.get_label()) for c in ax.collections], loc="upper right",
                  fontsize=7, framealpha=0.8)
    ax.set_xlabel("x1")
    ax.set_ylabel("x2")
    colorbar = fig.colorbar(mappable, cax=cax, ticks=[-1, 0, 1])
    colorbar.set_label(FIELD_LABELS.get(task, "model output"), fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    return save_figure(fig, path)


def _point_handle(split: str):
    """A legend entry for a split's points: its marker and edge on a neutral face."""
    from matplotlib.lines import Line2D

    style = POINT_STYLES[split]
    return Line2D([], [], linestyle="none", marker=style["marker"], markerfacecolor="#9e9e9e",
                  markeredgecolor="black" if style["edgecolors"] == "white" else style["edgecolors"],
                  markersize=6, label=split)


def draw_points(ax, points_xy: np.ndarray | None, labels: np.ndarray | None, task: str, split: str,
                *, point_size: float = 18):
    """A split's points on a boundary, coloured by label on the field's scale, in the split's
    style (:data:`POINT_STYLES`) and labelled with the split (for the legend); None if no points."""
    if points_xy is None or labels is None or not len(points_xy):
        return None
    pts = np.asarray(points_xy, np.float64)
    return ax.scatter(pts[:, 0], pts[:, 1], c=_label_values(labels, task), cmap=PLAYGROUND_CMAP, vmin=-1.0,
                      vmax=1.0, s=point_size, linewidths=0.8 if point_size >= 10 else 0.4, label=split,
                      **POINT_STYLES[split])


def draw_boundary(ax, field: np.ndarray, extent: tuple[float, float], points_xy: np.ndarray | None = None,
                  labels: np.ndarray | None = None, task: str = "classification", *, split: str = "test",
                  point_size: float = 18):
    """Draw a Playground-style field (and a split's points) into ``ax``; returns the image (for a colour bar)."""
    image = _field_image(field)
    lo, hi = float(extent[0]), float(extent[1])
    mappable = ax.imshow(
        image,
        extent=(lo, hi, lo, hi),
        origin="upper",  # row 0 is the top: y runs from hi (top) down to lo
        cmap=PLAYGROUND_CMAP,
        vmin=-1.0,
        vmax=1.0,
        interpolation="nearest",
    )
    draw_points(ax, points_xy, labels, task, split, point_size=point_size)
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_aspect("equal")
    return mappable


def plot_confusion(
    matrix, path: str | os.PathLike, class_names: Sequence[str] | None = None, title: str | None = None,
    *, split: str = "test",
) -> Path:
    """Confusion matrix heatmap (rows: true class, columns: predicted) with the counts written
    in; the title says which ``split`` the counts are of (a run's matrix is its test set's,
    at the end of training)."""
    counts = np.asarray(matrix, np.float64)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1]:
        raise ValueError(f"confusion matrix must be square, got shape {counts.shape}")
    k = counts.shape[0]
    names = [str(n) for n in class_names] if class_names is not None else [str(i) for i in range(k)]
    if len(names) != k:
        raise ValueError(f"{len(names)} class names for {k} classes")
    side = min(12.0, 3.5 + 0.5 * k)
    fig = new_figure(side + 1.0, side)
    # The square matrix fills the left part; the colour bar sits at the right.
    width = 0.7 * side / (side + 1.0)  # the axes' height in figure inches, as a width fraction
    ax = fig.add_axes((0.16, 0.14, width, 0.74))
    cax = fig.add_axes((0.16 + width + 0.04, 0.2, 0.025, 0.6))
    top = counts.max() if counts.size and counts.max() > 0 else 1.0
    mappable = ax.imshow(counts, cmap="Blues", vmin=0.0, vmax=top, interpolation="nearest")
    fontsize = max(5.0, 11.0 - 0.3 * k)
    for i in range(k):
        for j in range(k):
            value = counts[i, j]
            text = f"{int(value)}" if float(value).is_integer() else f"{value:.2g}"
            # Dark cells get white text, light ones black, so every count stays legible.
            ax.text(j, i, text, ha="center", va="center", fontsize=fontsize, color="white" if value > top / 2 else "black")
    ax.set_xticks(range(k), names, rotation=45 if k > 6 else 0)
    ax.set_yticks(range(k), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    fig.colorbar(mappable, cax=cax)
    heading = f"confusion matrix, {split} split"
    ax.set_title(f"{title}\n{heading}" if title else heading, fontsize=9)
    return save_figure(fig, path)


def _run_title(result: dict[str, Any]) -> str:
    """Data set, model family, seed and status, then the run's overrides (what sets it apart
    from the other runs of its sweep, so W&B's image panels of a sweep differ), wrapped."""
    cfg = result.get("config") or {}
    data = (cfg.get("data") or {}).get("name", "?")
    family = (cfg.get("model") or {}).get("family", "?")
    head = f"{data} / {family} (seed {result.get('seed', '?')}, {result.get('status', '?')})"
    shown = [o for o in describing_overrides(result.get("overrides") or []) if not o.startswith("seed=")]
    return "\n".join([head, *textwrap.wrap(" ".join(shown), TITLE_CHARS, break_on_hyphens=False)[:2]])


def _task_of(result: dict[str, Any], dataset) -> str:
    """Classification or regression: from the Dataset, else from the stored metric names."""
    if dataset is not None:
        return dataset.task
    metrics = result.get("metrics") or {}
    return "regression" if any(k.endswith("/mse") for k in metrics) else "classification"


def raw_points(dataset, split: str = "test") -> np.ndarray | None:
    """A split's raw (x1, x2) coordinates (``split``: train or test), or None if the Dataset
    cannot give them.

    The features must contain ``x1`` and ``x2`` (the caller generates the set with
    ``features=[x1, x2]`` for this); failing that, Playground sets carry the raw points in
    ``info["points"]``.
    """
    names = list(dataset.feature_names)
    x = getattr(dataset, f"x_{split}")
    if "x1" in names and "x2" in names and x.ndim == 2:
        return np.asarray(x[:, [names.index("x1"), names.index("x2")]], np.float64)
    points = (dataset.info or {}).get("points")
    if isinstance(points, dict) and points.get(split) is not None:
        return np.asarray(points[split], np.float64)
    return None


def raw_test_points(dataset) -> np.ndarray | None:
    """The test points' raw (x1, x2) coordinates (:func:`raw_points`)."""
    return raw_points(dataset, "test")


def write_run_plots(run_dir: str | os.PathLike, result: dict[str, Any], dataset=None) -> list[Path]:
    """Write a run's figures beside its result; return the paths written.

    - ``curves.png`` from ``curves.csv`` (when present);
    - ``confusion.png`` when ``result`` has a ``confusion_matrix``;
    - ``boundary.png`` when ``boundary.npz`` exists, with the training and test points of
      ``dataset`` on top when given (see :func:`raw_points`), over ``dataset.input_extent``.
    """
    run_dir = Path(run_dir)
    title = _run_title(result)
    written: list[Path] = []
    if (run_dir / store.CURVES_FILE).is_file():
        written.append(plot_curves(store.read_curves(run_dir), run_dir / "curves.png", title=title))
    if result.get("confusion_matrix") is not None:
        names = (dataset.info or {}).get("class_names") if dataset is not None else None
        written.append(plot_confusion(result["confusion_matrix"], run_dir / "confusion.png", class_names=names, title=title))
    boundary_file = run_dir / "boundary.npz"
    if boundary_file.is_file():
        with np.load(boundary_file, allow_pickle=False) as npz:
            field = np.asarray(npz["boundary"])
        extent = DEFAULT_EXTENT
        points = labels = train_points = train_labels = None
        if dataset is not None:
            extent = dataset.input_extent or DEFAULT_EXTENT
            points, train_points = raw_points(dataset, "test"), raw_points(dataset, "train")
            labels = dataset.y_test if points is not None else None
            train_labels = dataset.y_train if train_points is not None else None
        output_cfg = (result.get("config") or {}).get("output") or {}
        written.append(
            plot_boundary(field, extent, run_dir / "boundary.png", points, labels, task=_task_of(result, dataset), title=title,
                          train_xy=train_points, train_labels=train_labels,
                          discretize=bool(output_cfg.get("discretize", False)))
        )
    return written
