"""Process-wide JAX settings, applied once before the first computation.

- Persistent compilation cache in a user cache dir (``$HARNESS_CACHE_DIR`` or
  ``~/.cache/harness``), caching short compiles too: JAX skips compiles under 1 s by default,
  and ours are mostly shorter than that, so a rerun would otherwise compile again.
  ``HARNESS_COMPILE_CACHE=0`` turns it off.
- XLA:CPU without LLVM's expensive passes (halves compile time, same run time here).
- CPU device count for sharding the member axis: ``HARNESS_CPU_DEVICES`` (default 1; see
  docs/benchmarks.md for the measurement behind the default). It must be set before JAX
  creates its CPU backend, hence this module.
"""

from __future__ import annotations

import os
from pathlib import Path

_DONE = {"setup": False}


def cache_root() -> Path:
    """The harness's user cache folder (data sets, compiled programs)."""
    if os.environ.get("HARNESS_CACHE_DIR"):
        return Path(os.environ["HARNESS_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "harness"


def setup_jax(cpu_devices: int | None = None, compile_cache: bool | None = None) -> None:
    """Configure JAX for this process (idempotent; later calls change nothing)."""
    if _DONE["setup"]:
        return
    _DONE["setup"] = True
    # LLVM's expensive passes double XLA:CPU compile time for our small programs and did not
    # change their run time (docs/benchmarks.md); a user's own XLA_FLAGS take precedence.
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_llvm_disable_expensive_passes" not in flags:
        os.environ["XLA_FLAGS"] = (flags + " --xla_llvm_disable_expensive_passes=true").strip()
    import jax

    if cpu_devices is None:
        cpu_devices = int(os.environ.get("HARNESS_CPU_DEVICES", "1"))
    if cpu_devices > 1:
        try:
            jax.config.update("jax_num_cpu_devices", cpu_devices)
        except RuntimeError:  # the backend already exists (e.g. in a test session)
            pass
    if compile_cache is None:
        compile_cache = os.environ.get("HARNESS_COMPILE_CACHE", "1") != "0"
    if compile_cache:
        cache_dir = cache_root() / "jax-compile"
        try:
            cache_dir.mkdir(parents=True, exist_ok=True)
            jax.config.update("jax_compilation_cache_dir", str(cache_dir))
            jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
            jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
        except OSError:
            pass  # an unwritable cache is a slowdown, not an error
