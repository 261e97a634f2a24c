"""Figures read back as matplotlib objects: titles that fit, the right artists for the axis
kind, titles that tell a sweep's runs apart, labelled colour bars, train and test points
that differ, the split a confusion matrix counts. No pixel snapshots."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PathCollection, PolyCollection
from matplotlib.container import ErrorbarContainer
from matplotlib.layout_engine import ConstrainedLayoutEngine

from test_plots import _dataset, _fake_run, _field

from harness.report import figures, plots


@pytest.fixture
def kept(monkeypatch):
    """Figures as saved: written as usual, but kept (not cleared) for the test to read."""
    saved = []

    def keep(fig, path):
        fig.savefig(path, format="png", dpi=plots.DPI)
        saved.append(fig)
        return path

    monkeypatch.setattr(plots, "save_figure", keep)
    monkeypatch.setattr(figures, "save_figure", keep)
    return saved


def _texts_outside(fig) -> list[str]:
    """What the PNG clips: the figure's title, and every axes (its title, labels, tick
    labels as drawn, legend, colour bar) whose drawn extent leaves the figure."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    box = fig.bbox

    def outside(ext) -> bool:
        return ext.x0 < box.x0 - 1 or ext.x1 > box.x1 + 1 or ext.y0 < box.y0 - 1 or ext.y1 > box.y1 + 1

    found = []
    if fig._suptitle is not None and outside(fig._suptitle.get_window_extent(renderer)):
        found.append(fig.get_suptitle())
    found += [ax.get_title() or ax.get_label() for ax in fig.axes if outside(ax.get_tightbbox(renderer))]
    return found


def _table(values, means, lows, highs) -> pd.DataFrame:
    """An ablation_table-shaped frame over ``model.activation`` (or any axis)."""
    table = pd.DataFrame({"x": values, "n": 5, "ok": 5, "diverged": 0, "failed": 0, "mean": means,
                          "ci_low": lows, "ci_high": highs})
    table.attrs.update(metric="test/accuracy", confidence=0.95)
    return table


def test_boundary_grid_title_fits_the_figure(tmp_path, kept):
    # A claim's title on a two-column grid: wider than the figure, so it is wrapped to fit.
    title = ("activation_matters: decision boundaries (chosen setting, lowest seed; test points) "
             "on every data set of the claim")
    cell = {"field": _field(lambda x, y: np.tanh(x)), "extent": (-6, 6), "points": np.zeros((3, 2)),
            "labels": np.array([0, 1, 1])}
    figures.boundary_grid({("circle", "relu"): cell, ("xor", "linear"): cell}, ["circle", "xor"],
                          ["relu", "linear"], tmp_path / "b.png", column_label="model.activation", title=title)
    (fig,) = kept
    assert isinstance(fig.get_layout_engine(), ConstrainedLayoutEngine)
    assert " ".join(fig.get_suptitle().split()) == title  # all of it, wrapped, not cut
    assert _texts_outside(fig) == []
    (colorbar,) = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert colorbar.get_ylabel() == plots.FIELD_LABELS["classification"]


def test_isolation_plot_on_categories_draws_points_with_error_bars(tmp_path, kept):
    tables = {"tuned lr": _table(["linear", "relu"], [0.5, 0.9], [0.45, 0.85], [0.55, 0.95]),
              "fixed lr": _table(["linear", "relu"], [0.5, 0.8], [0.4, 0.7], [0.6, 0.9])}
    figures.isolation_plot(tables, "x", tmp_path / "iso.png")
    (fig,) = kept
    ax = fig.axes[0]
    assert [c.get_label() for c in ax.containers if isinstance(c, ErrorbarContainer)] == ["tuned lr", "fixed lr"]
    joined = [line for line in ax.get_lines() if len(line.get_xdata()) > 1 and line.get_linestyle() != "None"]
    assert joined == []  # nothing between linear and relu
    assert not [c for c in ax.collections if isinstance(c, PolyCollection)]  # no band
    # The bars span the intervals; the two protocols sit side by side at each category.
    (tuned,) = [c for c in ax.containers if c.get_label() == "tuned lr"]
    segments = tuned.lines[2][0].get_segments()
    np.testing.assert_allclose([(s[0][1], s[1][1]) for s in segments], [(0.45, 0.55), (0.85, 0.95)])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["linear", "relu"]
    assert tuned.lines[0].get_xdata()[0] < 0 < [c for c in ax.containers if c.get_label() == "fixed lr"][0].lines[0].get_xdata()[0]
    assert isinstance(fig.get_layout_engine(), ConstrainedLayoutEngine)
    assert _texts_outside(fig) == []


