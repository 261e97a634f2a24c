"""Checkpoints (train.checkpoint_every): a run killed after a checkpoint and started again
ends bitwise like a run without checkpoints, and the setting changes neither the compile
group nor the config hash."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

from conftest import compose_config, run_cli
from harness.errors import ConfigError
from harness.results import config_hash
from harness.train import checkpoint
from harness.train.engine import run_group
from harness.train.hparams import group_key
from harness.validate import validate_config

# 60 epochs of 25 steps, a checkpoint every 5 epochs: 12 saves. Both tests train the same two
# members, so the second reuses the first's compiled reference program.
TRAIN = ["data=circle", "logger=none", "output.plots=false", "train.epochs=60"]
LRS = ("0.01", "0.1")


def _cfgs(extra: list[str]) -> list:
    return [compose_config(TRAIN + extra + [f"optim.lr={lr}"]) for lr in LRS]


def _assert_bitwise(a, b) -> None:
    flat_a, tree_a = jax.tree_util.tree_flatten(a)
    flat_b, tree_b = jax.tree_util.tree_flatten(b)
    assert tree_a == tree_b
    for x, y in zip(flat_a, flat_b):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_checkpoint_every_is_validated_and_changes_no_key():
    plain, with_ckpt = compose_config(TRAIN), compose_config(TRAIN + ["train.checkpoint_every=2"])
    assert group_key(plain) == group_key(with_ckpt)  # the same compile group
    assert config_hash(plain) == config_hash(with_ckpt)  # resume finds results made without it
    validate_config(with_ckpt)
    validate_config(compose_config(TRAIN + ["train.checkpoint_every=0"]))
    with pytest.raises(ConfigError, match=r"train.checkpoint_every=-1 is not allowed: null or 0 \(off\)"):
        validate_config(compose_config(TRAIN + ["train.checkpoint_every=-1"]))


class _Killed(Exception):
    pass


@pytest.mark.slow  # the same as the multirun test below, in one process (for debugging)
def test_interrupted_group_resumes_from_its_checkpoint_bitwise(tmp_path, monkeypatch, caplog):
    """In one process: a group stopped right after its first checkpoint, trained again from
    the same root, restores it and ends exactly like run_group without checkpoints."""
    whole = run_group(_cfgs([]))
    cfgs = _cfgs(["train.checkpoint_every=5"])
    save = checkpoint._save

    def save_then_die(manager, program):
        save(manager, program)
        raise _Killed

    monkeypatch.setattr(checkpoint, "_save", save_then_die)
    with pytest.raises(_Killed):
        checkpoint.train_group(cfgs, tmp_path)
    folder = checkpoint.folder(tmp_path, cfgs)
    assert [p.name for p in folder.iterdir()] == ["5"]  # orbax step = the next period

    monkeypatch.setattr(checkpoint, "_save", save)
    resumed = checkpoint.train_group(cfgs, tmp_path)
    for a, b in zip(whole.outputs, resumed.outputs):
        _assert_bitwise(a, b)
    (record,) = [json.loads(line) for line in (tmp_path / ".checkpoints" / "resumed.jsonl").read_text().splitlines()]
    assert record["period"] == 5 and record["num_periods"] == 61 and record["members"] == 2
    checkpoint.discard(cfgs, tmp_path)
    assert not folder.exists()

    # A damaged checkpoint: one warning, its steps deleted, trained from the start, same result.
    monkeypatch.setattr(checkpoint, "_save", save_then_die)
    with pytest.raises(_Killed):
        checkpoint.train_group(cfgs, tmp_path)
    for f in (folder / "5" / "arrays").rglob("*"):
        if f.is_file():
            f.write_bytes(b"damaged")
    monkeypatch.setattr(checkpoint, "_save", save)
    with caplog.at_level("WARNING", logger="harness.checkpoint"):
        again = checkpoint.train_group(cfgs, tmp_path)
    assert "cannot be restored" in caplog.text and "training from the start" in caplog.text
    for a, b in zip(whole.outputs, again.outputs):
        _assert_bitwise(a, b)
    assert [p.name for p in folder.iterdir()] == ["60"]  # the new run's last step, not the damaged 5


def test_preemption_signals_wait_for_the_segment_and_its_save():
    """submitit's USR2 handler (requeue and exit) must not land mid-save: it runs when the
    block ends, once per signal; a signal without a Python handler is left alone."""
    seen = []
    previous = signal.signal(signal.SIGUSR2, lambda signum, frame: seen.append(signum))
    try:
        with checkpoint._signals_deferred():
            os.kill(os.getpid(), signal.SIGUSR2)
            time.sleep(0.05)
            assert seen == []
        assert seen == [signal.SIGUSR2]
        assert signal.getsignal(signal.SIGUSR2) is not None and seen == [signal.SIGUSR2]
    finally:
        signal.signal(signal.SIGUSR2, previous)
    with checkpoint._signals_deferred() as deferred:
        assert signal.SIGUSR1 not in deferred.saved  # default action: not touched


def _checkpoint_steps(root: Path) -> list[Path]:
    """Complete orbax steps under root/.checkpoints (orbax renames a step's tmp folder when done)."""
    return [p for p in root.glob(".checkpoints/*/*") if p.is_dir() and p.name.isdigit()]


def _kill_after_first_checkpoint(args: list[str], cwd: Path, root: Path) -> int:
    """Start ``harness-train args``, SIGKILL it (and its children) as soon as a complete
    checkpoint is under ``root``; return that checkpoint's period."""
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    proc = subprocess.Popen([sys.executable, "-m", "harness.train", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while not _checkpoint_steps(root):
            assert proc.poll() is None, proc.stdout.read().decode()[-3000:]
            assert time.monotonic() < deadline, "no checkpoint after 300 s"
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert not list(root.glob("**/result.json"))  # killed before any result was stored
    return int(_checkpoint_steps(root)[0].name)


def _reference(cfgs: list, root: Path) -> dict[float, Path]:
    """The same members without checkpoints (run_group), stored by the same code; lr -> folder."""
    from harness.job import store_member

    whole = run_group(cfgs)
    folders = {}
    for cfg, output in zip(cfgs, whole.outputs):
        folders[cfg.optim.lr] = root / f"ref-{cfg.optim.lr}"
        store_member(folders[cfg.optim.lr], cfg, output, whole, [])
    return folders


def _assert_same_result(run_dir: Path, ref_dir: Path) -> None:
    got = json.loads((run_dir / "result.json").read_text())
    want = json.loads((ref_dir / "result.json").read_text())
    assert got["config_hash"] == want["config_hash"]
    assert got["metrics"] == want["metrics"] and got["status"] == want["status"]
    assert (run_dir / "curves.csv").read_bytes() == (ref_dir / "curves.csv").read_bytes()


def _journal(root: Path) -> list[dict]:
    return [json.loads(line) for line in (root / ".checkpoints" / "resumed.jsonl").read_text().splitlines()]


def test_multirun_killed_after_a_checkpoint_resumes_bitwise(tmp_path):
    """A fused multirun SIGKILLed once its first checkpoint is on disk; the same command
    again resumes from it and stores metrics and curves bitwise equal to a run without
    checkpoints."""
    sweep = tmp_path / "sweep"
    args = ["-m", *TRAIN, "train.checkpoint_every=5", f"optim.lr={','.join(LRS)}", f"hydra.sweep.dir={sweep}"]
    killed_at = _kill_after_first_checkpoint(args, tmp_path, sweep)

    again = run_cli(args, tmp_path)
    out = again.stdout + again.stderr
    assert again.returncode == 0, out[-3000:]
    assert "resumed 2 members from checkpoint" in out, out[-3000:]
    (record,) = _journal(sweep)
    assert record["period"] >= killed_at and record["num_periods"] == 61 and record["members"] == 2
    assert not _checkpoint_steps(sweep)  # deleted once the results are stored

    ref = _reference(_cfgs([]), tmp_path)
    for num in ("0", "1"):
        lr = json.loads((sweep / num / "result.json").read_text())["config"]["optim"]["lr"]
        _assert_same_result(sweep / num, ref[lr])


@pytest.mark.slow
def test_single_run_killed_after_a_checkpoint_resumes_in_its_folder(tmp_path):
    """harness-train (one job) keeps its checkpoints in its own folder: run again into the
    same folder (as hydra/launcher=slurm's requeued job is), it resumes."""
    run_dir = tmp_path / "run"
    args = [*TRAIN, "train.checkpoint_every=5", "optim.lr=0.01", f"hydra.run.dir={run_dir}"]
    killed_at = _kill_after_first_checkpoint(args, tmp_path, run_dir)
    again = run_cli(args, tmp_path)
    assert again.returncode == 0, (again.stdout + again.stderr)[-3000:]
    (record,) = _journal(run_dir)
    assert record["period"] >= killed_at and record["members"] == 1
    assert not _checkpoint_steps(run_dir)
    ref = _reference([compose_config(TRAIN + ["optim.lr=0.01"])], tmp_path)
    _assert_same_result(run_dir, ref[0.01])
