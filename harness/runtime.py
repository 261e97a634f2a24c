"""Process-wide JAX settings, applied once before the first computation.

The user's own settings win: each harness default below applies only where the environment
sets nothing (JAX reads its ``JAX_<SETTING>`` variables itself, XLA its ``XLA_FLAGS``).

- Persistent compilation cache in a user cache dir (``$HARNESS_CACHE_DIR`` or
  ``~/.cache/harness``), caching short compiles too: JAX skips compiles under 1 s by default,
  and ours are mostly shorter than that, so a rerun would otherwise compile again. Capped at
  :data:`CACHE_MAX_BYTES` (JAX evicts the least recently used entries beyond it).
  ``HARNESS_COMPILE_CACHE=0`` turns the harness's cache settings off.
- XLA:CPU without LLVM's expensive passes (halves compile time, same run time here), when
  JAX will run on the CPU: the flag was measured there only.
- CPU device count for sharding the member axis: ``HARNESS_CPU_DEVICES`` (default 2 on any
  core count, see :data:`CPU_DEVICES`; docs/benchmarks.md has the measurement behind it,
  ``scripts/profile_devices.py`` repeats it). It must be set before JAX creates its CPU
  backend, hence this module.
- A ``JAX_PLATFORMS`` that this machine cannot start is a :class:`ConfigError` (one line),
  not JAX's traceback.

And how a console command ends: :func:`run_command` (the process exits without Python's
teardown of the modules it loaded).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pkgutil
import sys
import threading
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NoReturn

from harness.errors import ConfigError

_DONE = {"setup": False}

# This machine's cache held 121 files in 5.2 MB after the project's sweeps and tests; 1 GiB
# keeps thousands of programs and still bounds the folder.
CACHE_MAX_BYTES = 1 << 30
CPU_FLAG = "--xla_llvm_disable_expensive_passes=true"
# Two CPU devices: they cut the run phase of groups of 8 members and more by 31-57% on 2 cores
# and cost nothing measurable on 1 (docs/benchmarks.md, scripts/profile_devices.py). A fixed
# number, not the core count: how a group is split over devices changes the last bits of its
# results, which must not depend on how many cores a job was given (taskset, SLURM's
# --cpus-per-task).
CPU_DEVICES = 2


def cache_root() -> Path:
    """The harness's user cache folder (data sets, compiled programs)."""
    if os.environ.get("HARNESS_CACHE_DIR"):
        return Path(os.environ["HARNESS_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "harness"


def accelerator_plugins() -> list[str]:
    """JAX's GPU/TPU plugins installed here (entry points, jax_plugins modules, libtpu)."""
    from importlib.metadata import entry_points
    from importlib.util import find_spec

    found = [ep.name for ep in entry_points(group="jax_plugins")]
    if find_spec("jax_plugins") is not None:  # a namespace package: listing imports nothing
        import jax_plugins

        found += [module.name for module in pkgutil.iter_modules(jax_plugins.__path__)]
    if find_spec("libtpu") is not None:
        found.append("libtpu")
    return found


def runs_on_cpu(environ: Mapping[str, str]) -> bool:
    """Whether JAX will pick the CPU: JAX_PLATFORMS names it first, or nothing else is installed."""
    platforms = environ.get("JAX_PLATFORMS", "").strip()
    if platforms:
        return platforms.split(",")[0].strip() == "cpu"
    return not accelerator_plugins()


def xla_flags(environ: Mapping[str, str]) -> str:
    """XLA_FLAGS with the CPU compile-time flag added when JAX will run on the CPU and the
    user's flags do not set it themselves."""
    flags = environ.get("XLA_FLAGS", "")
    if "xla_llvm_disable_expensive_passes" in flags or not runs_on_cpu(environ):
        return flags
    return f"{flags} {CPU_FLAG}".strip()


def cache_settings(environ: Mapping[str, str]) -> dict[str, Any]:
    """The JAX compilation-cache settings the harness applies: its defaults, less every one
    the user set (JAX reads ``JAX_COMPILATION_CACHE_DIR`` and the like from the environment)."""
    defaults = {
        "jax_compilation_cache_dir": str(cache_root() / "jax-compile"),
        "jax_persistent_cache_min_compile_time_secs": 0.0,
        "jax_persistent_cache_min_entry_size_bytes": 0,
        "jax_compilation_cache_max_size": CACHE_MAX_BYTES,
    }
    return {name: value for name, value in defaults.items() if name.upper() not in environ}


def check_platform() -> None:
    """Start JAX's backend; a JAX_PLATFORMS it cannot start here raises ConfigError."""
    import jax

    try:
        jax.devices()
    except (RuntimeError, AssertionError) as exc:  # JAX asserts when no listed platform exists
        wanted = os.environ.get("JAX_PLATFORMS", "").strip()
        if not wanted:
            raise
        said = str(exc).splitlines()[0] if str(exc) else "no device of that platform here"
        raise ConfigError("JAX_PLATFORMS", wanted,
                          f"platforms this machine has (e.g. cpu), or unset it to let JAX choose ({said})") from None


def cpu_device_count(environ: Mapping[str, str]) -> int:
    """CPU devices JAX makes: ``HARNESS_CPU_DEVICES``, a whole number >= 1, else
    :data:`CPU_DEVICES`. Raises ConfigError for any other value."""
    text = environ.get("HARNESS_CPU_DEVICES", "").strip()  # set but empty: the default
    if not text:
        return CPU_DEVICES
    if not text.isdigit() or int(text) < 1:
        raise ConfigError("HARNESS_CPU_DEVICES", text, "a whole number of CPU devices, 1 or more")
    return int(text)


def setup_jax(cpu_devices: int | None = None, compile_cache: bool | None = None) -> None:
    """Configure JAX for this process (idempotent; later calls change nothing).

    Raises ConfigError for a JAX_PLATFORMS this machine cannot start.
    """
    if _DONE["setup"]:
        return
    _DONE["setup"] = True
    # LLVM's expensive passes double XLA:CPU compile time for our small programs and did not
    # change their run time (docs/benchmarks.md); a user's own XLA_FLAGS take precedence.
    flags = xla_flags(os.environ)
    if flags:
        os.environ["XLA_FLAGS"] = flags
    import jax

    if cpu_devices is None:
        cpu_devices = cpu_device_count(os.environ)
    if cpu_devices > 1:
        try:
            jax.config.update("jax_num_cpu_devices", cpu_devices)
        except RuntimeError:  # the backend already exists (e.g. in a test session)
            pass
    if compile_cache is None:
        compile_cache = os.environ.get("HARNESS_COMPILE_CACHE", "1") != "0"
    if compile_cache:
        settings = cache_settings(os.environ)
        try:
            if "jax_compilation_cache_dir" in settings:
                Path(settings["jax_compilation_cache_dir"]).mkdir(parents=True, exist_ok=True)
            for name, value in settings.items():
                jax.config.update(name, value)
        except OSError:
            pass  # an unwritable cache is a slowdown, not an error
    check_platform()


def console_command(main: Callable[[], Any]) -> Callable[[], NoReturn]:
    """A console entry point (pyproject's ``[project.scripts]``, a ``__main__`` module) that
    runs ``main`` through :func:`run_command`; callers in the same process call ``main``."""

    def command() -> NoReturn:
        run_command(main)

    command.__doc__ = f"``{main.__module__}.main``, then the process ends without Python's teardown."
    return command


def run_command(main: Callable[[], Any]) -> NoReturn:
    """Run a console command's ``main`` and end the process with its exit status, as
    ``sys.exit(main())`` would, but without Python's interpreter teardown.

    After a harness command, tearing the interpreter down (freeing every loaded module's
    objects, then the C++ state of jaxlib, pandas, matplotlib, ...) took 0.4-1.2 s here each
    time, for nothing anyone reads (docs/benchmarks.md). What a normal exit does before that
    still happens, in the same order: threading's exit hooks run and the threads that are not
    daemons are joined, the ``atexit`` handlers run (logging's flush and close, multiprocessing's
    children, ``weakref.finalize`` and so ``TemporaryDirectory``, W&B's and JAX's own), Python's
    and C's standard streams are flushed; a failed flush exits 120, as Python does. What is
    skipped is the finalizers of objects still alive (``__del__``): a command closes its files
    itself (the harness writes with ``with`` or a temp file renamed into place) and relies on
    no finalizer. Under a tracer or profiler (coverage, ``python -m cProfile``), which may
    write its results during teardown, or where this Python lacks the hooks used, the process
    ends the normal way. An exception other than ``SystemExit`` propagates as usual.
    """
    try:
        status = main()
    except SystemExit as exc:
        status = exc.code
    shutdown = getattr(threading, "_shutdown", None)
    run_exitfuncs = getattr(atexit, "_run_exitfuncs", None)
    if _observed() or shutdown is None or run_exitfuncs is None:
        raise SystemExit(status)
    code = _exit_status(status)
    # As the interpreter's own shutdown, in its order: threading's exit hooks (an idle
    # ThreadPoolExecutor's workers are told to stop there), the join of every thread that is
    # not a daemon, then the atexit handlers. An error while joining (Ctrl-C) is reported and
    # ignored, as Python does, and the status stays main's.
    try:
        shutdown()
    except BaseException:  # noqa: BLE001 - as Python: "Exception ignored", then the exit goes on
        print("Exception ignored in: <module 'threading'>", file=sys.stderr)
        traceback.print_exc()
    run_exitfuncs()
    if not _flush_streams():
        code = 120  # what Python exits with when it cannot flush stdout or stderr at exit
    os._exit(code)


def _exit_status(status: Any) -> int:
    """The process status ``sys.exit(status)`` gives: None 0, an int modulo 256 (one that
    does not fit a C long 255), anything else printed to stderr and 1."""
    if status is None:
        return 0
    if isinstance(status, int):
        return status & 0xFF if -(1 << 63) <= status < (1 << 63) else 255
    print(status, file=sys.stderr)
    return 1


def _flush_streams() -> bool:
    """Flush Python's standard streams (the current ones and the originals, which a
    redirection may have left behind) and C's stdio buffers; False when a flush failed."""
    ok = True
    seen: set[int] = set()
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        if stream is None or id(stream) in seen:
            continue
        seen.add(id(stream))
        try:
            stream.flush()
        except ValueError:  # closed: nothing to flush
            pass
        except OSError as exc:  # a full disk, a closed pipe: the output is incomplete
            ok = False
            with contextlib.suppress(Exception):
                print(f"Exception ignored while flushing {getattr(stream, 'name', stream)!s}: {exc!r}",
                      file=sys.__stderr__)
    try:  # text a C library printed (libc's exit() would flush it; os._exit does not)
        import ctypes

        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):  # no libc to load (not POSIX)
        pass
    return ok


def _observed() -> bool:
    """Whether a tracer or profiler watches this process (``sys.settrace``/``setprofile``,
    or a ``sys.monitoring`` tool on Python 3.12+)."""
    if sys.gettrace() is not None or sys.getprofile() is not None:
        return True
    monitoring = getattr(sys, "monitoring", None)
    return monitoring is not None and any(monitoring.get_tool(tool) is not None for tool in range(6))
