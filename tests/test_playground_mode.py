"""TensorFlow Playground's behaviours as options: sample order, the leftover partial batch,
L1 dead links, its regression loss, initZero, and the ``experiment=playground`` preset that
turns them all on. (Their numbers against Playground's own code: test_playground_fidelity.py.)
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from conftest import SHRINK, compose_config
from harness.errors import ConfigError
from harness.results import config_hash
from harness.train.engine import run_group
from harness.train.hparams import group_key
from harness.train import objective
from harness.train.loop import epoch_orders, leftover_batches
from harness.train.optim import l1_dead_links
from harness.validate import validate_config


def test_stored_order_is_the_data_order_and_fixed_is_one_permutation_for_every_epoch():
    key, epochs = jax.random.PRNGKey(3), jnp.arange(4)
    stored = np.asarray(epoch_orders("stored", key, epochs, 9))
    assert (stored == np.arange(9)).all()
    fixed = np.asarray(epoch_orders("fixed", key, epochs, 9))
    reshuffled = np.asarray(epoch_orders("reshuffle", key, epochs, 9))
    assert (fixed == fixed[0]).all() and sorted(fixed[0]) == list(range(9))
    assert (fixed[0] == reshuffled[0]).all(), "fixed keeps reshuffle's first epoch"
    assert len({tuple(r) for r in reshuffled}) == 4


def test_leftover_examples_join_the_next_epochs_first_batch():
    """25 examples, batch 10: 2 updates an epoch; examples 20..24 of epoch e join the first
    update of epoch e + 1 (Playground's oneStep), never a batch of their own epoch."""
    n, batch, spe = 25, 10, 2
    orders = epoch_orders("stored", jax.random.PRNGKey(0), jnp.arange(3), n)
    steps = jnp.arange(6)
    idx, weights = leftover_batches(orders, steps // spe, steps, spe, batch, n)
    assert idx.shape == (6, 5)
    assert np.asarray(weights).tolist() == [[0] * 5, [0] * 5, [1] * 5, [0] * 5, [1] * 5, [0] * 5]
    assert (np.asarray(idx)[2] == np.arange(20, 25)).all()


def _shrinks(w, update, rate, lr=1.0):
    """One l1_dead_links step on weights ``w`` [1, k] after an optimizer update ``update``."""
    tx = l1_dead_links(jnp.float32(rate), lambda count: jnp.float32(lr))
    params = {"kernel": jnp.asarray([w], jnp.float32), "bias": jnp.asarray([0.5], jnp.float32)}
    updates = {"kernel": jnp.asarray([update], jnp.float32), "bias": jnp.asarray([0.2], jnp.float32)}
    state = tx.init(params)
    out, state = tx.update(updates, state, params)
    return optax.apply_updates(params, out), state, tx


def test_a_weight_the_l1_step_pushes_across_zero_is_zero_and_frozen():
    # w: crosses by L1 | moves but stays positive | crosses by the data step only (lives)
    new, state, tx = _shrinks([0.05, 0.5, 0.05], [0.0, 0.0, -0.2], rate=0.1)
    # (the third: -0.15 after the update, then L1 by the sign *before* it: -0.25, as nn.ts)
    np.testing.assert_allclose(np.asarray(new["kernel"]), [[0.0, 0.4, -0.25]], atol=1e-7)
    assert np.asarray(state.dead["kernel"]).tolist() == [[True, False, False]]
    assert float(new["bias"][0]) == pytest.approx(0.7), "biases: the update, no L1"
    # A dead weight takes no update again, whatever the gradient.
    out, state = tx.update({"kernel": jnp.ones((1, 3)), "bias": jnp.zeros(1)}, state, new)
    assert float(optax.apply_updates(new, out)["kernel"][0, 0]) == 0.0
    # Rate 0: nothing dies.
    _, state, _ = _shrinks([0.05, -0.5, 1e-9], [0.0, 0.0, 0.0], rate=0.0)
    assert not np.asarray(state.dead["kernel"]).any()


def test_playground_loss_is_half_squared_error_per_task():
    assert objective.resolve_loss("playground", "classification") == "tanh_squared"
    assert objective.resolve_loss("playground", "regression") == "half_mse"
    out, y = jnp.array([[1.5], [-0.5]]), jnp.array([1.2, 0.0])
    np.testing.assert_allclose(objective.per_example_loss("half_mse", out, y, "regression"), [0.045, 0.125], rtol=1e-6)
    assert float(objective.regression_prediction("half_mse", out)[0]) == 1.5, "a linear output"
    with pytest.raises(ConfigError, match="train.loss"):
        objective.resolve_loss("half_mse", "classification")


def test_the_preset_sets_playgrounds_training_and_leaves_the_rest_to_the_user():
    cfg = compose_config(["experiment=playground", "data=reg_plane", "optim.lr=0.1", "regularizer=l1"])
    assert (cfg.model.init, cfg.train.loss, cfg.train.order, cfg.train.partial_batch) == (
        "playground", "playground", "stored", "carry")
    assert cfg.regularizer.dead_links and cfg.optim.name == "sgd"
    assert (cfg.data.name, cfg.optim.lr, cfg.regularizer.kind) == ("reg_plane", 0.1, "l1")
    assert compose_config(["experiment=playground", "optim=adam"]).optim.name == "adam", "the command line wins"


def test_new_options_at_their_defaults_keep_stored_results_hashes():
    """The keys added for Playground, left at their defaults, change no hash and no group."""
    plain = compose_config(SHRINK + ["data=circle"])
    explicit = compose_config(SHRINK + ["data=circle", "train.order=reshuffle", "train.partial_batch=drop",
                                        "regularizer.dead_links=false", "output.discretize=true"])
    assert config_hash(plain) == config_hash(explicit) and group_key(plain) == group_key(explicit)
    for change in ("train.order=stored", "train.partial_batch=carry", "regularizer.dead_links=true"):
        other = compose_config(SHRINK + ["data=circle", change])
        assert config_hash(other) != config_hash(plain) and group_key(other) != group_key(plain), change


@pytest.mark.parametrize("key, value", [("train.order", "sorted"), ("train.partial_batch", "pad"),
                                        ("model.init", "ones")])
def test_bad_playground_options_name_the_key(key, value):
    with pytest.raises(ConfigError, match=key):
        validate_config(compose_config(SHRINK + [f"{key}={value}"]))


def test_playground_mode_runs_fused_members_as_alone():
    """Under jit(vmap(train)): members with different L1 rates (dead links), a leftover batch
    carried over, the stored order; each member as it runs alone."""
    base = SHRINK + ["experiment=playground", "data=circle", "model.hidden=[3]", "train.batch_size=30",
                     "optim.lr=0.3", "regularizer=l1", "train.epochs=4"]
    cfgs = [compose_config(base + [f"regularizer.rate={rate}", f"seed={seed}"])
            for rate, seed in ((0.0, 0), (0.03, 0), (0.03, 1))]
    fused = run_group(cfgs)
    alone = run_group([cfgs[1]]).outputs[0]
    np.testing.assert_allclose(fused.outputs[1]["curves"]["train/loss"], alone["curves"]["train/loss"],
                               rtol=1e-5, atol=1e-6)
    assert not np.allclose(fused.outputs[1]["curves"]["train/loss"], fused.outputs[2]["curves"]["train/loss"])
    zeros = [sum(int((np.asarray(k) == 0).sum()) for k in jax.tree_util.tree_leaves(out["params"]) if k.ndim == 2)
             for out in fused.outputs]
    assert zeros[0] == 0 and zeros[1] > 0, zeros


def test_zero_init_is_playgrounds_init_zero():
    """model.init=zero: every weight and bias starts at 0. With tanh units nothing but the
    output bias then ever gets a gradient (Playground's initZero does the same)."""
    cfg = compose_config(SHRINK + ["data=circle", "model.init=zero", "model.hidden=[4,2]", "train.epochs=1"])
    params = run_group([cfg]).outputs[0]["params"]
    assert all((np.asarray(params[f"Dense_{i}"]["kernel"]) == 0).all() for i in range(3))
    assert all((np.asarray(params[f"Dense_{i}"]["bias"]) == 0).all() for i in range(2))
    assert np.asarray(params["Dense_2"]["bias"]).any(), "the output bias learns"
