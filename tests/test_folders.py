"""A folder holds one config per job (issue #15, item 1): a run or sweep whose folder holds a
record of another config stops before any compute, one line, exit 2, the folder unchanged;
``output.overwrite=true`` moves the stored record aside instead (never deletes it)."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import run_cli
from harness import store

SWEEP = ["-m", "data=circle", "model.hidden=[4]", "train.epochs=2", "logger=none", "output.plots=false",
         "hydra.sweep.dir=X"]


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` by relative path, with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def assert_refused(proc, folder: str, *words: str) -> str:
    """One stderr line, exit 2, naming the folder, both ways on and ``words``."""
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert len(lines) == 1, proc.stderr[-2000:]
    line = lines[0]
    for word in (folder, "output.overwrite=true", "nothing was run", *words):
        assert word in line, line
    return line


def lrs(folder: Path) -> list[float]:
    return sorted(json.loads((d / "result.json").read_text())["config"]["optim"]["lr"]
                  for d in store.find_results(folder))


def test_a_sweep_never_replaces_records_of_another_config(tmp_path):
    first = run_cli([*SWEEP, "optim.lr=0.1", "seed=0,1"], tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    sweep = tmp_path / "X"
    before = snapshot(sweep)

    other = run_cli([*SWEEP, "optim.lr=0.3", "seed=0,1"], tmp_path)  # the reproduction
    assert_refused(other, "X", "hydra.sweep.dir=", "optim.lr=0.1", "optim.lr=0.3", "different config")
    shrunk = run_cli([*SWEEP, "optim.lr=0.1", "seed=0"], tmp_path)  # job 1 would be left over
    assert_refused(shrunk, "X", "does not have")
    assert snapshot(sweep) == before  # multirun.yaml included

    grown = run_cli([*SWEEP, "optim.lr=0.1", "seed=0,1,2"], tmp_path)  # the new job only
    assert grown.returncode == 0, grown.stderr[-2000:]
    assert "1 trained, 2 skipped" in grown.stdout + grown.stderr
    assert all(snapshot(sweep)[k] == v for k, v in before.items() if k != "multirun.yaml")

    moved = run_cli([*SWEEP, "optim.lr=0.3", "seed=0,1", "output.overwrite=true"], tmp_path)
    assert moved.returncode == 0, moved.stderr[-2000:]
    assert lrs(sweep) == [0.3, 0.3]  # readers skip replaced/
    aside = list((sweep / "replaced").iterdir())
    assert len(aside) == 1
    assert lrs(aside[0]) == [0.1, 0.1, 0.1]  # all three, the left-over job 2 too, byte-identical
    assert (aside[0] / "0" / "result.json").read_bytes() == before["0/result.json"]


def test_a_hand_edited_record_is_named_tampered_not_trusted(tmp_path):
    args = [*SWEEP, "optim.lr=0.1", "seed=0"]
    assert run_cli(args, tmp_path).returncode == 0
    path = tmp_path / "X" / "0" / "result.json"
    record = json.loads(path.read_text())
    record["config"]["optim"]["lr"] = 0.9  # the edit: another lr, a better accuracy, same hash
    record["metrics"]["test/accuracy"] = 0.99
    path.write_text(json.dumps(record))
    edited = path.read_bytes()

    proc = run_cli(args, tmp_path)
    assert_refused(proc, "X", "tampered", str(Path("X") / "0"))
    assert path.read_bytes() == edited


def test_a_single_run_never_replaces_a_record_of_another_config(tmp_path):
    base = ["hydra.run.dir=R", "train.epochs=1", "logger=none", "output.plots=false"]
    assert run_cli(base, tmp_path).returncode == 0
    before = snapshot(tmp_path / "R")

    other = run_cli(["optim.lr=0.5", *base], tmp_path)  # the reproduction
    assert_refused(other, "R", "hydra.run.dir=", "optim.lr=0.5")
    bad = run_cli(["optim.lr=-1", *base], tmp_path)  # refused too
    assert bad.returncode == 2
    # Refused by validation, after Hydra wrote its .hydra/ files there: the stored ones put back.
    unresolved = run_cli(["optim.lr=${oc.env:HARNESS_TEST_NEVER_SET}", *base], tmp_path)
    assert unresolved.returncode == 2 and "optim.lr" in unresolved.stderr
    assert snapshot(tmp_path / "R") == before

    moved = run_cli(["optim.lr=0.5", "output.overwrite=true", *base], tmp_path)
    assert moved.returncode == 0, moved.stderr[-2000:]
    assert lrs(tmp_path / "R") == [0.5]
    (aside,) = (tmp_path / "R" / "replaced").iterdir()
    assert snapshot(aside) == before


def test_only_job_folders_of_the_sweep_count_as_left_over(tmp_path):
    from harness.folders import Planned, conflicts
    from harness.results import container_hash

    def record(folder: Path, lr: float) -> str:
        config = {"optim": {"lr": lr}, "seed": 0}
        digest = container_hash(config)
        store.write_json_atomic(folder / store.RESULT_FILE,
                                {"status": "ok", "config": config, "config_hash": digest, "overrides": [f"optim.lr={lr}"]})
        return digest

    sweep = tmp_path / "S"
    mine = record(sweep / "0", 0.1)
    record(sweep / "7", 0.2)  # a job of an earlier, larger sweep
    record(sweep / "extend_1" / "0", 0.3)  # a sweep nested inside (a claim's grid extension)
    (sweep / "extend_1" / "multirun.yaml").write_text("{}\n")
    record(sweep / store.REPLACED_DIR / "2026-01-01T00-00-00Z" / "0", 0.4)  # moved aside earlier
    found = conflicts([Planned(sweep / "0", mine, ["optim.lr=0.1"])], sweep)
    assert [(c.run_dir.name, c.stored, c.new) for c in found] == [("7", ["optim.lr=0.2"], None)]


def test_tables_name_a_hand_edited_record_and_leave_it_out(tmp_path):
    """harness-table (and the claims, through the same reader) never tabulate a record whose
    config no longer hashes to its hash: it is named, counted and left out."""
    from test_table_cli import harness_table

    args = [*SWEEP, "optim.lr=0.1", "seed=0,1"]
    assert run_cli(args, tmp_path).returncode == 0
    path = tmp_path / "X" / "1" / "result.json"
    record = json.loads(path.read_text())
    record["config"]["optim"]["lr"] = 0.9
    path.write_text(json.dumps(record))

    proc = harness_table(tmp_path / "X", "--by", "optim.lr", "--metric", "test/accuracy")
    assert proc.returncode == 0, proc.stderr
    assert f"skipped {path}: tampered or corrupt" in proc.stderr
    assert "1 runs" in proc.stdout or "1 run" in proc.stdout, proc.stdout
    assert "1 unreadable result.json skipped" in proc.stdout
