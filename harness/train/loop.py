"""``make_train(cfg, dataset)`` -> a pure ``train(hparams, key, data) -> Metrics``.

Everything that changes shapes or code (data set, model, activation, batch size, budget,
optimizer and schedule kind, loss) is read from ``cfg`` once, here, in Python. Everything that
is a number (learning rate, momentum, betas, penalty rates, weight decay, init scale, seeds)
arrives in ``hparams`` as arrays, so the same compiled program serves a whole sweep under
``jax.vmap`` — a single run is a group of one member.

The run stays on the device: an outer ``lax.scan`` over evaluation periods, an inner one over
optimizer steps. The data arrive as the third argument rather than as closed-over constants so
they are shared (``in_axes=None``) by every member and not baked into the program.

Divergence is handled by masking, never branching on a member's values: a step whose loss or
parameters are not finite is discarded, the member is marked diverged at that step and its
parameters stay frozen from then on. Conditionals here (``lax.cond``) only test the step
counter, which every member shares, so under ``vmap`` they stay real branches.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from harness.data.base import Dataset
from harness.models import build_model
from harness.train import objective
from harness.train.optim import make_optimizer

EVAL_CHUNK = 1024  # examples per evaluation chunk: bounds memory for large test sets


@dataclasses.dataclass(frozen=True)
class Budget:
    """How long a run trains, in the unit the user chose, and the steps that implies."""

    kind: str  # epochs | steps | examples
    size: int
    batch_size: int
    steps_per_epoch: int
    total_steps: int
    eval_every: int

    @property
    def num_evals(self) -> int:
        """Evaluation periods after the initial evaluation at step 0."""
        return math.ceil(self.total_steps / self.eval_every)

    @property
    def examples_seen(self) -> int:
        return self.total_steps * self.batch_size

    def eval_steps(self) -> np.ndarray:
        """Optimizer steps at which the curves are measured (0 = before training)."""
        ends = np.minimum((np.arange(self.num_evals) + 1) * self.eval_every, self.total_steps)
        return np.concatenate([[0], ends]).astype(np.int32)

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "size": self.size,
            "batch_size": self.batch_size,
            "steps": self.total_steps,
            "epochs": self.total_steps / self.steps_per_epoch,
            "examples": self.examples_seen,
            "eval_every": self.eval_every,
        }


def make_budget(train_cfg, n_train: int) -> Budget:
    """Turn ``train.{epochs,steps,examples}`` into steps: steps or examples if set, else epochs.

    An epoch is ``n_train // batch_size`` steps (the incomplete last batch is dropped, so
    every step sees exactly ``batch_size`` examples).
    """
    batch = int(train_cfg.batch_size)
    spe = max(n_train // batch, 1)
    if train_cfg.steps is not None:
        kind, size, total = "steps", int(train_cfg.steps), int(train_cfg.steps)
    elif train_cfg.examples is not None:
        kind, size = "examples", int(train_cfg.examples)
        total = math.ceil(size / batch)
    else:
        kind, size = "epochs", int(train_cfg.epochs)
        total = size * spe
    eval_every = int(train_cfg.eval_every) if train_cfg.eval_every else spe
    return Budget(kind, size, batch, spe, max(total, 1), min(eval_every, max(total, 1)))


def _split_names(dataset: Dataset) -> list[str]:
    """Splits evaluated each period; an empty validation split is skipped statically."""
    return ["train"] + (["val"] if len(dataset.x_val) else []) + ["test"]


def make_train(cfg, dataset: Dataset) -> tuple[Callable, Budget]:
    """Build the pure training function for one compile group.

    Returns ``(train, budget)`` where ``train(hparams, key, data)`` maps a dict of scalar
    arrays (see :func:`harness.sweep.plan.hparams_of`), a PRNG key (init and dropout) and the
    data dict (``Dataset.arrays()`` plus optional ``x_grid``) to a Metrics pytree:

    - ``curves``: ``{"<split>/loss", "<split>/accuracy" | "<split>/mse", ...}`` of shape
      ``[num_evals + 1]`` (index 0 is before training), plus ``gns/*`` when measured;
    - ``confusion``: test confusion matrix ``[classes, classes]`` (classification);
    - ``diverged`` (bool), ``diverged_step`` (int, -1 if none);
    - ``weight_sparsity``: fraction of |w| < 1e-3 at the end;
    - ``boundary``: model field on ``data["x_grid"]`` when given;
    - ``params``: final parameters.
    """
    task = dataset.task
    loss_kind = objective.resolve_loss(str(cfg.train.loss), task)
    num_outputs = objective.num_model_outputs(loss_kind, task, dataset.num_classes)
    model = build_model(
        cfg.model,
        layout=dataset.layout,
        input_shape=dataset.input_shape,
        num_outputs=num_outputs,
        vocab_size=dataset.vocab_size,
        targets=dataset.targets,
    )
    n_train = len(dataset.x_train)
    budget = make_budget(cfg.train, n_train)
    batch, spe = budget.batch_size, budget.steps_per_epoch
    splits = _split_names(dataset)
    metric = "accuracy" if task == "classification" else "mse"
    num_classes = dataset.num_classes
    optimizer_name = str(cfg.optim.name)
    schedule_kind = str(cfg.optim.schedule.kind)
    measure_gns = bool(cfg.train.grad_noise_scale)
    dropout = float(cfg.model.dropout) > 0

    def apply(params, x, train, rng):
        rngs = {"dropout": rng} if (train and dropout) else None
        return model.apply({"params": params}, x, train=train, rngs=rngs)

    def batch_loss(params, x, y, rng, l1, l2):
        out = apply(params, x, True, rng)
        data_loss = jnp.mean(objective.per_example_loss(loss_kind, out, y, task))
        return data_loss + objective.penalty(params, l1, l2), data_loss

    grad_fn = jax.value_and_grad(batch_loss, has_aux=True)

    def split_sums(out, y, weight):
        """Sums of loss, metric, weight and confusion counts over one chunk of a split."""
        losses = objective.per_example_loss(loss_kind, out, y, task)
        w = jnp.broadcast_to(weight.reshape(weight.shape + (1,) * (losses.ndim - weight.ndim)), losses.shape)
        conf = jnp.zeros((max(num_classes, 1) ** 2,), jnp.float32)
        if task == "classification":
            pred = objective.predict_class(loss_kind, out)
            hits = (pred == y).astype(jnp.float32)
            # A one-hot outer product, not bincount: a scatter costs far more to compile.
            true_1h = jax.nn.one_hot(y.reshape(-1), num_classes) * w.reshape(-1, 1)
            conf = (true_1h.T @ jax.nn.one_hot(pred.reshape(-1), num_classes)).reshape(-1)
        else:
            hits = jnp.square(objective.regression_prediction(loss_kind, out) - y)
        return jnp.stack([jnp.sum(losses * w), jnp.sum(hits * w), jnp.sum(w)]), conf

    def evaluate(params, x, y):
        """Mean loss, metric and (classification) confusion counts over a whole split."""
        n = x.shape[0]
        if n <= EVAL_CHUNK:  # one chunk: no loop to compile
            sums, conf = split_sums(apply(params, x, False, None), y, jnp.ones((n,), jnp.float32))
        else:  # chunks bound the memory of large test sets; padding rows get weight 0
            n_chunks = math.ceil(n / EVAL_CHUNK)
            pad = n_chunks * EVAL_CHUNK - n

            def chunked(a):
                a = jnp.concatenate([a, jnp.zeros((pad,) + a.shape[1:], a.dtype)])
                return a.reshape((n_chunks, EVAL_CHUNK) + a.shape[1:])

            weight = chunked(jnp.ones((n,), jnp.float32))

            def one(carry, inputs):
                xc, yc, wc = inputs
                sums, conf = split_sums(apply(params, xc, False, None), yc, wc)
                return (carry[0] + sums, carry[1] + conf), None

            init = (jnp.zeros(3), jnp.zeros((max(num_classes, 1) ** 2,), jnp.float32))
            (sums, conf), _ = jax.lax.scan(one, init, (chunked(x), chunked(y), weight))
        return sums[0] / sums[2], sums[1] / sums[2], conf

    def evaluate_all(params, data):
        values = {}
        for split in splits:
            loss, value, _ = evaluate(params, data[f"x_{split}"], data[f"y_{split}"])
            values[f"{split}/loss"] = loss
            values[f"{split}/{metric}"] = value
        return values

    def train(hparams: dict[str, jax.Array], key: jax.Array, data: dict[str, jax.Array]) -> dict[str, Any]:
        init_key, dropout_key = jax.random.split(key)
        order_key = jax.random.PRNGKey(hparams["order_seed"])
        x_train, y_train = data["x_train"], data["y_train"]
        params = model.init({"params": init_key, "dropout": dropout_key}, x_train[:1], train=False)["params"]
        # init_scale multiplies weights (not biases): a dynamic knob on the init's spread.
        params = jax.tree_util.tree_map(lambda p: p * hparams["init_scale"] if p.ndim >= 2 else p, params)
        tx = make_optimizer(optimizer_name, schedule_kind, hparams, budget.total_steps)
        opt_state = tx.init(params)

        def new_order(epoch):
            return jax.random.permutation(jax.random.fold_in(order_key, epoch), n_train)

        def step_fn(carry, step):
            params, opt_state, order, diverged, diverged_step, gsq_sum = carry
            pos = step % spe
            # The step counter is shared by all members, so these conds stay real branches.
            order = jax.lax.cond(pos == 0, lambda: new_order(step // spe), lambda: order)

            def do_step(_):
                idx = jax.lax.dynamic_slice(order, (pos * batch,), (batch,))
                x, y = x_train[idx], y_train[idx]
                (_, _), grads = grad_fn(params, x, y, jax.random.fold_in(dropout_key, step), hparams["l1"], hparams["l2"])
                updates, new_state = tx.update(grads, opt_state, params)
                new_params = optax.apply_updates(params, updates)
                finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(p)) for p in jax.tree_util.tree_leaves(new_params)]))
                ok = finite & ~diverged
                keep = lambda new, old: jnp.where(ok, new, old)  # noqa: E731
                next_params = jax.tree_util.tree_map(keep, new_params, params)
                next_state = jax.tree_util.tree_map(keep, new_state, opt_state)
                newly = ~finite & ~diverged
                gsq = optax.tree.norm(grads, squared=True) if measure_gns else jnp.zeros(())
                return (
                    next_params,
                    next_state,
                    diverged | newly,
                    jnp.where(newly, step, diverged_step),
                    gsq_sum + jnp.where(ok, gsq, 0.0),
                )

            def skip(_):  # steps past the budget in the last period
                return params, opt_state, diverged, diverged_step, gsq_sum

            params, opt_state, diverged, diverged_step, gsq_sum = jax.lax.cond(
                step < budget.total_steps, do_step, skip, None
            )
            return (params, opt_state, order, diverged, diverged_step, gsq_sum), None

        def period_fn(carry, period):
            steps = period * budget.eval_every + jnp.arange(budget.eval_every)
            carry = carry[:-1] + (jnp.zeros(()),)  # reset the per-period gradient-norm sum
            carry, _ = jax.lax.scan(step_fn, carry, steps)
            params = carry[0]
            values = evaluate_all(params, data)
            if measure_gns:
                n_steps = jnp.minimum(budget.eval_every, budget.total_steps - period * budget.eval_every)
                values.update(_grad_noise_scale(params, carry[-1] / n_steps, hparams))
            return carry, values

        def _grad_noise_scale(params, small_gsq, hparams):
            # McCandlish et al. 2018, appendix A: two batch sizes, B_small = the training batch
            # (mean |G|^2 over the period's steps), B_big = the whole training set.
            (_, _), g_big = grad_fn(params, x_train, y_train, dropout_key, 0.0, 0.0)
            big_gsq = optax.tree.norm(g_big, squared=True)
            b_small, b_big = float(batch), float(n_train)
            g2 = (b_big * big_gsq - b_small * small_gsq) / (b_big - b_small)
            trace = (small_gsq - big_gsq) / (1.0 / b_small - 1.0 / b_big)
            return {"gns/grad_sq": g2, "gns/trace_cov": trace, "gns/b_simple": trace / g2}

        initial_values = evaluate_all(params, data)
        if measure_gns:
            initial_values.update({k: jnp.full((), jnp.nan) for k in ("gns/grad_sq", "gns/trace_cov", "gns/b_simple")})
        order0 = jnp.arange(n_train)
        carry0 = (params, opt_state, order0, jnp.zeros((), bool), jnp.full((), -1, jnp.int32), jnp.zeros(()))
        carry, period_values = jax.lax.scan(period_fn, carry0, jnp.arange(budget.num_evals))
        params, diverged, diverged_step = carry[0], carry[3], carry[4]
        curves = {k: jnp.concatenate([initial_values[k][None], period_values[k]]) for k in period_values}
        result = {
            "curves": curves,
            "diverged": diverged,
            "diverged_step": diverged_step,
            "weight_sparsity": objective.weight_sparsity(params),
            "params": params,
        }
        if task == "classification":
            _, _, confusion = evaluate(params, data["x_test"], data["y_test"])
            result["confusion"] = confusion.reshape(num_classes, num_classes)
        if "x_grid" in data:
            result["boundary"] = objective.boundary_value(loss_kind, apply(params, data["x_grid"], False, None), task)
        return result

    return train, budget
