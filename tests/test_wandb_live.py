"""Live W&B logging: a job Hydra runs on its own streams its curves while it trains.

Real offline W&B runs, read back from their ``.wandb`` logs (tests/test_wandb_logger.py's
reader): the rows reach W&B before the job's record exists, the run is the one post-hoc
logging would write from the record, a run restored from a checkpoint still logs every row,
and a W&B that cannot start costs one warning and no result.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import jax
import numpy as np
import pytest

pytest.importorskip("wandb")

from conftest import SHRINK, compose_config, run_cli  # noqa: E402
from test_wandb_logger import read_offline_run  # noqa: E402

from harness import store  # noqa: E402
from harness.track import wandb_logger as wl  # noqa: E402
from harness.track.live import LiveRun  # noqa: E402
from harness.train import events  # noqa: E402
from harness.train.engine import GroupProgram  # noqa: E402

JOB = ["data=circle", "train.epochs=200", "output.save_params=true"]


def _rows(run: dict, run_dir: Path) -> list[dict]:
    """History rows of evaluations: the curves' columns only (no media, no W&B bookkeeping)."""
    columns = list(store.read_curves(run_dir).columns)
    return [{k: row[k] for k in columns} for row in run["history"] if "train/loss" in row]


def _csv_rows(run_dir: Path) -> list[dict]:
    curves = store.read_curves(run_dir)
    return [{k: (int(v) if k == "step" else float(v)) for k, v in r.items()} for r in curves.to_dict(orient="records")]


@pytest.fixture(scope="module")
def live_job(tmp_path_factory) -> Path:
    """One real single run with W&B offline (the default logger)."""
    tmp = tmp_path_factory.mktemp("live")
    proc = run_cli([*JOB, "hydra.run.dir=run"], tmp)
    assert proc.returncode == 0, proc.stderr
    return tmp / "run"


def test_a_single_run_logs_its_evaluations_before_its_record_exists(live_job):
    run = read_offline_run(live_job, wl.logged_run_id(live_job))
    rows = [row for row in run["history"] if "train/loss" in row]
    stored = _csv_rows(live_job)
    assert [r["step"] for r in rows] == [r["step"] for r in stored]  # every evaluation, in order
    assert [r["train/loss"] for r in rows] == pytest.approx([r["train/loss"] for r in stored], rel=1e-12)
    # Live: the first evaluation was in W&B before training ended (curves.csv is written once
    # the group is trained; logging from the record could only start after it).
    assert rows[0]["_timestamp"] < (live_job / store.CURVES_FILE).stat().st_mtime
    # ... and W&B's wall-clock axis follows the training: rows came in more than one batch.
    assert len({round(r["_timestamp"], 6) for r in rows}) > 1


def test_the_live_run_is_the_run_logging_from_the_record_would_write(live_job, tmp_path):
    result = json.loads((live_job / store.RESULT_FILE).read_text())
    live = read_offline_run(live_job, wl.logged_run_id(live_job))
    again = tmp_path / "again"
    shutil.copytree(live_job, again, ignore=shutil.ignore_patterns("wandb", wl.MARKER_FILE))
    identity = {"name": live["name"], "group": live["group"] or None, "tags": live["tags"]}
    with warnings.catch_warnings():
        warnings.simplefilter("error", wl.TrackingWarning)
        run_id = wl.log_run(again, result, compose_config(JOB).logger, identity=identity)
    after = read_offline_run(again, run_id)
    assert live["config"] == after["config"]
    assert (live["name"], live["group"], live["tags"], live["job_type"], live["project"]) == \
        (after["name"], after["group"], after["tags"], after["job_type"], after["project"])
    assert _rows(live, live_job) == _rows(after, again)
    last_live, last_after = live["history"][-1], after["history"][-1]
    for key in ("plots/curves._type", "plots/boundary._type", "confusion_matrix_table._type"):
        assert last_live[key] == last_after[key], key
    record = set(result["metrics"]) | {"status", "diverged_step", "config_hash", "budget", "timings"}
    summary = lambda run: {k: v for k, v in run["summary"].items() if k.split(".")[0] in record}  # noqa: E731
    assert summary(live) == summary(after) and summary(live)["test/accuracy"] == result["metrics"]["test/accuracy"]
    kinds = lambda run: sorted((t, files) for _, t, files in run["artifacts"])  # noqa: E731  (names carry the id)
    assert kinds(live) == kinds(after) and ("model", ["params.npz"]) in kinds(live)


def test_a_run_restored_from_a_checkpoint_still_logs_every_evaluation(tmp_path):
    """Periods trained before the restore (by a killed attempt whose W&B run is replaced)
    are logged with the first segment after it."""
    cfg = compose_config(SHRINK + ["data=circle", "train.epochs=7"])
    first = GroupProgram([cfg], segment_periods=3)
    first.step()
    state = jax.tree_util.tree_map(np.asarray, jax.device_get(first.state))
    curves, confusions = first.curves_so_far()

    second = GroupProgram([cfg], segment_periods=3)
    second.restore(state, first.next_period, curves, confusions)
    with LiveRun(tmp_path, cfg, {"name": "restored"}) as live:
        while not second.done:
            second.step()
            events.segment(second)
    group = second.finish()
    steps = group.budget.eval_steps()
    result = {"metrics": {"train/loss": 0.0}, "status": "ok", "config": {}, "budget": group.budget.as_dict()}
    run_id = live.finish(result)
    rows = [r for r in read_offline_run(tmp_path, run_id)["history"] if "train/loss" in r]
    assert [r["step"] for r in rows] == list(steps)
    expected = np.asarray(group.outputs[0]["curves"]["train/loss"], np.float64)
    assert [r["train/loss"] for r in rows] == pytest.approx(expected.tolist(), rel=1e-12)


def test_a_wandb_that_cannot_start_costs_one_warning_and_no_result(tmp_path):
    (tmp_path / "a_file").write_text("not a folder")
    proc = run_cli(["data=circle", "train.epochs=5", "hydra.run.dir=run", f"logger.dir={tmp_path / 'a_file' / 'w'}"],
                   tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "run" / store.RESULT_FILE).read_text())["status"] == "ok"
    assert proc.stderr.count("TrackingWarning") == 1, proc.stderr
    assert not (tmp_path / "run" / wl.MARKER_FILE).exists()
