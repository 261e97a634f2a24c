"""harness.report.tables and figures on hand-built result folders (no training code involved)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness import store
from harness.report import figures, tables
from harness.report.stats import paired_difference
from harness.report.tables import ablation_table, best_per_value


def make_run(root: Path, name: str, *, status: str = "ok", seed: int = 0, metrics: dict, config: dict,
             steps: int = 100, with_curves: bool = True) -> Path:
    """A run folder in the format of harness/results.py: result.json (+ curves.csv)."""
    run_dir = root / name
    if with_curves:
        t = np.arange(0, steps + 1, steps // 5)
        store.write_curves(run_dir / store.CURVES_FILE, {
            "step": t,
            "train/loss": np.exp(-t / steps) + 0.01 * seed,
            "test/loss": np.exp(-t / steps) + 0.05,
        })
    store.write_json_atomic(run_dir / store.RESULT_FILE, {
        "status": status,
        "diverged_step": 50 if status == "diverged" else None,
        "metrics": metrics,
        "config": {"seed": seed, **config},
        "seed": seed,
        "budget": {"kind": "epochs", "size": 10, "steps": steps, "examples": steps * 32},
        "timings": {"compile_s": 0.1, "run_s": 0.2},
    })
    return run_dir


def batch_lr_results(root: Path) -> Path:
    """3 batch sizes x 2 learning rates x 3 seeds; (16, 0.5) seed 0 diverged, (256, 0.5) all diverged."""
    rng = np.random.default_rng(0)
    for bs in (16, 64, 256):
        for lr in (0.05, 0.5):
            for seed in range(3):
                diverged = (bs == 16 and lr == 0.5 and seed == 0) or (bs == 256 and lr == 0.5)
                acc = 0.95 - 0.05 * np.log2(bs / 16) / 4 + rng.normal(0, 0.005)
                metrics = {"test/accuracy": 0.1 if diverged else acc, "val/accuracy": 0.1 if diverged else acc + 0.01,
                           "test/loss": float("nan") if diverged else 1 - acc, "train/loss": 1 - acc}
                make_run(root, f"bs{bs}_lr{lr}_s{seed}", status="diverged" if diverged else "ok", seed=seed, metrics=metrics,
                         config={"train": {"batch_size": bs}, "optim": {"lr": lr}, "model": {"hidden": [8, 8]}})
    return root


@pytest.fixture
def results(tmp_path) -> pd.DataFrame:
    return store.load_results(batch_lr_results(tmp_path / "runs"))


def _row(table: pd.DataFrame, **where) -> dict:
    mask = np.ones(len(table), bool)
    for column, value in where.items():
        mask &= (table[column] == value).to_numpy()
    assert mask.sum() == 1
    return table[mask].iloc[0].to_dict()


def test_ablation_table_counts_diverged_and_excludes_their_metric(results):
    table = ablation_table(results, ["train.batch_size", "optim.lr"], "test/accuracy")
    assert list(table.columns[:2]) == ["train.batch_size", "optim.lr"]
    for column in ("n", "ok", "diverged", "failed", "missing", "mean", "ci_low", "ci_high", "std", "min", "max", "best", "seeds"):
        assert column in table.columns
    assert len(table) == 6 and table["n"].sum() == 18
    partial = _row(table, **{"train.batch_size": 16, "optim.lr": 0.5})
    assert (partial["n"], partial["ok"], partial["diverged"]) == (3, 2, 1)
    ok_values = results[(results["train.batch_size"] == 16) & (results["optim.lr"] == 0.5) & (results["status"] == "ok")]["test/accuracy"]
    assert partial["mean"] == pytest.approx(ok_values.mean())  # the diverged run's 0.1 is not in it
    assert partial["min"] > 0.5
    assert partial["seeds"] == "0,1,2"  # the diverged seed is listed too
    dead = _row(table, **{"train.batch_size": 256, "optim.lr": 0.5})
    assert (dead["ok"], dead["diverged"]) == (0, 3) and math.isnan(dead["mean"])
    assert table["best"].sum() == 1
    assert _row(table, best=True)["train.batch_size"] == 16
    assert table.attrs["metric"] == "test/accuracy"


def test_ablation_table_sorts_numerically_and_lower_direction(results):
    table = ablation_table(results, ["train.batch_size"], "test/loss", direction="lower")
    assert list(table["train.batch_size"]) == [16, 64, 256]  # not "16" < "256" < "64"
    assert _row(table, best=True)["train.batch_size"] == 16
    lrs = ablation_table(results, ["optim.lr", "train.batch_size"], "test/loss")
    assert list(lrs["optim.lr"])[:3] == [0.05, 0.05, 0.05]
    # Several runs per seed in a group (other columns still vary) are shown as such.
    assert ablation_table(results, ["model.hidden"], "test/loss")["seeds"][0] == "0,1,2 (x6 each)"
    uneven = ablation_table(results.iloc[1:], ["model.hidden"], "test/loss")["seeds"][0]
    assert uneven == "0x5,1x6,2x6"


def test_ablation_table_counts_failed_and_missing(tmp_path):
    cfg = {"model": {"activation": "relu"}}
    make_run(tmp_path, "a", seed=0, metrics={"test/accuracy": 0.9}, config=cfg)
    make_run(tmp_path, "b", seed=1, metrics={}, config=cfg)  # ok, but this metric was not measured
    make_run(tmp_path, "c", seed=2, status="failed", metrics={}, config=cfg)
    table = ablation_table(store.load_results(tmp_path), ["model.activation"], "test/accuracy")
    row = table.iloc[0].to_dict()
    assert (row["n"], row["ok"], row["failed"], row["missing"]) == (3, 2, 1, 1)
    assert row["mean"] == 0.9 and math.isnan(row["ci_low"])


def test_list_valued_and_missing_config_columns_group():
    df = pd.DataFrame({
        "model.hidden": [[8, 8], [8, 8], [4], None],
        "seed": [0, 1, 0, 0], "status": ["ok"] * 4, "test/accuracy": [0.9, 0.8, 0.7, 0.6],
    })
    table = ablation_table(df, ["model.hidden"], "test/accuracy")
    assert list(table["n"]) == [1, 2, 1]
    assert tables.format_value(table["model.hidden"][1]) == "[8, 8]"
    assert table["seeds"][1] == "0,1"
    assert table["model.hidden"].iloc[-1] is None  # missing values sort last


def test_markdown_csv_latex_contents(results, tmp_path):
    table = ablation_table(results, ["train.batch_size"], "test/accuracy")
    md = tables.to_markdown(table, tmp_path / "t.md", "Batch size ablation").read_text()
    lines = md.splitlines()
    assert lines[0] == "Batch size ablation"
    assert lines[2].startswith("| train.batch_size | n | ok | diverged | test/accuracy mean [95% CI] |")
    row16 = next(line for line in lines if line.startswith("| 16 "))
    r = _row(table, **{"train.batch_size": 16})
    assert f"| **{r['mean']:#.4g} [{r['ci_low']:#.4g}, {r['ci_high']:#.4g}]** |" in row16  # the best mean in bold
    assert md.count("**") == 2
    row256 = next(line for line in lines if line.startswith("| 256 "))
    assert "| 6 | 3 | 3 |" in row256  # n, ok, diverged shown

    csv = pd.read_csv(tables.to_csv(table, tmp_path / "t.csv"))
    assert list(csv["train.batch_size"]) == [16, 64, 256]
    assert list(csv["diverged"]) == [1, 0, 3]
    assert csv["mean"][0] == pytest.approx(r["mean"], rel=1e-12)  # full precision in CSV

    tex = tables.to_latex(table, tmp_path / "t.tex", "Batch size 100% ablation").read_text()
    assert "\\begin{tabular}{lrrrrrrrr}" in tex and tex.count("\\textbf") == 1 and "\\toprule" in tex and "\\bottomrule" in tex
    assert "\\caption{Batch size 100\\% ablation}" in tex
    assert "train.batch\\_size" in tex and "[95\\% CI]" in tex
    assert f"\\textbf{{{r['mean']:#.4g} [{r['ci_low']:#.4g}, {r['ci_high']:#.4g}]}}" in tex
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temp files


def test_number_formatting():
    assert tables.format_number(0.912345) == "0.9123"
    assert tables.format_number(0.91) == "0.9100"
    assert tables.format_number(float("nan")) == tables.DASH
    assert tables.format_value(60000.0) == "60000" and tables.format_value(0.001) == "0.001"
    assert tables.format_ci(0.9, float("nan"), float("nan")) == "0.9000"


def test_best_per_value_selects_on_validation_not_test():
    # At each batch size, lr=0.1 wins on validation and lr=1.0 on test: the pick must be 0.1.
    rows = []
    for bs in (32, 128):
        for lr, val, test in ((0.1, 0.90, 0.80), (1.0, 0.85, 0.95)):
            for seed in range(3):
                rows.append({"train.batch_size": bs, "optim.lr": lr, "seed": seed, "status": "ok",
                             "val/accuracy": val + 0.001 * seed, "test/accuracy": test + 0.001 * seed})
    df = pd.DataFrame(rows)
    chosen = best_per_value(df, "train.batch_size", ["optim.lr"], "test/accuracy", "higher")
    assert len(chosen) == 6 and set(chosen["optim.lr"]) == {0.1}
    assert list(chosen["train.batch_size"]) == [32, 32, 32, 128, 128, 128]
    assert chosen.attrs["select_metric"] == "val/accuracy"
    assert [s["optim.lr"] for s in chosen.attrs["selection"]] == [0.1, 0.1]
    table = ablation_table(chosen, ["train.batch_size"], "test/accuracy")
    assert table["mean"].tolist() == pytest.approx([0.801, 0.801])
    repeated_index = pd.concat([df.iloc[:6], df.iloc[6:].reset_index(drop=True)])  # labels 0..5 twice
    again = best_per_value(repeated_index, "train.batch_size", ["optim.lr"], "test/accuracy", "higher")
    assert len(again) == 6 and set(again["optim.lr"]) == {0.1}
    with pytest.raises(ValueError, match="test metric"):
        best_per_value(df, "train.batch_size", ["optim.lr"], "test/accuracy", "higher", select_metric="test/accuracy")


def test_best_per_value_loss_and_unstable_settings():
    rows = []
    for lr, val_loss, status in ((0.01, 0.5, "ok"), (0.1, 0.2, "ok"), (1.0, 0.1, "ok")):
        for seed in range(2):
            # lr=1.0 has the best surviving val loss but diverges at seed 1: not eligible.
            st = "diverged" if (lr == 1.0 and seed == 1) else status
            rows.append({"model.width": 8, "optim.lr": lr, "seed": seed, "status": st, "val/loss": val_loss, "test/loss": val_loss})
    chosen = best_per_value(pd.DataFrame(rows), "model.width", ["optim.lr"], "test/loss", "lower")
    assert set(chosen["optim.lr"]) == {0.1} and chosen.attrs["select_direction"] == "lower"
    loose = best_per_value(pd.DataFrame(rows), "model.width", ["optim.lr"], "test/loss", "lower", require_all_ok=False)
    assert set(loose["optim.lr"]) == {1.0} and len(loose) == 2  # the diverged seed stays in the rows


def test_paired_by_seed_and_ordered_values(results):
    fixed = results[results["optim.lr"] == 0.05]
    a, b, seeds = tables.paired_by_seed(fixed, "train.batch_size", 16, 256, "test/accuracy")
    assert seeds == [0, 1, 2] and np.all(a > b)
    assert paired_difference(a, b)["mean"] > 0
    a, b, seeds = tables.paired_by_seed(results[results["optim.lr"] == 0.5], "train.batch_size", 16, 64, "test/accuracy")
    assert math.isnan(a[0]) and not np.isnan(b).any()  # seed 0 diverged at 16: NaN, not 0.1
    with pytest.raises(ValueError, match="several runs per seed"):
        tables.paired_by_seed(results, "train.batch_size", 16, 64, "test/accuracy")
    x, y = tables.ordered_values(results, "train.batch_size", "test/accuracy")
    assert len(x) == 18 and np.isnan(y).sum() == 4


def test_unknown_column_is_a_clear_error(results):
    with pytest.raises(ValueError, match="'train.batchsize' is not a column"):
        ablation_table(results, ["train.batchsize"], "test/accuracy")
    with pytest.raises(ValueError, match="direction"):
        ablation_table(results, ["train.batch_size"], "test/accuracy", direction="up")


def _is_png(path: Path) -> bool:
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_figures_write_pngs(results, tmp_path):
    best = best_per_value(results, "train.batch_size", ["optim.lr"], "test/accuracy", "higher")
    protocols = {
        "best lr (val)": ablation_table(best, ["train.batch_size"], "test/accuracy"),
        "lr = 0.5": ablation_table(results[results["optim.lr"] == 0.5], ["train.batch_size"], "test/accuracy"),
    }
    paths = [
        figures.isolation_plot(protocols, "train.batch_size", tmp_path / "iso.png", logx=True, ylabel="test accuracy"),
        figures.heatmap(results, "optim.lr", "train.batch_size", "test/accuracy", tmp_path / "heat.png", logx=True, logy=True),
        figures.heatmap(results, "optim.lr", "train.batch_size", "test/loss", tmp_path / "heat_lin.png", logx=False, logy=False),
        figures.curves_plot(list(results["run_dir"][:3]), ["a", "b", "c"], tmp_path / "curves.png", "train/loss"),
        figures.curves_plot(list(results["run_dir"][:2]), None, tmp_path / "curves2.png", logy=True),
    ]
    assert all(_is_png(p) for p in paths)
    assert not list(tmp_path.glob(".*.tmp"))
    with pytest.raises(ValueError, match="no-such"):
        figures.curves_plot(list(results["run_dir"][:1]), ["a"], tmp_path / "x.png", "no-such/metric")
    with pytest.raises(FileNotFoundError):
        figures.curves_plot([tmp_path / "nowhere"], ["a"], tmp_path / "y.png", "train/loss")


def test_figures_do_not_touch_pyplot(results, tmp_path):
    import sys

    table = ablation_table(results, ["model.hidden"], "test/accuracy")
    figures.isolation_plot({"all": table}, "model.hidden", tmp_path / "cat.png")  # categorical axis
    if "matplotlib.pyplot" in sys.modules:
        import matplotlib.pyplot as plt

        assert plt.get_fignums() == []
