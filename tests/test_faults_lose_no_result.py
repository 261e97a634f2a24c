"""Faults lose no result: divergence, determinism, W&B faults, disk faults.

Real subprocesses of the real command where the behaviour is the command's (exit status,
stderr, files), in-process calls where a fault cannot be produced otherwise (``wandb.init``
or ``log`` raising, a write failing half-way). Full and read-only disks are real tmpfs mounts
when this process may mount (root in a container); otherwise those tests skip and the
in-process ENOSPC test still runs. Tests that run whole sweeps in subprocesses are marked slow
(the default suite keeps one such sweep: the online-mode fallback).
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import os
import subprocess
import warnings
from pathlib import Path

import pytest

from conftest import run_cli
from harness import store

DIVERGE = ["data=reg_plane", "model.activation=relu", "train.epochs=2", "output.plots=false", "logger=none",
           "optim.lr=0.01,1e6", "seed=0,1", "hydra.launcher.progress=false"]
SMALL = ["data=circle", "train.epochs=1", "output.plots=false", "hydra.launcher.progress=false", "seed=0,1,2"]


def _results(sweep: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in sorted(sweep.glob("*/result.json"))}


def _warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "TrackingWarning:" in line]


# -- 3 and 4: divergence and determinism ------------------------------------------------------

@pytest.fixture(scope="module")
def diverging_sweeps(tmp_path_factory):
    """The same 4-job sweep (two members diverge) run by two separate processes."""
    root = tmp_path_factory.mktemp("diverge")
    for name in ("a", "b"):
        proc = run_cli(["-m", *DIVERGE, f"hydra.sweep.dir={name}"], root)
        assert proc.returncode == 0, proc.stderr
    return root


@pytest.mark.slow
def test_diverged_runs_record_their_step_and_are_counted(diverging_sweeps):
    from harness.report.tables import ablation_table, markdown_text

    results = _results(diverging_sweeps / "a")
    assert len(results) == 4
    for r in results.values():
        if r["config"]["optim"]["lr"] == 1e6:
            assert r["status"] == "diverged"
            assert isinstance(r["diverged_step"], int) and 0 <= r["diverged_step"] <= r["budget"]["steps"]
        else:
            assert r["status"] == "ok" and r["diverged_step"] is None
    table = ablation_table(store.load_results(diverging_sweeps / "a"), ["optim.lr"], "test/mse", direction="lower")
    rows = {row["optim.lr"]: row for row in table.to_dict(orient="records")}
    assert (rows[1e6]["diverged"], rows[1e6]["ok"], rows[0.01]["diverged"], rows[0.01]["ok"]) == (2, 0, 0, 2)
    assert not rows[1e6]["best"]  # a diverged setting never wins on the metric of its last finite state
    assert "diverged" in markdown_text(table)


@pytest.mark.slow
def test_same_config_and_seeds_give_bitwise_equal_metrics_across_processes(diverging_sweeps):
    a, b = _results(diverging_sweeps / "a"), _results(diverging_sweeps / "b")
    assert sorted(a) == sorted(b) == ["0", "1", "2", "3"]
    for job in a:
        assert a[job]["metrics"] == b[job]["metrics"], job  # exact float equality (JSON round-trips floats)
        assert a[job]["diverged_step"] == b[job]["diverged_step"]
        curves = [(diverging_sweeps / s / job / "curves.csv").read_bytes() for s in ("a", "b")]
        assert curves[0] == curves[1], job


# -- 5: W&B faults ----------------------------------------------------------------------------

def _finished_offline_runs(job: Path) -> list[str]:
    from test_wandb_logger import read_records

    done = []
    for log in job.glob("wandb/offline-run-*/run-*.wandb"):
        kinds = {r.WhichOneof("record_type") for r in read_records(log)}
        if {"run", "exit"} <= kinds:
            done.append(log.stem.removeprefix("run-"))
    return done


@pytest.mark.slow
def test_unwritable_wandb_dir_sweep_finishes_with_one_warning(tmp_path):
    (tmp_path / "a_file").write_text("not a folder")
    proc = run_cli(["-m", *SMALL, f"logger.dir={tmp_path / 'a_file' / 'wandb'}", "hydra.sweep.dir=s"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert len(_results(tmp_path / "s")) == 3
    assert len(_warnings(proc.stderr)) == 1, proc.stderr


def test_unreachable_server_in_online_mode_falls_back_to_offline(tmp_path):
    from test_wandb_logger import FAKE_KEY

    secrets = {"WANDB_API_KEY": FAKE_KEY, "AWS_SECRET_ACCESS_KEY": "fake-aws-secret-0123456789abcdef"}
    env = {"WANDB_MODE": "online", "WANDB_BASE_URL": "http://127.0.0.1:9", "WANDB_INIT_TIMEOUT": "5", **secrets}
    proc = run_cli(["-m", *SMALL, "hydra.sweep.dir=s"], tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    results = _results(tmp_path / "s")
    assert len(results) == 3 and all(r["status"] == "ok" for r in results.values())
    found = _warnings(proc.stderr)
    assert len(found) == 1 and "offline" in found[0], proc.stderr
    for job in results:
        # Kept offline, complete (a run record and an exit record): what `wandb sync` uploads.
        marker = (tmp_path / "s" / job / "wandb_run_id").read_text().strip()
        assert _finished_offline_runs(tmp_path / "s" / job) == [marker]
    # The credentials in the environment are in no file of the sweep and not in its output.
    for value in secrets.values():
        assert value not in proc.stdout + proc.stderr
        for path in (tmp_path / "s").rglob("*"):
            if path.is_file():
                assert value.encode() not in path.read_bytes(), path


def test_wandb_init_or_log_raising_costs_one_warning_per_problem(tmp_path, monkeypatch):
    import wandb
    from test_wandb_logger import _fake_run

    from harness.config import LoggerConfig
    from harness.sweep.writer import write_member_extras
    from harness.track import wandb_logger as wl

    runs = [tmp_path / f"job{i}" for i in range(3)]
    for i, run in enumerate(runs):
        run.mkdir()
        _fake_run(run, seed=i, pngs=False)
    stored = {run: (run / store.RESULT_FILE).read_bytes() for run in runs}
    cfg = {"logger": dataclasses.asdict(LoggerConfig()), "output": {"plots": False}}

    def init_raises(*args, **kwargs):
        raise RuntimeError("wandb.init exploded")

    def log_raises(self, *args, **kwargs):
        raise RuntimeError("run.log exploded")

    monkeypatch.setattr(wl, "_REPORTED", None)
    for patch in ((wandb, "init", init_raises), (wandb.sdk.wandb_run.Run, "log", log_raises)):
        with monkeypatch.context() as m:
            m.setattr(*patch)
            with warnings.catch_warnings(record=True) as record:
                warnings.simplefilter("always")
                for run in runs:
                    write_member_extras(str(run), cfg, "member")
        tracking = [w for w in record if issubclass(w.category, wl.TrackingWarning)]
        assert len(tracking) == 1, [str(w.message) for w in record]
        assert not any(wl.already_logged(run) for run in runs)
        assert all((run / store.RESULT_FILE).read_bytes() == stored[run] for run in runs)


# -- 6: disk faults ---------------------------------------------------------------------------

def test_failed_write_leaves_no_partial_file(tmp_path, monkeypatch):
    """ENOSPC half-way through a write (simulated: works everywhere): the old file stays whole,
    no temp file remains, and the error names the target."""
    target = tmp_path / "result.json"
    store.write_json_atomic(target, {"old": 1})
    real_write_bytes = Path.write_bytes

    def half_then_enospc(self, data):
        real_write_bytes(self, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", half_then_enospc)
    for write in (lambda: store.write_json_atomic(target, {"new": "x" * 1000}),
                  lambda: store.write_curves(tmp_path / "curves.csv", {"step": [0, 1], "loss": [1.0, 0.5]}),
                  lambda: store.write_npz_atomic(tmp_path / "boundary.npz", {"b": __import__("numpy").zeros(100)})):
        with pytest.raises(OSError) as info:
            write()
        assert info.value.errno == errno.ENOSPC and info.value.filename
    monkeypatch.undo()
    assert json.loads(target.read_text()) == {"old": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.json"]


def test_a_record_reaches_the_disk_only_after_the_files_it_vouches_for(tmp_path, monkeypatch):
    """Power loss (not reproducible here, so the order of renames and syncs is recorded): under
    ``deferred_sync`` a ``result.json`` is renamed into place only after a sync made the run's
    other files durable, then synced itself; outside it the write happens at once."""
    events: list[str] = []
    real_sync, real_replace = os.sync, os.replace
    monkeypatch.setattr(os, "sync", lambda: (events.append("sync"), real_sync())[1])
    monkeypatch.setattr(os, "replace", lambda src, dst: (events.append(Path(dst).name), real_replace(src, dst))[1])
    with store.deferred_sync():
        store.write_curves(tmp_path / "curves.csv", {"step": [0, 1], "loss": [1.0, 0.5]})
        store.when_durable(lambda: store.write_json_atomic(tmp_path / "result.json", {"status": "ok"}))
        store.write_npz_atomic(tmp_path / "boundary.npz", {"b": __import__("numpy").zeros(3)})
        assert not (tmp_path / "result.json").exists()
    assert events == ["curves.csv", "boundary.npz", "sync", "result.json", "sync"]
    assert json.loads((tmp_path / "result.json").read_text()) == {"status": "ok"}
    store.when_durable(lambda: events.append("at once"))
    assert events[-1] == "at once"


def test_rerun_removes_the_temp_files_a_killed_sweep_left(tmp_path):
    """SIGKILL cannot be caught, so a killed write leaves its temp file behind. The rerun that
    takes the folder over removes them: in a job it trains again (no result yet: the temps in
    its .hydra/ and beside its curves) and in a stored job whose plots were being drawn (the
    plots are drawn again)."""
    sweep = tmp_path / "s"
    args = ["-m", "data=circle", "train.epochs=1", "logger=none", "output.plots=true", "hydra.launcher.progress=false",
            "seed=0,1", f"hydra.sweep.dir={sweep}"]
    assert run_cli(args, tmp_path).returncode == 0
    (sweep / "0" / "result.json").unlink()  # killed while storing job 0 ...
    planted = [sweep / "0" / ".hydra" / ".config.yaml.k1ll3d00.tmp", sweep / "0" / ".curves.csv.k1ll3d01.tmp",
               sweep / "1" / ".boundary.png.k1ll3d02.tmp"]  # ... and while drawing job 1's plots
    for path in planted:
        path.write_text("half a fi")
    (sweep / "1" / "boundary.png").unlink()
    assert sorted(store.stale_temps(sweep)) == sorted(planted)

    proc = run_cli(args, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "1 of 2 jobs already have results" in proc.stdout + proc.stderr
    assert store.stale_temps(sweep) == []
    assert set(_results(sweep)) == {"0", "1"}
    assert (sweep / "1" / "boundary.png").is_file()
    _no_partial_files(sweep)


@contextlib.contextmanager
def _tmpfs(path: Path, options: str):
    path.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"cannot mount a tmpfs here ({exc}); the in-process ENOSPC test covers writes")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def _no_partial_files(root: Path) -> None:
    for path in root.rglob("*"):
        assert not path.name.endswith(".tmp"), path
        if path.suffix == ".json":
            json.loads(path.read_text())


@pytest.mark.slow
def test_full_disk_ends_the_sweep_with_one_line_and_no_partial_file(tmp_path):
    with _tmpfs(tmp_path / "full", "size=48k") as disk:
        proc = run_cli(["-m", *SMALL[:-1], "seed=range(6)", "logger=none", f"hydra.sweep.dir={disk / 's'}"], tmp_path)
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert lines[-1].startswith("error: cannot write ") and "No space left on device" in lines[-1]
        _no_partial_files(disk)


def test_read_only_results_dir_is_a_clear_error(tmp_path):
    with _tmpfs(tmp_path / "ro", "size=64k,ro") as disk:
        proc = run_cli(["data=circle", "train.epochs=1", "logger=none", f"hydra.run.dir={disk / 'run'}"], tmp_path)
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert lines[-1].startswith("error: cannot write ") and "Read-only file system" in lines[-1]
        assert not any(disk.iterdir())
