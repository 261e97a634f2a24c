"""Compile time of the engine's program against a plain hand-written ``jit(vmap(train))``.

    python scripts/bench_compile.py                 # every program, 2 rounds, a table
    python scripts/bench_compile.py --rounds 3

For each program (the Playground MLP on spiral, the MNIST-1D reference CNN and GRU) two fresh
processes compile the same training of 32 members with no persistent compile cache:

- **harness**: the engine's program (``harness.train.engine.GroupProgram.compile``: trace,
  lower and compile the init, segment and finish programs), as a sweep or run compiles it;
- **reference**: the same training written as a purejaxrl-style ``jit(vmap(train))`` by
  hand: the same Flax module (``harness.models.build_model``), the same optax optimizer, a
  ``lax.scan`` over epochs around a ``lax.scan`` over minibatches of a fresh permutation,
  and loss and accuracy of every split after each epoch (what the harness records). It has
  none of the harness's extras (divergence masking, the step counter's branch, the confusion
  matrix, the boundary field, dynamic hyperparameters beyond the learning rate).

Each side's time is the best of ``--rounds`` processes (compile times on a shared machine are
noisy upwards). The load average is printed beside the table; the goal (issue "pay for
training") is a ratio of at most 1.0.
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

ROOT = Path(__file__).resolve().parent.parent
MEMBERS = 32
# name -> (title, overrides): each trains a few epochs, so compile, not run, is measured.
PROGRAMS = {
    "spiral_mlp": ("Playground MLP 2-8-8-2 tanh, SGD, batch 10, spiral, 50 epochs",
                   ["data=spiral", "model=fnn", "optim=sgd", "train.batch_size=10", "train.epochs=50"]),
    "mnist1d_cnn": ("MNIST-1D reference CNN, Adam, batch 100, 2 epochs",
                    ["data=mnist1d", "model=mnist1d_cnn", "optim=adam", "train.batch_size=100", "train.epochs=2"]),
    "mnist1d_gru": ("MNIST-1D reference bidirectional GRU, Adam, batch 100, 1 epoch",
                    ["data=mnist1d", "model=mnist1d_gru", "optim=adam", "train.batch_size=100", "train.epochs=1"]),
}
COMMON = ["logger=none", "output.plots=false"]


def _compose(overrides: list[str]):
    from hydra import compose, initialize_config_dir

    from harness.config import register_configs

    register_configs()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose(config_name="config", overrides=overrides)


def compile_harness(overrides: list[str]) -> float:
    """Seconds to build and compile the engine's program for MEMBERS members (data loaded first)."""
    from harness.data.cache import dataset_for
    from harness.train.engine import GroupProgram

    cfgs = [_compose(overrides + [f"seed={i}"]) for i in range(MEMBERS)]
    dataset = dataset_for(cfgs[0])
    t0 = time.perf_counter()
    GroupProgram(cfgs, dataset=dataset).compile()
    return time.perf_counter() - t0


def compile_reference(overrides: list[str]) -> float:
    """Seconds to trace, lower and compile the hand-written ``jit(vmap(train))``."""
    program, args = reference_program(overrides)
    t0 = time.perf_counter()
    program.lower(*args).compile()
    return time.perf_counter() - t0


