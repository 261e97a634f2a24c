"""What a checkpoint costs: size on disk, files, save and restore time of one orbax step.

    python scripts/bench_checkpoint.py      # about a minute, mostly compiling

Prints the table of docs/cluster.md ("What a checkpoint costs").
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from harness.runtime import setup_jax  # noqa: E402

setup_jax(compile_cache=False)

from conftest import compose_config  # noqa: E402

from harness.train import checkpoint  # noqa: E402
from harness.train.engine import GroupProgram  # noqa: E402

CASES = [
    ("spiral FNN [8,8], SGD", ["data=spiral", "train.epochs=6"], 64),
    ("MNIST-1D MLP, Adam", ["data=mnist1d", "model=mnist1d_mlp", "train.batch_size=100", "train.epochs=6", "optim=adam"], 16),
]


def main() -> None:
    print("| group | members | size on disk | files | one save | one restore |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, overrides, n in CASES:
        cfgs = [compose_config(overrides + ["logger=none", f"seed={i}"]) for i in range(n)]
        program = GroupProgram(cfgs, segment_periods=1)
        program.step()
        program.step()
        folder = Path(tempfile.mkdtemp()) / "checkpoint"
        manager = checkpoint._manager(folder)
        saves = []
        for _ in range(3):
            t0 = time.perf_counter()
            checkpoint._save(manager, program)
            saves.append(time.perf_counter() - t0)
            program.step()
        manager.close()
        size = int(subprocess.run(["du", "-sb", str(folder)], capture_output=True, text=True).stdout.split()[0])
        files = sum(len(f) for _, _, f in os.walk(folder))
        restored = GroupProgram(cfgs, segment_periods=1)
        restored.compile()
        t0 = time.perf_counter()
        checkpoint._restore(checkpoint._manager(folder), restored, folder)
        restore_s = time.perf_counter() - t0
        print(f"| {name} | {n} | {size / 1024:,.0f} KiB ({size / n / 1024:.1f} KiB per member) | {files} | "
              f"{min(saves):.2f} to {max(saves):.2f} s | {restore_s:.2f} s |", flush=True)


if __name__ == "__main__":
    main()
