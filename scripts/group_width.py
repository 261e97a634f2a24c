"""Does a member's result depend on how many members its group has? (docs/reliability.md, 4.)

    python scripts/group_width.py

Trains seed 0 of the `regularization` claim's spiral setting (`kind=none`) alone, in a group
of 10 and in a group of 150 (seeds 0-9 repeated), for 5 and for 300 epochs, and prints how far
member 0's curves are from the group of one. The engine is bitwise given config, seed and
member count; another member count is another XLA program, which may round differently.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_compile import _compose  # noqa: E402

BASE = ["logger=none", "output.plots=false", "data=spiral", "data.noise=0.5", "data.train_fraction=0.3",
        "data.val_fraction=0.3", "data.features=[x1,x2,x1sq,x2sq,x1x2,sin_x1,sin_x2]", "model.activation=tanh",
        "model.hidden=[8,8,8]", "optim=sgd", "optim.lr=0.03", "train.batch_size=10"]


def main() -> int:
    from harness.runtime import setup_jax

    setup_jax()
    from harness.train.engine import run_group

    for epochs in (5, 300):
        curves = {}
        for width in (1, 10, 150):
            cfgs = [_compose(BASE + [f"train.epochs={epochs}", f"seed={i % 10}"]) for i in range(width)]
            curves[width] = run_group(cfgs).outputs[0]["curves"]
        for width in (10, 150):
            loss = np.abs(np.asarray(curves[width]["train/loss"]) - np.asarray(curves[1]["train/loss"]))
            first = int(np.argmax(loss > 0)) if loss.any() else None
            print(f"{epochs} epochs, group of {width} vs alone: max |train/loss difference| {loss.max():.3g} "
                  f"(first at evaluation {first}); final test accuracy "
                  f"{float(curves[width]['test/accuracy'][-1]):.4f} vs {float(curves[1]['test/accuracy'][-1]):.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
