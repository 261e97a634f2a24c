"""W&B tracking: real offline runs read back from their .wandb log, and the failure policy.

wandb 0.31 has no Python reader for a run's ``.wandb`` file any more (the old
``wandb.sdk.internal.datastore`` is gone; the Go core writes it), so :func:`read_records`
decodes the format here: a 7-byte header (``:W&B``, magic 0xBEE1, version 0) and then
LevelDB-log style 32 KiB blocks of chunks (crc32c, length, type: full/first/middle/last),
each record a ``wandb.proto.wandb_internal_pb2.Record``.
"""

from __future__ import annotations

import json
import os
import struct
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

wandb = pytest.importorskip("wandb")

from google.protobuf.message import DecodeError  # noqa: E402 - protobuf comes with wandb
from wandb.proto import wandb_internal_pb2 as pb  # noqa: E402

from harness import store  # noqa: E402
from harness.config import LoggerConfig  # noqa: E402
from harness.track import wandb_logger as wl  # noqa: E402

BLOCK = 32 * 1024
FAKE_KEY = "fakefakefake" + "0123456789abcdef0123456789ab"  # 40 characters, like a real key
CONFIG_SECRET = "hunter2-do-not-log"


# ---------------------------------------------------------------- reading an offline run


def read_records(path: Path) -> list:
    """Every Record in a ``.wandb`` transaction log."""
    data = path.read_bytes()
    assert data[:4] == b":W&B", "not a W&B transaction log"
    pos, pending, records = 7, b"", []
    while pos + 7 <= len(data):
        left = BLOCK - pos % BLOCK
        if left < 7:  # a block's tail too short for a chunk header is padding
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if kind == 0 and length == 0:  # zero padding up to the next block
            pos += left
            continue
        if pos + 7 + length > len(data):  # a chunk W&B's core process is still writing
            break
        chunk = data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):  # full or last: a whole record
            record = pb.Record()
            record.ParseFromString(pending)
            records.append(record)
            pending = b""
    return records


def finished_records(log: Path, timeout_s: float = 30.0) -> list:
    """The records of a run's log once it holds the run's ``exit`` record: ``run.finish()``
    can return while wandb's core process is still writing the file (seen with wandb 0.31)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            records = read_records(log)
        except DecodeError:  # caught between a chunk's header and its bytes: read it again
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
            continue
        if any(r.WhichOneof("record_type") == "exit" for r in records) or time.monotonic() > deadline:
            return records
        time.sleep(0.05)


def _key(item) -> str:
    """A history/summary/config item's key: nested keys joined with dots."""
    return item.key or ".".join(item.nested_key)


def read_offline_run(wandb_dir: Path, run_id: str) -> dict:
    """Config, history rows, summary, saved files, artifacts (name, type, file paths) and the
    run's project/group/name/tags/job_type of the offline run ``run_id``."""
    (log,) = Path(wandb_dir).glob(f"wandb/offline-run-*-{run_id}/run-{run_id}.wandb")
    config, history, summary, files, artifacts, meta = {}, [], {}, [], [], {}
    for record in finished_records(log):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run = record.run
            meta = {"project": run.project, "group": run.run_group, "name": run.display_name,
                    "tags": list(run.tags), "job_type": run.job_type, "id": run.run_id}
            config.update({_key(u): json.loads(u.value_json) for u in record.run.config.update})
        elif kind == "config":
            config.update({_key(u): json.loads(u.value_json) for u in record.config.update})
        elif kind == "history":
            history.append({_key(i): json.loads(i.value_json) for i in record.history.item})
        elif kind == "summary":
            summary.update({_key(u): json.loads(u.value_json) for u in record.summary.update})
        elif kind == "files":
            files += [f.path for f in record.files.files]
        elif kind == "artifact":
            a = record.artifact
            artifacts.append((a.name, a.type, sorted(e.path for e in a.manifest.contents)))
    return {"config": config, "history": history, "summary": summary, "files": files, "dir": log.parent,
            "artifacts": artifacts, **meta}


