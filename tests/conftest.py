"""Shared test helpers: compose the real config, shrink it, run the real entry point."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import jax
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from harness.config import register_configs
from harness.runtime import cpu_device_count

# In-process training gets the CPU devices harness-train makes (HARNESS_CPU_DEVICES, default 2),
# before anything starts JAX's backend: a group split over two devices differs from one in its
# last bits, and tests compare in-process groups with the command's.
jax.config.update("jax_num_cpu_devices", cpu_device_count(os.environ))

ROOT = Path(__file__).resolve().parent.parent
CONF_DIR = str(ROOT / "conf")

# Small budgets so a test trains in well under a second of run time.
SHRINK = ["logger=none", "output.plots=false", "train.epochs=3"]


def compose_config(overrides: list[str] | None = None) -> DictConfig:
    """The composed config that ``harness-train <overrides>`` would run."""
    register_configs()
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return compose("config", overrides=list(overrides or []))


def run_cli(args: list[str], cwd: Path, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``python -m harness.train <args>`` in ``cwd`` and capture its output."""
    full_env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "harness.train", *args],
        cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout,
    )


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    """One data/compile cache for the session, away from the user's home (a module or test
    may point HARNESS_CACHE_DIR elsewhere for itself), and W&B offline."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HARNESS_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "harness-cache"))
        mp.setenv("WANDB_MODE", "offline")
        mp.setenv("WANDB_SILENT", "true")
        yield


def run_cases(cases: list[list[str]], base: Path, env: dict | None = None, timeout: float = 600) -> list[dict]:
    """Run each command line through the real ``harness-train`` entry point, all in one
    subprocess (tests/cli_driver.py), each in a fresh folder ``base/<i>``; returns per case
    its exit ``code``, ``stderr`` and the ``files`` it left there."""
    import json

    spec = base / "cases.json"
    out = base / "results.json"
    spec.write_text(json.dumps([{"argv": list(map(str, c)), "cwd": str(base / f"case{i}")}
                                for i, c in enumerate(cases)]))
    full_env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", **(env or {})}
    proc = subprocess.run([sys.executable, str(Path(__file__).parent / "cli_driver.py"), str(spec), str(out)],
                          cwd=base, env=full_env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text())
