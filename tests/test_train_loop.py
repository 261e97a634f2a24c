"""The pure training function: vmap property, budgets, divergence masking, penalties."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from omegaconf import OmegaConf

from conftest import SHRINK, compose_config
from harness.train.engine import TRACE_COUNT, precompile, run_group
from harness.train.hparams import group_key, hparams_of, plan_groups
from harness.train import objective
from harness.train.loop import make_budget

FAMILIES = {
    "fnn": ["data=circle"],
    "cnn": ["data=digits", "model=cnn", "model.channels=[4]", "model.kernel=3", "train.batch_size=32", "train.epochs=1"],
    "rnn": ["data=sentiment", "model=rnn", "model.units=8", "data.num_samples=400", "train.batch_size=20", "train.epochs=1"],
}
OPTIMIZERS = {"fnn": "optim=sgd", "cnn": "optim=adam", "rnn": "optim=momentum"}


def _members(family: str, extra: list[str]) -> list:
    base = SHRINK + FAMILIES[family] + [OPTIMIZERS[family]] + extra
    return [
        compose_config(base + ["optim.lr=0.01", "seed=0"]),
        compose_config(base + ["optim.lr=0.05", "seed=1", "regularizer=l2", "regularizer.rate=0.001"]),
        compose_config(base + ["optim.lr=0.02", "seed=2", "regularizer=l1", "regularizer.rate=0.0005", "train.order_seed=7"]),
    ]


def _assert_close(a: dict, b: dict, atol: float = 1e-5) -> None:
    for key in a["curves"]:
        np.testing.assert_allclose(a["curves"][key], b["curves"][key], atol=atol, rtol=1e-5, err_msg=key)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_vmap_over_members_equals_single_runs(family):
    cfgs = _members(family, [])
    assert len(plan_groups(cfgs)) == 1, "lr, seeds and regularizer are dynamic: one group"
    fused = run_group(cfgs)
    for i, cfg in enumerate(cfgs):
        alone = run_group([cfg])
        _assert_close(fused.outputs[i], alone.outputs[0])
    # Members differ: the dynamic numbers really reach the computation.
    assert not np.allclose(fused.outputs[0]["curves"]["train/loss"], fused.outputs[1]["curves"]["train/loss"])


def test_one_trace_per_group():
    cfgs = _members("fnn", ["model.hidden=[3]"])  # a structure no other test compiles
    before = TRACE_COUNT["n"]
    run_group(cfgs)
    run_group(cfgs[::-1])  # the same group again (another chunk): reuses the executable
    assert TRACE_COUNT["n"] - before == 1


def test_precompiled_program_is_picked_up_not_compiled_again():
    """precompile() compiles on a background thread; the group's run waits for that program
    (one trace in all) and reports its compile time as its own."""
    cfgs = _members("fnn", ["model.hidden=[5]"])  # a structure no other test compiles
    before = TRACE_COUNT["n"]
    precompile(cfgs)
    precompile(cfgs)  # already compiling: a no-op
    group = run_group(cfgs)
    assert TRACE_COUNT["n"] - before == 1
    assert group.compiled and group.compile_s > 0
    again = run_group(cfgs)  # cached: reused, nothing compiled
    assert not again.compiled and TRACE_COUNT["n"] - before == 1
    for a, b in zip(group.outputs, again.outputs):
        np.testing.assert_array_equal(a["curves"]["test/loss"], b["curves"]["test/loss"])


def test_diverged_member_is_frozen_and_isolated():
    # relu + MSE + a huge learning rate overflows within a few steps.
    base = SHRINK + ["data=reg_plane", "model.activation=relu", "train.epochs=2"]
    good = [compose_config(base + [f"optim.lr={lr}", f"seed={s}"]) for lr, s in ((0.01, 0), (0.03, 1))]
    bad = compose_config(base + ["optim.lr=1e6", "seed=2"])
    healthy = compose_config(base + ["optim.lr=0.02", "seed=2"])
    with_bad = run_group([good[0], bad, good[1]])
    # The same program (same member count) with a healthy member in the bad one's place.
    # (Groups of different sizes are different XLA programs and may differ in the last bit.)
    without = run_group([good[0], healthy, good[1]])
    without.outputs = [without.outputs[0], without.outputs[2]]
    assert bool(with_bad.outputs[1]["diverged"])
    assert int(with_bad.outputs[1]["diverged_step"]) >= 0
    assert not bool(with_bad.outputs[0]["diverged"]) and not bool(with_bad.outputs[2]["diverged"])
    for got, want in ((with_bad.outputs[0], without.outputs[0]), (with_bad.outputs[2], without.outputs[1])):
        for key in want["curves"]:
            np.testing.assert_array_equal(got["curves"][key], want["curves"][key])
    # Frozen parameters stay finite, so its metrics are those of the last finite state.
    leaves = jax.tree_util.tree_leaves(with_bad.outputs[1]["params"])
    assert all(np.all(np.isfinite(leaf)) for leaf in leaves)


@pytest.mark.parametrize(
    "overrides, kind, steps",
    [
        (["train.epochs=4"], "epochs", 4 * 25),
        (["train.steps=30"], "steps", 30),
        (["train.examples=95"], "examples", 10),
    ],
)
def test_budget_kinds(overrides, kind, steps):
    cfg = compose_config(["data=circle"] + overrides)
    budget = make_budget(cfg.train, 250)
    assert (budget.kind, budget.total_steps, budget.steps_per_epoch) == (kind, steps, 25)
    assert budget.eval_steps()[0] == 0 and budget.eval_steps()[-1] == steps


def test_eval_every_gives_curve_length():
    cfg = compose_config(SHRINK + ["data=circle", "train.steps=40", "train.eval_every=15"])
    out = run_group([cfg]).outputs[0]
    assert out["curves"]["test/loss"].shape == (1 + 3,)  # step 0, 15, 30, 40


def test_training_learns_circle_with_tanh():
    cfg = compose_config(SHRINK + ["data=circle", "train.epochs=60"])
    out = run_group([cfg]).outputs[0]
    assert out["curves"]["train/loss"][-1] < out["curves"]["train/loss"][0]


def test_penalties_on_weights_only():
    params = {"dense": {"kernel": jnp.array([[1.0, -2.0]]), "bias": jnp.array([5.0, 5.0])}}
    assert float(objective.penalty(params, 0.1, 0.0)) == pytest.approx(0.3)
    assert float(objective.penalty(params, 0.0, 0.1)) == pytest.approx(0.5 * 0.1 * 5.0)
    assert float(objective.weight_sparsity({"k": jnp.array([[0.0, 1.0, 1e-5, 2.0]])})) == pytest.approx(0.5)


def test_playground_tanh_loss_uses_plus_minus_one_targets():
    out = jnp.array([[10.0], [-10.0]])
    loss = objective.per_example_loss("tanh_squared", out, jnp.array([1, 0]), "classification")
    np.testing.assert_allclose(loss, [0.0, 0.0], atol=1e-6)
    assert list(objective.predict_class("tanh_squared", out)) == [1, 0]


def test_static_dynamic_split():
    a = compose_config(["optim.lr=0.1", "seed=3", "regularizer=l1", "regularizer.rate=0.01"])
    b = compose_config(["optim.lr=0.2", "seed=4", "regularizer=l2"])
    c = compose_config(["train.batch_size=20"])
    d = compose_config(["model.activation=relu"])
    assert group_key(a) == group_key(b)
    assert len({group_key(a), group_key(c), group_key(d)}) == 3
    hp = hparams_of(a)
    assert (hp["l1"], hp["l2"], hp["seed"], hp["order_seed"]) == (0.01, 0.0, 3, 3)


def test_grad_noise_scale_is_measured_at_each_evaluation_without_touching_training():
    """B_simple from small-batch and full-batch gradients at the same parameters, the
    evaluation's (so also before the first step); measuring it reads the parameters only:
    every other curve is bitwise the one of a run that does not measure it."""
    base = SHRINK + ["data=circle", "train.epochs=4"]
    measured, plain = (run_group([compose_config(base + [f"train.grad_noise_scale={on}"])]).outputs[0]
                       for on in ("true", "false"))
    b = measured["curves"]["gns/b_simple"]
    assert b.shape == plain["curves"]["train/loss"].shape and np.all(np.isfinite(b))
    for name, curve in plain["curves"].items():
        np.testing.assert_array_equal(measured["curves"][name], curve)


def test_confusion_matrix_counts_test_set():
    cfg = compose_config(SHRINK + ["data=circle"])
    run = run_group([cfg])
    conf = run.outputs[0]["confusion"]
    assert conf.shape == (2, 2) and conf.sum() == pytest.approx(len(run.dataset.x_test))
    acc = np.trace(conf) / conf.sum()
    assert acc == pytest.approx(float(run.outputs[0]["curves"]["test/accuracy"][-1]), abs=1e-6)


def test_config_roundtrip_is_plain_data():
    cfg = compose_config([])
    assert OmegaConf.to_container(cfg, resolve=True)["model"]["hidden"] == [8, 8]