# ---------------------------------------------------------------- a fake stored run


def _result(seed: int = 0, lr: float = 0.03) -> dict:
    """A result shaped like harness.results.make_result's output."""
    return {
        "status": "ok",
        "diverged_step": None,
        "metrics": {"train/loss": 0.2, "test/loss": 0.3, "test/accuracy": 0.9, "best/test/accuracy": 0.92, "weight_sparsity": 0.0},
        "config": {
            "data": {"name": "xor", "noise": 0.0, "features": ["x1", "x2"]},
            "model": {"family": "fnn", "hidden": [8, 8]},
            "optim": {"name": "sgd", "lr": lr},
            "logger": {"name": "wandb", "project": "harness", "api_key": CONFIG_SECRET},
            "db_password": CONFIG_SECRET,
            "seed": seed,
        },
        "config_hash": f"{seed:016d}",
        "overrides": [f"seed={seed}"],
        "budget": {"steps": 100, "eval_every": 20, "batch_size": 10},
        "seed": seed,
        "order_seed": seed,
        "timings": {"train_s": 0.5, "compile_s": 1.5},
        "versions": {"python": "3.11"},
        "confusion_matrix": [[40, 10], [5, 45]],
    }


STEPS = [0, 20, 40, 60, 80, 100]


def _fake_run(run_dir: Path, seed: int = 0, lr: float = 0.03, pngs: bool = True) -> dict:
    """curves.csv, boundary.npz, tiny PNGs and result.json, written by hand."""
    n = len(STEPS)
    store.write_curves(
        run_dir / store.CURVES_FILE,
        {
            "step": np.array(STEPS),
            "train/loss": np.linspace(1.0, 0.2, n),
            "test/loss": np.linspace(1.1, 0.3, n),
            "train/accuracy": np.linspace(0.5, 0.95, n),
            "test/accuracy": np.linspace(0.5, 0.9, n),
        },
    )
    store.write_npz_atomic(run_dir / "boundary.npz", {"boundary": np.zeros(16)})
    if pngs:
        import matplotlib.image as mpimg

        for name in ("curves.png", "boundary.png", "confusion.png"):
            mpimg.imsave(run_dir / name, np.random.default_rng(0).random((8, 8, 3)))
    result = _result(seed, lr)
    store.write_json_atomic(run_dir / store.RESULT_FILE, result)
    return result


@pytest.fixture(autouse=True)
def _wandb_env(tmp_path, monkeypatch):
    """No ambient W&B settings; wandb's own caches and staging files in the test's tmp dir."""
    for name in list(os.environ):
        if name.startswith("WANDB_"):
            monkeypatch.delenv(name)
    for name, sub in (("WANDB_CACHE_DIR", "cache"), ("WANDB_DATA_DIR", "data"), ("WANDB_CONFIG_DIR", "config")):
        monkeypatch.setenv(name, str(tmp_path / "wandb-home" / sub))


