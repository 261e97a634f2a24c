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
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from omegaconf import OmegaConf

from harness.data.base import Dataset
from harness.models import build_model
from harness.train import objective, transfer
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


ORDERS = ("reshuffle", "fixed", "stored")
PARTIAL_BATCHES = ("drop", "carry")


def epoch_orders(order: str, order_key: jax.Array, epochs: jax.Array, n_train: int) -> jax.Array:
    """The sample order of each of ``epochs``: int [len(epochs), n_train] (``train.order``).

    - ``reshuffle``: a new permutation every epoch, seeded by the data-order seed and the epoch;
    - ``fixed``: one permutation for every epoch (epoch 0's of ``reshuffle``);
    - ``stored``: the training split's own order every epoch, as TensorFlow Playground trains
      (its points are shuffled once, when they are generated, as they are here).
    """
    if order == "reshuffle":
        keys = jax.vmap(lambda e: jax.random.fold_in(order_key, e))(epochs)
        return jax.vmap(lambda k: jax.random.permutation(k, n_train))(keys)
    if order == "fixed":
        perm = jax.random.permutation(jax.random.fold_in(order_key, 0), n_train)
    else:
        perm = jnp.arange(n_train)
    return jnp.broadcast_to(perm, (epochs.shape[0], n_train))


def leftover_batches(orders: jax.Array, rows: jax.Array, steps: jax.Array, spe: int, batch: int,
                     n_train: int) -> tuple[jax.Array, jax.Array]:
    """``train.partial_batch=carry``: the examples each step adds to its batch, and their weights.

    TensorFlow Playground (``oneStep`` in playground.ts) updates after every ``batch``-th
    example of an epoch; the ``n_train % batch`` examples after the last update stay
    accumulated and join the next epoch's first update, which averages over ``batch`` plus
    those. So an epoch still has ``n_train // batch`` updates; the first of every epoch after
    the first takes the previous epoch's leftover (its last ``n_train % batch`` examples, in
    that epoch's order). ``rows`` index ``orders`` by each step's epoch; row ``rows - 1`` is
    the epoch before it. Returns indices [steps, leftover] and weights (1 = in the batch).
    """
    leftover = n_train - spe * batch
    previous = orders[jnp.maximum(rows - 1, 0)]  # [steps, n_train]
    idx = previous[:, spe * batch + jnp.arange(leftover)]
    joins = (steps % spe == 0) & (steps >= spe)  # first step of an epoch after the first
    weights = jnp.broadcast_to(joins[:, None], idx.shape).astype(jnp.float32)
    return idx, weights


SPLITS = ("train", "val", "test")
GNS_CURVES = ("gns/grad_sq", "gns/trace_cov", "gns/b_simple")  # train.grad_noise_scale=true
GNS_BATCHES = 16  # training batches whose gradients give the small-batch norm at each evaluation


def eval_splits(dataset: Dataset) -> list[str]:
    """The splits a run evaluates: those of ``SPLITS`` that hold examples."""
    return [s for s, n in zip(SPLITS, (len(dataset.x_train), len(dataset.x_val), len(dataset.x_test))) if n]


def quality_metric(task: str) -> str:
    """The curve recorded beside the loss: ``accuracy`` for classes, ``mse`` for regression."""
    return "accuracy" if task == "classification" else "mse"
class StepCarry(NamedTuple):
    """What the step scan carries: the training state (between segments, a dict of these)."""

    params: Any
    opt_state: Any
    diverged: jax.Array
    diverged_step: jax.Array


STATE_KEYS = StepCarry._fields


