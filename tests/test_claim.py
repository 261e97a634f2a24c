"""harness-claim end to end on the real entry point, at the small scale."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from pathlib import Path

from harness.claim.spec import resolve_scale, sweeps
from harness.errors import ConfigError


def _claim(tmp_path, *args):
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    return subprocess.run([sys.executable, "-m", "harness.claim", *args, f"out={tmp_path}", "progress=false"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)


def _check_report(report, claim_name):
    for name in ("README.md", "table.md", "table.csv", "table.tex", "verdict.json"):
        assert (report / name).exists(), name
    verdict = json.loads((report / "verdict.json").read_text())
    assert verdict["claim"] == claim_name
    for setting in verdict["settings"].values():
        for protocol in setting.values():
            assert protocol["verdict"] in ("supported", "refuted", "inconclusive")
            assert protocol["rule"] and protocol["reason"] and protocol["runs"] > 0
            assert "diverged_runs" in protocol and protocol["budget"]
    readme = (report / "README.md").read_text()
    assert "harness-claim" in readme and "harness-train -m" in readme and "Verdict rule" in readme
    assert list(report.glob("*.png")), "figures"
    return verdict


@pytest.mark.slow  # two claim runs (~40 s); test_learning_rate_small keeps a claim in the default suite
def test_nonlinearity_small(tmp_path):
    proc = _claim(tmp_path, "claim=nonlinearity", "claim.scale=small")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "not evidence" in proc.stdout
    verdict = _check_report(tmp_path / "nonlinearity", "nonlinearity")
    entry = verdict["settings"]["gauss"]["fixed_epochs"]
    assert entry["kind"] == "equivalence" and entry["method"].startswith("TOST")
    assert set(entry["also"]["activations_help"]["pairs"]) == {"relu", "tanh", "sigmoid"}
    table = (tmp_path / "nonlinearity" / "table.csv").read_text().splitlines()
    assert table[0].startswith("setting,protocol,metric") and len(table) == 1 + 5  # logistic + four activations
    assert list((tmp_path / "nonlinearity" / "wandb").glob("offline-run-*")), "the W&B report run"
    # Rerun: every job is resumed, the report is rewritten identically in content.
    again = _claim(tmp_path, "claim=nonlinearity", "claim.scale=small")
    assert again.returncode == 0
    assert json.loads((tmp_path / "nonlinearity" / "verdict.json").read_text())["settings"] == verdict["settings"]


@pytest.mark.slow
def test_small_batch_small(tmp_path):
    proc = _claim(tmp_path, "claim=small_batch", "claim.scale=small")
    assert proc.returncode == 0, proc.stderr[-2000:]
    verdict = _check_report(tmp_path / "small_batch", "small_batch")
    assert set(verdict["settings"]["spiral"]) == {"fixed_epochs", "fixed_steps", "steps_to_target", "naive_fixed_lr"}
    for entry in verdict["settings"]["spiral"].values():  # an edge choice was extended, or it says so
        assert not entry["grid_edge"] or entry["verdict"] == "inconclusive"
    table = (tmp_path / "small_batch" / "table.md").read_text()
    assert "reached_target mean" in table and "examples_to_target mean" in table and "train/accuracy mean" in table
    assert "no trend could be measured" not in json.dumps(verdict)  # three batch sizes: Page's test applies
    assert "critical_batch_fit" in verdict["settings"]["spiral"]["steps_to_target"]
    assert "lr_band" in verdict["settings"]["spiral"]["fixed_epochs"]
    assert (tmp_path / "small_batch" / "steps_to_target_loglog_spiral.png").exists()
    # Rerun: the grid extensions are resumed from disk, not run again past the extended grid.
    results = {p: p.read_bytes() for p in (tmp_path / "small_batch" / "runs").rglob("result.json")}
    again = _claim(tmp_path, "claim=small_batch", "claim.scale=small")
    assert again.returncode == 0, again.stderr[-2000:]
    assert {p: p.read_bytes() for p in (tmp_path / "small_batch" / "runs").rglob("result.json")} == results
    rerun = json.loads((tmp_path / "small_batch" / "verdict.json").read_text())
    assert rerun["settings"] == verdict["settings"] and rerun["grid_extensions"] == verdict["grid_extensions"]


def test_claim_sweeps_are_plain_multiruns():
    claim = {"name": "c", "statement": "s", "source": "x", "seeds": 3, "metric": "test/accuracy",
             "scientific": {"key": "train.batch_size", "values": [10, 20]},
             "nuisance": {"optim.lr": [0.1, 0.3]}, "fixed": ["optim=sgd"],
             "settings": {"circle": ["data=circle"]},
             "protocols": {"p": {"overrides": ["train.epochs=2"]}, "q": {"overrides": [], "nuisance": {"optim.lr": [0.1]}}},
             "scales": {"small": {"seeds": 1}}}
    plan = sweeps(resolve_scale(dict(claim, scale="small")))
    assert [s.protocol for s in plan] == ["p", "q"]
    assert plan[0].command("d") == ["harness-train", "-m", "optim=sgd", "data=circle", "train.epochs=2",
                                    "train.batch_size=10,20", "optim.lr=0.1,0.3", "seed=range(1)", "logger=none",
                                    "output.plots=false", "hydra.sweep.dir=d"]
    assert "optim.lr=0.1" in plan[1].overrides
    with pytest.raises(ConfigError, match="claim.scale"):
        resolve_scale(dict(claim, scale="huge"))
    with pytest.raises(ConfigError, match="claim.scientific"):
        sweeps(dict(claim, scientific={"key": "x", "values": [1]}))


CLAIMS = sorted(p.stem for p in (Path(__file__).resolve().parent.parent / "conf" / "claim").glob("*.yaml"))


@pytest.mark.parametrize("name", CLAIMS)
@pytest.mark.parametrize("scale", ["full", "small"])
def test_every_claim_file_builds_valid_jobs(name, scale):
    """Each sweep of each shipped claim composes and validates (its first and last job)."""
    from omegaconf import OmegaConf

    from conftest import compose_config
    from harness.data.cache import dataset_for
    from harness.validate import validate_config, validate_with_data

    claim = OmegaConf.to_container(OmegaConf.load(Path(__file__).resolve().parent.parent / "conf" / "claim" / f"{name}.yaml"))
    claim["scale"] = scale
    resolved = resolve_scale(claim)
    assert resolved["seeds"] >= (5 if scale == "full" else 1)
    from harness.claim.spec import stages

    for sweep in stages(resolved) + sweeps(resolved):
        # Variants: each one's own overrides, except those naming a stage's output (not run here).
        variants = [[o for o in extra if "${stage:" not in o] for _, extra in sweep.variants] or [[]]
        for pick, extra in [(p, e) for p in (0, -1) for e in variants]:
            overrides = []
            for o in [*sweep.overrides, *extra]:
                if o.startswith("hydra."):
                    continue
                key, _, value = o.partition("=")
                if value.startswith("range("):
                    value = "0"
                elif "," in value and not value.startswith("["):
                    value = value.split(",")[pick]
                overrides.append(f"{key}={value}")
            cfg = compose_config(overrides)
            validate_config(cfg)
            validate_with_data(cfg, dataset_for(cfg))


# ---------------------------------------------------------------- claims of issue #4, part 2


def test_learning_rate_small(tmp_path):
    """Playground's learning-rate list, shrunk: lr 10 diverges (counted), 1e-5 underfits."""
    proc = _claim(tmp_path, "claim=learning_rate", "claim.scale=small", "logger=none")
    assert proc.returncode == 0, proc.stderr[-2000:]
    verdict = _check_report(tmp_path / "learning_rate", "learning_rate")
    assert "not evidence" in proc.stdout
    assert verdict["scale"] == "small" and verdict["evidence"] is False and verdict["seeds"] == 3
    assert set(verdict["code"]) == {"commit", "dirty"} and verdict["result_commits"]
    assert "init and data order" in verdict["variance"]
    entry = verdict["settings"]["circle"]["fixed_epochs"]
    for key in ("method", "ci", "p", "p_adjusted", "n", "grid_edge"):
        assert key in entry, key
    assert entry["grid_edge"] == []  # nothing is tuned: no grid to be on the edge of
    assert set(entry["per_value"]) == {"1e-05", "0.03", "10.0"}
    assert entry["per_value"]["10.0"]["diverged"] == entry["per_value"]["10.0"]["runs"] == 3  # shown, not dropped
    assert entry["diverged_runs"] >= 3 and entry["best"] == "0.03"
    table = (tmp_path / "learning_rate" / "table.md").read_text()
    assert "| 10 | 3 | 0 | 3 |" in table  # n, ok, diverged of lr=10
    assert "train/accuracy mean" in table  # train beside test: under-fitting vs a generalization gap
    assert (tmp_path / "learning_rate" / "boundaries.png").exists()


