"""JAX's own settings: the user's win, harness defaults fill the rest; x64; a missing platform."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from conftest import SHRINK, compose_config, run_cli
from harness.errors import ConfigError
from harness.runtime import (CACHE_MAX_BYTES, CPU_DEVICES, CPU_FLAG, accelerator_plugins, cache_settings, cpu_device_count,
                             xla_flags)
from harness.train.engine import run_group


def test_harness_cache_defaults_apply_only_where_the_user_set_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path))
    assert cache_settings({}) == {
        "jax_compilation_cache_dir": str(tmp_path / "jax-compile"),
        "jax_persistent_cache_min_compile_time_secs": 0.0,
        "jax_persistent_cache_min_entry_size_bytes": 0,
        "jax_compilation_cache_max_size": CACHE_MAX_BYTES,
    }
    users = {"JAX_COMPILATION_CACHE_DIR": "/elsewhere", "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "5"}
    assert set(cache_settings(users)) == {"jax_persistent_cache_min_entry_size_bytes", "jax_compilation_cache_max_size"}


@pytest.mark.parametrize("environ, flags", [
    ({"JAX_PLATFORMS": "cpu"}, CPU_FLAG),
    ({"JAX_PLATFORMS": "cpu", "XLA_FLAGS": "--xla_cpu_use_thunk_runtime=false"}, f"--xla_cpu_use_thunk_runtime=false {CPU_FLAG}"),
    ({"JAX_PLATFORMS": "cpu", "XLA_FLAGS": "--xla_llvm_disable_expensive_passes=false"}, "--xla_llvm_disable_expensive_passes=false"),
    ({"JAX_PLATFORMS": "cuda"}, ""),  # measured on the CPU only
    ({"JAX_PLATFORMS": "cuda,cpu", "XLA_FLAGS": "--xla_dump_to=/tmp/x"}, "--xla_dump_to=/tmp/x"),
])
def test_cpu_compile_flag_only_when_jax_runs_on_the_cpu(environ, flags):
    assert xla_flags(environ) == flags


def test_users_jax_cache_settings_reach_jax(tmp_path):
    """A fresh process (JAX reads its settings once): the user's values stay, ours fill the rest."""
    env = {**os.environ, "HARNESS_CACHE_DIR": str(tmp_path / "harness"),
           "JAX_COMPILATION_CACHE_DIR": str(tmp_path / "mine"), "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "7"}
    code = ("import json, jax; from harness.runtime import setup_jax; setup_jax(); c = jax.config; "
            "print(json.dumps([c.jax_compilation_cache_dir, c.jax_persistent_cache_min_compile_time_secs, "
            "c.jax_compilation_cache_max_size]))")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == [str(tmp_path / "mine"), 7.0, CACHE_MAX_BYTES]
    assert not (tmp_path / "harness" / "jax-compile").exists()


def test_cpu_devices_are_two_unless_set_whatever_the_core_count():
    assert CPU_DEVICES == 2
    assert cpu_device_count({}) == cpu_device_count({"HARNESS_CPU_DEVICES": ""}) == CPU_DEVICES
    assert cpu_device_count({"HARNESS_CPU_DEVICES": " 3 "}) == 3
    assert cpu_device_count({"HARNESS_CPU_DEVICES": "1"}) == 1


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5", "auto"])
def test_a_cpu_device_count_that_is_not_a_whole_number_is_refused(value):
    with pytest.raises(ConfigError, match="HARNESS_CPU_DEVICES=.* is not allowed: a whole number of CPU devices, 1 or more"):
        cpu_device_count({"HARNESS_CPU_DEVICES": value})


def test_a_bad_cpu_device_count_is_one_line_and_writes_nothing(tmp_path):
    done = run_cli(["train.epochs=1", *SHRINK], tmp_path, env={"HARNESS_CPU_DEVICES": "two"})
    assert done.returncode == 2
    assert done.stderr.strip() == ("error: HARNESS_CPU_DEVICES='two' is not allowed: "
                                   "a whole number of CPU devices, 1 or more")
    assert not any(tmp_path.iterdir())


@pytest.mark.skipif(bool(accelerator_plugins()), reason="a GPU plugin is installed: cuda may really start")
def test_a_platform_this_machine_lacks_is_one_line(tmp_path):
    done = run_cli(["train.epochs=1", *SHRINK], tmp_path, env={"JAX_PLATFORMS": "cuda"})
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [done.stderr.strip()]
    assert done.stderr.startswith("error: JAX_PLATFORMS='cuda' is not allowed")
    assert not any(tmp_path.iterdir())


def test_training_works_with_64_bit_types():
    # A structure no other test compiles, so the x64 trace is really made; one member diverges.
    base = SHRINK + ["data=reg_plane", "model.activation=relu", "model.hidden=[5]", "train.epochs=2"]
    cfgs = [compose_config(base + ["optim.lr=0.01"]), compose_config(base + ["optim.lr=1e6", "seed=1"])]
    with jax.enable_x64(True):
        group = run_group(cfgs)
    healthy, diverged = group.outputs
    assert not bool(healthy["diverged"]) and np.all(np.isfinite(healthy["curves"]["train/loss"]))
    assert bool(diverged["diverged"]) and int(diverged["diverged_step"]) >= 0