def prepare_data(dataset: Dataset, grid: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The data dict ``train`` takes: the training split, plus every split stacked for evaluation.

    Evaluating train, val and test as one array (with per-split weights) puts a single copy of
    the model's forward pass into the program instead of one per split, which keeps compile
    time down; ``w_eval[s, i]`` is 1 where example ``i`` belongs to split ``s``.
    """
    xs = [dataset.x_train, dataset.x_val, dataset.x_test]
    ys = [dataset.y_train, dataset.y_val, dataset.y_test]
    sizes = [len(x) for x in xs]
    w_eval = np.zeros((len(SPLITS), sum(sizes)), np.float32)
    start = 0
    for s, n in enumerate(sizes):
        w_eval[s, start : start + n] = 1.0
        start += n
    data = {
        "x_train": dataset.x_train,
        "y_train": dataset.y_train,
        "x_eval": np.concatenate(xs),
        "y_eval": np.concatenate(ys),
        "w_eval": w_eval,
    }
    if grid is not None:
        data["x_grid"] = grid
    return data


@dataclasses.dataclass(frozen=True)
class Segments:
    """A run split into resumable pieces, all pure and ``vmap``-able over members.

    - ``init(hparams, key, data) -> state``: parameters, optimizer state, divergence flags;
    - ``advance(state, hparams, key, data, periods) -> (state, (curves, confusions))``:
      evaluation periods ``periods`` (an int array; period 0 is the initial evaluation, periods
      past the budget do nothing and their curve entries are to be dropped);
    - ``finish(state, hparams, key, data, curves, confusions) -> Metrics``.

    ``train`` chains them over all periods. Running ``advance`` over consecutive slices of the
    periods gives bitwise the same result as one call (the step code is identical), which is
    what checkpointing, preemption resume and the live playground build on.
    """

    init: Callable
    advance: Callable
    finish: Callable
    budget: Budget

    @property
    def num_periods(self) -> int:
        """Periods of a whole run, including the initial evaluation (period 0)."""
        return self.budget.num_evals + 1

    def train(self, hparams, key, data):
        """The whole run in one call (one ``lax.scan`` over every period)."""
        state = self.init(hparams, key, data)
        state, (curves, confusions) = self.advance(state, hparams, key, data, jnp.arange(self.num_periods))
        return self.finish(state, hparams, key, data, curves, confusions)


def make_train(cfg, dataset: Dataset) -> tuple[Callable, Budget]:
    """Build the pure training function for one compile group.

    Returns ``(train, budget)`` where ``train(hparams, key, data)`` maps a dict of scalar
    arrays (see :func:`harness.train.hparams.hparams_of`), a PRNG key (init and dropout) and the
    data dict (:func:`prepare_data`) to a Metrics pytree:

    - ``curves``: ``{"<split>/loss", "<split>/accuracy" | "<split>/mse", ...}`` of shape
      ``[num_evals + 1]`` (index 0 is before training), plus ``gns/*`` when measured;
    - ``confusion``: test confusion matrix ``[classes, classes]`` (classification);
    - ``diverged`` (bool), ``diverged_step`` (int, -1 if none);
    - ``weight_sparsity``: fraction of |w| < 1e-3 at the end;
    - ``boundary``: model field on ``data["x_grid"]`` when given;
    - ``params``: final parameters.
    """
    segments = make_segments(cfg, dataset)
    return segments.train, segments.budget


def make_segments(cfg, dataset: Dataset) -> Segments:
    """Build :class:`Segments` (init / advance / finish) for one compile group; see
    :func:`make_train` for what the finished run returns."""
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
    batch, spe, period = budget.batch_size, budget.steps_per_epoch, budget.eval_every
    splits = eval_splits(dataset)
    split_rows = [SPLITS.index(s) for s in splits]
    metric = quality_metric(task)
    num_classes = dataset.num_classes
    optimizer_name = str(cfg.optim.name)
    schedule_kind = str(cfg.optim.schedule.kind)
    measure_gns = bool(cfg.train.grad_noise_scale)
    dropout = float(cfg.model.dropout) > 0
    gns_names = GNS_CURVES
    # Playground's behaviours (docs/playground.md), each off by default.
    order = str(OmegaConf.select(cfg, "train.order", default="reshuffle"))
    # The leftover partial batch joins the next epoch's first batch (a no-op when none is left).
    carry_leftover = (str(OmegaConf.select(cfg, "train.partial_batch", default="drop")) == "carry"
                      and n_train % batch != 0)
    dead_links = bool(OmegaConf.select(cfg, "regularizer.dead_links", default=False))
    # Transfer (harness.train.transfer): pretrained feature layers enter as constants, read
    # here in Python; the head is always freshly initialised.
    init_from = OmegaConf.select(cfg, "train.init_from", default=None)
    freeze = str(OmegaConf.select(cfg, "train.freeze", default="none"))
    features = None
    if init_from is not None:
        shapes = jax.eval_shape(lambda x: model.init({"params": jax.random.PRNGKey(0), "dropout": jax.random.PRNGKey(0)},
                                                     x, train=False)["params"], dataset.x_train[:1])
        features = transfer.feature_constants(shapes, transfer.load_params(init_from))

    def make_tx(hparams, params):
        tx = make_optimizer(optimizer_name, schedule_kind, hparams, budget.total_steps, dead_links)
        return transfer.with_freeze(tx, params, freeze)

    def apply(params, x, train, rng):
        rngs = {"dropout": rng} if (train and dropout) else None
        return model.apply({"params": params}, x, train=train, rngs=rngs)

    def apply_chunked(params, x):
        """Inference over many examples, in chunks so memory stays bounded."""
        n = x.shape[0]
        if n <= EVAL_CHUNK:
            return apply(params, x, False, None)
        n_chunks = math.ceil(n / EVAL_CHUNK)
        padded = jnp.concatenate([x, jnp.zeros((n_chunks * EVAL_CHUNK - n,) + x.shape[1:], x.dtype)])
        out = jax.lax.map(lambda c: apply(params, c, False, None), padded.reshape((n_chunks, EVAL_CHUNK) + x.shape[1:]))
        return out.reshape((n_chunks * EVAL_CHUNK,) + out.shape[2:])[:n]

    def batch_loss(params, x, y, rng, l1, l2, weights=None):
        out = apply(params, x, True, rng)
        losses = objective.per_example_loss(loss_kind, out, y, task)
        data_loss = jnp.mean(losses) if weights is None else objective.weighted_mean(losses, weights)
        return data_loss + objective.penalty(params, l1, l2), data_loss

    grad_fn = jax.value_and_grad(batch_loss, has_aux=True)

    def evaluate(params, data):
        """Loss and accuracy (or MSE) of every split, and the test confusion matrix."""
        out = apply_chunked(params, data["x_eval"])
        y, w = data["y_eval"], data["w_eval"]
        losses = objective.per_example_loss(loss_kind, out, y, task)
        if task == "classification":
            pred = objective.predict_class(loss_kind, out)
            hits = (pred == y).astype(jnp.float32)
            # A one-hot product, not bincount: a scatter costs far more to compile.
            test_w = jnp.broadcast_to(w[2].reshape((-1,) + (1,) * (y.ndim - 1)), y.shape).reshape(-1, 1)
            true_1h = jax.nn.one_hot(y.reshape(-1), num_classes) * test_w
            confusion = true_1h.T @ jax.nn.one_hot(pred.reshape(-1), num_classes)
        else:
            hits = jnp.square(objective.regression_prediction(loss_kind, out) - y)
            confusion = jnp.zeros((1, 1))
        # Per-step targets (copy task): average over steps first.
        losses = losses.reshape(losses.shape[0], -1).mean(axis=1)
        hits = hits.reshape(hits.shape[0], -1).mean(axis=1)
        counts = w.sum(axis=1)
        loss_means, metric_means = (w @ losses) / counts, (w @ hits) / counts
        values = {}
        for split, row in zip(splits, split_rows):
            values[f"{split}/loss"] = loss_means[row]
            values[f"{split}/{metric}"] = metric_means[row]
        return values, confusion

    def split_key(key):
        init_key, dropout_key = jax.random.split(key)
        return init_key, dropout_key

    def init(hparams: dict[str, jax.Array], key: jax.Array, data: dict[str, jax.Array], params=None) -> dict[str, Any]:
        """The state before training. ``params``: start from these parameters (a pytree like
        the model's) instead of drawing them, as in-process callers that bring their own
        initial weights do (the Playground fidelity test)."""
        if params is None:
            params = draw_params(hparams, key, data)
        tx = make_tx(hparams, params)
        return {
            "params": params,
            "opt_state": tx.init(params),
            "diverged": jnp.zeros((), bool),
            "diverged_step": jnp.full((), -1, jnp.int32),
        }

    def draw_params(hparams, key, data):
        init_key, dropout_key = split_key(key)
        params = model.init({"params": init_key, "dropout": dropout_key}, data["x_train"][:1], train=False)["params"]
        # init_scale multiplies weights (not biases): a dynamic knob on the init's spread.
        params = jax.tree_util.tree_map(lambda p: p * hparams["init_scale"] if p.ndim >= 2 else p, params)
        if features is not None:
            params = transfer.load_features(params, features)
        return params

    def advance(state, hparams, key, data, periods):
        _, dropout_key = split_key(key)
        order_key = jax.random.PRNGKey(hparams["order_seed"])
        x_train, y_train = data["x_train"], data["y_train"]
        tx = make_tx(hparams, state["params"])

        def grad_noise_scale(params, idx, dropout_key):
            """McCandlish et al. 2018, appendix A, two batch sizes at the same parameters (the
            evaluation's): B_small = the training batch (mean |G|^2 over up to GNS_BATCHES of
            the period's batches), B_big = the whole training set."""
            def small_sq(rows):
                (_, _), g = grad_fn(params, x_train[rows], y_train[rows], dropout_key, 0.0, 0.0)
                return optax.tree.norm(g, squared=True)

            small_gsq = jnp.mean(jax.lax.map(small_sq, idx[:GNS_BATCHES, :batch]))
            (_, _), g_big = grad_fn(params, x_train, y_train, dropout_key, 0.0, 0.0)
            big_gsq = optax.tree.norm(g_big, squared=True)
            b_small, b_big = float(batch), float(n_train)
            g2 = (b_big * big_gsq - b_small * small_gsq) / (b_big - b_small)
            trace = (small_gsq - big_gsq) / (1.0 / b_small - 1.0 / b_big)
            return dict(zip(gns_names, (g2, trace, trace / g2)))

        # Epochs a period can touch: periods start on multiples of `period`, so when a
        # period is a whole number of epochs it touches exactly that many.
        span = period // spe if period % spe == 0 else period // spe + 2

        # With carry, one epoch before the period's first is drawn too (its leftover).
        lead = 1 if carry_leftover else 0

        def period_batches(p):
            """Batch indices [period, batch] of period p, and their weights (None: all count):
            each epoch is one order of the training set (:func:`epoch_orders`), cut into
            batches. Drawn once per period, not per step: a per-step draw costs far more."""
            first = jnp.maximum(p - 1, 0) * period
            epoch0 = first // spe
            epochs = jnp.maximum(epoch0 - lead + jnp.arange(span + lead), 0)
            orders = epoch_orders(order, order_key, epochs, n_train)  # [lead + span, n_train]
            steps = first + jnp.arange(period)
            rows = jnp.minimum(steps // spe - epoch0, span - 1) + lead
            cols = (steps % spe)[:, None] * batch + jnp.arange(batch)[None, :]
            idx = orders[rows[:, None], cols]
            if not carry_leftover:
                return idx, None
            extra, extra_w = leftover_batches(orders, rows, steps, spe, batch, n_train)
            weights = jnp.concatenate([jnp.ones(idx.shape, jnp.float32), extra_w], axis=1)
            return jnp.concatenate([idx, extra], axis=1), weights

        # With dead links the optimizer takes the L1 step (optim.l1_dead_links), not the loss.
        l1_in_loss = 0.0 if dead_links else hparams["l1"]

        def step_fn(carry, inputs):
            step, (idx, weights) = inputs

            def do_step(carry: StepCarry) -> StepCarry:
                params, opt_state, diverged, diverged_step = carry
                rng = jax.random.fold_in(dropout_key, step)
                (_, _), grads = grad_fn(params, x_train[idx], y_train[idx], rng, l1_in_loss, hparams["l2"], weights)
                updates, new_state = tx.update(grads, opt_state, params)
                new_params = optax.apply_updates(params, updates)
                finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(p)) for p in jax.tree_util.tree_leaves(new_params)]))
                ok = finite & ~diverged
                keep = lambda new, old: jnp.where(ok, new, old)  # noqa: E731
                newly = ~finite & ~diverged
                return StepCarry(
                    jax.tree_util.tree_map(keep, new_params, params),
                    jax.tree_util.tree_map(keep, new_state, opt_state),
                    diverged | newly,
                    jnp.where(newly, step.astype(diverged_step.dtype), diverged_step),  # int64 steps under x64
                )

            # Steps outside the budget (period 0, the tail of the last period, periods past
            # the end) do nothing. The step counter is shared by all members, so under vmap
            # this stays a branch.
            active = (step >= 0) & (step < budget.total_steps)
            return jax.lax.cond(active, do_step, lambda c: c, carry), None

        def period_fn(carry, p):
            # Period 0 has no active steps: it measures the initial state with the same code.
            steps = (p - 1) * period + jnp.arange(period)
            batches = period_batches(p)
            carry, _ = jax.lax.scan(step_fn, StepCarry(*carry), (steps, batches))
            values, confusion = evaluate(carry.params, data)
            if measure_gns:
                values.update(grad_noise_scale(carry.params, batches[0], dropout_key))
            return tuple(carry), (values, confusion)

        state0 = tuple(state[k] for k in STATE_KEYS)
        state, outputs = jax.lax.scan(period_fn, state0, periods)
        return dict(zip(STATE_KEYS, state)), outputs

    def finish(state, hparams, key, data, curves, confusions):
        params = state["params"]
        result = {
            "curves": curves,
            "diverged": state["diverged"],
            "diverged_step": state["diverged_step"],
            "weight_sparsity": objective.weight_sparsity(params),
            "params": params,
        }
        if task == "classification":
            result["confusion"] = confusions[-1]
        if "x_grid" in data:
            result["boundary"] = objective.boundary_value(loss_kind, apply(params, data["x_grid"], False, None), task)
        return result

    return Segments(init, advance, finish, budget)

