"""A killed sweep resumes whole: SIGKILL a 100-job fused multirun again and again.

The sweep process is killed with SIGKILL at random moments (while it compiles, while it runs
and stores results, while its writer process writes W&B runs) and rerun each time into the
same sweep folder. The end state must be exactly 100 results, one per job, every stored file
complete and parsable, and exactly one finished W&B run per job.
"""

from __future__ import annotations

import csv
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow

JOBS = 100
KILLS = 10
SEED = 6  # the kill schedule is drawn from this seed (reproducible)
ARGS = ["-m", "data=circle", "model.hidden=[4]", "train.epochs=2", "output.plots=false", "optim.lr=0.01,0.1",
        "seed=range(50)", "logger.project=crash", "hydra.launcher.wandb=member", "hydra.launcher.progress=false"]


def _count(sweep: Path, name: str) -> int:
    return sum(1 for i in range(JOBS) if (sweep / str(i) / name).exists())


def _start(sweep: Path, cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true",
           "WANDB_DATA_DIR": str(cwd / "wd"), "WANDB_CACHE_DIR": str(cwd / "wc")}
    return subprocess.Popen([sys.executable, "-m", "harness.train", *ARGS, f"hydra.sweep.dir={sweep}"], cwd=cwd,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _kill_when(proc: subprocess.Popen, sweep: Path, phase: str, rng: random.Random) -> str | None:
    """SIGKILL the sweep process when ``phase``'s trigger fires; the phase seen, or None if it
    finished first. Its children (the W&B/plot writer) must stop by themselves. compile: a
    random moment in its first 1.5 seconds; results: just after some new result.json files appeared; wandb: after some new W&B runs were finished."""
    import psutil

    results0, runs0 = _count(sweep, "result.json"), _count(sweep, "wandb_run_id")
    started = None  # when the sweep started (Hydra writes multirun.yaml): then it composes and compiles
    delay = rng.uniform(0.0, 1.5)  # short: with a warm compile cache 100 jobs store within seconds
    need_results = results0 + rng.randint(1, 30)
    need_runs = runs0 + rng.randint(1, 12)
    while proc.poll() is None:
        if started is None and (sweep / "multirun.yaml").exists():
            started = time.monotonic()
        elapsed = 0.0 if started is None else time.monotonic() - started
        results, runs = _count(sweep, "result.json"), _count(sweep, "wandb_run_id")
        fire = {
            "compile": started is not None and elapsed >= delay,
            "results": results >= min(need_results, JOBS) or (results0 == JOBS and elapsed >= delay),
            "wandb": runs >= need_runs or (runs0 == JOBS and elapsed >= delay),
        }[phase]
        if fire:
            time.sleep(rng.uniform(0.0, 0.2))
            results, runs = _count(sweep, "result.json"), _count(sweep, "wandb_run_id")
            # The results and wandb triggers fire on new files, so the kill lands while more are
            # being written (both processes work at once: name the one the trigger watched). A
            # compile-phase kill is named by what had happened by then.
            seen = {"results": "result writing", "wandb": "W&B writing"}.get(phase) or (
                "W&B writing" if runs > runs0 else "result writing" if results > results0
                else "start-up/compile/run")
            children = psutil.Process(proc.pid).children(recursive=True)  # the writer process
            proc.send_signal(signal.SIGKILL)  # the sweep process only, as the OOM killer would
            proc.wait()
            _, alive = psutil.wait_procs(children, timeout=10)
            assert not alive, f"processes of the killed sweep outlived it: {alive}"
            return seen
        time.sleep(0.02)
    return None


def _finished_wandb_run(job_dir: Path) -> list[str]:
    """The ids of the job's complete offline W&B runs (a run record and an exit record)."""
    from test_wandb_logger import read_records

    finished = []
    for log in job_dir.glob("wandb/offline-run-*/run-*.wandb"):
        kinds = {r.WhichOneof("record_type") for r in read_records(log)}
        if {"run", "exit"} <= kinds:
            finished.append(log.stem.removeprefix("run-"))
    return finished


class _TolerantLoader(yaml.SafeLoader):
    """Safe YAML that reads Hydra's ``!!python/object/apply:hydra.types.RunMode`` tag in
    hydra.yaml as plain data (nothing is constructed)."""


_TolerantLoader.add_multi_constructor("", lambda loader, suffix, node: loader.construct_sequence(node)
                                      if isinstance(node, yaml.SequenceNode) else None)


def _check_parsable(sweep: Path) -> int:
    """Every stored file of the harness and Hydra parses; no temp file is left. Returns the count."""
    checked = 0
    for path in sweep.rglob("*"):
        if "wandb" in path.relative_to(sweep).parts or not path.is_file():
            continue
        assert not path.name.endswith(".tmp"), f"temp file left: {path}"
        text = path.read_text() if path.suffix in (".json", ".csv", ".yaml") else None
        if path.suffix == ".json":
            json.loads(text)
        elif path.suffix == ".csv":
            rows = list(csv.reader(text.splitlines()))
            assert len(rows) >= 2 and all(len(r) == len(rows[0]) for r in rows), path
        elif path.suffix == ".yaml":
            yaml.load(text, Loader=_TolerantLoader)  # noqa: S506 - a SafeLoader that keeps unknown tags as data
        checked += 1
    return checked


def _check_end_state(sweep: Path) -> str:
    """Exactly one ok result per job, every stored file parsable, one finished W&B run per job."""
    results = sorted(sweep.rglob("result.json"))
    assert len(results) == JOBS
    records = [json.loads(p.read_text()) for p in results]
    assert all(r["status"] == "ok" for r in records)
    pairs = {(r["config"]["optim"]["lr"], r["seed"]) for r in records}
    assert len(pairs) == JOBS, "each job exactly once"
    assert sorted(int(p.parent.name) for p in results) == list(range(JOBS))
    checked = _check_parsable(sweep)

    duplicated = []
    for i in range(JOBS):
        job = sweep / str(i)
        marker = (job / "wandb_run_id").read_text().strip()
        runs = sorted(job.glob("wandb/*run-*"))
        finished = _finished_wandb_run(job)
        if finished != [marker] or len(runs) != 1:
            duplicated.append((i, marker, [r.name for r in runs], finished))
    assert not duplicated, duplicated
    return f"{sweep.name}: {len(results)} results, {checked} files parsed, one finished W&B run per job"


def test_sigkill_at_random_moments_loses_and_duplicates_nothing(tmp_path):
    """Kill, rerun into the same folder, repeat; when a sweep completes before enough kills
    landed (a fast machine or a warm compile cache), a new sweep folder starts a new round, so
    the number of kills does not depend on the machine's speed. Every round's folder must end
    in the same complete state."""
    rng = random.Random(SEED)
    phases = ["compile", "results", "wandb"]
    kills: list[str] = []
    rounds: list[Path] = []
    attempt = 0
    while (len(kills) < KILLS or len(set(kills)) < len(phases)) and attempt < 4 * KILLS:
        if not rounds or _count(rounds[-1], "wandb_run_id") == JOBS:
            rounds.append(tmp_path / f"sweep{len(rounds)}")
        sweep = rounds[-1]
        phase = phases[attempt % len(phases)]
        if _count(sweep, "result.json") == JOBS:
            phase = "wandb"  # only W&B writing is left to interrupt in this round
        elif _count(sweep, "result.json") == 0 and "start-up/compile/run" not in kills:
            phase = "compile"  # a fresh round: the one chance to land before any result
        attempt += 1
        t0 = time.monotonic()
        proc = _start(sweep, tmp_path)
        seen = _kill_when(proc, sweep, phase, rng)
        print(f"attempt {attempt} ({sweep.name}): {phase} -> {seen} after {time.monotonic() - t0:.1f}s; "
              f"{_count(sweep, 'result.json')} results, {_count(sweep, 'wandb_run_id')} W&B runs", flush=True)
        if seen is None:  # the sweep finished before the trigger: the next attempt starts a new round
            assert proc.returncode == 0, proc.stderr.read()
            continue
        kills.append(seen)

    for sweep in rounds:
        final = _start(sweep, tmp_path)
        _, stderr = final.communicate(timeout=600)
        assert final.returncode == 0, stderr
    print(f"\nkills: {len(kills)} ({', '.join(f'{k}: {kills.count(k)}' for k in sorted(set(kills)))}); "
          f"attempts: {attempt}; rounds: {len(rounds)}")
    assert len(kills) >= KILLS, kills
    assert len(set(kills)) == len(phases), f"every phase was hit: {kills}"
    for sweep in rounds:
        print("end state", _check_end_state(sweep))
