"""A real one-node SLURM cluster: sbatch, the sacct shim, submitit, the Hydra SLURM launcher,
and the fused launcher's SLURM backend (one SLURM job per compile group).

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
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

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


# -- the fused launcher on SLURM: one SLURM job per compile group --------------------------

# 2 learning rates (members) x 2 activations (structures): 4 jobs in 2 compile groups.
FUSED_SWEEP = ["data=circle", "logger=none", "output.plots=false", "train.epochs=2", "optim.lr=0.01,0.1",
               "model.activation=relu,tanh", "hydra/launcher=fused"]
ON_SLURM = ["hydra.launcher.backend=slurm", "hydra.launcher.partition=debug",
            "hydra.launcher.cpus_per_task=1",  # both group jobs at once on the 2-CPU node
            "hydra.launcher.timeout_min=10"]


@pytest.fixture(scope="module")
def fused_env(tmp_path_factory):
    """One compile cache for the module: the local baseline's compiles serve the SLURM jobs."""
    cache = tmp_path_factory.mktemp("fused-cache")
    return {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "HARNESS_CACHE_DIR": str(cache)}


def _harness(args: list[str], cwd: Path, env: dict, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.train", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def _job_results(sweep_dir: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in sweep_dir.glob("*/result.json")}


def _submitit_logs(sweep_dir: Path) -> str:
    return "\n".join(f"--- {p}\n{p.read_text(errors='replace')[-3000:]}"
                     for p in sorted(sweep_dir.glob(".submitit/*/*_log.*")))


def _submitit_job_dirs(sweep_dir: Path) -> list[str]:
    """submitit's per-job folders (it also leaves .submission_file_*.sh links beside them)."""
    return sorted(p.name for p in (sweep_dir / ".submitit").iterdir() if p.is_dir() and not p.name.startswith("."))


def _slurm_job_ids(sweep_dir: Path) -> dict[str, str]:
    """Job number -> SLURM job id, from the launcher's slurm_jobs.json."""
    tracked = json.loads((sweep_dir / "slurm_jobs.json").read_text())["jobs"]
    return {idx: entry["slurm_job_id"] for idx, entry in tracked.items()}


@pytest.fixture(scope="module")
def local_baseline(tmp_path_factory, fused_env):
    """The same fused multirun trained locally (backend=local): the reference results."""
    root = tmp_path_factory.mktemp("fused-local")
    t0 = time.monotonic()
    proc = _harness(["-m", *FUSED_SWEEP, "hydra.launcher.backend=local", f"hydra.sweep.dir={root / 'sweep'}"],
                    root, fused_env)
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    print(f"\nfused multirun of 4 jobs (2 groups), local: {time.monotonic() - t0:.1f} s")
    results = _job_results(root / "sweep")
    assert sorted(results) == ["0", "1", "2", "3"]
    return root / "sweep", results


def _not_logging(overrides: list[str]) -> list[str]:
    """The overrides that can change a result (W&B settings cannot: config_hash ignores them)."""
    return [o for o in overrides if not o.startswith(("logger=", "hydra.launcher.wandb="))]


def _assert_same_as_local(sweep_dir: Path, local_baseline) -> None:
    local_dir, want = local_baseline
    got = _job_results(sweep_dir)
    assert sorted(got) == ["0", "1", "2", "3"], f"{sorted(got)}\n{_submitit_logs(sweep_dir)}"
    for num, result in got.items():
        assert result["status"] == "ok", result
        assert _not_logging(result["overrides"]) == _not_logging(want[num]["overrides"])
        assert result["config_hash"] == want[num]["config_hash"]
        assert result["timings"]["group_members"] == 2
        for metric, value in want[num]["metrics"].items():
            assert result["metrics"][metric] == pytest.approx(value, abs=1e-5), (num, metric)
        here, there = sweep_dir / num / ".hydra", local_dir / num / ".hydra"
        if result["overrides"] == want[num]["overrides"]:  # the same .hydra files as a local run
            for name in ("config.yaml", "overrides.yaml"):
                assert (here / name).read_text() == (there / name).read_text()
        else:  # only the W&B settings differ
            config, local_config = (yaml.safe_load((d / "config.yaml").read_text()) for d in (here, there))
            assert {**config, "logger": None} == {**local_config, "logger": None}
            assert _not_logging(yaml.safe_load((here / "overrides.yaml").read_text())) == \
                _not_logging(yaml.safe_load((there / "overrides.yaml").read_text()))
        hydra_yaml = (sweep_dir / num / ".hydra" / "hydra.yaml").read_text()
        assert f"output_dir: {sweep_dir / num}\n" in hydra_yaml and "backend: slurm" in hydra_yaml


def test_fused_multirun_on_slurm_one_job_per_group(slurm, tmp_path, fused_env, local_baseline):
    from submitit.slurm.slurm import SlurmInfoWatcher

    sweep_dir = tmp_path / "sweep"
    args = ["-m", *FUSED_SWEEP, *ON_SLURM, f"hydra.sweep.dir={sweep_dir}"]
    t0 = time.monotonic()
    proc = _harness(args, tmp_path, fused_env)
    took = time.monotonic() - t0
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}\n{_submitit_logs(sweep_dir)}"
    out = proc.stdout + proc.stderr
    assert "submitted 2 SLURM jobs for 4 jobs" in out and "4 trained, 0 skipped" in out, out[-3000:]

    # Exactly two SLURM jobs, one per compile group, both completed; each trained both lrs.
    ids = _slurm_job_ids(sweep_dir)
    assert sorted(ids) == ["0", "1", "2", "3"] and len(set(ids.values())) == 2, ids
    assert _submitit_job_dirs(sweep_dir) == sorted(set(ids.values()))
    states = SlurmInfoWatcher().read_info(_sacct(*sorted(set(ids.values()))))
    assert {v["State"] for v in states.values()} == {"COMPLETED"}, states
    results = _job_results(sweep_dir)
    for job_id in set(ids.values()):
        members = [results[num]["config"] for num, i in ids.items() if i == job_id]
        assert len({m["model"]["activation"] for m in members}) == 1  # a group: one structure
        assert sorted(m["optim"]["lr"] for m in members) == [0.01, 0.1]
    _assert_same_as_local(sweep_dir, local_baseline)
    print(f"fused multirun of 4 jobs (2 groups) on SLURM, waiting: {took:.1f} s")

    # The same command again: everything is stored, nothing is submitted.
    again = _harness(args, tmp_path, fused_env)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "4 of 4 jobs already have results" in again.stdout + again.stderr
    assert len(_submitit_job_dirs(sweep_dir)) == 2


