"""Optimizers and schedules (optax) built from traced numbers, so sweeping them never recompiles.

The optimizer *kind* and schedule *kind* are static (they change the program); every number
(learning rate, momentum, betas, eps, weight decay, warmup) comes in as a traced array. Building
the optax transformation inside the traced function is what makes that work: the closures
capture tracers, and init/update run in the same trace.
"""

from __future__ import annotations

import jax.numpy as jnp
import optax

from harness.errors import ConfigError

OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop")
SCHEDULES = ("constant", "cosine", "warmup", "warmup_cosine")


def make_schedule(kind: str, lr, warmup_steps, final_fraction, total_steps: int):
    """Learning rate as a function of the step count; ``total_steps`` is static."""
    if kind not in SCHEDULES:
        raise ConfigError("optim.schedule.kind", kind, SCHEDULES)
    total = max(int(total_steps), 1)

    def schedule(step):
        step = jnp.asarray(step, jnp.float32)
        factor = jnp.ones((), jnp.float32)
        if kind in ("warmup", "warmup_cosine"):
            factor = jnp.minimum(1.0, (step + 1.0) / jnp.maximum(warmup_steps, 1.0))
        if kind in ("cosine", "warmup_cosine"):
            start = warmup_steps if kind == "warmup_cosine" else 0.0
            progress = jnp.clip((step - start) / jnp.maximum(total - start, 1.0), 0.0, 1.0)
            cosine = 0.5 * (1.0 + jnp.cos(jnp.pi * progress))
            factor = factor * (final_fraction + (1.0 - final_fraction) * cosine)
        return lr * factor

    return schedule


def make_optimizer(name: str, schedule_kind: str, hp: dict, total_steps: int) -> optax.GradientTransformation:
    """One mechanism for every optimizer: direction (scale_by_*), decoupled weight decay, -lr.

    Weight decay is added to the update before the learning rate scales it, as in
    ``optax.adamw``, so it is decoupled from the gradient statistics for every optimizer.
    """
    if name not in OPTIMIZERS:
        raise ConfigError("optim.name", name, OPTIMIZERS)
    if name == "sgd":
        direction = optax.identity()
    elif name in ("momentum", "nesterov"):
        direction = optax.trace(decay=hp["momentum"], nesterov=name == "nesterov")
    elif name in ("adam", "adamw"):
        direction = optax.scale_by_adam(b1=hp["b1"], b2=hp["b2"], eps=hp["eps"])
    else:  # rmsprop
        direction = optax.scale_by_rms(decay=hp["decay"], eps=hp["eps"])
    schedule = make_schedule(schedule_kind, hp["lr"], hp["warmup_steps"], hp["final_fraction"], total_steps)
    return optax.chain(
        direction,
        optax.add_decayed_weights(hp["weight_decay"]),
        optax.scale_by_learning_rate(schedule),
    )