@pytest.mark.slow
def test_activation_choice_small(tmp_path):
    proc = _claim(tmp_path, "claim=activation_choice", "claim.scale=small", "logger=none")
    assert proc.returncode == 0, proc.stderr[-2000:]
    verdict = _check_report(tmp_path / "activation_choice", "activation_choice")
    entry = verdict["settings"]["circle"]["fixed_epochs"]
    assert entry["winner"] in ("relu", "linear") and entry["top"][0] == entry["winner"]
    assert (tmp_path / "activation_choice" / "boundaries.png").exists()


@pytest.mark.slow
def test_regularization_small(tmp_path):
    proc = _claim(tmp_path, "claim=regularization", "claim.scale=small", "logger=none")
    assert proc.returncode == 0, proc.stderr[-2000:]
    verdict = _check_report(tmp_path / "regularization", "regularization")
    entry = verdict["settings"]["xor"]["fixed_epochs"]
    assert entry["metric"] == "gap/accuracy" and set(entry["also"]) == {"l1_sparsity", "test_accuracy"}
    header = (tmp_path / "regularization" / "table.md").read_text()
    assert "gap/accuracy mean" in header and "weight_sparsity mean" in header


@pytest.mark.slow
def test_transfer_learning_small(tmp_path):
    """A pretrain stage, then three variants, each seed starting from its own pretrained net."""
    proc = _claim(tmp_path, "claim=transfer_learning", "claim.scale=small", "logger=none")
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = tmp_path / "transfer_learning"
    verdict = _check_report(report, "transfer_learning")
    assert set(verdict["settings"]["labels_100"]["fixed_steps"]["pairs"]) == {"finetune", "probe"}
    stage = report / "runs" / "_stages" / "pretrain"
    assert sorted(p.name for p in stage.glob("seed_*")) == ["seed_0", "seed_1"]
    from harness import store

    probe = store.load_results(report / "runs" / "labels_100" / "fixed_steps" / "probe")
    assert sorted(Path(p).parent.name for p in probe["train.init_from"]) == ["seed_0", "seed_1"]
    assert {int(Path(p).parent.name[5:]) for p, s in zip(probe["train.init_from"], probe["seed"]) if int(Path(p).parent.name[5:]) == s} == {0, 1}
    assert "Stage `pretrain`" in (report / "README.md").read_text()


