"""A real one-node SLURM cluster: sbatch, the sacct shim, submitit, and the Hydra SLURM launcher.

The session fixture starts the cluster with scripts/slurm/cluster.sh (installing Debian's
slurm and munge packages on first use, hence ``slow``) and stops it at the end by the PIDs
in its pid files; a cluster that was already running is used and left running. The module
is skipped, with the reason, only when SLURM cannot be installed here (not root, no
apt-get, or apt-get fails); any other failure to start is a test error.

    python -m pytest tests/test_slurm.py -q -m slow
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CLUSTER = ROOT / "scripts" / "slurm" / "cluster.sh"
SLURM_DIR = Path(os.environ.get("HARNESS_SLURM_DIR", "/tmp/harness-slurm"))
EXIT_CANNOT_INSTALL = 4  # cluster.sh: SLURM is missing and cannot be installed here

pytestmark = pytest.mark.slow

_installed = all(shutil.which(tool) for tool in ("slurmctld", "slurmd", "sbatch", "munged"))
if not _installed and os.geteuid() != 0:
    pytest.skip("SLURM is not installed and installing it (apt-get) needs root", allow_module_level=True)
if not _installed and shutil.which("apt-get") is None:
    pytest.skip("SLURM is not installed and there is no apt-get to install it", allow_module_level=True)


def _cluster(command: str, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "HARNESS_SLURM_DIR": str(SLURM_DIR)}
    return subprocess.run(["bash", str(CLUSTER), command], env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="session")
def slurm():
    """A running cluster; clients in this process (and their children) see it."""
    was_running = _cluster("status", timeout=60).returncode == 0
    t0 = time.monotonic()
    started = _cluster("start")
    print(f"\n{started.stdout}{started.stderr}(cluster.sh start: {time.monotonic() - t0:.1f} s)")
    if started.returncode == EXIT_CANNOT_INSTALL:
        pytest.skip(f"SLURM cannot be installed here: {started.stderr.strip().splitlines()[-1]}")
    assert started.returncode == 0, f"cluster.sh start failed:\n{started.stdout}\n{started.stderr}"

    saved = {k: os.environ.get(k) for k in ("SLURM_CONF", "PATH")}
    os.environ["SLURM_CONF"] = str(SLURM_DIR / "slurm.conf")
    os.environ["PATH"] = f"{SLURM_DIR / 'bin'}{os.pathsep}{os.environ['PATH']}"
    try:
        yield SLURM_DIR
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if not was_running:
            stopped = _cluster("stop", timeout=120)
            print(stopped.stdout + stopped.stderr)
            assert stopped.returncode == 0, stopped.stderr


def _sacct(*job_ids: str) -> str:
    """Exactly the query submitit makes (submitit/slurm/slurm.py, SlurmInfoWatcher)."""
    command = ["sacct", "-o", "JobID,State,NodeList", "--parsable2"]
    for job_id in job_ids:
        command += ["-j", job_id]
    return subprocess.run(command, capture_output=True, text=True, check=True, timeout=30).stdout


def _wait_states(job_id: str, done: set[str], timeout: float = 120) -> dict[str, dict[str, str]]:
    """Poll the shim until every line of ``job_id`` is in a state in ``done``; return submitit's parse."""
    from submitit.slurm.slurm import SlurmInfoWatcher

    deadline = time.monotonic() + timeout
    while True:
        info = SlurmInfoWatcher().read_info(_sacct(job_id))
        if info and all(v["State"] in done for v in info.values()):
            return info
        assert time.monotonic() < deadline, f"job {job_id} not finished after {timeout}s: {info}"
        time.sleep(0.5)


def test_sbatch_wait_runs_a_script(slurm, tmp_path):
    script = tmp_path / "hello.sh"
    script.write_text("#!/bin/bash\necho \"hello from job $SLURM_JOB_ID on $SLURMD_NODENAME\"\n")
    out = tmp_path / "hello.out"
    t0 = time.monotonic()
    proc = subprocess.run(["sbatch", "--wait", "--parsable", "-p", "debug", "-o", str(out), str(script)],
                          capture_output=True, text=True, timeout=120)
    latency = time.monotonic() - t0
    assert proc.returncode == 0, proc.stderr
    job_id = proc.stdout.strip().split(";")[0]
    assert out.read_text().strip() == f"hello from job {job_id} on localhost"
    print(f"sbatch --wait submit-to-done: {latency:.2f} s")


