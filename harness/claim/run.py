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

from harness.claim.spec import STAGES, Sweep


def stage_root(out_dir: Path) -> Path:
    """The folder of a claim's stages: ``${stage:NAME}`` is ``<stage_root>/NAME``."""
    return (out_dir / "runs" / STAGES).resolve()


def sweep_dir(out_dir: Path, sweep: Sweep) -> Path:
    """Where a sweep's job folders go: ``<out>/runs/<setting>/<protocol>``."""
    return out_dir / "runs" / sweep.setting / sweep.protocol


def run_sweeps(sweeps: list[Sweep], out_dir: Path, *, quiet: bool = False) -> dict[str, float]:
    """Run every sweep (resuming finished jobs) in order, stages first; returns wall seconds per sweep.

    A sweep with variants runs one multirun per variant into ``<sweep dir>/<label>``.
    """
    timings = {}
    env = {**os.environ, "WANDB_MODE": os.environ.get("WANDB_MODE", "offline"), "WANDB_SILENT": "true"}
    root = str(stage_root(out_dir))
    for i, sweep in enumerate(sweeps, 1):
        sweep = sweep.with_root(root)
        target = sweep_dir(out_dir, sweep)
        print(f"[{i}/{len(sweeps)}] {sweep.setting} / {sweep.protocol}: {sweep.label}", flush=True)
        started = time.perf_counter()
        for label, argv in sweep.commands(str(target)):
            cmd = [sys.executable, "-m", "harness.train", *argv[1:]]
            cmd.append("hydra.launcher.progress=false" if quiet else "hydra.launcher.progress=true")
            proc = subprocess.run(cmd, env=env, text=True, capture_output=quiet)
            if proc.returncode != 0:
                detail = (proc.stderr or "").strip().splitlines()[-1:] if quiet else []
                raise RuntimeError(f"sweep {sweep.setting}/{sweep.protocol}{'/' + label if label else ''} failed "
                                   f"(exit {proc.returncode}): {' '.join(detail)}\n  command: {' '.join(argv)}")
        if sweep.setting == STAGES:
            index_stage(target)
        timings[f"{sweep.setting}/{sweep.protocol}"] = time.perf_counter() - started
    return timings


def index_stage(stage_dir: Path) -> dict[int, Path]:
    """Give each run of a stage a folder by seed: ``<stage>/seed_<k>/`` holds links to the
    files of the run with seed k (``result.json`` excepted, so results are not counted twice).

    The runs themselves stay in Hydra's job folders; the index is rebuilt after every run of
    the stage. A stage must have exactly one run per seed.
    """
    from harness import store

    by_seed: dict[int, Path] = {}
    for run_dir in store.find_results(stage_dir):
        if run_dir.parent != stage_dir or run_dir.name.startswith("seed_"):
            continue
        seed = int((store.read_result(run_dir) or {}).get("seed", -1))
        if seed in by_seed:
            raise RuntimeError(f"stage {stage_dir.name} has two runs with seed {seed} ({by_seed[seed].name}, "
                               f"{run_dir.name}): a stage must sweep nothing but the seeds")
        by_seed[seed] = run_dir
    for seed, run_dir in by_seed.items():
        index = stage_dir / f"seed_{seed}"
        index.mkdir(exist_ok=True)
        for f in run_dir.iterdir():
            if f.is_file() and f.name != store.RESULT_FILE:
                link = index / f.name
                if link.is_symlink() or link.exists():
                    link.unlink()
                link.symlink_to(Path("..") / run_dir.name / f.name)
    return by_seed