def _frame(rows):
    import pandas as pd

    return pd.DataFrame(rows, columns=["x", "seed", "status", "m", "run_dir"])


def test_best_verdict_names_winner_and_ties():
    from harness.claim.analyze import best_verdict

    noise = [0.02, -0.02, 0.01, -0.01, 0.0]  # c differs from a by noise around -0.002
    rows = [(v, s, "ok", base + 0.01 * s + (noise[s] if v == "c" else 0.0), "")
            for v, base in (("a", 0.9), ("b", 0.5), ("c", 0.898)) for s in range(5)]
    out = best_verdict(_frame(rows), "x", "m", "higher", 0.05)
    assert out["winner"] == "a" and out["verdict"] == "inconclusive" and out["top"] == ["a", "c"]
    rows = [r for r in rows if r[0] != "c"]
    out = best_verdict(_frame(rows), "x", "m", "higher", 0.05)
    assert out["verdict"] == "supported" and out["top"] == ["a"]


def test_sweet_spot_verdict():
    from harness.claim.analyze import sweet_spot_verdict

    def rows(high_status):
        out = []
        for s in range(5):
            out += [(0.001, s, "ok", 0.5 + 0.01 * s, ""), (0.1, s, "ok", 0.9 + 0.01 * s, ""),
                    (10.0, s, high_status, 0.6 if high_status == "ok" else float("nan"), "")]
        return out

    out = sweet_spot_verdict(_frame(rows("diverged")), "x", "m", "higher", 0.05)
    assert out["verdict"] == "supported" and out["best"] == "0.1" and out["per_value"]["10.0"]["diverged"] == 5
    out = sweet_spot_verdict(_frame(rows("ok")), "x", "m", "higher", 0.05)
    assert out["verdict"] == "refuted" and out["diverges"] == "refuted"  # worse, but nothing diverged
    # The best value is picked on validation, then compared on test: here validation prefers
    # 0.001 (nothing underfits by that pick) although 0.1 is best on test.
    frame = _frame(rows("diverged"))
    frame["val"] = [0.9 if r[0] == 0.001 else 0.5 for r in rows("diverged")]
    out = sweet_spot_verdict(frame, "x", "m", "higher", 0.05, select_metric="val")
    assert out["best"] == "0.001" and out["select_metric"] == "val" and out["verdict"] == "refuted"