def test_sacct_shim_answers_submitits_query(slurm, tmp_path):
    from submitit.slurm.slurm import SlurmInfoWatcher

    assert Path(shutil.which("sacct")).resolve() == (slurm / "bin" / "sacct").resolve()

    ok = subprocess.run(["sbatch", "--wait", "--parsable", "-o", os.devnull, "--wrap", "true"],
                        capture_output=True, text=True, timeout=120)
    failed = subprocess.run(["sbatch", "--wait", "--parsable", "-o", os.devnull, "--wrap", "exit 3"],
                            capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0 and failed.returncode == 3, (ok.stderr, failed.stderr)
    ok_id, failed_id = ok.stdout.strip(), failed.stdout.strip()
    assert _sacct(ok_id).splitlines() == ["JobID|State|NodeList", f"{ok_id}|COMPLETED|localhost"]
    assert _sacct(ok_id, failed_id).splitlines()[1:] == [f"{ok_id}|COMPLETED|localhost",
                                                         f"{failed_id}|FAILED|localhost"]
    assert _sacct("999999999").splitlines() == ["JobID|State|NodeList"]  # unknown: no line, as sacct

    # An array: held, all tasks pending print as one ID_[range] line, as the real sacct prints them.
    held = subprocess.run(["sbatch", "--parsable", "--hold", "--array=0-2", "-o", os.devnull, "--wrap", "true"],
                          capture_output=True, text=True, check=True, timeout=60)
    array_id = held.stdout.strip()
    try:
        assert _sacct(array_id).splitlines()[1:] == [f"{array_id}_[0-2]|PENDING|None assigned"]
        info = SlurmInfoWatcher().read_info(_sacct(array_id))
        assert {k: v["State"] for k, v in info.items()} == {f"{array_id}_{i}": "PENDING" for i in range(3)}
        subprocess.run(["scontrol", "release", array_id], check=True, timeout=30)
        info = _wait_states(array_id, {"COMPLETED", "FAILED", "CANCELLED"})
    finally:
        subprocess.run(["scancel", array_id], timeout=30)
    assert _sacct(array_id).splitlines()[1:] == [f"{array_id}_{i}|COMPLETED|localhost" for i in range(3)]
    assert {k: v["State"] for k, v in info.items()} == {f"{array_id}_{i}": "COMPLETED" for i in range(3)}


def _done_within(job, timeout: float) -> float:
    """Wait for submitit's own ``done()`` (result file or sacct state); return the seconds it took."""
    t0 = time.monotonic()
    while not job.done():
        if time.monotonic() - t0 > timeout:
            subprocess.run(["scancel", job.job_id], timeout=30)
            pytest.fail(f"submitit did not see job {job.job_id} finish within {timeout}s "
                        f"(state {job.state!r}; sacct on PATH: {shutil.which('sacct')})")
        time.sleep(0.5)
    return time.monotonic() - t0


def test_submitit_reads_job_states(slurm, tmp_path):
    import submitit
    from submitit.core.utils import UncompletedJobError

    executor = submitit.AutoExecutor(folder=tmp_path / "submitit", cluster="slurm")
    executor.update_parameters(timeout_min=5, slurm_partition="debug", cpus_per_task=1, mem_gb=1)

    job = executor.submit(os.getenv, "SLURM_JOB_ID")  # read in the job (a module function, pickled by name)
    took = _done_within(job, 120)
    assert job.result() == job.job_id
    deadline = time.monotonic() + 30
    while job.get_info(mode="force").get("State") != "COMPLETED":  # not UNKNOWN: read via the shim
        assert time.monotonic() < deadline, f"state {job.get_info(mode='force')}"
        time.sleep(0.5)
    print(f"submitit submit-to-result: {took:.2f} s")

    # A job that dies without writing its result: only the job state can tell that it ended.
    # Without state reading (sacct printing "accounting storage is disabled") this waits forever.
    dead = executor.submit(os._exit, 3)
    took = _done_within(dead, 120)
    print(f"submitit saw a job die without a result after {took:.2f} s")
    assert dead.state == "FAILED"
    with pytest.raises(UncompletedJobError):
        dead.result()


def test_hydra_multirun_on_slurm(slurm, tmp_path):
    sweep_dir = tmp_path / "sweep"
    cache = tmp_path / "cache"
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "HARNESS_CACHE_DIR": str(cache)}
    args = [
        "-m", "hydra/launcher=slurm", "hydra.launcher.partition=debug",
        "hydra.launcher.cpus_per_task=1",  # both jobs at once on a 2-CPU node
        "hydra.launcher.timeout_min=10",
        "data=circle", "logger=none", "output.plots=false", "train.epochs=2",
        "optim.lr=0.01,0.1", f"hydra.sweep.dir={sweep_dir}",
    ]
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "harness.train", *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    took = time.monotonic() - t0
    logs = "\n".join(f"--- {p}\n{p.read_text(errors='replace')[-3000:]}"
                     for p in sorted(sweep_dir.glob(".submitit/*/*_log.*")))
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}\n{logs}"

    lrs = []
    for num in (0, 1):
        result_file = sweep_dir / str(num) / "result.json"
        assert result_file.is_file(), f"no {result_file}\n{logs}"
        result = json.loads(result_file.read_text())
        assert result["status"] == "ok", result
        overrides = (sweep_dir / str(num) / ".hydra" / "overrides.yaml").read_text()
        lrs += [lr for lr in ("0.01", "0.1") if f"optim.lr={lr}\n" in overrides]
    assert sorted(lrs) == ["0.01", "0.1"]
    # One array job for the whole sweep: .submitit/<id>_0 and <id>_1.
    tasks = sorted(p.name for p in (sweep_dir / ".submitit").iterdir() if p.is_dir() and "_" in p.name)
    assert len(tasks) == 2 and len({t.split("_")[0] for t in tasks}) == 1, tasks
    print(f"hydra multirun of 2 jobs on SLURM: {took:.1f} s")