@pytest.fixture
def run_dir(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    return folder


def _tracking_warnings(record) -> list:
    return [w for w in record if issubclass(w.category, wl.TrackingWarning)]


# ---------------------------------------------------------------- offline runs


def test_log_run_offline_reads_back(run_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", FAKE_KEY)
    result = _fake_run(run_dir)
    stored = (run_dir / store.RESULT_FILE).read_bytes()
    cfg = LoggerConfig(project="p", group="g", tags=["t1"], run_name="member-0")
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        run_id = wl.log_run(run_dir, result, cfg)
    assert run_id and _tracking_warnings(record) == []
    assert (run_dir / wl.MARKER_FILE).read_text().strip() == run_id
    assert wl.already_logged(run_dir)
    assert (run_dir / store.RESULT_FILE).read_bytes() == stored

    run = read_offline_run(run_dir, run_id)
    # Config: the result's config plus the budget, secrets dropped.
    assert run["config"]["data"] == result["config"]["data"]
    assert run["config"]["optim"]["lr"] == 0.03
    assert run["config"]["budget"] == result["budget"]
    assert "db_password" not in run["config"] and "api_key" not in run["config"]["logger"]
    # History: one row per curves.csv row, on the optimizer-step axis.
    rows = [h for h in run["history"] if "train/loss" in h]
    assert [h["step"] for h in rows] == STEPS
    assert [h["_step"] for h in rows] == STEPS
    np.testing.assert_allclose([h["test/accuracy"] for h in rows], np.linspace(0.5, 0.9, len(STEPS)))
    assert len(run["history"]) == len(STEPS)  # media merged into the last row, not a row of their own
    # Summary: final metrics, status, budget, timings.
    summary = run["summary"]
    assert summary["test/accuracy"] == 0.9 and summary["best/test/accuracy"] == 0.92
    assert summary["status"] == "ok" and summary["diverged_step"] is None
    assert summary["budget"]["steps"] == 100 and summary["timings"]["train_s"] == 0.5
    # Images and the confusion table: referenced in the last row and saved in the run folder.
    last = run["history"][-1]
    for key in ("plots/curves", "plots/boundary", "plots/confusion"):
        assert last[f"{key}._type"] == "image-file"
        assert (run["dir"] / "files" / last[f"{key}.path"]).is_file()
    assert last["confusion_matrix_table._type"] == "table-file"
    table = json.loads((run["dir"] / "files" / last["confusion_matrix_table.path"]).read_text())
    assert table["columns"] == ["Actual", "Predicted", "nPredictions"]
    assert sorted(row[2] for row in table["data"]) == [5, 10, 40, 45]
    # No secret anywhere W&B wrote (run folder, wandb's cache/data dirs).
    for path in tmp_path.rglob("*"):
        if path.is_file():
            blob = path.read_bytes()
            assert FAKE_KEY.encode() not in blob, path
            assert CONFIG_SECRET.encode() not in blob or path.name == store.RESULT_FILE, path


def test_log_run_without_images_or_extras(run_dir, tmp_path):
    """images=False logs no image; a result without a confusion matrix logs no table."""
    result = _fake_run(run_dir)
    del result["confusion_matrix"]
    cfg = LoggerConfig(dir=str(tmp_path / "elsewhere"))
    run_id = wl.log_run(run_dir, result, cfg, images=False)
    run = read_offline_run(tmp_path / "elsewhere", run_id)  # logger.dir wins over the run folder
    assert not any(k.startswith(("plots/", "confusion")) for row in run["history"] for k in row)
    assert not (run_dir / "wandb").exists()


def test_log_group_offline(tmp_path):
    group_dir = tmp_path / "group"
    results = [_result(seed=s, lr=lr) for s, lr in ((0, 0.1), (1, 0.01), (2, 0.001))]
    results[2]["status"], results[2]["diverged_step"] = "diverged", 40
    run_id = wl.log_group(group_dir, results, LoggerConfig(), name="g0")
    assert run_id and wl.already_logged(group_dir)
    run = read_offline_run(group_dir, run_id)
    assert run["config"]["num_members"] == 3 and run["config"]["data.name"] == "xor"
    assert "optim.lr" not in run["config"]  # varies: a table column, not config
    assert run["summary"]["members_diverged"] == 1 and run["summary"]["members_ok"] == 2
    (row,) = run["history"]
    table = json.loads((run["dir"] / "files" / row["members.path"]).read_text())
    columns = table["columns"]
    assert {"member", "status", "config/optim.lr", "config/seed", "test/accuracy"} <= set(columns)
    assert not any("password" in c or "api_key" in c for c in columns)
    assert [r[columns.index("config/optim.lr")] for r in table["data"]] == [0.1, 0.01, 0.001]
    assert [r[columns.index("status")] for r in table["data"]] == ["ok", "ok", "diverged"]


def test_group_run_charts_every_members_curve_per_metric(tmp_path):
    """With the members' folders a group run holds, per metric, one line-series chart whose
    table has a line per member (named by its index and varying config) over all its steps."""
    results, run_dirs = [], []
    for seed, lr in ((0, 0.1), (1, 0.01)):
        run_dirs.append(tmp_path / f"m{seed}")
        run_dirs[-1].mkdir()
        results.append(_fake_run(run_dirs[-1], seed=seed, lr=lr, pngs=False))
    run_id = wl.log_group(tmp_path / "group", results, LoggerConfig(), name="g0", run_dirs=run_dirs)
    run = read_offline_run(tmp_path / "group", run_id)
    (row,) = run["history"]
    # W&B logs a chart's table under "<key>_table".
    charts = {k.removesuffix("_table.path") for k in row if k.startswith("curves/") and k.endswith("_table.path")}
    assert charts == {"curves/test/accuracy", "curves/test/loss", "curves/train/accuracy", "curves/train/loss"}
    # One table behind every chart: a row per (member, evaluation), a column per metric.
    table = json.loads((run["dir"] / "files" / row["curves/test/accuracy_table.path"]).read_text())
    assert table["columns"] == ["step", "lineKey", "test/accuracy", "test/loss", "train/accuracy", "train/loss"]
    lines = {}
    for step, key, value, *_ in table["data"]:
        lines.setdefault(key, []).append((step, value))
    assert sorted(lines) == ["0 optim.lr=0.1 seed=0", "1 optim.lr=0.01 seed=1"]
    assert all([s for s, _ in points] == STEPS for points in lines.values())
    assert [v for _, v in lines["0 optim.lr=0.1 seed=0"]] == pytest.approx(np.linspace(0.5, 0.9, len(STEPS)))


def test_curve_charts_keep_every_kth_evaluation_to_stay_within_the_row_cap():
    """Over the cap, each member keeps every k-th evaluation plus its last, and the title says k."""
    curves = [[{"step": s, "test/loss": float(s)} for s in range(10)] for _ in range(3)]  # 30 points
    (chart,) = wl.curve_charts(curves, ["a", "b", "c"], max_rows=12).values()
    kept = [row for row in chart.table.data if row[1] == "a"]
    assert [row[0] for row in kept] == [0, 3, 6, 9]  # every 3rd (30 / 12 -> 3), the last kept
    assert chart.spec.string_fields["title"] == "test/loss (1 evaluation in 3, and the last)"
    (full,) = wl.curve_charts(curves, ["a", "b", "c"], max_rows=30).values()
    assert len(full.table.data) == 30 and full.spec.string_fields["title"] == "test/loss"
    assert full.spec.fields == {"step": "step", "lineKey": "lineKey", "lineVal": "test/loss"}


def test_run_identity_names_a_run_by_what_varies_in_its_sweep():
    jobs = [["optim.lr=0.1", "seed=0", "data=xor", "logger.group=g", "hydra.job.chdir=true"],
            ["optim.lr=0.01", "seed=0", "data=xor", "output.plots=false"],
            ["optim.lr=0.1", "seed=1", "data=xor", "+model.dropout=0.1"]]
    assert wl.varying_keys(jobs) == {"optim.lr", "seed", "model.dropout"}
    identity = wl.run_identity(jobs[0], wl.varying_keys(jobs), "multirun/a")
    assert identity == {"group": "multirun/a", "name": "optim.lr=0.1 seed=0",
                        "tags": ["optim.lr=0.1", "seed=0", "data=xor"]}  # no logger/hydra/output keys
    # Alone (a single run): all its describing overrides; none at all: "defaults".
    assert wl.run_identity(["data=circle", "logger=wandb"])["name"] == "data=circle"
    assert wl.run_identity([])["name"] == "defaults"
    assert [len(t) for t in wl.run_identity(["model.hidden=[" + "8," * 40 + "8]"])["tags"]] == [64]


def _logged(folder: Path, logger_cfg, identity=None) -> dict:
    folder.mkdir()
    run_id = wl.log_run(folder, _fake_run(folder, pngs=False), logger_cfg, images=False, identity=identity)
    assert run_id
    return read_offline_run(folder, run_id)


def test_config_values_win_over_wandb_environment_which_wins_over_harness_defaults(tmp_path, monkeypatch):
    identity = wl.run_identity(["optim.lr=0.1", "seed=0"], {"optim.lr"}, "multirun/x")
    plain = _logged(tmp_path / "plain", LoggerConfig(), identity)
    assert (plain["project"], plain["group"], plain["name"]) == ("harness", "multirun/x", "optim.lr=0.1")
    assert plain["tags"] == ["optim.lr=0.1", "seed=0"] and plain["job_type"] == "train"

    for name, value in (("WANDB_PROJECT", "envp"), ("WANDB_RUN_GROUP", "envg"), ("WANDB_NAME", "envn"),
                        ("WANDB_TAGS", "e1,e2")):
        monkeypatch.setenv(name, value)
    env = _logged(tmp_path / "env", LoggerConfig(), identity)
    assert (env["project"], env["group"], env["name"], env["tags"]) == ("envp", "envg", "envn", ["e1", "e2"])

    explicit = _logged(tmp_path / "explicit", LoggerConfig(project="p", group="g", run_name="n", tags=["t"]), identity)
    assert (explicit["project"], explicit["group"], explicit["name"]) == ("p", "g", "n")
    assert explicit["tags"] == ["t", "optim.lr=0.1", "seed=0"]  # the config's tags, then the run's


def test_wandb_dir_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "all-runs"))
    folder = tmp_path / "run"
    folder.mkdir()
    run_id = wl.log_run(folder, _fake_run(folder, pngs=False), LoggerConfig(), images=False)
    assert read_offline_run(tmp_path / "all-runs", run_id)["id"] == run_id
    assert not (folder / "wandb").exists() and wl.logged_run_id(folder) == run_id  # the marker stays


