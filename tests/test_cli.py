"""The real entry point: single runs, multiruns under both launchers, bad input, resume."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import pytest

from conftest import run_cli

TINY = ["data=circle", "train.epochs=3", "output.plots=false", "logger=none"]


def _results(root: Path) -> dict[str, dict]:
    return {str(p.parent.relative_to(root)): json.loads(p.read_text()) for p in root.rglob("result.json")}


def test_single_run_writes_a_complete_record(tmp_path):
    proc = run_cli(["data=circle", "train.epochs=5", "logger=none", "hydra.run.dir=run"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    run = tmp_path / "run"
    result = json.loads((run / "result.json").read_text())
    assert result["status"] == "ok"
    for key in ("train/loss", "test/loss", "train/accuracy", "test/accuracy", "best/test/accuracy"):
        assert key in result["metrics"]
    assert result["budget"]["kind"] == "epochs" and result["budget"]["size"] == 5
    assert result["config"]["data"]["name"] == "circle" and result["overrides"][0] == "data=circle"
    assert set(result["versions"]) >= {"python", "jax", "flax", "optax", "harness", "git_commit"}
    assert result["timings"]["compile_s"] > 0 and result["timings"]["run_s"] > 0
    assert len(result["confusion_matrix"]) == 2
    for name in ("curves.csv", "curves.png", "boundary.png", "confusion.png", ".hydra/config.yaml"):
        assert (run / name).exists(), name
    header = (run / "curves.csv").read_text().splitlines()[0].split(",")
    assert header[0] == "step" and "test/accuracy" in header
    assert not list(run.glob(".*.tmp")), "no temp files left behind"


def test_single_run_rerun_into_its_folder_keeps_the_stored_record(tmp_path):
    """A single run resumes as a sweep does: the same config into the same folder is not
    trained again (its record stays byte for byte); a changed config is refused (the folder
    holds one config) until output.overwrite=true moves the stored record aside."""
    args = TINY + ["hydra.run.dir=run"]
    assert run_cli(args, tmp_path).returncode == 0
    record = (tmp_path / "run" / "result.json").read_bytes()
    again = run_cli(args, tmp_path)
    assert again.returncode == 0, again.stderr
    assert "already stored" in again.stdout
    assert (tmp_path / "run" / "result.json").read_bytes() == record
    changed = run_cli(args + ["optim.lr=0.1"], tmp_path)
    assert changed.returncode == 2 and "output.overwrite=true" in changed.stderr
    assert (tmp_path / "run" / "result.json").read_bytes() == record
    replaced = run_cli(args + ["optim.lr=0.1", "output.overwrite=true"], tmp_path)
    assert replaced.returncode == 0 and "already stored" not in replaced.stdout, replaced.stderr
    assert json.loads((tmp_path / "run" / "result.json").read_text())["config"]["optim"]["lr"] == 0.1
    assert [p.read_bytes() for p in (tmp_path / "run" / "replaced").glob("*/result.json")] == [record]


@pytest.mark.parametrize(
    "override, key",
    [
        ("optim.lr=-1", "optim.lr"),
        ("train.batch_size=100000", "train.batch_size"),
        ("data.noise=0.9", "data.noise"),
        ("model.activation=cubic", "model.activation"),
        ("data.features=[x1,x9]", "data.features"),
        ("data.train_fraction=1.5", "data.train_fraction"),
        ("model.hidden=[8,0]", "model.hidden"),
        # caught by Hydra while composing (types, keys, group options, grammar)
        ("optim.lr=abc", "optim.lr"),
        ("model.cell_x=3", "model.cell_x"),
        ("data=nope", "data"),
        ("train.batch_size=[1", "train.batch_size"),
    ],
)
def test_bad_value_is_one_line_and_writes_nothing(tmp_path, override, key):
    proc = run_cli([override, "logger=none", "hydra.run.dir=out/run"], tmp_path)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ") and key in lines[0] and "Traceback" not in proc.stderr
    assert not (tmp_path / "out" / "run").exists()


def test_bad_job_in_multirun_fails_before_compute(tmp_path):
    proc = run_cli(["-m", *TINY, "optim.lr=0.1,-1", "hydra.sweep.dir=sweep"], tmp_path)
    assert proc.returncode == 2
    assert "optim.lr" in proc.stderr and "job #1" in proc.stderr
    assert not (tmp_path / "sweep").exists()


def test_fused_multirun_matches_basic_launcher(tmp_path):
    sweep = ["optim.lr=0.01,0.1", "seed=0,1"]
    fused = run_cli(["-m", *TINY, *sweep, "hydra.sweep.dir=fused"], tmp_path)
    assert fused.returncode == 0, fused.stderr
    basic = run_cli(["-m", *TINY, *sweep, "hydra/launcher=basic", "hydra.sweep.dir=basic"], tmp_path)
    assert basic.returncode == 0, basic.stderr
    got, want = _results(tmp_path / "fused"), _results(tmp_path / "basic")
    assert sorted(got) == sorted(want) == ["0", "1", "2", "3"]
    for job in want:
        assert got[job]["overrides"] == want[job]["overrides"]
        assert got[job]["timings"]["group_members"] == 4 and want[job]["timings"]["group_members"] == 1
        for metric, value in want[job]["metrics"].items():
            assert got[job]["metrics"][metric] == pytest.approx(value, abs=1e-5), (job, metric)
        assert (tmp_path / "fused" / job / ".hydra" / "overrides.yaml").exists()

    # Resume: the same multirun into the same folder trains nothing and keeps the results.
    again = run_cli(["-m", *TINY, *sweep, "hydra.sweep.dir=fused"], tmp_path)
    assert again.returncode == 0, again.stderr
    assert "4 of 4 jobs already have results" in again.stdout + again.stderr
    assert _results(tmp_path / "fused") == got


def test_mixed_groups_land_in_their_job_dirs(tmp_path):
    proc = run_cli(["-m", *TINY, "model.activation=relu,tanh", "train.batch_size=10,25", "hydra.sweep.dir=s"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    results = _results(tmp_path / "s")
    assert len(results) == 4
    for result in results.values():
        cfg, overrides = result["config"], result["overrides"]
        assert f"model.activation={cfg['model']['activation']}" in overrides
        assert f"train.batch_size={cfg['train']['batch_size']}" in overrides
        assert result["timings"]["group_members"] == 1  # four structures: four groups


def test_quasi_random_search_draws_members(tmp_path):
    proc = run_cli(["-m", *TINY, "+search.optim.lr=loguniform(1e-3,1)", "search.n=4", "hydra.sweep.dir=q"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    lrs = sorted(r["config"]["optim"]["lr"] for r in _results(tmp_path / "q").values())
    assert len(lrs) == 4 and len(set(lrs)) == 4 and 1e-3 <= lrs[0] and lrs[-1] <= 1


def test_wandb_offline_run_of_a_real_job(tmp_path):
    from test_wandb_logger import read_offline_run

    proc = run_cli(["data=circle", "train.epochs=4", "hydra.run.dir=run", "logger.project=e2e"], tmp_path,
                   env={"WANDB_DATA_DIR": str(tmp_path / "wd"), "WANDB_CACHE_DIR": str(tmp_path / "wc")})
    assert proc.returncode == 0, proc.stderr
    run_dir = tmp_path / "run"
    run_id = (run_dir / "wandb_run_id").read_text().strip()
    result = json.loads((run_dir / "result.json").read_text())
    run = read_offline_run(run_dir, run_id)
    assert run["config"]["data"]["name"] == "circle" and run["config"]["budget"]["kind"] == "epochs"
    # A single run: named by its overrides (not its folder's time), in the configured project, no group.
    assert (run["project"], run["name"], run["group"]) == ("e2e", "data=circle train.epochs=4", "")
    rows = [h for h in run["history"] if "train/loss" in h]
    assert [h["step"] for h in rows] == [0, 25, 50, 75, 100]
    assert run["summary"]["test/accuracy"] == pytest.approx(result["metrics"]["test/accuracy"])
    last = run["history"][-1]
    assert last["plots/boundary._type"] == "image-file" and last["confusion_matrix_table._type"] == "table-file"


def test_large_group_is_chunked_into_one_program(tmp_path):
    proc = run_cli(["-m", *TINY, "seed=range(7)", "hydra.launcher.max_members=3", "hydra.sweep.dir=c"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout + proc.stderr
    assert "1 groups in 3 chunks" in out and "7 trained" in out
    results = _results(tmp_path / "c")
    assert sorted(int(k) for k in results) == list(range(7))
    assert sorted(r["seed"] for r in results.values()) == list(range(7))
    # Chunks of 3, 2, 2 members are padded to 3: later chunks reuse the first one's program.
    assert sorted(r["timings"]["compiled"] for r in results.values()) == [False] * 4 + [True] * 3


def test_fused_job_folders_match_hydras_run_job(tmp_path):
    """Without Hydra callbacks the fused launcher writes each job's ``.hydra/`` files itself
    (fast path); with callbacks it goes through Hydra's ``run_job``, so callbacks see every
    job. Both give the same files, and the callbacks fire once per job."""
    from omegaconf import OmegaConf

    sweep = ["optim.lr=0.01,0.1"]
    callback = "+hydra.callbacks.log_return._target_=hydra.experimental.callbacks.LogJobReturnCallback"
    fast = run_cli(["-m", *TINY, *sweep, "hydra.sweep.dir=fast"], tmp_path)
    assert fast.returncode == 0, fast.stderr
    hydra_path = run_cli(["-m", *TINY, *sweep, callback, "hydra.sweep.dir=slow"], tmp_path)
    assert hydra_path.returncode == 0, hydra_path.stderr
    assert (hydra_path.stdout + hydra_path.stderr).count("Succeeded with return value") == 2

    for job in ("0", "1"):
        fast_dir, slow_dir = tmp_path / "fast" / job / ".hydra", tmp_path / "slow" / job / ".hydra"
        for name in ("config.yaml", "overrides.yaml"):
            assert (fast_dir / name).read_text() == (slow_dir / name).read_text(), name
        fast_hydra = OmegaConf.to_container(OmegaConf.load(fast_dir / "hydra.yaml"))["hydra"]
        slow_hydra = OmegaConf.to_container(OmegaConf.load(slow_dir / "hydra.yaml"))["hydra"]
        for node in (fast_hydra, slow_hydra):  # what the two commands set differently
            node.pop("callbacks")
            node["overrides"].pop("hydra")
            node["sweep"].pop("dir")
            node["runtime"].pop("output_dir")
        assert fast_hydra == slow_hydra
        assert fast_hydra["job"]["num"] == int(job) and fast_hydra["job"]["id"] == job


def test_sweep_subdir_interpolating_a_job_value(tmp_path):
    """``hydra.sweep.subdir`` may name a job by its own values (``s${seed}``): each job gets
    its folder, as under Hydra's basic launcher."""
    proc = run_cli(["-m", *TINY, "seed=0,1", "hydra.sweep.subdir=s${seed}", "hydra.sweep.dir=sub"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    results = _results(tmp_path / "sub")
    assert sorted(results) == ["s0", "s1"]
    assert [results[f"s{i}"]["seed"] for i in (0, 1)] == [0, 1]


def test_members_sharded_over_two_cpu_devices_train_as_on_one(tmp_path):
    """HARNESS_CPU_DEVICES=2 splits a group of 8 members over two devices: every job trains
    (with and without checkpoint segments, bitwise the same) and stores the metrics one device
    gives, to float32 rounding (the split changes the last bits)."""
    sweep = ["-m", "data=spiral", "train.epochs=5", "seed=range(8)", "logger=none", "output.plots=false"]
    runs = {}
    for name, devices, extra in (("one", "1", []), ("two", "2", []), ("two_ckpt", "2", ["train.checkpoint_every=2"])):
        proc = run_cli([*sweep, *extra, f"hydra.sweep.dir={name}"], tmp_path, env={"HARNESS_CPU_DEVICES": devices})
        assert proc.returncode == 0, proc.stderr
        runs[name] = _results(tmp_path / name)
        assert len(runs[name]) == 8 and all(r["status"] == "ok" for r in runs[name].values()), proc.stderr
    assert {r["timings"]["devices"] for r in runs["two"].values()} == {2}
    assert {r["timings"]["devices"] for r in runs["one"].values()} == {1}
    for job, result in runs["one"].items():
        assert runs["two"][job]["metrics"] == runs["two_ckpt"][job]["metrics"]
        assert runs["two"][job]["metrics"] == pytest.approx(result["metrics"], rel=1e-5, abs=1e-6)


def test_a_group_is_split_only_where_each_device_gets_four_members():
    from harness.train.engine import MIN_MEMBERS_PER_DEVICE, member_devices

    devices = len(jax.local_devices())  # tests/conftest.py: as harness-train makes them (default 2)
    assert MIN_MEMBERS_PER_DEVICE == 4
    assert [len(member_devices(n)) for n in (1, 4, 7, 8, 9, 256)] == [1, 1, 1, *[min(devices, 2)] * 3]
