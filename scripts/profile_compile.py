"""Where the engine's compile time goes, program by program, next to the hand-written reference.

    python scripts/profile_compile.py                      # the MLP and GRU programs, 2 processes each
    python scripts/profile_compile.py --programs spiral_mlp --rounds 3

``scripts/bench_compile.py`` compares the engine's whole compile (init, segment and finish
programs) with a hand-written ``jit(vmap(train))`` of the same training. This profile splits
both into trace+lower and XLA compile per program, and counts the instructions of each
optimized HLO module, in fresh processes with no persistent cache (best of ``--rounds`` per
phase), after a tiny warm-up compile that takes XLA's one-time set-up out of the first part. It is what the benchmarks page cites where a compile goal is not met.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_compile  # noqa: E402  (the programs and the reference, as the benchmark builds them)


def _instructions(compiled) -> int:
    """Instructions of an optimized HLO module (lines of its text that assign a value)."""
    return sum(1 for line in compiled.as_text().splitlines() if " = " in line)


def profile_harness(overrides: list[str]) -> dict:
    """The engine's three programs as a group compiles them (``Program.phases``), with the
    optimized size of each."""
    from harness.data.cache import dataset_for
    from harness.train.engine import GroupProgram

    cfgs = [bench_compile._compose(overrides + [f"seed={i}"]) for i in range(bench_compile.MEMBERS)]
    program = GroupProgram(cfgs, dataset=dataset_for(cfgs[0]))
    program.compile()
    compiled = program.compiled
    executables = {"init": compiled.init, "segment": compiled.advance, "finish": compiled.finish}
    return {name: {**times, "instructions": _instructions(executables[name])}
            for name, times in compiled.phases.items()}


def profile_reference(overrides: list[str]) -> dict:
    """The hand-written program (:func:`bench_compile.reference_program`): one lower, one compile."""
    program, args = bench_compile.reference_program(overrides)
    t0 = time.perf_counter()
    lowered = program.lower(*args)
    t1 = time.perf_counter()
    compiled = lowered.compile()
    t2 = time.perf_counter()
    return {"program": {"lower_s": t1 - t0, "compile_s": t2 - t1, "instructions": _instructions(compiled)}}


def _worker(side: str, name: str) -> None:
    from harness.runtime import setup_jax

    setup_jax()
    import jax

    # XLA's one-time set-up (its compiler, thread pools) is paid by the first compile of a
    # process; a tiny program pays it here, so each side's parts show only their own cost.
    jax.jit(lambda x: x + 1.0).lower(1.0).compile()
    overrides = bench_compile.PROGRAMS[name][1] + bench_compile.COMMON
    print(json.dumps(profile_harness(overrides) if side == "harness" else profile_reference(overrides)))


def measure(name: str, side: str) -> dict:
    return bench_compile.cold_worker(__file__, side, name)


def best(runs: list[dict]) -> dict:
    """Per program and phase, the least time over the runs (instruction counts are the same)."""
    out = {}
    for program in runs[0]:
        if isinstance(runs[0][program], dict):
            out[program] = {k: (min(r[program][k] for r in runs) if k.endswith("_s") else runs[0][program][k])
                            for k in runs[0][program]}
        else:
            out[program] = min(r[program] for r in runs)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--programs", default="spiral_mlp,mnist1d_gru")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        _worker(*args.worker)
        return 0
    load = os.getloadavg()[0]
    print(f"{bench_compile.MEMBERS} members, cold, best of {args.rounds} fresh processes per side; "
          f"load average {load:.2f} at start; {os.cpu_count()} cores")
    print("| program | side | part | trace+lower s | XLA compile s | optimized HLO instructions |")
    print("|---|---|---|---|---|---|")
    for name in args.programs.split(","):
        for side in ("harness", "reference"):
            runs = []
            for _ in range(args.rounds):
                runs.append(measure(name, side))
            r = best(runs)
            total_lower = total_compile = 0.0
            for part, v in r.items():
                if not isinstance(v, dict):
                    continue
                total_lower += v["lower_s"]
                total_compile += v["compile_s"]
                print(f"| {name} | {side} | {part} | {v['lower_s']:.2f} | {v['compile_s']:.2f} | {v['instructions']} |")
            print(f"| {name} | {side} | **all** | {total_lower:.2f} | {total_compile:.2f} | |")
    print(f"load average {os.getloadavg()[0]:.2f} at end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
