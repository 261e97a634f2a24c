"""Run many ``harness-train`` command lines in ONE process (JAX and Hydra imported once).

    python tests/cli_driver.py CASES.json RESULTS.json

CASES.json: a list of ``{"argv": [...], "cwd": "<empty folder>"}``. Each case runs the real
entry point (:func:`harness.cli.main`) with ``sys.argv`` set, in its own folder, with file
descriptor 2 captured; RESULTS.json gets, per case, the exit code, stderr and every path the
case left in its folder. Used by tests that try many bad inputs (a subprocess per case would
spend ~5 s importing JAX each time).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import traceback
from pathlib import Path


def run_case(argv: list[str], cwd: Path) -> dict:
    """One command line: exit code (or the exception it raised), stderr, files left."""
    from harness.cli import main

    cwd.mkdir(parents=True, exist_ok=True)
    os.chdir(cwd)
    sys.argv = ["harness-train", *argv]
    captured = tempfile.TemporaryFile()
    sys.stderr.flush()
    saved = os.dup(2)
    os.dup2(captured.fileno(), 2)
    code: int | str = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException as exc:  # noqa: BLE001 - reported to the test, which fails on it
        code = f"raised {type(exc).__name__}"
        traceback.print_exc()
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
    captured.seek(0)
    stderr = captured.read().decode("utf-8", errors="replace")
    files = sorted(str(p.relative_to(cwd)) for p in cwd.rglob("*"))
    return {"argv": argv, "code": code, "stderr": stderr, "files": files}


if __name__ == "__main__":
    spec, out = Path(sys.argv[1]).absolute(), Path(sys.argv[2]).absolute()  # run_case resets sys.argv
    results = [run_case(c["argv"], Path(c["cwd"])) for c in json.loads(spec.read_text())]
    out.write_text(json.dumps(results))