def test_loss_above_initial_marks_divergence(tmp_path):
    import pandas as pd

    from harness import store
    from harness.claim.analyze import mark_loss_above_initial

    for name, losses in (("up", [0.7, 2.0, 1.0]), ("down", [0.7, 0.3, 0.1])):
        (tmp_path / name).mkdir()
        store.write_curves(tmp_path / name / store.CURVES_FILE, {"step": [0, 1, 2], "train/loss": losses})
    runs = pd.DataFrame({"run_dir": [str(tmp_path / "up"), str(tmp_path / "down")], "status": ["ok", "ok"]})
    runs = mark_loss_above_initial(runs)
    assert list(runs["status"]) == ["diverged", "ok"] and runs["diverged_by"][0] == "loss_above_initial"


def test_metric_columns_in_table():
    from harness.report import tables

    df = _frame([(v, s, "ok", 0.5 + s / 10, "") for v in ("a", "b") for s in range(3)]).assign(
        extra=[0.1, 0.2, 0.3, 1.0, 1.0, 1.0])
    table = tables.add_metric_columns(tables.ablation_table(df, ["x"], "m"), df, ["extra", "absent"])
    assert list(table["extra"]) == pytest.approx([0.2, 1.0]) and table.attrs["extra"] == ["extra"]
    assert "extra mean [95% CI]" in tables.markdown_text(table)


def test_variants_and_stages_build_commands():
    from harness.claim.spec import stages

    claim = {"name": "c", "statement": "s", "source": "x", "seeds": 2, "metric": "test/accuracy",
             "scientific": {"column": "transfer", "values": {
                 "scratch": ["train.init_from=null"],
                 "probe": ["train.init_from=${stage:pre}/seed_${seed}/params.npz", "train.freeze=features"]}},
             "settings": {"d": ["data=digits"]}, "protocols": {"p": {"overrides": ["train.steps=5"]}},
             "stages": {"pre": {"overrides": ["data=digits", "output.save_params=true"]}}}
    (pre,) = [s.with_root("/o/runs/_stages") for s in stages(claim)]
    assert pre.command("/o/runs/_stages/pre")[-2:] == ["output.plots=false", "hydra.sweep.dir=/o/runs/_stages/pre"]
    (sweep,) = [s.with_root("/o/runs/_stages") for s in sweeps(claim)]
    commands = sweep.commands("/o/runs/d/p")
    assert [label for label, _ in commands] == ["scratch", "probe"]
    probe = commands[1][1]
    assert "train.init_from=/o/runs/_stages/pre/seed_${seed}/params.npz" in probe
    assert probe[-1] == "hydra.sweep.dir=/o/runs/d/p/probe" and "seed=range(2)" in probe
    assert len(sweep.shell("/o/runs/d/p").splitlines()) == 2


def test_index_stage_links_runs_by_seed(tmp_path):
    from harness import store
    from harness.claim.run import index_stage

    for job, seed in (("0", 7), ("1", 3)):
        (tmp_path / job).mkdir()
        (tmp_path / job / "params.npz").write_bytes(job.encode())
        store.write_json_atomic(tmp_path / job / store.RESULT_FILE, {"seed": seed, "status": "ok"})
    assert set(index_stage(tmp_path)) == {7, 3}
    assert (tmp_path / "seed_3" / "params.npz").read_bytes() == b"1"
    assert not (tmp_path / "seed_3" / store.RESULT_FILE).exists()
    assert len(store.find_results(tmp_path)) == 2  # the index adds no results
    assert set(index_stage(tmp_path)) == {7, 3}  # idempotent
    (tmp_path / "2").mkdir()
    store.write_json_atomic(tmp_path / "2" / store.RESULT_FILE, {"seed": 7, "status": "ok"})
    with pytest.raises(RuntimeError, match="two runs with seed 7"):
        index_stage(tmp_path)


