"""scripts/bench_targets.py: the goal rows of the "pay for training" issue, from fake results.

No timing is measured or asserted here: the numbers are made up, and the test checks only that
each goal's row compares them with the goal the right way round, and that a goal whose
workload did not run is a row that says so.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))

import bench_targets


def _peer(per: float, **kw) -> dict:
    return {"ok": True, "per_config_s": per, "configs": 256, "measured": 8, "extrapolated": True,
            "fixed_s": 2.0, "steady_s": per, "wall_s": per * 8, **kw}


def fake_results() -> dict:
    fused = {"ok": True, "per_config_s": 0.01, "configs": 256, "wall_s": 2.56}
    return {
        "compile": {"rows": [{"program": "spiral_mlp", "ratio": 0.9, "harness_s": 0.9, "reference_s": 1.0},
                             {"program": "mnist1d_cnn", "ratio": 1.2, "harness_s": 1.2, "reference_s": 1.0}],
                    "load_start": "1.00 1.00 1.00", "load_end": "2.00 2.00 2.00", "code": "abc1234"},
        # 30x PyTorch eager (goal 25: met), 5x torch.func at its best setting (goal 10: not met), 60x Keras (met)
        "sweep256": {"variants": {"fused_cold": fused, "torch_t1": _peer(0.30), "torch_func_t1": _peer(0.05),
                                  "torch_func_t2": _peer(0.50), "keras": _peer(0.60)}},
        "sweep4096": {"variants": {"fused_cold": {**fused, "per_config_s": 0.005}, "torch_t1": {"ok": False}}},
        "extras": {"configs": 256, "variants": {
            "default": {"ok": True, "wall_s": 30.0, "wandb_runs": 1},
            "member": {"ok": True, "wall_s": 40.0, "wandb_runs": 256},  # W&B: 20 s / 256 = 78 ms a member run
            "default_noplots": {"ok": True, "wall_s": 28.0},     # plots: 6.7% of 30 s (goal <= 10%: met)
            "none_plots": {"ok": True, "wall_s": 20.0},          # W&B: 10 s / 256 = 39 ms (goal <= 20: not met)
            "none": {"ok": True, "wall_s": 12.0}}},              # 2.5x (goal <= 2: not met)
        "mainjob": {"ok": True, "wall_s": 100.0, "runs": 500, "quick": True},  # 0.2 s per run (<= 0.273)
        "suite": {"ok": True, "wall_s": 400.0, "summary": "10 passed"},  # over 300 s
    }


def by_what(rows: list[dict]) -> dict[str, dict]:
    return {r["what"]: r for r in rows}


def test_every_goal_is_a_row_even_when_nothing_ran():
    rows = bench_targets.target_rows({})
    assert len(rows) == 15  # 3 compile + 3 peers at 256 + 4096 + basic + 4 extras + CNN peak + main job + suite
    assert all(r["status"] == "not measured in this run" for r in rows)
    assert all(r["goal"] for r in rows)
    assert bench_targets.target_rows({}, absent="not measured yet")[0]["status"] == "not measured yet"


def test_met_and_not_met_follow_the_numbers():
    rows = bench_targets.target_rows(fake_results())
    st = {r["what"]: r["status"] for r in rows}
    assert st["compile of one Playground MLP program, cold"] == "met"
    assert st["compile of one MNIST-1D CNN program, cold"] == "not met"
    assert st["compile of one MNIST-1D GRU program, cold"] == "not measured"  # the workload ran, this row did not
    n256 = bench_targets.N256
    assert st[f"{n256}: vs PyTorch eager (1 thread)"] == "met"
    assert st[f"{n256}: vs torch.func vmap ensembling (best of 1 and 2 threads)"] == "not met"
    assert st[f"{n256}: vs Keras fit"] == "met"
    assert st["4096-config sweep, same conditions: vs PyTorch eager (1 thread)"] == "failed"
    assert st["fused vs Hydra's basic launcher, 32 configs, defaults as shipped, cold"] == "not measured in this run"
    assert st["a default sweep (W&B and plots as shipped), the 256-config sweep"] == "not met"
    assert st["plots as shipped (the 256-config default sweep)"] == "met"
    assert st["W&B offline member runs (the 256-config sweep, a run per member)"] == "not met"
    assert st["W&B as shipped (the 256-config default sweep: hydra.launcher.wandb=auto, one run per compile group above 64 members)"] == "not met"
    assert st["run phase, MNIST-1D CNN sweep"] == "not measured in this run"
    assert st["the main job, cold, per run trained"] == "met (--quick size, not the goal's)"
    assert st["the default test suite"] == "not met"


def test_rows_carry_the_numbers_and_the_load():
    rows = by_what(bench_targets.target_rows(fake_results()))
    r = rows["compile of one Playground MLP program, cold"]
    assert r["load"] == "1.00 1.00 1.00 → 2.00 2.00 2.00" and r["code"] == "abc1234"
    func = rows[f"{bench_targets.N256}: vs torch.func vmap ensembling (best of 1 and 2 threads)"]["measured"]
    assert func.startswith("5.0×") and "0.050 s per config" in func  # the faster of the two thread counts
    assert "78.1 ms per member" in rows["W&B offline member runs (the 256-config sweep, a run per member)"]["measured"]  # wandb=member − logger=none
    assert "39.1 ms per member" in rows["W&B as shipped (the 256-config default sweep: hydra.launcher.wandb=auto, one run per compile group above 64 members)"]["measured"]  # default − logger=none
    table = bench_targets.targets(fake_results())
    assert table.count("\n") == 2 + 15


def test_a_block_from_before_wandb_auto_reads_its_default_as_member_runs():
    results = fake_results()
    del results["extras"]["variants"]["member"]  # blocks before wandb=auto: the default wrote member runs
    rows = by_what(bench_targets.target_rows(results))
    assert "39.1 ms per member" in rows["W&B offline member runs (the 256-config sweep, a run per member)"]["measured"]
    assert rows["W&B as shipped (the 256-config default sweep: hydra.launcher.wandb=auto, one run per compile group above 64 members)"]["status"] == "not measured"
