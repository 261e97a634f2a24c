"""Every bad input is refused before anything is written (issue #15, items 2 and 4): one
``error:`` line naming the key (or the file), exit 2, no folder; Ctrl-C mid-sweep: one line,
exit 130, what is stored intact, and the rerun completes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import run_cases, run_cli
from test_data_other import idx_bytes, write_idx_folder

QUICK = ["logger=none", "output.plots=false", "train.epochs=1"]

# The single-run reproductions (item 2), and what the line must name.
SINGLE = [
    (["optim.lr=${oc.env:HOME}"], "optim.lr"),
    (["optim.lr=${now:}"], "optim.lr"),
    (["optim.lr=${oc.env:HARNESS_TEST_UNSET}"], "optim.lr"),
    (["seed=4294967296"], "seed"),
    (["seed=18446744073709551616"], "seed"),
    (["data=adding", "model=rnn", "data.length=100000000"], "data.length"),
    (["output.boundary_resolution=100000"], "output.boundary_resolution"),
    (["data=sentiment", "model.tokens=onehot"], "model.tokens='onehot' is not allowed: one of bag, flatten"),
    (["train.init_from=/etc/passwd"], "train.init_from"),
    (["=0.1"], "=0.1"),
    # item 6: launcher options and key removals, named like any other key
    (["-m", "seed=0,1", "hydra.launcher.max_members=0", "hydra.sweep.dir=S"], "hydra.launcher.max_members"),
    (["-m", "seed=0,1", "hydra.launcher.wandb=bogus", "hydra.sweep.dir=S"], "hydra.launcher.wandb"),
    (["-m", "seed=0,1", "hydra.launcher.wandb_members=-1", "hydra.sweep.dir=S"], "hydra.launcher.wandb_members"),
    (["~seed"], "~seed is not allowed: removing a key of the schema"),
    (["-m", "seed=range(0)", "hydra.sweep.dir=S"], "seed=range(0)"),
]


def assert_one_line(result: dict, *words: str) -> str:
    """Exit 2, one ``error:`` line on stderr naming ``words``, nothing left behind."""
    lines = result["stderr"].strip().splitlines()
    assert result["code"] == 2, result
    assert len(lines) == 1 and lines[0].startswith("error: "), result
    for word in words:
        assert word in lines[0], (word, lines[0])
    assert result["files"] == [], result
    return lines[0]


def data_files(tmp) -> dict[str, tuple[str, str]]:
    """Broken data files, each with the words its refusal must say (besides its path)."""
    rng = np.random.default_rng(0)
    x = rng.random((20, 4, 4)).astype(np.float32)
    y = np.arange(20) % 2
    made = {}

    def npz(name, why, **arrays):
        path = tmp / f"{name}.npz"
        np.savez(path, **{"x_train": x, "y_train": y, "x_test": x[:5], "y_test": y[:5], **arrays})
        made[name] = (str(path), why)

    npz("nan", "NaN or infinite", x_train=np.where(np.arange(20)[:, None, None] == 3, np.nan, x))
    npz("inf", "NaN or infinite", x_test=np.full((5, 4, 4), np.inf, np.float32))
    npz("single", "single class", y_train=np.zeros(20, int), y_test=np.zeros(5, int))
    npz("empty", "no examples", x_train=np.zeros((0, 4, 4), np.float32), y_train=np.zeros(0, int))
    npz("label", "out of range", y_train=np.where(np.arange(20) == 7, 10**9, y))
    idx = tmp / "idx"
    write_idx_folder(idx, gz=False)
    (idx / "t10k-images-idx3-ubyte").write_bytes(idx_bytes(np.zeros((0, 28, 28))))
    (idx / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(0)))
    made["idx-empty"] = (str(idx), "no examples")
    return made


def test_bad_single_runs_and_bad_data_files_are_one_line_exit_2_and_no_folder(tmp_path):
    files = data_files(tmp_path)
    cases = [[*args, *QUICK] for args, _ in SINGLE]
    cases += [["data=files", f"data.path={path}", "model=cnn", *QUICK] for path, _ in files.values()]
    (tmp_path / "runs").mkdir()
    results = run_cases(cases, tmp_path / "runs")
    for result, (_, key) in zip(results, SINGLE):
        line = assert_one_line(result, key)
        assert "pickle" not in line  # numpy's advice to unpickle is never shown
    for result, (name, (path, why)) in zip(results[len(SINGLE):], files.items()):
        line = assert_one_line(result, why)
        assert path in line or os.path.basename(path) in line, (name, line)
        assert "data.val_fraction" not in line and "model.hidden" not in line  # not blamed on a key


def test_claim_report_folder_that_cannot_be_written_is_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "harness.claim", "claim=small_batch", "claim.scale=small",
                           "out=/proc/nope", "logger=none"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "out='/proc/nope'" in lines[0], proc.stderr[-2000:]
    assert list(tmp_path.iterdir()) == []


def _interrupt_after_first_result(args: list[str], cwd: Path) -> tuple[subprocess.Popen, str]:
    """Start the sweep, send a terminal's Ctrl-C (SIGINT to its process group) as soon as its
    first result is stored, and wait for it to end."""
    # A pytest-xdist worker may ignore SIGINT, and a child inherits that; a terminal's shell
    # starts a command with SIGINT at its default: reset it, then exec the command (no
    # preexec_fn: forking a process that runs JAX's threads can deadlock).
    default_sigint = ("import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
                      "os.execv(sys.executable, [sys.executable, '-m', 'harness.train', *sys.argv[1:]])")
    proc = subprocess.Popen([sys.executable, "-c", default_sigint, *args], cwd=cwd,
                            env={**os.environ, "WANDB_MODE": "offline"}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 240
    while not list(cwd.glob("S/*/result.json")) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    return proc, stderr


@pytest.mark.skipif(not hasattr(os, "killpg"), reason="process groups (POSIX)")
def test_ctrl_c_mid_sweep_is_one_line_exit_130_and_the_rerun_completes(tmp_path):
    # Six compile groups of 2 jobs, compiled one after another (no background precompile): after
    # the first group's results appear, five compiles are still to come, so the interrupt
    # normally lands mid-sweep. On a loaded machine the sweep can still end first (seen once
    # in a parallel suite): then that attempt must be a complete sweep, and a fresh folder is
    # tried, up to three times.
    args = ["-m", "data=circle", "model.hidden=[2],[3],[5],[6],[7],[9]", "train.epochs=30", "seed=range(2)",
            "logger=none", "output.plots=false", "hydra.launcher.precompile=false", "hydra.sweep.dir=S"]
    for attempt in range(3):
        cwd = tmp_path / f"attempt{attempt}"
        cwd.mkdir()
        proc, stderr = _interrupt_after_first_result(args, cwd)
        stored = sorted(cwd.glob("S/*/result.json"))
        if proc.returncode == 0:  # ended before the interrupt: a whole sweep, then try again
            assert len(stored) == 12, stderr[-2000:]
            continue
        break
    assert proc.returncode == 130, stderr[-3000:]
    assert "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1].startswith("interrupted: "), stderr[-2000:]
    assert 0 < len(stored) < 12, "the interrupt landed mid-sweep"

    rerun = run_cli(args[:], cwd)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert f"{len(stored)} skipped" in rerun.stdout + rerun.stderr
    assert len(list(cwd.glob("S/*/result.json"))) == 12