def test_boundary_grid_figure(tmp_path):
    import numpy as np

    from harness.report.figures import boundary_grid

    field = np.linspace(-1, 1, 25 * 25)
    cells = {("circle", "relu"): {"field": field, "extent": (-6, 6), "points": np.zeros((3, 2)),
                                  "labels": np.array([0, 1, 1]), "caption": "acc 0.9"}}
    path = boundary_grid(cells, ["circle", "xor"], ["relu", "linear"], tmp_path / "grid.png", column_label="act")
    assert path.exists() and path.stat().st_size > 1000


# ---------------------------------------------------------------- protocols that can fail


def test_hypothesis_kinds_are_one_registry():
    from harness.claim.spec import HYPOTHESIS_KINDS, validate_hypothesis

    assert {"ordered", "pairwise", "best", "sweet_spot", "interaction", "equivalence"} <= set(HYPOTHESIS_KINDS)
    with pytest.raises(ConfigError, match="claim.hypothesis.kind"):
        validate_hypothesis({"kind": "sideways"}, "claim.hypothesis")
    with pytest.raises(ConfigError, match="claim.hypothesis.margin"):
        validate_hypothesis({"kind": "equivalence", "a": "linear", "b": "logistic"}, "claim.hypothesis")


def test_grid_extension_steps_in_the_grids_own_spacing():
    from harness.claim.analyze import extended_value

    assert extended_value([0.01, 0.03, 0.1, 0.3], "high") == pytest.approx(0.9)
    assert extended_value([0.01, 0.03, 0.1, 0.3], "low") == pytest.approx(0.003333)
    assert extended_value([0.0, 0.5, 1.0], "low") == pytest.approx(-0.5)  # not all positive: linear


def _analysis(rows, sweep, selection):
    import pandas as pd

    from harness.claim.analyze import Analysis

    runs = pd.DataFrame(rows, columns=["x", "optim.lr", "seed", "status", "m", "run_dir"])
    return Analysis(sweep, runs, runs, pd.DataFrame(), "m", "higher", {}, selection)


def test_edge_choice_is_flagged_and_extends_only_that_edge():
    from harness.claim.analyze import extension_sweeps, grid_edges
    from harness.claim.spec import Sweep

    sweep = Sweep("s", "p", "label", ["x=1,2", "optim.lr=0.1,0.3,1.0", "seed=range(2)"],
                  {"optim.lr": [0.1, 0.3, 1.0]}, "final", None, None)
    rows = [(x, lr, s, "ok", 0.5, "") for x in (1, 2) for lr in (0.1, 0.3, 1.0) for s in range(2)]
    selection = [{"x": 1, "optim.lr": 1.0}, {"x": 2, "optim.lr": 0.3}]
    analysis = _analysis(rows, sweep, selection)
    assert grid_edges(sweep, analysis.runs, selection, "x") == ["optim.lr=1 (high edge, x=1)"]
    claim = {"scientific": {"key": "x", "values": [1, 2]}}
    (extension,) = extension_sweeps(claim, analysis, 1)
    assert extension.protocol == "p/extend_1_optim.lr_high_1"
    # One step in the grid's ratio (1 / 0.3), one new value, only the value that chose the edge.
    assert "optim.lr=3.333" in extension.overrides and "x=1" in extension.overrides


def test_a_choice_among_only_censored_settings_is_not_an_edge():
    from harness.claim.analyze import grid_edges
    from harness.claim.spec import Sweep

    sweep = Sweep("s", "p", "label", [], {"optim.lr": [0.1, 0.3, 1.0]}, "steps_to_target", 0.9, "val/accuracy")
    rows = [(x, lr, s, "ok", 0.5, "") for x in (1, 2) for lr in (0.1, 0.3, 1.0) for s in range(2)]
    runs = _analysis(rows, sweep, []).runs
    never = [{"x": 1, "optim.lr": 0.1, "select_mean": float("inf")}, {"x": 2, "optim.lr": 0.1, "select_mean": 300.0}]
    assert grid_edges(sweep, runs, never, "x") == ["optim.lr=0.1 (low edge, x=2)"]