def _wait_for_line(log_file: Path, proc: subprocess.Popen, text: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while text not in log_file.read_text(errors="replace"):
        assert proc.poll() is None, f"collect command ended before '{text}':\n{log_file.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"no '{text}' after {timeout}s:\n{log_file.read_text()[-3000:]}"
        time.sleep(0.2)


def test_fused_slurm_no_wait_then_the_same_command_collects(slurm, tmp_path, fused_env, local_baseline):
    sweep_dir = tmp_path / "sweep"
    # Submitted on hold (sbatch --hold), so the jobs are surely still pending when the second
    # command starts; the test releases them once that command has said it waits for them.
    # W&B in group mode: the command that collects the results writes the group runs.
    sweep = [("logger=wandb" if a == "logger=none" else a) for a in FUSED_SWEEP] + ["hydra.launcher.wandb=group"]
    args = ["-m", *sweep, *ON_SLURM, "hydra.launcher.wait=false",
            "+hydra.launcher.additional_parameters.hold=true", f"hydra.sweep.dir={sweep_dir}"]
    t0 = time.monotonic()
    first = _harness(args, tmp_path, fused_env)
    took = time.monotonic() - t0
    ids = sorted(set(_slurm_job_ids(sweep_dir).values())) if (sweep_dir / "slurm_jobs.json").exists() else []
    try:
        assert first.returncode == 0, f"{first.stdout[-3000:]}\n{first.stderr[-3000:]}"
        out = first.stdout + first.stderr
        assert len(ids) == 2, ids
        assert f"SLURM jobs {', '.join(ids)}" in out and "(not waited for)" in out, out[-3000:]
        assert not list(sweep_dir.glob("*/result.json"))  # nothing trained yet: submitted only
        assert not (sweep_dir / "wandb-groups").exists()  # no group run before its members are stored
        queue = subprocess.run(["squeue", "-h", "-o", "%i %T", "-j", ",".join(ids)], capture_output=True,
                               text=True, check=True, timeout=30).stdout
        assert dict(line.split() for line in queue.splitlines()) == {i: "PENDING" for i in ids}, queue
        print(f"\nfused multirun on SLURM, no-wait submit returned after {took:.1f} s (jobs {', '.join(ids)})")

        # The printed collect command: the same multirun, into the resolved sweep folder.
        lines = out.splitlines()
        command = shlex.split(lines[next(i for i, ln in enumerate(lines) if "collect them with" in ln) + 1])
        assert command[:3] in (["python", "-m", "harness.train"], [sys.executable, "-m", "harness.train"]), command
        assert command[3:] == args
        log_file = tmp_path / "collect.log"
        t0 = time.monotonic()
        with open(log_file, "w") as log:
            proc = subprocess.Popen([sys.executable, *command[1:]], cwd=tmp_path, env=fused_env, stdout=log,
                                    stderr=subprocess.STDOUT, text=True)
            try:
                _wait_for_line(log_file, proc, "waiting for them instead of submitting them again", 300)
                subprocess.run(["scontrol", "release", *ids], check=True, timeout=30)
                rc = proc.wait(timeout=600)
            finally:
                if proc.poll() is None:
                    proc.kill()
        collected = time.monotonic() - t0
    finally:
        if ids:
            subprocess.run(["scancel", *ids], timeout=30)
    text = log_file.read_text(errors="replace")
    assert rc == 0, f"{text[-3000:]}\n{_submitit_logs(sweep_dir)}"
    assert "4 trained, 0 skipped" in text and "2 from an earlier command" in text, text[-3000:]
    assert sorted(set(_slurm_job_ids(sweep_dir).values())) == ids  # waited for, not resubmitted
    assert len(_submitit_job_dirs(sweep_dir)) == 2
    _assert_same_as_local(sweep_dir, local_baseline)
    groups = sorted((sweep_dir / "wandb-groups").iterdir())
    assert len(groups) == 2, groups  # one W&B run per compile group, written by the collecting command
    for group in groups:
        (log,) = group.glob("wandb/offline-run-*/run-*.wandb")
        assert (group / "wandb_run_id").read_text().strip() == log.stem.removeprefix("run-")
    assert not list(sweep_dir.glob("*/wandb"))  # and no run per member
    print(f"the same command collected all 4 results after {collected:.1f} s")


def test_fused_slurm_job_failure_marks_its_members_failed(slurm, tmp_path, fused_env):
    sweep_dir = tmp_path / "sweep"
    # The batch script exits before srun: the SLURM job fails without a result from submitit.
    args = ["-m", "data=circle", "logger=none", "output.plots=false", "train.epochs=2", "optim.lr=0.01,0.1",
            "hydra/launcher=fused", *ON_SLURM, "hydra.launcher.setup=['exit 3']", f"hydra.sweep.dir={sweep_dir}"]
    proc = _harness(args, tmp_path, fused_env)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]  # as locally: a failed group does not sink the sweep
    (job_id,) = set(_slurm_job_ids(sweep_dir).values())
    assert f"SLURM job {job_id}" in out and "failed" in out and "failed 2" in out, out[-3000:]
    results = _job_results(sweep_dir)
    assert sorted(results) == ["0", "1"]
    for num, result in results.items():
        assert result["status"] == "failed" and f"SLURM job {job_id}" in result["error"], result
        assert (sweep_dir / num / ".hydra" / "overrides.yaml").is_file()


