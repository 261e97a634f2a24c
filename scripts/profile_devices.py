"""One CPU device or two: a fused sweep's compile and run phases, by model and group size.

``HARNESS_CPU_DEVICES`` sets how many CPU devices JAX makes; a group's member axis is sharded
over as many as get 4 members each (``harness.train.engine.member_devices``), so groups of
fewer than 8 stay on one device whatever the setting: their rows in docs/benchmarks.md were
measured before that rule, to set it. This runs the same
sweep (cold compile cache, ``logger=none output.plots=false``) with one and with two devices,
for each model and member count, alternating the two so that a change of load hits both, and
prints the launcher's own compile / run / wall seconds. ``docs/benchmarks.md`` quotes it
beside the rule the engine uses.

    python scripts/profile_devices.py                         # spiral MLP, MNIST-1D CNN and GRU
    python scripts/profile_devices.py --models mlp --members 8,64,256
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench import harness_cmd, launcher_line, loadavg  # noqa: E402 - the bench's own parsers

# The models of the bench's workloads, at budgets that keep one sweep under a minute here.
MODELS = {
    "mlp": ["data=spiral", "model=fnn", "model.hidden=[8,8]", "optim=sgd", "train.batch_size=10",
            "train.epochs=100"],
    "cnn": ["data=mnist1d", "model=mnist1d_cnn", "optim=adam", "train.batch_size=100", "train.epochs=2"],
    "gru": ["data=mnist1d", "model=mnist1d_gru", "optim=adam", "train.batch_size=100", "train.epochs=2"],
}
COMMON = ["logger=none", "output.plots=false", "hydra.launcher.progress=false"]


def sweep_seconds(model: str, members: int, devices: int, root: Path, repeat: int = 0) -> dict:
    """The launcher's phase seconds for ``members`` seeds of ``model`` on ``devices`` devices
    (a new sweep folder each time: a folder of finished jobs would be skipped, not trained)."""
    name = f"{model}-{members}-dev{devices}-{repeat}"
    log = root / f"{name}.log"
    cmd = [*harness_cmd(), "-m", *MODELS[model], f"seed=range(0,{members})", *COMMON,
           f"hydra.sweep.dir={root / name}"]
    env = {**os.environ, "HARNESS_CPU_DEVICES": str(devices), "HARNESS_CACHE_DIR": tempfile.mkdtemp(dir=root)}
    t0 = time.perf_counter()
    with log.open("w") as out:
        rc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=env).returncode
    row = {"model": model, "members": members, "devices": devices, "rc": rc,
           "wall_s": round(time.perf_counter() - t0, 2), "load": loadavg()}
    phases = launcher_line(str(log))  # launcher_compile_s, launcher_run_s, launcher_wall_s, ...
    row.update({k.removeprefix("launcher_"): v for k, v in phases.items() if k != "launcher_wall_s"})
    row["launcher_wall_s"] = phases.get("launcher_wall_s")
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="mlp,cnn,gru", help="comma-separated, of: " + ", ".join(MODELS))
    ap.add_argument("--members", default="8,32,64,256", help="comma-separated member counts")
    ap.add_argument("--rounds", type=int, default=1, help="repeats of each pair (the lower is kept)")
    ap.add_argument("--out", type=Path, help="also write the rows as JSON here")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="harness-devices-") as tmp:
        for model in args.models.split(","):
            for members in (int(m) for m in args.members.split(",")):
                for repeat in range(args.rounds):
                    for devices in (1, 2):
                        rows.append(sweep_seconds(model, members, devices, Path(tmp), repeat))
                        print(json.dumps(rows[-1]), flush=True)
    print("\n| model | members | devices | compile s | run s | launcher wall s | process wall s | load |")
    print("|---|---|---|---|---|---|---|---|")
    best: dict[tuple, dict] = {}
    for r in rows:  # the lower process wall of each (model, members, devices)
        key = (r["model"], r["members"], r["devices"])
        if key not in best or r["wall_s"] < best[key]["wall_s"]:
            best[key] = r
    for (model, members, devices), r in best.items():
        print(f"| {model} | {members} | {devices} | {r.get('compile_s', 'failed')} | {r.get('run_s', '-')} | "
              f"{r['launcher_wall_s']} | {r['wall_s']} | {r['load']} |")
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))
    return 0 if all(r["rc"] == 0 for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
