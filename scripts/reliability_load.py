"""Load check (issue #6, part 8): a sweep of 10,000 members of a tiny model, measured.

    python scripts/reliability_load.py                      # 10,000 members, chunks of 1,000
    python scripts/reliability_load.py --members 500 --chunk 100 --out /tmp/load   # a quick look

Runs the real command (``python -m harness.train -m ... seed='range(N)'``) in a pseudo-terminal,
so the rich progress bar draws as it does for a user, and watches it from outside:

- peak memory: the resident set of the sweep's process tree (sampled every second with psutil)
  and the largest single process (``getrusage(RUSAGE_CHILDREN).ru_maxrss``);
- throughput: members per second of wall time, and the sweep's own summary line;
- a truthful progress bar: at every sample the bar's count is at most the number of
  ``result.json`` files on disk (it never runs ahead), it falls behind by at most one chunk,
  and it ends at N/N with N results stored.

Prints one JSON object; the numbers in docs/reliability.md come from it.
"""

from __future__ import annotations

import argparse
import json
import os
import pty
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

BAR = re.compile(r"(\d+)/(\d+)\s")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def count_results(sweep: Path) -> int:
    """result.json files under the sweep folder (one level of job folders)."""
    n = 0
    try:
        with os.scandir(sweep) as entries:
            for entry in entries:
                if entry.is_dir() and os.path.exists(os.path.join(entry.path, "result.json")):
                    n += 1
    except FileNotFoundError:
        pass
    return n


def tree_rss(proc: psutil.Process) -> int:
    """Resident bytes of a process and its descendants."""
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--chunk", type=int, default=1_000, help="hydra.launcher.max_members")
    parser.add_argument("--out", default=None, help="folder for the sweep (default: a temp folder, removed)")
    args = parser.parse_args()

    root = Path(args.out or tempfile.mkdtemp(prefix="harness-load-"))
    root.mkdir(parents=True, exist_ok=True)
    sweep = root / "sweep"
    if sweep.exists():
        shutil.rmtree(sweep)
    command = [sys.executable, "-m", "harness.train", "-m", "data=circle", "model.hidden=[4]", "train.epochs=1",
               "logger=none", "output.plots=false", f"seed=range({args.members})",
               f"hydra.launcher.max_members={args.chunk}", f"hydra.sweep.dir={sweep}"]
    env = {**os.environ, "COLUMNS": "120", "TERM": "xterm"}

    master, slave = pty.openpty()
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=root, close_fds=True)
    os.close(slave)
    ps = psutil.Process(proc.pid)

    state = {"bar": 0, "total": None, "text": []}

    def read() -> None:
        buffer = ""
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:
                break
            if not data:
                break
            text = ANSI.sub("", data.decode("utf-8", "replace"))
            state["text"].append(text)
            buffer = (buffer + text)[-4000:]
            for line in re.split(r"[\r\n]", buffer):
                if "plots and W&B" in line or "SLURM" in line:
                    continue
                for done, total in BAR.findall(line):
                    if int(total) == args.members:
                        state["bar"] = max(state["bar"], int(done)) if state["total"] else int(done)
                        state["total"] = int(total)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()

    samples, peak_tree, violations, max_lag = 0, 0, [], 0
    while proc.poll() is None:
        bar = state["bar"]  # read the bar first: results only grow, so bar <= results must hold
        results = count_results(sweep)
        peak_tree = max(peak_tree, tree_rss(ps) if proc.poll() is None else 0)
        samples += 1
        if bar > results:
            violations.append({"t": round(time.perf_counter() - started, 1), "bar": bar, "results": results})
        max_lag = max(max_lag, results - bar)
        time.sleep(1.0)
    wall = time.perf_counter() - started
    reader.join(timeout=5)
    results = count_results(sweep)
    output = "".join(state["text"])
    summary = next((line.strip() for line in output.splitlines()[::-1] if "fused sweep:" in line), "")
    chunks = re.search(r"in (\d+) chunks", summary)

    report = {
        "command": " ".join(command[1:]),
        "returncode": proc.returncode,
        "members": args.members,
        "results_stored": results,
        "wall_s": round(wall, 1),
        "members_per_s": round(results / wall, 1),
        "chunks": int(chunks.group(1)) if chunks else None,
        "peak_rss_tree_mb": round(peak_tree / 2**20),
        "peak_rss_largest_process_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024),
        "progress": {"samples": samples, "final": f"{state['bar']}/{state['total']}", "ahead_of_disk": violations[:5],
                     "max_behind": max_lag, "truthful": (not violations and state["bar"] == results == args.members
                                                         and state["total"] == args.members)},
        "sweep_summary": summary,
        "load_average": os.getloadavg(),
    }
    print(json.dumps(report, indent=1))
    if not args.out:
        shutil.rmtree(root, ignore_errors=True)
    if proc.returncode != 0:
        print(output[-3000:], file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
