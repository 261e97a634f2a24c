"""Divergence by the loss, not only by overflow (issue #15, item 3): a run whose training loss
goes above ``train.diverge_above`` times its initial loss is stored as diverged at that step."""

from __future__ import annotations

import json

import numpy as np

from conftest import compose_config, run_cli
from harness.errors import ConfigError
from harness.results import loss_above_initial
from harness.validate import validate_config


def curves(*loss: float) -> dict[str, np.ndarray]:
    return {"step": np.arange(len(loss)) * 10, "train/loss": np.array(loss)}


def test_the_first_evaluation_above_the_multiple_is_the_diverged_step():
    assert loss_above_initial(curves(0.7, 5.0, 80.0, 0.1), 100) == 20  # 80 > 100 * 0.7 = 70
    assert loss_above_initial(curves(0.7, 69.0, 0.1), 100) is None  # a spike below the multiple recovers
    assert loss_above_initial(curves(0.7, 0.5, float("nan")), 100) == 20  # a NaN loss is above any bound
    assert loss_above_initial(curves(0.7, 1e6), None) is None  # null: the rule is off
    assert loss_above_initial(curves(0.0, 1e6), 100) is None  # no multiple of a zero loss to exceed


def test_diverge_above_must_be_null_or_a_number_above_one():
    for bad in (1, 0.5, -3, float("inf")):
        cfg = compose_config([f"train.diverge_above={bad}"])
        try:
            validate_config(cfg)
        except ConfigError as exc:
            assert "train.diverge_above" in str(exc)
        else:
            raise AssertionError(f"train.diverge_above={bad} was accepted")
    validate_config(compose_config(["train.diverge_above=null"]))


def test_huge_learning_rates_are_stored_as_diverged_and_null_switches_it_off(tmp_path):
    args = ["-m", "data=circle", "model.hidden=[4]", "train.epochs=5", "logger=none", "output.plots=false",
            "optim.lr=0.1,1e6,1e30"]
    on = run_cli([*args, "hydra.sweep.dir=on"], tmp_path)
    off = run_cli([*args, "train.diverge_above=null", "hydra.sweep.dir=off"], tmp_path)
    assert on.returncode == 0 and off.returncode == 0, on.stderr[-2000:] + off.stderr[-2000:]

    def records(name):
        return [json.loads((tmp_path / name / str(i) / "result.json").read_text()) for i in range(3)]

    healthy, big, huge = records("on")
    assert healthy["status"] == "ok" and healthy["diverged_step"] is None
    for r in (big, huge):
        assert (r["status"], r["diverged_by"]) == ("diverged", "loss_above_initial")
        assert 0 < r["diverged_step"] <= r["budget"]["steps"]
    assert [r["status"] for r in records("off")] == ["ok", "ok", "ok"]  # overflow only: these stay finite
    # The rule only judges the stored curves: the same training either way.
    assert [r["metrics"] for r in records("on")] == [r["metrics"] for r in records("off")]