def test_a_rerun_resumes_grid_extensions_from_the_runs_on_disk():
    """The depth of an extension is counted from each value's own runs: a value extended once
    (to 3.333) that chose the new edge extends from there to depth 2; at the limit it is not
    extended again (and stays on the edge: inconclusive), so a rerun never repeats a depth."""
    from harness.claim.analyze import extension_sweeps, grid_edges
    from harness.claim.spec import Sweep

    sweep = Sweep("s", "p", "label", ["x=1,2", "optim.lr=0.1,0.3,1.0", "seed=range(2)"],
                  {"optim.lr": [0.1, 0.3, 1.0]}, "final", None, None)
    rows = [(x, lr, s, "ok", 0.5, "") for x in (1, 2) for lr in (0.1, 0.3, 1.0) for s in range(2)]
    rows += [(1, 3.333, s, "ok", 0.6, "") for s in range(2)]  # x=1 was extended once
    selection = [{"x": 1, "optim.lr": 3.333}, {"x": 2, "optim.lr": 1.0}]
    analysis = _analysis(rows, sweep, selection)
    assert grid_edges(sweep, analysis.runs, selection, "x") == ["optim.lr=3.333 (high edge, x=1)",
                                                                "optim.lr=1 (high edge, x=2)"]
    claim = {"scientific": {"key": "x", "values": [1, 2]}}
    deeper, first = sorted(extension_sweeps(claim, analysis, 2), key=lambda e: e.protocol, reverse=True)
    assert deeper.protocol == "p/extend_2_optim.lr_high_1" and "optim.lr=11.11" in deeper.overrides
    assert first.protocol == "p/extend_1_optim.lr_high_2" and "optim.lr=3.333" in first.overrides
    (only,) = extension_sweeps(claim, analysis, 1)  # x=1 is at the limit
    assert only.protocol == "p/extend_1_optim.lr_high_2"


def test_holm_across_a_claims_comparisons_and_edge_makes_inconclusive():
    from harness.claim.analyze import adjust_claim, aggregate
    from harness.claim.spec import Sweep

    def pair(p):
        return {"verdict": "supported", "reason": "r", "p": p, "n": 5, "ci": [0.1, 0.2], "method": "t"}

    sweep = Sweep("s", "p", "label", [], {}, "final", None, None)
    first = _analysis([], sweep, [])
    first.verdict = aggregate({"kind": "pairwise", "rule": "", "pairs": {"a": pair(0.01), "b": pair(0.03)}})
    second = _analysis([], dataclasses_replace(sweep, setting="t"), [])
    second.verdict = dict(pair(0.001), kind="pairwise", grid_edge=["optim.lr=1 (high edge, x=1)"])
    adjust_claim([first, second], {"hypothesis": {"kind": "pairwise"}, "alpha": 0.05})
    assert first.verdict["pairs"]["a"]["p_adjusted"] == pytest.approx(0.02)
    assert first.verdict["pairs"]["b"]["p_adjusted"] == pytest.approx(0.03)
    assert first.verdict["verdict"] == "supported" and first.verdict["p_adjusted"] == pytest.approx(0.03)
    assert second.verdict["verdict"] == "inconclusive" and "edge" in second.verdict["reason"]
    # Each significant alone, neither after Holm (2 x 0.03 = 0.06; then max(0.06, 0.04)).
    first.verdict = aggregate({"kind": "pairwise", "rule": "", "pairs": {"a": pair(0.03), "b": pair(0.04)}})
    adjust_claim([first], {"hypothesis": {"kind": "pairwise"}, "alpha": 0.05})
    assert [p["verdict"] for p in first.verdict["pairs"].values()] == ["inconclusive", "inconclusive"]
    assert first.verdict["verdict"] == "inconclusive" and "Holm" in first.verdict["pairs"]["b"]["reason"]


def dataclasses_replace(obj, **changes):
    import dataclasses

    return dataclasses.replace(obj, **changes)


def test_interaction_is_the_difference_of_per_seed_differences():
    import pandas as pd

    from harness.claim.analyze import Analysis, interaction_verdict
    from harness.claim.spec import Sweep

    def analysis(setting, gain):
        rows = [(v, s, "ok", 0.7 + 0.01 * s + (gain + 0.001 * (s % 2) if v == "cnn" else 0.0), "")
                for v in ("cnn", "fnn") for s in range(6)]
        frame = pd.DataFrame(rows, columns=["model.family", "seed", "status", "m", "run_dir"])
        return Analysis(Sweep(setting, "p", "p", [], {}, "final", None, None), frame, frame, frame, "m", "higher",
                        {}, None)

    claim = {"hypothesis": {"kind": "interaction", "better": ["cnn"], "than": "fnn", "controls": {"grid": "shuffled"}},
             "scientific": {"key": "model", "column": "model.family", "values": ["mlp", "cnn"]}}
    out = interaction_verdict(claim, analysis("grid", 0.05), analysis("shuffled", 0.0))
    assert out["verdict"] == "supported" and out["kind"] == "interaction"
    assert out["ci"][0] > 0 and "in grid minus in shuffled" in out["reason"]
    same = interaction_verdict(claim, analysis("grid", 0.05), analysis("shuffled", 0.05))
    assert same["verdict"] == "inconclusive"


