"""SIGKILL a fresh sweep during its first compile (issue #15, item 6): an empty compile cache,
the kill lands after the sweep started (multirun.yaml written) and before the first program
reached the cache; the rerun must end with exactly one complete result per job."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import run_cli

pytestmark = pytest.mark.slow

JOBS = 6
ARGS = ["-m", "data=circle", "model.hidden=[4]", "train.epochs=2", "seed=range(6)", "optim.lr=0.1",
        "logger=none", "output.plots=false", "hydra.launcher.progress=false", "hydra.sweep.dir=S"]


def test_a_kill_during_the_first_compile_leaves_a_folder_the_rerun_completes(tmp_path):
    cache = tmp_path / "cache"  # empty: nothing compiled yet, so the sweep must compile first
    env = {**os.environ, "HARNESS_CACHE_DIR": str(cache), "WANDB_MODE": "offline"}
    compiled = cache / "jax-compile"
    proc = subprocess.Popen([sys.executable, "-m", "harness.train", *ARGS], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not (tmp_path / "S" / "multirun.yaml").exists() and time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read()[-2000:]
        time.sleep(0.01)
    time.sleep(0.3)  # composing and validating 6 jobs, then tracing/compiling: seconds here
    cached = [p for p in compiled.rglob("*") if p.is_file()] if compiled.exists() else []
    results = list((tmp_path / "S").glob("*/result.json"))
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert cached == [] and results == [], "the kill landed before the first program was compiled and cached"

    rerun = run_cli(ARGS, tmp_path, env={"HARNESS_CACHE_DIR": str(cache)})
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    records = [json.loads((tmp_path / "S" / str(i) / "result.json").read_text()) for i in range(JOBS)]
    assert sorted(r["seed"] for r in records) == list(range(JOBS))
    assert all(r["status"] == "ok" for r in records)
    assert not list((tmp_path / "S").rglob("*.tmp"))
