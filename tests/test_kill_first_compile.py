"""SIGKILL a fresh sweep during its first compile (issue #15, item 6): an empty compile cache,
the kill lands after the sweep started (multirun.yaml written) and before the first program
reached the cache; the rerun must end with exactly one complete result per job."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from conftest import run_cli

pytestmark = pytest.mark.slow

JOBS = 6
ARGS = ["-m", "data=circle", "model.hidden=[4]", "train.epochs=2", "seed=range(6)", "optim.lr=0.1",
        "logger=none", "output.plots=false", "hydra.launcher.progress=false", "hydra.sweep.dir=S"]


def test_a_kill_during_the_first_compile_leaves_a_folder_the_rerun_completes(tmp_path):
    cache = tmp_path / "cache"  # empty: nothing compiled yet, so the sweep must compile first
    # JAX_LOG_COMPILES: JAX logs "Compiling jit(advance)" as the training program's compile
    # starts (the group's segment program, harness.train.engine); the kill follows that line.
    env = {**os.environ, "HARNESS_CACHE_DIR": str(cache), "WANDB_MODE": "offline", "JAX_LOG_COMPILES": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "harness.train", *ARGS], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # Hydra logs to stdout
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if "Compiling jit(advance)" in line:
            break
    else:
        pytest.fail("the sweep ended before compiling its program: " + "".join(seen[-20:]))
    programs = list(cache.rglob("jit_advance*-cache"))
    results = list((tmp_path / "S").glob("*/result.json"))
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    assert programs == [] and results == [], "the kill landed while the first program compiled"

    rerun = run_cli(ARGS, tmp_path, env={"HARNESS_CACHE_DIR": str(cache)})
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    records = [json.loads((tmp_path / "S" / str(i) / "result.json").read_text()) for i in range(JOBS)]
    assert sorted(r["seed"] for r in records) == list(range(JOBS))
    assert all(r["status"] == "ok" for r in records)
    assert len(list((tmp_path / "S").glob("*/result.json"))) == JOBS
    assert not list((tmp_path / "S").rglob("*.tmp"))