def reference_program(overrides: list[str]):
    """The hand-written ``jit(vmap(train))`` (not yet traced) and its arguments."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax

    from harness.data.cache import dataset_for
    from harness.models import build_model

    cfg = _compose(overrides)
    ds = dataset_for(cfg)
    model = build_model(cfg.model, layout=ds.layout, input_shape=ds.input_shape, num_outputs=ds.num_classes,
                        vocab_size=ds.vocab_size, targets=ds.targets)
    x_train, y_train = jnp.asarray(ds.x_train), jnp.asarray(ds.y_train)
    x_eval = jnp.asarray(np.concatenate([ds.x_train, ds.x_val, ds.x_test]))
    y_eval = jnp.asarray(np.concatenate([ds.y_train, ds.y_val, ds.y_test]))
    sizes = [len(ds.x_train), len(ds.x_val), len(ds.x_test)]
    split = jnp.asarray(np.repeat(np.arange(3), sizes))
    batch, epochs, n = int(cfg.train.batch_size), int(cfg.train.epochs), len(ds.x_train)
    steps = n // batch
    make_tx = {"sgd": optax.sgd, "adam": optax.adam}[str(cfg.optim.name)]

    def train(lr, key):
        init_key, order_key = jax.random.split(key)
        params = model.init(init_key, x_train[:1], train=False)["params"]
        tx = make_tx(lr)
        opt_state = tx.init(params)

        def loss_fn(p, x, y):
            logits = model.apply({"params": p}, x, train=True)
            return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

        def epoch(carry, e):
            def step(c, idx):
                p, s = c
                grads = jax.grad(loss_fn)(p, x_train[idx], y_train[idx])
                updates, s = tx.update(grads, s, p)
                return (optax.apply_updates(p, updates), s), None

            order = jax.random.permutation(jax.random.fold_in(order_key, e), n)[: steps * batch]
            (p, s), _ = jax.lax.scan(step, carry, order.reshape(steps, batch))
            logits = model.apply({"params": p}, x_eval, train=False)
            losses = optax.softmax_cross_entropy_with_integer_labels(logits, y_eval)
            hits = (logits.argmax(-1) == y_eval).astype(jnp.float32)
            per_split = [(jnp.sum(jnp.where(split == k, losses, 0)) / max(sizes[k], 1),
                          jnp.sum(jnp.where(split == k, hits, 0)) / max(sizes[k], 1)) for k in range(3)]
            return (p, s), per_split

        (params, _), curves = jax.lax.scan(epoch, (params, opt_state), jnp.arange(epochs))
        return params, curves

    lrs = jnp.full((MEMBERS,), float(cfg.optim.lr))
    keys = jax.vmap(jax.random.PRNGKey)(jnp.arange(MEMBERS))
    return jax.jit(jax.vmap(train)), (lrs, keys)


def _worker(side: str, name: str) -> None:
    from harness.runtime import setup_jax

    setup_jax()  # the harness's own JAX settings (its CPU compile flag) on both sides
    overrides = PROGRAMS[name][1] + COMMON
    seconds = compile_harness(overrides) if side == "harness" else compile_reference(overrides)
    print(json.dumps({"seconds": seconds}))


def cold_worker(script: str | Path, side: str, name: str) -> dict:
    """Run ``script --worker side name`` in a fresh process with no persistent compile cache;
    return the JSON object its last line prints."""
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "HARNESS_COMPILE_CACHE": "0", "HARNESS_CACHE_DIR": cache,
               "JAX_COMPILATION_CACHE_DIR": str(Path(cache) / "xla")}
        out = subprocess.run([sys.executable, str(script), "--worker", side, name], env=env, capture_output=True,
                             text=True, check=True, timeout=900)
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(name: str, side: str) -> float:
    """One fresh process, no persistent compile cache: the compile seconds it reports."""
    return cold_worker(__file__, side, name)["seconds"]


def run(rounds: int) -> list[dict]:
    """Every program, both sides interleaved (so load drifts hit both alike): best of ``rounds``."""
    rows = []
    for name, (title, _) in PROGRAMS.items():
        times: dict[str, list[float]] = {"harness": [], "reference": []}
        for _ in range(rounds):
            for side in times:
                times[side].append(measure(name, side))
        best = {side: min(ts) for side, ts in times.items()}
        rows.append({"program": name, "title": title, **{f"{s}_s": best[s] for s in best},
                     "ratio": best["harness"] / best["reference"], "all": times})
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| program | harness compile s | hand-written jit(vmap(train)) s | ratio | goal <= 1.0 |",
             "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['title']} | {r['harness_s']:.2f} | {r['reference_s']:.2f} | {r['ratio']:.2f}x | "
                     f"{'met' if r['ratio'] <= 1.0 else 'not met'} |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        _worker(*args.worker)
        return 0
    start = os.getloadavg()
    rows = run(args.rounds)
    end = os.getloadavg()
    print(f"{MEMBERS} members, cold (no persistent cache), best of {args.rounds} processes each; "
          f"load average {start[0]:.2f} at start, {end[0]:.2f} at end; {os.cpu_count()} cores")
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