def test_saved_params_are_a_model_artifact_referenced_in_place(run_dir, tmp_path):
    result = _fake_run(run_dir, pngs=False)
    store.write_npz_atomic(run_dir / wl.PARAMS_FILE, {"Dense_0/kernel": np.ones((2, 8))})
    run_id = wl.log_run(run_dir, result, LoggerConfig(), images=False)
    artifacts = read_offline_run(run_dir, run_id)["artifacts"]
    assert [a for a in artifacts if a[1] == "model"] == [(f"params-{run_id}", "model", ["params.npz"])]
    assert not list((tmp_path / "wandb-home").rglob("*.npz"))  # no copy in W&B's staging folder


def test_a_rerun_report_replaces_its_report_run(tmp_path):
    import pandas as pd

    out = tmp_path / "report"
    out.mkdir()
    (out / "table.md").write_text("| a |\n")
    store.write_json_atomic(out / "verdict.json", {"verdict": "holds"})
    ids = [wl.log_report(out, {"setting/protocol": pd.DataFrame({"a": [1.0]})}, {}, LoggerConfig(job_type="report"),
                         name="report-small_batch-small", group="small_batch") for _ in range(2)]
    assert ids[0] and ids[0] == ids[1]
    assert len(list((out / "wandb").glob("offline-run-*"))) == 1  # one report run, not one per rerun
    run = read_offline_run(out, ids[0])
    assert (run["job_type"], run["group"], run["name"]) == ("report", "small_batch", "report-small_batch-small")
    assert [a for a in run["artifacts"] if a[1] == "report"] == [
        ("report-small_batch-small", "report", ["table.md", "verdict.json"])]