def test_best_is_picked_on_validation_and_tested_on_test():
    from harness.claim.analyze import best_verdict

    # a is best on validation; on test b is clearly better: the validation winner is refuted.
    rows = [(v, s, "ok", test + 0.01 * s + 0.001 * (s % 2) * (v == "b"), "") for v, test in (("a", 0.8), ("b", 0.9))
            for s in range(5)]
    frame = _frame(rows).assign(val=[0.95 if r[0] == "a" else 0.85 for r in rows])
    out = best_verdict(frame, "x", "m", "higher", 0.05, select_metric="val")
    assert out["winner"] == "a" and out["select_metric"] == "val" and out["verdict"] == "refuted"
    # Both at the top of validation: the pick is the first in order, and the reason says so.
    tied = best_verdict(frame.assign(val=1.0), "x", "m", "higher", 0.05, select_metric="val")
    assert tied["winner"] == "a" and tied["val_ties"] == ["b"] and "tied there with b" in tied["reason"]


def _result_dir(root, name, commit, dirty=False, seed=0):
    from harness import store

    run = root / name
    run.mkdir(parents=True)
    store.write_json_atomic(run / store.RESULT_FILE, {"status": "ok", "seed": seed, "metrics": {},
                                                     "versions": {"git_commit": commit, "git_dirty": dirty}})
    return str(run)


def test_report_lists_the_code_commits_a_resume_mixes(tmp_path):
    import pandas as pd

    from harness.claim.analyze import code_commits
    from harness.claim.report import _code_lines

    runs = pd.DataFrame({"run_dir": [_result_dir(tmp_path, "a", "abc"), _result_dir(tmp_path, "b", "def", dirty=True)]})
    assert code_commits(runs) == ["abc", "def+dirty"]
    analysis = _analysis([], None, [])
    analysis.verdict = {"code": code_commits(runs)}
    assert "mix 2 code versions" in _code_lines([analysis])[0]
    analysis.verdict = {"code": ["abc"]}
    assert _code_lines([analysis])[0] == "Results trained at code `abc`."


def test_diverged_runs_count_as_chance_in_the_sensitivity_row():
    from harness.claim.analyze import chance_sensitivity

    # b beats a on its survivors; with its 2 diverged runs at chance (0.5) it no longer does.
    rows = [("a", s, "ok", 0.80 + 0.002 * s, "") for s in range(5)]
    rows += [("b", s, "diverged" if s < 2 else "ok", float("nan") if s < 2 else 0.85 + 0.002 * s, "") for s in range(5)]
    claim = {"hypothesis": {"kind": "pairwise", "better": ["b"], "than": "a"}, "chance": {"circle": 0.5}}
    out = chance_sensitivity(claim, "circle", _frame(rows), "x", "m", "higher")
    assert out["verdict"] != "supported" and "2 diverged runs scored at chance" in out["what"]
    assert chance_sensitivity({**claim, "chance": None}, "circle", _frame(rows), "x", "m", "higher") is None


def test_unreached_target_is_censored_not_dropped(tmp_path):
    import pandas as pd

    from harness import store
    from harness.claim.analyze import add_steps_to_target
    from harness.claim.spec import Sweep

    for name, acc in (("fast", [0.1, 0.5, 0.95]), ("never", [0.1, 0.3, 0.4])):
        (tmp_path / name).mkdir()
        store.write_curves(tmp_path / name / store.CURVES_FILE, {"step": [0, 50, 100], "val/accuracy": acc})
    runs = pd.DataFrame({"run_dir": [str(tmp_path / "fast"), str(tmp_path / "never")], "status": ["ok", "ok"],
                         "train.batch_size": [8, 8]})
    sweep = Sweep("s", "p", "p", [], {}, "steps_to_target", 0.9, "val/accuracy")
    runs = add_steps_to_target(runs, sweep)
    assert list(runs["steps_to_target"]) == [100.0, float("inf")]
    assert list(runs["reached_target"]) == [1.0, 0.0] and runs["examples_to_target"][0] == 800.0


