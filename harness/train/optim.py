"""Optimizers and schedules (optax) built from traced numbers, so sweeping them never recompiles.

The optimizer *kind* and schedule *kind* are static (they change the program); every number
(learning rate, momentum, betas, eps, weight decay, warmup) comes in as a traced array. Building
the optax transformation inside the traced function is what makes that work: the closures
capture tracers, and init/update run in the same trace.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
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


class DeadLinksState(NamedTuple):
    """State of :func:`l1_dead_links`: the step count (for the schedule) and the dead weights."""

    count: jax.Array
    dead: Any  # a pytree like params: True where a weight is dead (always False at biases)


def l1_dead_links(rate, schedule) -> optax.GradientTransformation:
    """TensorFlow Playground's L1 step with its dead links (``nn.ts`` ``updateWeights``).

    Applied after the optimizer's own update (which then must not contain the L1 gradient):
    each weight, already moved by that update, moves a further ``lr * rate * sign(w)`` toward
    0, ``w`` being the weight *before* the step and ``lr`` the scheduled learning rate. A weight
    that this L1 move pushes across 0 is set to 0 and is dead from then on: never updated again
    (its gradient is ignored, as Playground skips dead links). Biases (rank-1 leaves) are not
    penalised. With ``rate`` 0 nothing crosses, so nothing dies.
    """

    def init(params):
        dead = jax.tree_util.tree_map(lambda p: jnp.zeros(p.shape, bool), params)
        return DeadLinksState(jnp.zeros((), jnp.int32), dead)

    def update(updates, state, params):
        shrink = schedule(state.count) * rate

        def one(u, p, dead):
            if p.ndim < 2:  # a bias: no penalty
                return u, dead
            stepped = p + u
            shrunk = stepped - shrink * jnp.sign(p)
            dead = dead | (stepped * shrunk < 0)
            # A dead weight (already 0, or set to 0 now) gets the update -w: it lands on 0 exactly.
            return jnp.where(dead, -p, shrunk - p), dead

        pairs = jax.tree_util.tree_map(one, updates, params, state.dead)
        new_updates = jax.tree_util.tree_map(lambda _, pair: pair[0], updates, pairs)
        new_dead = jax.tree_util.tree_map(lambda _, pair: pair[1], updates, pairs)
        return new_updates, DeadLinksState(state.count + 1, new_dead)

    return optax.GradientTransformation(init, update)


def make_optimizer(name: str, schedule_kind: str, hp: dict, total_steps: int,
                   dead_links: bool = False) -> optax.GradientTransformation:
    """One mechanism for every optimizer: direction (scale_by_*), decoupled weight decay, -lr.

    Weight decay is added to the update before the learning rate scales it, as in
    ``optax.adamw``, so it is decoupled from the gradient statistics for every optimizer.
    With ``dead_links`` the L1 penalty (rate ``hp["l1"]``) is Playground's separate step,
    :func:`l1_dead_links`, after the update; the caller then leaves it out of the loss.
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
    steps = [direction, optax.add_decayed_weights(hp["weight_decay"]), optax.scale_by_learning_rate(schedule)]
    if dead_links:
        steps.append(l1_dead_links(hp["l1"], schedule))
    return optax.chain(*steps)