def test_disabled_logs_nothing(run_dir, monkeypatch):
    result = _fake_run(run_dir, pngs=False)
    monkeypatch.setenv("WANDB_MODE", "disabled")
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        assert wl.log_run(run_dir, result, LoggerConfig()) is None
        assert wl.log_run(run_dir, result, LoggerConfig(name="none", mode="offline")) is None
    assert _tracking_warnings(record) == []
    assert not wl.already_logged(run_dir) and not (run_dir / "wandb").exists()


# ---------------------------------------------------------------- small helpers


def test_resolve_mode(monkeypatch):
    assert wl.resolve_mode(LoggerConfig()) == "offline"
    monkeypatch.setenv("WANDB_MODE", "online")
    assert wl.resolve_mode(LoggerConfig()) == "online"
    assert wl.resolve_mode(LoggerConfig(mode="offline")) == "offline"


def test_scrub_secrets():
    cfg = {"a": 1, "API_Key": "x", "n": {"token_x": 1, "keep": [{"Password": 2, "b": 3}]}, "secretive": 0}
    assert wl.scrub_secrets(cfg) == {"a": 1, "n": {"keep": [{"b": 3}]}}


def test_already_logged(tmp_path):
    assert not wl.already_logged(tmp_path)
    (tmp_path / wl.MARKER_FILE).write_text("\n")
    assert not wl.already_logged(tmp_path)
    (tmp_path / wl.MARKER_FILE).write_text("abc\n")
    assert wl.already_logged(tmp_path)


