"""How a console command ends (harness.runtime.run_command): without Python's teardown, but
with its exit status, its output, its atexit handlers and its threads' work kept; the normal
way under a profiler, so the profile is written."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest


def _command(tmp_path: Path, body: str, *python_args: str, stdout=subprocess.PIPE) -> subprocess.CompletedProcess:
    """Run ``run_command(main)`` with ``main`` defined by ``body``, in a fresh interpreter
    whose standard streams are buffered (PYTHONUNBUFFERED, set where these tests run, would
    hide a missing flush)."""
    script = tmp_path / "command.py"
    script.write_text("import atexit, sys, threading, time\n"
                      "from pathlib import Path\n"
                      "from harness.runtime import run_command\n"
                      "folder = Path(sys.argv[1])\n"
                      + textwrap.dedent(body).strip() + "\n"
                      "run_command(main)\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    return subprocess.run([sys.executable, *python_args, str(script), str(tmp_path)], env=env,
                          stdout=stdout, stderr=subprocess.PIPE, text=True, timeout=120)


@pytest.mark.parametrize(("returned", "code"), [("None", 0), ("0", 0), ("3", 3), ("-1", 255), ("256", 0),
                                               ("True", 1), ("2**64", 255)])
def test_the_exit_status_is_mains_return_value(tmp_path, returned, code):
    proc = _command(tmp_path, f"def main():\n    return {returned}")
    assert proc.returncode == code, proc.stderr


@pytest.mark.parametrize(("raised", "code", "stderr"), [
    ("SystemExit(2)", 2, ""), ("SystemExit()", 0, ""), ("SystemExit('bad input')", 1, "bad input\n")])
def test_system_exit_gives_the_status_sys_exit_would(tmp_path, raised, code, stderr):
    proc = _command(tmp_path, f"def main():\n    raise {raised}")
    assert (proc.returncode, proc.stderr) == (code, stderr)


def test_buffered_output_atexit_handlers_and_threads_all_finish_first(tmp_path):
    body = """
        def main():
            atexit.register(lambda: (folder / "atexit").write_text("ran"))
            def late():
                time.sleep(0.5)
                (folder / "thread").write_text("done")
            threading.Thread(target=late).start()  # not a daemon: a normal exit waits for it
            sys.stdout.write("no newline, still buffered")
            sys.stderr.write("to stderr")
            return 0
    """
    proc = _command(tmp_path, body)
    assert proc.returncode == 0
    assert (proc.stdout, proc.stderr) == ("no newline, still buffered", "to stderr")
    assert (tmp_path / "atexit").read_text() == "ran"
    assert (tmp_path / "thread").read_text() == "done"


def test_text_a_c_library_printed_is_flushed(tmp_path):
    body = """
        import ctypes
        def main():
            ctypes.CDLL(None).printf(b"from C\\n")  # into libc's buffer: stdout is a pipe
            return 0
    """
    proc = _command(tmp_path, body)
    assert (proc.returncode, proc.stdout) == (0, "from C\n"), proc.stderr


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_output_that_cannot_be_written_is_a_failure_as_python_makes_it(tmp_path):
    with open("/dev/full", "w") as full:
        proc = _command(tmp_path, "def main():\n    print('lost')\n    return 0", stdout=full)
    assert proc.returncode == 120
    assert "No space left" in proc.stderr


def test_an_idle_thread_pool_left_open_does_not_hold_the_exit(tmp_path):
    body = """
        from concurrent.futures import ThreadPoolExecutor
        def main():
            pool = ThreadPoolExecutor(2)  # never shut down: its workers wait for work
            pool.submit(lambda: (folder / "task").write_text("done")).result()
            return 0
    """
    proc = _command(tmp_path, body)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "task").read_text() == "done"


def test_an_error_propagates_as_a_traceback(tmp_path):
    proc = _command(tmp_path, "def main():\n    raise ValueError('a bug')")
    assert proc.returncode == 1
    assert "Traceback" in proc.stderr and "ValueError: a bug" in proc.stderr


def test_under_a_profiler_the_process_ends_normally_and_the_profile_is_written(tmp_path):
    profile = tmp_path / "profile.out"
    proc = _command(tmp_path, "def main():\n    return 0", "-m", "cProfile", "-o", str(profile))
    assert proc.returncode == 0, proc.stderr
    assert profile.stat().st_size > 0
