"""Run figures: files written atomically, no pyplot figure leaks, Playground orientation and palette."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # before pyplot: the tests count pyplot figures, headless

import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure

from harness import store
from harness.data.base import Dataset
from harness.report import plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
G = 24


def _field(fn) -> np.ndarray:
    """fn(x, y) on the G*G grid the training code uses (row 0 = top, x left to right)."""
    ticks = np.linspace(-6.0, 6.0, G)
    xx, yy = np.meshgrid(ticks, ticks[::-1])
    return fn(xx, yy).ravel()


def _result(task: str = "classification") -> dict:
    """A result shaped like harness.results.make_result's output."""
    metric = "accuracy" if task == "classification" else "mse"
    result = {
        "status": "ok",
        "diverged_step": None,
        "metrics": {f"test/{metric}": 0.9, f"best/test/{metric}": 0.92, "test/loss": 0.3},
        "config": {"data": {"name": "xor" if task == "classification" else "reg_plane"}, "model": {"family": "fnn"}},
        "config_hash": "0" * 16,
        "overrides": [],
        "budget": {"steps": 100},
        "seed": 0,
        "order_seed": 0,
        "timings": {"train_s": 0.1},
        "versions": {},
    }
    if task == "classification":
        result["confusion_matrix"] = [[40, 10], [5, 45]]
    return result


def _fake_run(run_dir, task: str = "classification") -> dict:
    """Write curves.csv, boundary.npz and result.json by hand; return the result."""
    metric = "accuracy" if task == "classification" else "mse"
    n = 6
    store.write_curves(
        run_dir / store.CURVES_FILE,
        {
            "step": np.arange(n) * 20,
            "train/loss": np.linspace(1.0, 0.2, n),
            "test/loss": np.linspace(1.1, 0.3, n),
            f"train/{metric}": np.linspace(0.5, 0.95, n),
            f"test/{metric}": np.linspace(0.5, 0.9, n),
            "gns/b_simple": np.full(n, 3.0),  # not a split/metric column: ignored by the plot
        },
    )
    store.write_npz_atomic(run_dir / "boundary.npz", {"boundary": _field(lambda x, y: np.tanh(x * y / 4))})
    result = _result(task)
    store.write_json_atomic(run_dir / store.RESULT_FILE, result)
    return result


def _dataset(features=("x1", "x2"), n: int = 40) -> Dataset:
    """A small two-class Playground-like Dataset built by hand."""
    rng = np.random.default_rng(0)
    xy = rng.uniform(-5, 5, (n, 2)).astype(np.float32)
    y = (xy[:, 0] * xy[:, 1] > 0).astype(np.int32)
    cols = {"x1": xy[:, 0], "x2": xy[:, 1], "x1x2": xy[:, 0] * xy[:, 1]}
    x = np.stack([cols[f] for f in features], axis=1)
    return Dataset(
        name="xor",
        task="classification",
        layout="vector",
        x_train=x[:20],
        y_train=y[:20],
        x_val=x[:0],
        y_val=y[:0],
        x_test=x[20:],
        y_test=y[20:],
        num_classes=2,
        feature_names=tuple(features),
        input_extent=(-6.0, 6.0),
        info={"points": {"test": xy[20:]}},
    )


def _is_png(path) -> bool:
    return path.read_bytes()[:8] == PNG_MAGIC


def _leftovers(folder) -> list:
    """Temp files atomic_path would leave behind on a broken rename."""
    return [p for p in folder.iterdir() if p.name.endswith(".tmp")]


def test_write_run_plots_writes_three_pngs_and_leaks_no_figures(tmp_path):
    result = _fake_run(tmp_path)
    before = plt.get_fignums()
    paths = plots.write_run_plots(tmp_path, result, dataset=_dataset())
    assert sorted(p.name for p in paths) == ["boundary.png", "confusion.png", "curves.png"]
    assert all(_is_png(p) for p in paths)
    assert plt.get_fignums() == before
    assert _leftovers(tmp_path) == []


def test_write_run_plots_without_extras(tmp_path):
    """Regression run: no confusion matrix; boundary drawn without a Dataset (default square)."""
    result = _fake_run(tmp_path, task="regression")
    (tmp_path / "boundary.npz").unlink()
    assert [p.name for p in plots.write_run_plots(tmp_path, result)] == ["curves.png"]
    _fake_run(tmp_path, task="regression")
    names = [p.name for p in plots.write_run_plots(tmp_path, result)]
    assert names == ["curves.png", "boundary.png"]


def test_raw_test_points_from_features_or_info():
    ds = _dataset(features=("x1x2", "x2", "x1"))
    xy = plots.raw_test_points(ds)
    np.testing.assert_allclose(xy, ds.info["points"]["test"], rtol=1e-6)
    # Features without x1 and x2: the raw points Playground sets carry in info.
    ds = _dataset(features=("x1x2",))
    np.testing.assert_allclose(plots.raw_test_points(ds), ds.info["points"]["test"])


def test_default_extent_is_playgrounds():
    from harness.data.playground import INPUT_EXTENT

    assert tuple(plots.DEFAULT_EXTENT) == tuple(INPUT_EXTENT)


def test_palette_is_playgrounds():
    cmap = plots.PLAYGROUND_CMAP
    np.testing.assert_allclose(cmap(0.0)[:3], to_rgb("#f59322"), atol=1e-6)  # -1, class 0: orange
    np.testing.assert_allclose(cmap(1.0)[:3], to_rgb("#0877bd"), atol=1e-6)  # +1, class 1: blue
    np.testing.assert_allclose(cmap(0.5)[:3], to_rgb("#e8eaeb"), atol=1e-6)  # 0: Playground's white