# ---------------------------------------------------------------- failures: one warning, no raise


def _expect_one_warning(run_dir: Path, call) -> None:
    """``call()`` returns None with exactly one TrackingWarning; result.json untouched, no marker."""
    stored = (run_dir / store.RESULT_FILE).read_bytes()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        assert call() is None
    assert len(_tracking_warnings(record)) == 1, [str(w.message) for w in record]
    assert (run_dir / store.RESULT_FILE).read_bytes() == stored
    assert not wl.already_logged(run_dir)


def test_init_raising(run_dir, monkeypatch):
    result = _fake_run(run_dir, pngs=False)

    def broken_init(*args, **kwargs):
        raise RuntimeError("wandb.init exploded")

    # The one stand-in: an init that raises cannot be produced otherwise.
    monkeypatch.setattr(wandb, "init", broken_init)
    _expect_one_warning(run_dir, lambda: wl.log_run(run_dir, result, LoggerConfig()))
    _expect_one_warning(run_dir, lambda: wl.log_group(run_dir, [result], LoggerConfig()))


def test_error_inside_a_started_run(run_dir):
    """A bad confusion matrix fails after init: the run is closed, one warning, no marker."""
    result = _fake_run(run_dir, pngs=False)
    result["confusion_matrix"] = [[1, 2, 3]]
    _expect_one_warning(run_dir, lambda: wl.log_run(run_dir, result, LoggerConfig()))


def test_unwritable_dir(run_dir, tmp_path):
    result = _fake_run(run_dir, pngs=False)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        (locked / "probe").write_text("x")  # root ignores the mode bits
        (locked / "probe").unlink()
        # Unwritable even for root: a folder whose parent is a regular file.
        (tmp_path / "a_file").write_text("x")
        target = tmp_path / "a_file" / "wandb"
    except PermissionError:
        target = locked / "wandb"
    try:
        _expect_one_warning(run_dir, lambda: wl.log_run(run_dir, result, LoggerConfig(dir=str(target))))
    finally:
        locked.chmod(0o700)


def test_online_unreachable_server(run_dir, monkeypatch):
    result = _fake_run(run_dir, pngs=False)
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # the discard port: connection refused
    monkeypatch.setenv("WANDB_API_KEY", FAKE_KEY)
    cfg = LoggerConfig(mode="online")
    stored = (run_dir / store.RESULT_FILE).read_bytes()
    wl.reset_online_fallback()
    try:
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            run_id = wl.log_run(run_dir, result, cfg, init_timeout=2)
    finally:
        wl.reset_online_fallback()
    # One warning; the run is kept offline for `wandb sync`, the result untouched.
    assert len(_tracking_warnings(record)) == 1 and "offline" in str(_tracking_warnings(record)[0].message)
    assert run_id and wl.already_logged(run_dir) and list((run_dir / "wandb").glob(f"offline-run-*-{run_id}"))
    assert (run_dir / store.RESULT_FILE).read_bytes() == stored


