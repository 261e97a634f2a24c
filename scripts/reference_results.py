"""Results of a few small configs, stored so a refactor can show it changed no number.

    python scripts/reference_results.py            # (re)write tests/fixtures/reference_results.json
    python scripts/reference_results.py --add      # add this platform's records, keep the others'

Each case trains through the job lifecycle (train a group, store its members into a folder)
and keeps what the stored record says: metrics, status, budget, config hash, the curves file
as written, and a hash of the decision-boundary array. Floats stay exact: the curves file is
``repr`` of each float and JSON keeps every float's shortest round-trip form.
tests/test_reference_results.py trains the same cases with the code of the day and asserts
that every field equals the stored one. Regenerate only when a change is *meant* to change
results, and say so in the commit.

XLA compiles for the CPU it runs on, so the same code gives other last bits on another CPU
(an AMD EPYC with AVX2 against an Intel Xeon with AVX-512, measured). The records are stored
per platform (:func:`platform`: jaxlib version, CPU model and vector extensions): on a platform
with its own records the test is bitwise; elsewhere it compares with a stored platform's within
a tolerance and names the platform it lacks. Regenerating drops the other platforms' records
(a change meant to change results makes them stale); ``--add`` keeps them, for adding a
platform while the code's numbers stay as they are.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "reference_results.json"

# The CPU features XLA's code generation depends on that tell this project's machines apart.
SIMD = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile")
SMALL = ["logger=none", "output.plots=false"]
# case -> list of member override lists (several members: one fused compile group).
CASES: dict[str, list[list[str]]] = {
    "fnn_sgd": [SMALL + ["train.epochs=3", "optim=sgd"]],
    "fnn_adam_l2": [SMALL + ["train.epochs=3", "data=circle", "optim=adam", "regularizer=l2",
                             "regularizer.rate=0.001"]],
    "cnn_mnist1d": [SMALL + ["data=mnist1d", "model=cnn", "model.channels=[4,4]", "data.num_samples=500",
                             "train.epochs=2", "train.batch_size=50", "optim=adam", "optim.lr=0.01"]],
    "rnn_gru": [SMALL + ["data=sentiment", "model=rnn", "model.units=8", "data.num_samples=400",
                         "train.batch_size=20", "train.epochs=3", "optim=adam"]],
    "fused_group_of_4": [
        SMALL + ["train.epochs=3", "data=xor", f"optim.lr={lr}", f"seed={seed}"] + reg
        for lr, seed, reg in [(0.01, 0, []), (0.03, 0, ["regularizer=l1", "regularizer.rate=0.001"]),
                              (0.01, 1, ["regularizer=l2", "regularizer.rate=0.003"]), (0.1, 2, [])]
    ],
    "checkpointed_segments": [
        SMALL + ["train.epochs=5", "data=gauss", "train.checkpoint_every=2", f"seed={seed}"] for seed in (0, 1)
    ],
}


def cpu() -> dict[str, str]:
    """This machine's CPU model and the :data:`SIMD` extensions it has (``?`` off Linux)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {"cpu": "?", "simd": "?"}
    model = re.search(r"model name\s*:\s*(.*)", text)
    flags = re.search(r"flags\s*:\s*(.*)", text)
    have = set(flags.group(1).split()) if flags else set()
    return {"cpu": model.group(1).strip() if model else "?", "simd": " ".join(f for f in SIMD if f in have)}


def platform() -> dict[str, str]:
    """What a record's last bits depend on besides the code: jaxlib and the CPU."""
    import jaxlib

    return {"jaxlib": jaxlib.__version__, **cpu()}


def compose(overrides: list[str]):
    """The composed config ``harness-train <overrides>`` would run."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from harness.config import conf_dir, register_configs

    register_configs()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        return hydra_compose("config", overrides=list(overrides))


def train_and_store(cfgs: list, root: Path) -> list[Path]:
    """Train ``cfgs`` as one group and store every member under ``root`` (the job lifecycle,
    :func:`harness.job.run`); their folders."""
    from harness import job

    folders = [root / str(i) for i in range(len(cfgs))]
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    job.run(cfgs, folders, [[] for _ in cfgs], root)
    return folders


def stored_record(run_dir: Path) -> dict[str, Any]:
    """The result-bearing part of a stored run (no timings, versions or config echo)."""
    result = json.loads((run_dir / "result.json").read_text())
    record = {key: result.get(key) for key in ("status", "diverged_step", "metrics", "budget", "config_hash",
                                               "seed", "order_seed", "confusion_matrix")}
    record["curves_csv"] = (run_dir / "curves.csv").read_text()
    boundary = run_dir / "boundary.npz"
    if boundary.exists():
        import numpy as np

        with np.load(boundary) as npz:
            array = npz["boundary"]
            record["boundary"] = {"shape": list(array.shape), "dtype": str(array.dtype),
                                  "sha256": hashlib.sha256(array.tobytes()).hexdigest()}
    return record


def compute(case: str, root: Path) -> list[dict[str, Any]]:
    """Every member's stored record of one case, trained into ``root``."""
    cfgs = [compose(overrides) for overrides in CASES[case]]
    return [stored_record(folder) for folder in train_and_store(cfgs, root)]


def main() -> None:
    """Train every case with the current code and write this platform's records."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--add", action="store_true", help="keep the other platforms' records")
    args = parser.parse_args()
    from harness.runtime import setup_jax

    setup_jax()  # the device count harness-train uses (tests/conftest.py sets the same)
    here = platform()
    cases: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for case in CASES:
            cases[case] = compute(case, Path(tmp) / case)
            print(f"{case}: {len(cases[case])} member(s)", file=sys.stderr)
    others = json.loads(FIXTURE.read_text())["platforms"] if FIXTURE.exists() else []
    others = [p for p in others if p["platform"] != here]
    if others and not args.add:
        print("dropped the records of " + "; ".join(json.dumps(p["platform"]) for p in others)
              + " (stale once the numbers change; --add keeps them)", file=sys.stderr)
        others = []
    out = {"about": "written by scripts/reference_results.py; compared by tests/test_reference_results.py",
           "platforms": [*others, {"platform": here, "cases": cases}]}
    FIXTURE.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    print(FIXTURE)


if __name__ == "__main__":
    main()