def _centroid(image: np.ndarray, hex_colour: str) -> np.ndarray:
    """Mean (row, col) of the pixels of exactly this colour (to 8-bit precision)."""
    rgb = np.asarray(to_rgb(hex_colour))
    mask = np.all(np.abs(image[..., :3] - rgb) < 1.5 / 255, axis=-1)
    assert mask.sum() > 100, f"too few {hex_colour} pixels"
    rows, cols = np.nonzero(mask)
    return np.array([rows.mean(), cols.mean()])


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_boundary_orientation(tmp_path, task):
    """Row 0 of the field is the top; x runs left to right; +1 blue, -1 orange."""
    path = tmp_path / "top.png"
    plots.plot_boundary(_field(lambda x, y: np.where(y > 0, 1.0, -1.0)), (-6, 6), path, task=task)
    image = mpimg.imread(path)
    blue, orange = _centroid(image, "#0877bd"), _centroid(image, "#f59322")
    assert blue[0] < orange[0]  # blue (y > 0) above orange
    plots.plot_boundary(_field(lambda x, y: np.where(x > 0, 1.0, -1.0)), (-6, 6), path, task=task)
    image = mpimg.imread(path)
    blue, orange = _centroid(image, "#0877bd"), _centroid(image, "#f59322")
    assert blue[1] > orange[1]  # blue (x > 0) right of orange


def test_discretized_boundary_draws_only_the_two_class_colours(tmp_path):
    """output.discretize, as Playground's "Discretize output": >= 0 is +1 (blue), < 0 is -1."""
    np.testing.assert_array_equal(plots.discretized(np.array([-0.3, 0.0, 0.01])), [-1.0, 1.0, 1.0])
    smooth = _field(lambda x, y: np.where(np.abs(x) < 1, 0.0, np.tanh(x / 3)))  # shades, and 0 (white)
    path = plots.plot_boundary(smooth, (-6, 6), tmp_path / "d.png", discretize=True)
    _centroid(mpimg.imread(path), "#0877bd"), _centroid(mpimg.imread(path), "#f59322")  # both, in quantity
    plots.plot_boundary(smooth, (-6, 6), tmp_path / "s.png")

    def white_in_field(png):  # the field's axes only (the colour bar on the right has white)
        image = mpimg.imread(png)
        field = image[:, int(0.15 * image.shape[1]) : int(0.75 * image.shape[1]), :3]
        return int(np.all(np.abs(field - np.asarray(to_rgb("#e8eaeb"))) < 1.5 / 255, axis=-1).sum())

    assert white_in_field(path) == 0, "no value near 0 is drawn"
    assert white_in_field(tmp_path / "s.png") > 0, "without discretize the field near 0 is white"


def test_boundary_with_points_and_regression_range(tmp_path):
    rng = np.random.default_rng(1)
    pts = rng.uniform(-6, 6, (30, 2))
    field = _field(lambda x, y: (x + y) / 10)  # Playground's reg_plane: beyond [-1, 1] at the corners
    path = plots.plot_boundary(field, (-6, 6), tmp_path / "b.png", pts, (pts[:, 0] + pts[:, 1]) / 10, task="regression")
    assert _is_png(path)


def test_boundary_rejects_a_non_square_field(tmp_path):
    with pytest.raises(ValueError, match="square"):
        plots.plot_boundary(np.zeros(10), (-6, 6), tmp_path / "b.png")
    assert not (tmp_path / "b.png").exists()


def test_curves_mse_and_divergence(tmp_path):
    curves = pd.DataFrame(
        {"step": [0, 10, 20, 30], "train/loss": [1.0, 0.5, np.inf, np.nan], "val/loss": [1.0, 0.6, 0.7, 0.8], "train/mse": [1.0, 0.5, 0.4, 0.3]}
    )
    assert _is_png(plots.plot_curves(curves, tmp_path / "c.png", title="t"))
    # Only losses: a single panel, still a figure.
    assert _is_png(plots.plot_curves(curves[["step", "train/loss"]], tmp_path / "c1.png"))


def test_confusion(tmp_path):
    path = plots.plot_confusion(np.arange(9).reshape(3, 3), tmp_path / "m.png", class_names=["a", "b", "c"], title="t")
    assert _is_png(path)
    with pytest.raises(ValueError):
        plots.plot_confusion([[1, 2, 3]], tmp_path / "bad.png")
    with pytest.raises(ValueError):
        plots.plot_confusion([[1, 2], [3, 4]], tmp_path / "bad.png", class_names=["a"])


def test_failed_render_leaves_nothing_behind(tmp_path, monkeypatch):
    """An error while rendering: no target, no temp file, no figure; an old file survives."""
    old = tmp_path / "curves.png"
    old.write_bytes(PNG_MAGIC + b"old")

    def broken(self, *args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(Figure, "savefig", broken)
    before = plt.get_fignums()
    curves = pd.DataFrame({"step": [0, 1], "train/loss": [1.0, 0.5]})
    with pytest.raises(RuntimeError):
        plots.plot_curves(curves, old)
    assert old.read_bytes() == PNG_MAGIC + b"old"
    assert _leftovers(tmp_path) == []
    assert plt.get_fignums() == before
