"""Run a claim's sweeps: each (setting, protocol) is one real ``harness-train`` multirun.

Using the real entry point (in a subprocess) means a claim is exactly the commands its report
prints, runs under the fused launcher with its resume, and can be rerun piece by piece.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from harness.claim.spec import Sweep


def sweep_dir(out_dir: Path, sweep: Sweep) -> Path:
    """Where a sweep's job folders go: ``<out>/runs/<setting>/<protocol>``."""
    return out_dir / "runs" / sweep.setting / sweep.protocol


def run_sweeps(sweeps: list[Sweep], out_dir: Path, *, quiet: bool = False) -> dict[str, float]:
    """Run every sweep (resuming finished jobs); returns wall seconds per sweep."""
    timings = {}
    env = {**os.environ, "WANDB_MODE": os.environ.get("WANDB_MODE", "offline"), "WANDB_SILENT": "true"}
    for i, sweep in enumerate(sweeps, 1):
        target = sweep_dir(out_dir, sweep)
        print(f"[{i}/{len(sweeps)}] {sweep.setting} / {sweep.protocol}: {sweep.label}", flush=True)
        started = time.perf_counter()
        cmd = [sys.executable, "-m", "harness.train", *sweep.command(str(target))[1:]]
        cmd.append("hydra.launcher.progress=false" if quiet else "hydra.launcher.progress=true")
        proc = subprocess.run(cmd, env=env, text=True, capture_output=quiet)
        if proc.returncode != 0:
            detail = (proc.stderr or "").strip().splitlines()[-1:] if quiet else []
            raise RuntimeError(f"sweep {sweep.setting}/{sweep.protocol} failed (exit {proc.returncode}): "
                               f"{' '.join(detail)}\n  command: {sweep.shell(str(target))}")
        timings[f"{sweep.setting}/{sweep.protocol}"] = time.perf_counter() - started
    return timings
