"""``harness-table`` (python -m harness.report.cli) on hand-built result folders."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness import store

ROOT = Path(__file__).resolve().parent.parent


def make_run(root: Path, name: str, *, status: str, seed: int, bs: int, acc: float) -> None:
    """One result folder as harness/results.py writes it."""
    t = np.arange(0, 101, 20)
    store.write_curves(root / name / store.CURVES_FILE, {"step": t, "train/loss": np.exp(-t / 100), "test/loss": np.exp(-t / 100)})
    store.write_json_atomic(root / name / store.RESULT_FILE, {
        "status": status,
        "diverged_step": 40 if status == "diverged" else None,
        "metrics": {"test/accuracy": acc, "test/loss": 1 - acc, "val/accuracy": acc},
        "config": {"seed": seed, "train": {"batch_size": bs}, "optim": {"lr": 0.1, "name": "sgd"}},
        "seed": seed,
        "budget": {"kind": "epochs", "size": 5, "steps": 100, "examples": 3200},
        "timings": {"compile_s": 0.1, "run_s": 0.2},
    })


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("results")
    for bs, base in ((16, 0.93), (128, 0.88)):
        for seed in range(3):
            diverged = bs == 128 and seed == 2
            make_run(root, f"sweep/bs{bs}/s{seed}", status="diverged" if diverged else "ok", seed=seed, bs=bs,
                     acc=0.1 if diverged else base + 0.002 * seed)
    return root


def harness_table(*args, cwd: Path = ROOT, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "WANDB_MODE": "offline", "COLUMNS": "200", **(env or {})}
    return subprocess.run([sys.executable, "-m", "harness.report.cli", *map(str, args)],
                          cwd=cwd, env=full_env, capture_output=True, text=True, timeout=60)


def test_prints_table_and_writes_files(results_dir, tmp_path):
    out = tmp_path / "tables"
    proc = harness_table(results_dir, "--by", "train.batch_size", "--metric", "test/accuracy", "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    text = proc.stdout
    assert "train.batch_size" in text and "test/accuracy mean [95% CI]" in text
    assert "0.9320 [" in text  # mean of 0.930, 0.932, 0.934
    assert "0.8810" in text  # 128: mean of the two ok runs only
    assert "6 runs" in text and "1 diverged" in text
    stem = "test-accuracy_by_train.batch_size"
    assert sorted(p.name for p in out.iterdir()) == [f"{stem}.csv", f"{stem}.md", f"{stem}.tex"]
    csv = pd.read_csv(out / f"{stem}.csv")
    assert list(csv["train.batch_size"]) == [16, 128] and list(csv["diverged"]) == [0, 1]
    assert list(csv["best"]) == [True, False]
    md = (out / f"{stem}.md").read_text()
    assert "| 16 | 3 | 3 | 0 | **0.9320 [" in md and f"Source: {results_dir}" in md
    assert "\\begin{tabular}" in (out / f"{stem}.tex").read_text()


def run_main(capsys, *args) -> tuple[int, str, str]:
    """``main(argv)`` in this process (cheaper than a subprocess): exit code, stdout, stderr."""
    from harness.report.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    return exit_info.value.code, out, err


def test_format_and_direction_options(results_dir, tmp_path, capsys):
    code, out, _ = run_main(capsys, results_dir, "--by", "train.batch_size", "--by", "optim.lr", "--metric", "test/loss",
                            "--out", tmp_path, "--format", "csv", "--name", "loss")
    assert code == 0
    assert [p.name for p in tmp_path.iterdir()] == ["loss.csv"]
    assert "lower is better" in out  # inferred from the metric name
    csv = pd.read_csv(tmp_path / "loss.csv")
    assert list(csv["best"]) == [True, False]  # lowest loss at batch 16
    code, out, _ = run_main(capsys, results_dir, "--by", "train.batch_size", "--metric", "test/loss", "--direction", "higher")
    assert code == 0 and "higher is better" in out
    code, _, err = run_main(capsys, results_dir, "--by", "train.batch_size", "--metric", "test/loss", "--out", results_dir / "sweep/bs16/s0/result.json")
    assert code == 2 and err.startswith("error: --out") and err.count("\n") == 1  # --out is a file


def _one_error_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    return lines[0]


def test_missing_dir_and_empty_dir(tmp_path):
    line = _one_error_line(harness_table(tmp_path / "nope", "--by", "train.batch_size", "--metric", "test/accuracy"))
    assert "RESULTS_DIR" in line and "nope" in line and "does not exist" in line
    line = _one_error_line(harness_table(tmp_path, "--by", "train.batch_size", "--metric", "test/accuracy"))
    assert "holds no result.json" in line


def test_unknown_by_and_metric_name_the_option_value_and_columns(results_dir, capsys):
    line = _one_error_line(harness_table(results_dir, "--by", "train.batchsize", "--metric", "test/accuracy"))
    assert "--by 'train.batchsize'" in line and "available:" in line
    assert line.split("available:")[1].strip().startswith("train.batch_size")  # the closest name first
    code, out, err = run_main(capsys, results_dir, "--by", "train.batch_size", "--metric", "test/acc")
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith("error: --metric 'test/acc'") and "test/accuracy" in err
    code, _, err = run_main(capsys, results_dir, "--by", "train.batch_size", "--metric", "optim.name")
    assert code == 2 and "holds no numbers" in err


def test_bad_format_and_source_choice(results_dir, tmp_path):
    line = _one_error_line(harness_table(results_dir, "--by", "seed", "--metric", "test/accuracy", "--out", tmp_path, "--format", "md,xlsx"))
    assert "--format 'xlsx'" in line
    line = _one_error_line(harness_table("--by", "seed", "--metric", "test/accuracy"))
    assert "RESULTS_DIR or --wandb-project" in line


def test_wandb_project_offline_is_one_clear_line():
    line = _one_error_line(harness_table("--wandb-project", "me/proj", "--by", "seed", "--metric", "test/accuracy"))
    assert "--wandb-project 'me/proj'" in line and "WANDB_MODE=offline" in line

def test_wandb_project_must_be_entity_slash_project(capsys):
    code, _, err = run_main(capsys, "--wandb-project", "noslash", "--by", "seed", "--metric", "test/accuracy")
    assert code == 2 and "ENTITY/PROJECT" in err


def test_wandb_rows_match_load_results_columns():
    """The W&B adapter, on a stand-in for a public-API run (no server needed)."""
    from harness.report.cli import wandb_row

    class Summary:
        _json_dict = {"test/accuracy": 0.9, "status": "diverged", "budget": {"kind": "epochs"}, "_step": 3}

    class Run:
        job_type = "train"
        path = ["me", "proj", "abc123"]
        state = "finished"
        summary = Summary()
        summary_metrics: dict = {}
        config = {"seed": 4, "train": {"batch_size": 32}}

    row = wandb_row(Run())
    assert row["status"] == "diverged" and row["seed"] == 4 and row["train.batch_size"] == 32
    assert row["budget.kind"] == "epochs" and row["test/accuracy"] == 0.9 and "_step" not in row
    assert row["run_dir"] == "wandb:me/proj/abc123"
    Run.job_type = "train-group"
    assert wandb_row(Run()) is None