# ---------------------------------------------------------------- group runs of a fused sweep


def _group_runs(sweep: Path) -> dict[str, list[Path]]:
    """Each group folder's offline runs (their .wandb logs)."""
    return {d.name: sorted(d.glob("wandb/offline-run-*/run-*.wandb")) for d in sorted((sweep / "wandb-groups").iterdir())}


@pytest.mark.slow  # three sweeps in subprocesses (~35 s)
def test_group_runs_cover_whole_compile_groups_once_across_reruns(tmp_path):
    """``hydra.launcher.wandb=group``: one W&B run per compile group (all its chunks), in its
    own folder with its own marker. A rerun after a kill logs the interrupted group again under
    the same run id (one run left) and leaves a finished group alone."""
    from conftest import run_cli

    sweep = tmp_path / "s"
    args = ["-m", "data=circle", "train.epochs=1", "output.plots=false", "logger=wandb", "hydra.launcher.wandb=group",
            "train.batch_size=10,30", "seed=0,1,2", "hydra.launcher.max_members=2", "hydra.launcher.progress=false",
            f"hydra.sweep.dir={sweep}"]
    env = {"WANDB_DATA_DIR": str(tmp_path / "wd"), "WANDB_CACHE_DIR": str(tmp_path / "wc")}
    proc = run_cli(args, tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    runs = _group_runs(sweep)
    assert len(runs) == 2 and all(len(logs) == 1 for logs in runs.values()), runs  # 2 groups, not 4 chunks
    batch_of = {}
    for key, (log,) in runs.items():
        run_id = log.stem.removeprefix("run-")
        assert wl.logged_run_id(sweep / "wandb-groups" / key) == run_id
        run = read_offline_run(sweep / "wandb-groups" / key, run_id)
        assert run["config"]["num_members"] == 3 and run["summary"]["members_ok"] == 3
        batch_of[key] = run["config"]["train.batch_size"]  # shared by the group: its config
    assert sorted(batch_of.values()) == [10, 30]
    assert not (sweep / "wandb").exists() and not list(sweep.glob("*/wandb"))  # no member runs

    # A kill while job 5 (batch 30) was stored and its group's run written: no result, no marker.
    (sweep / "5" / "result.json").unlink()
    assert json.loads((sweep / "4" / "result.json").read_text())["config"]["train"]["batch_size"] == 30
    interrupted = next(key for key, batch in batch_of.items() if batch == 30)
    (sweep / "wandb-groups" / interrupted / "wandb_run_id").unlink()
    finished = next(key for key in runs if key != interrupted)
    before = {key: [p.stat().st_mtime_ns for p in logs] for key, logs in runs.items()}

    proc = run_cli(args, tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "5 of 6 jobs already have results" in proc.stdout + proc.stderr
    again = _group_runs(sweep)
    assert [p.stem for p in again[interrupted]] == [p.stem for p in runs[interrupted]]  # same id, one run
    assert [p.stat().st_mtime_ns for p in again[interrupted]] != before[interrupted]  # logged again
    assert wl.logged_run_id(sweep / "wandb-groups" / interrupted) == runs[interrupted][0].stem.removeprefix("run-")
    assert [p.stat().st_mtime_ns for p in again[finished]] == before[finished]  # left alone

    proc = run_cli(args, tmp_path, env=env)  # nothing left to do: no run is logged again
    assert proc.returncode == 0, proc.stderr
    assert {k: [p.stat().st_mtime_ns for p in v] for k, v in _group_runs(sweep).items()} == \
        {k: [p.stat().st_mtime_ns for p in v] for k, v in again.items()}