def test_isolation_plot_on_numbers_joins_means_with_a_band(tmp_path, kept):
    figures.isolation_plot({"all": _table([10, 100], [0.9, 0.8], [0.85, 0.7], [0.95, 0.9])}, "x",
                           tmp_path / "iso.png", logx=True)
    ax = kept[0].axes[0]
    (line,) = [line for line in ax.get_lines() if len(line.get_xdata()) == 2]
    np.testing.assert_allclose(line.get_ydata(), [0.9, 0.8])
    assert [c for c in ax.collections if isinstance(c, PolyCollection)]  # the CI band


def test_run_titles_name_the_swept_values(tmp_path, kept):
    titles = []
    for lr in ("0.01", "0.1"):
        run_dir = tmp_path / lr
        run_dir.mkdir()
        result = _fake_run(run_dir)
        result["overrides"] = [f"optim.lr={lr}", "seed=0", "hydra.launcher.wandb=member", "output.plots=true"]
        plots.write_run_plots(run_dir, result, dataset=_dataset())
        titles.append({fig.get_suptitle() or fig.axes[0].get_title() for fig in kept[-3:]})
    for lr, shown in zip(("0.01", "0.1"), titles):
        assert all(f"optim.lr={lr}" in title for title in shown)  # curves, confusion and boundary alike
        assert not any("hydra." in title or "output." in title for title in shown)
    assert titles[0].isdisjoint(titles[1])  # W&B's image panels of the two runs differ


def test_boundary_labels_its_colour_bar_and_tells_train_from_test_points(tmp_path, kept):
    ds = _dataset()
    plots.plot_boundary(_field(lambda x, y: np.tanh(x)), (-6, 6), tmp_path / "b.png", ds.x_test, ds.y_test,
                        train_xy=ds.x_train, train_labels=ds.y_train, title="xor / fnn")
    (fig,) = kept
    ax, colorbar = fig.axes
    assert colorbar.get_ylabel() == "P(class 1) - P(class 0)"
    points = {c.get_label(): c for c in ax.collections if isinstance(c, PathCollection)}
    assert set(points) == {"train", "test"}
    assert len(points["train"].get_offsets()) == 20 and len(points["test"].get_offsets()) == 20
    train_shape, test_shape = (points[s].get_paths()[0].vertices for s in ("train", "test"))
    assert train_shape.shape != test_shape.shape or not np.allclose(train_shape, test_shape)  # other markers
    assert not np.allclose(points["train"].get_edgecolor(), points["test"].get_edgecolor())
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["train", "test"]
    assert _texts_outside(fig) == []


def test_regression_boundary_says_it_shows_the_prediction(tmp_path, kept):
    plots.plot_boundary(_field(lambda x, y: x / 6), (-6, 6), tmp_path / "b.png", task="regression")
    assert kept[0].axes[1].get_ylabel() == "prediction"
    assert kept[0].axes[0].get_legend() is None  # no points, no legend


def test_confusion_matrix_says_which_split_it_counts(tmp_path, kept):
    plots.plot_confusion([[40, 10], [5, 45]], tmp_path / "m.png", title="xor / fnn")
    plots.plot_confusion([[1, 0], [0, 1]], tmp_path / "v.png", split="validation")
    assert kept[0].axes[0].get_title() == "xor / fnn\nconfusion matrix, test split"
    assert kept[1].axes[0].get_title() == "confusion matrix, validation split"


def test_heatmap_and_curves_use_constrained_layout_and_fit(tmp_path, kept):
    rows = [{"optim.lr": lr, "train.batch_size": b, "seed": s, "status": "ok", "test/accuracy": 0.5 + lr + b / 1000}
            for lr in (0.01, 0.1) for b in (10, 100) for s in (0, 1)]
    figures.heatmap(pd.DataFrame(rows), "optim.lr", "train.batch_size", "test/accuracy", tmp_path / "h.png",
                    logx=True, logy=True, title="a long heatmap title that names the claim, its setting and protocol")
    (fig,) = kept
    assert isinstance(fig.get_layout_engine(), ConstrainedLayoutEngine)
    assert _texts_outside(fig) == []