def test_data_seed_can_vary_with_the_seed():
    claim = resolve_scale({"name": "c", "statement": "s", "source": "x", "scientific": {"key": "a", "values": [1, 2]},
                           "settings": {"d": []}, "protocols": {"p": {}}, "metric": "m", "seeds": 3,
                           "vary_data_seed": True})
    (sweep,) = sweeps(claim)
    assert "data.seed=${seed}" in sweep.overrides
    (fixed,) = sweeps({**claim, "vary_data_seed": False})
    assert not any(o.startswith("data.seed") for o in fixed.overrides)


def test_confusion_matrices_are_summed_over_seeds_per_value(tmp_path):
    import pandas as pd

    from harness import store
    from harness.claim.report import confusion_by_value

    dirs = []
    for i, (value, matrix) in enumerate((("a", [[3, 1], [0, 4]]), ("a", [[2, 2], [1, 3]]), ("b", [[4, 0], [0, 4]]))):
        run = tmp_path / str(i)
        run.mkdir()
        store.write_json_atomic(run / store.RESULT_FILE, {"status": "ok", "confusion_matrix": matrix})
        dirs.append((value, str(run)))
    ok = pd.DataFrame(dirs, columns=["x", "run_dir"])
    assert confusion_by_value(ok, "x") == {"a": ([[5, 3], [1, 7]], 2), "b": ([[4, 0], [0, 4]], 1)}


def test_a_censored_choice_is_on_no_edge_and_is_not_extended():
    """grid_edges and extension_sweeps share one rule (analyze.edge_side): a choice whose
    select value is not finite (every setting censored: a tie broken by grid order) is on no
    edge, so it neither makes a verdict inconclusive nor runs an extension sweep."""
    from harness.claim.analyze import edge_side

    grid = [0.01, 0.1, 1.0]
    assert edge_side({"optim.lr": 0.01, "select_mean": 0.8}, "optim.lr", grid) == "low"
    assert edge_side({"optim.lr": 1.0, "select_mean": 0.8}, "optim.lr", grid) == "high"
    assert edge_side({"optim.lr": 0.1, "select_mean": 0.8}, "optim.lr", grid) is None
    assert edge_side({"optim.lr": 0.01, "select_mean": float("inf")}, "optim.lr", grid) is None
    assert edge_side({"optim.lr": 0.01, "select_mean": 0.8}, "optim.lr", [0.01]) is None


def test_an_edge_choice_tied_with_a_value_inside_the_grid_is_no_edge():
    """Where the validation metric is flat (every learning rate at 100% accuracy) the grid
    order breaks the tie, often at an edge; nothing points outside the grid, so it is no
    edge: no inconclusive verdict, no extension sweep."""
    from harness.claim.analyze import edge_side
    import pandas as pd

    from harness.report.tables import best_per_value

    grid = [0.01, 0.1, 1.0]
    flat = {"optim.lr": 0.01, "select_mean": 1.0, "tied": [{"optim.lr": v} for v in grid]}
    assert edge_side(flat, "optim.lr", grid) is None
    # Tied only with the other edge: still nothing inside, still an edge.
    ends = {"optim.lr": 0.01, "select_mean": 1.0, "tied": [{"optim.lr": 0.01}, {"optim.lr": 1.0}]}
    assert edge_side(ends, "optim.lr", grid) == "low"
    runs = pd.DataFrame([{"x": x, "optim.lr": lr, "seed": s, "status": "ok",
                          "val/accuracy": 1.0 if (x == "a" or lr < 1.0) else 0.5 + 0.1 * lr, "test/accuracy": 0.9}
                         for x in ("a", "b") for lr in grid for s in range(3)])
    chosen = best_per_value(runs, "x", ["optim.lr"], "test/accuracy", "higher").attrs["selection"]
    assert [row["optim.lr"] for row in chosen] == [0.01, 0.01]
    assert [[t["optim.lr"] for t in row["tied"]] for row in chosen] == [grid, [0.01, 0.1]]
    assert [edge_side(row, "optim.lr", grid) for row in chosen] == [None, None]

