"""The floor under a fused sweep's run phase: a bare vmapped SGD step, hand-written.

The issue's spiral sweep trains an MLP 2-8-8-2 (tanh, softmax cross-entropy, plain SGD) at
batch 10 for 2,500 steps per member. This times the smallest program that does that work for
``M`` members at once: ``jit(fori_loop(vmap(sgd_step)))`` with nothing else (no evaluation,
no divergence masking, no data order, no curves), after a warm-up call. Its seconds per step
times the sweep's steps is a lower bound on any ``jit(vmap(train))`` of the sweep on this
machine; ``docs/benchmarks.md`` sets it beside the harness's measured run phase.

    python scripts/profile_step.py                       # 256, 1024 and 4096 members
    python scripts/profile_step.py --members 4096 --steps 200
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.runtime import setup_jax  # noqa: E402 - the harness's own JAX settings first

SIZES = (2, 8, 8, 2)  # the sweep's model
BATCH = 10
SWEEP_STEPS = 2500  # 100 epochs of 25 steps (250 training points, batch 10)


def bare_step_seconds(members: int, steps: int) -> float:
    """Seconds per optimizer step of ``members`` members trained by a bare vmapped SGD loop."""
    import jax
    import jax.numpy as jnp

    key = jax.random.PRNGKey(0)
    shapes = list(zip(SIZES[:-1], SIZES[1:]))
    params = [(jax.random.normal(jax.random.fold_in(key, i), (members, a, b)) * 0.5, jnp.zeros((members, b)))
              for i, (a, b) in enumerate(shapes)]
    x = jax.random.normal(key, (members, BATCH, SIZES[0]))
    y = jax.random.randint(key, (members, BATCH), 0, SIZES[-1])
    lr = jnp.full((members,), 0.1)

    def loss(params, x, y):
        h = x
        for i, (w, b) in enumerate(params):
            h = h @ w + b
            if i < len(params) - 1:
                h = jnp.tanh(h)
        return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(h), y[:, None], 1))

    def step(params, x, y, lr):
        grads = jax.grad(loss)(params, x, y)
        return jax.tree_util.tree_map(lambda p, g: p - lr * g, params, grads)

    vstep = jax.vmap(step)

    @jax.jit
    def run(params):
        return jax.lax.fori_loop(0, steps, lambda _, p: vstep(p, x, y, lr), params)

    jax.block_until_ready(run(params))  # compile and warm up
    t0 = time.perf_counter()
    jax.block_until_ready(run(params))
    return (time.perf_counter() - t0) / steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--members", type=int, nargs="+", default=[256, 1024, 4096])
    ap.add_argument("--steps", type=int, default=500, help="steps timed per size (after a warm-up call)")
    args = ap.parse_args()
    setup_jax()
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"bare vmapped SGD step, MLP {'-'.join(map(str, SIZES))}, batch {BATCH}; load {load}")
    print("| members | ms per step | µs per member-step | × 2,500 steps (the sweep), s |")
    print("|---|---|---|---|")
    for m in args.members:
        s = bare_step_seconds(m, args.steps)
        print(f"| {m} | {s * 1e3:.2f} | {s / m * 1e6:.2f} | {s * SWEEP_STEPS:.1f} |", flush=True)


if __name__ == "__main__":
    main()