# -- checkpoints and preemption -------------------------------------------------------------


def _checkpoint_steps(sweep_dir: Path) -> list[Path]:
    """Complete orbax checkpoints (orbax renames a step's temporary folder once it is whole)."""
    return [p for p in sweep_dir.glob(".checkpoints/*/*") if p.is_dir() and p.name.isdigit()]


def _squeue_state(job_id: str) -> str:
    return subprocess.run(["squeue", "-h", "-o", "%T", "-j", job_id], capture_output=True, text=True,
                          timeout=30).stdout.strip()


def test_fused_slurm_job_interrupted_resumes_from_its_checkpoint(slurm, tmp_path, fused_env):
    """A SLURM job of a fused multirun with train.checkpoint_every gets USR2 (what SLURM sends
    signal_delay_s before the time limit) after its first checkpoint: submitit requeues it,
    the job resumes from the checkpoint, and its members' metrics and curves equal an
    uninterrupted local run's without checkpoints, bit for bit. Then the same command
    submits nothing (finished members are skipped)."""
    # 60 epochs, a checkpoint every 5: 2 members in one group, so one SLURM job.
    sweep = ["data=circle", "logger=none", "output.plots=false", "train.epochs=60", "optim.lr=0.01,0.1",
             "hydra/launcher=fused"]
    local_dir, sweep_dir = tmp_path / "local", tmp_path / "sweep"
    local = subprocess.Popen([sys.executable, "-m", "harness.train", "-m", *sweep, f"hydra.sweep.dir={local_dir}"],
                             cwd=tmp_path, env=fused_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    args = ["-m", *sweep, "train.checkpoint_every=5", *ON_SLURM, f"hydra.sweep.dir={sweep_dir}"]
    log_file = tmp_path / "slurm.log"
    job_id = None
    t0 = time.monotonic()
    with open(log_file, "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "harness.train", *args], cwd=tmp_path, env=fused_env,
                                stdout=log, stderr=subprocess.STDOUT, text=True)
        try:
            deadline = time.monotonic() + 300
            while not _checkpoint_steps(sweep_dir):
                assert proc.poll() is None, f"{log_file.read_text()[-3000:]}\n{_submitit_logs(sweep_dir)}"
                assert time.monotonic() < deadline, f"no checkpoint after 300 s\n{_submitit_logs(sweep_dir)}"
                time.sleep(0.1)
            first = int(_checkpoint_steps(sweep_dir)[0].name)
            (job_id,) = set(_slurm_job_ids(sweep_dir).values())
            interrupted = time.monotonic()
            subprocess.run(["scancel", "--signal=USR2", job_id], check=True, timeout=30)
            # Requeued, the job is PENDING; SLURM makes a requeued job eligible only about two
            # minutes later (Reason=BeginTime), which the test skips.
            deadline = time.monotonic() + 120
            while _squeue_state(job_id) != "PENDING":
                assert time.monotonic() < deadline, f"job {job_id} not requeued\n{_submitit_logs(sweep_dir)}"
                time.sleep(0.2)
            subprocess.run(["scontrol", "update", f"JobId={job_id}", "StartTime=now"], check=True, timeout=30)
            rc = proc.wait(timeout=400)
        finally:
            if proc.poll() is None:
                proc.kill()
            if job_id and proc.returncode != 0:  # a finished job is left alone (state COMPLETED)
                subprocess.run(["scancel", job_id], timeout=30)
    took, resumed_after = time.monotonic() - t0, time.monotonic() - interrupted
    text, job_logs = log_file.read_text(errors="replace"), _submitit_logs(sweep_dir)
    assert rc == 0, f"{text[-3000:]}\n{job_logs}"
    assert "2 trained, 0 skipped" in text and "failed 0" in text, text[-3000:]
    # submitit took the signal as a time-out (10 min limit) and requeued: allowed because
    # checkpointing sets max_num_timeout; the restarted job resumed from a checkpoint.
    assert "this job is timed-out" in job_logs and f"Requeued job {job_id} (2 remaining timeouts)" in job_logs, job_logs
    assert "resumed 2 members from checkpoint" in job_logs, job_logs
    journal = sweep_dir / ".checkpoints" / "resumed.jsonl"
    (record,) = [json.loads(line) for line in journal.read_text().splitlines()]
    assert record["slurm_job_id"] == job_id and record["slurm_restart_count"] == "1", record
    assert record["period"] >= first and record["num_periods"] == 61, record
    assert not _checkpoint_steps(sweep_dir)  # deleted once the results were stored
    assert _submitit_job_dirs(sweep_dir) == [job_id]  # the same SLURM job, requeued

    assert local.wait(timeout=300) == 0, local.stdout.read()[-3000:]
    want, got = _job_results(local_dir), _job_results(sweep_dir)
    assert sorted(got) == sorted(want) == ["0", "1"]
    for num in got:
        assert got[num]["status"] == "ok" and got[num]["config_hash"] == want[num]["config_hash"]
        assert got[num]["metrics"] == want[num]["metrics"], num  # bitwise: JSON floats of float32s
        assert (sweep_dir / num / "curves.csv").read_bytes() == (local_dir / num / "curves.csv").read_bytes()
    print(f"\ncheckpointed fused job on SLURM, interrupted after period {first} and resumed at period "
          f"{record['period']}: {took:.1f} s in all, {resumed_after:.1f} s from the signal to the results")

    # Resubmitting the finished sweep skips its members: nothing is submitted.
    again = _harness(args, tmp_path, fused_env)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "2 of 2 jobs already have results" in again.stdout + again.stderr
    assert _submitit_job_dirs(sweep_dir) == [job_id]


def test_hydra_slurm_job_interrupted_resumes_in_its_folder(slurm, tmp_path, fused_env):
    """hydra/launcher=slurm (one array task per job) with train.checkpoint_every and
    max_num_timeout=3: after USR2 the task is requeued and its job resumes from the
    checkpoint in its own folder."""
    sweep_dir = tmp_path / "sweep"
    args = ["-m", "hydra/launcher=slurm", "hydra.launcher.partition=debug", "hydra.launcher.cpus_per_task=1",
            "hydra.launcher.timeout_min=10", "hydra.launcher.max_num_timeout=3", "data=circle", "logger=none",
            "output.plots=false", "train.epochs=60", "train.checkpoint_every=5", "optim.lr=0.01",
            f"hydra.sweep.dir={sweep_dir}"]
    log_file = tmp_path / "slurm.log"
    task = None
    with open(log_file, "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "harness.train", *args], cwd=tmp_path, env=fused_env,
                                stdout=log, stderr=subprocess.STDOUT, text=True)
        try:
            deadline = time.monotonic() + 300
            while not _checkpoint_steps(sweep_dir / "0"):
                assert proc.poll() is None, f"{log_file.read_text()[-3000:]}\n{_submitit_logs(sweep_dir)}"
                assert time.monotonic() < deadline, f"no checkpoint after 300 s\n{_submitit_logs(sweep_dir)}"
                time.sleep(0.1)
            (task,) = _submitit_job_dirs(sweep_dir)  # the array job (one task)
            subprocess.run(["scancel", "--signal=USR2", task], check=True, timeout=30)
            deadline = time.monotonic() + 120
            while _squeue_state(task) != "PENDING":
                assert time.monotonic() < deadline, f"task {task} not requeued\n{_submitit_logs(sweep_dir)}"
                time.sleep(0.2)
            subprocess.run(["scontrol", "update", f"JobId={task}", "StartTime=now"], check=True, timeout=30)
            rc = proc.wait(timeout=400)
        finally:
            if proc.poll() is None:
                proc.kill()
            if task and proc.returncode != 0:
                subprocess.run(["scancel", task], timeout=30)
    job_logs = _submitit_logs(sweep_dir)
    assert rc == 0, f"{log_file.read_text()[-3000:]}\n{job_logs}"
    # The requeue shows in SLURM_RESTART_COUNT (submitit's own lines go to the job's Hydra log here).
    (record,) = [json.loads(line) for line in (sweep_dir / "0" / ".checkpoints" / "resumed.jsonl").read_text().splitlines()]
    assert record["slurm_restart_count"] == "1" and record["period"] >= 5 and record["members"] == 1, (record, job_logs)
    assert json.loads((sweep_dir / "0" / "result.json").read_text())["status"] == "ok"
    assert not _checkpoint_steps(sweep_dir / "0")
