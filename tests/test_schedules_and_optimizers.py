"""Learning-rate schedules and optimizer directions do what their names say, step by step.

In-process and small: each case builds the optax transformation the train function builds
(from plain numbers instead of traced ones) and checks its first updates against the
formula written out by hand.
"""

from __future__ import annotations

import numpy as np
import pytest

from harness.errors import ConfigError
from harness.train.optim import OPTIMIZERS, SCHEDULES, make_optimizer, make_schedule

LR, TOTAL, WARMUP, FINAL = 0.1, 100, 10, 0.2


def _lr(kind: str, step: int) -> float:
    return float(make_schedule(kind, LR, WARMUP, FINAL, TOTAL)(step))


def test_constant_schedule_is_the_learning_rate_at_every_step():
    assert [_lr("constant", s) for s in (0, 50, 500)] == pytest.approx([LR] * 3)


def test_warmup_rises_linearly_then_holds():
    assert _lr("warmup", 0) == pytest.approx(LR / WARMUP)
    assert _lr("warmup", 4) == pytest.approx(LR * 5 / WARMUP)
    assert _lr("warmup", WARMUP - 1) == pytest.approx(LR)
    assert _lr("warmup", TOTAL) == pytest.approx(LR)


def test_cosine_falls_from_the_rate_to_its_final_fraction():
    assert _lr("cosine", 0) == pytest.approx(LR)
    assert _lr("cosine", TOTAL // 2) == pytest.approx(LR * (FINAL + (1 - FINAL) * 0.5))
    assert _lr("cosine", TOTAL) == pytest.approx(LR * FINAL)
    assert _lr("cosine", 10 * TOTAL) == pytest.approx(LR * FINAL)  # held past the end


def test_warmup_cosine_warms_up_then_starts_its_cosine_after_the_warmup():
    assert _lr("warmup_cosine", 0) == pytest.approx(LR / WARMUP)
    assert _lr("warmup_cosine", WARMUP) == pytest.approx(LR)
    middle = WARMUP + (TOTAL - WARMUP) // 2
    assert _lr("warmup_cosine", middle) == pytest.approx(LR * (FINAL + (1 - FINAL) * 0.5))
    assert _lr("warmup_cosine", TOTAL) == pytest.approx(LR * FINAL)


def test_unknown_schedule_names_the_key_and_the_choices():
    with pytest.raises(ConfigError) as err:
        make_schedule("linear", LR, 0, 0, TOTAL)
    assert "optim.schedule.kind" in str(err.value) and all(k in str(err.value) for k in SCHEDULES)


HP = {"lr": 0.1, "momentum": 0.9, "b1": 0.9, "b2": 0.999, "eps": 1e-8, "decay": 0.9, "weight_decay": 0.0,
      "warmup_steps": 0.0, "final_fraction": 0.0, "l1": 0.0}
W = np.array([1.0, -2.0, 0.5], np.float32)
G = np.array([0.5, 0.25, -1.0], np.float32)


def _updates(name: str, steps: int = 1, **hp) -> list[np.ndarray]:
    """The updates of ``steps`` steps with the same gradient G at parameters W."""
    opt = make_optimizer(name, "constant", {**HP, **hp}, total_steps=TOTAL)
    state = opt.init(W)
    out = []
    for _ in range(steps):
        update, state = opt.update(G, state, W)
        out.append(np.asarray(update))
    return out


def test_sgd_steps_against_the_gradient_scaled_by_the_rate():
    np.testing.assert_allclose(_updates("sgd")[0], -0.1 * G, rtol=1e-6)


def test_momentum_accumulates_the_gradient():
    first, second = _updates("momentum", steps=2)
    np.testing.assert_allclose(first, -0.1 * G, rtol=1e-6)
    np.testing.assert_allclose(second, -0.1 * (G + 0.9 * G), rtol=1e-6)


def test_nesterov_looks_ahead_by_one_momentum_step():
    first, second = _updates("nesterov", steps=2)
    trace = G + 0.9 * G  # the momentum buffer after the second step
    np.testing.assert_allclose(first, -0.1 * (G + 0.9 * G), rtol=1e-6)
    np.testing.assert_allclose(second, -0.1 * (G + 0.9 * trace), rtol=1e-6)


def test_adam_first_step_is_the_rate_times_the_gradient_sign():
    # bias-corrected m / sqrt(v) = g / |g| on the first step
    np.testing.assert_allclose(_updates("adam")[0], -0.1 * np.sign(G), rtol=1e-5)


def test_rmsprop_divides_by_the_root_mean_square_of_gradients():
    np.testing.assert_allclose(_updates("rmsprop")[0], -0.1 * G / np.sqrt((1 - 0.9) * G**2), rtol=1e-5)


@pytest.mark.parametrize("name, direction", [("sgd", G), ("adamw", np.sign(G))])
def test_weight_decay_is_added_to_the_direction_before_the_rate(name, direction):
    np.testing.assert_allclose(_updates(name, weight_decay=0.01)[0], -0.1 * (direction + 0.01 * W), rtol=1e-5)


def test_every_optimizer_moves_against_the_gradient():
    for name in OPTIMIZERS:
        assert np.all(np.sign(_updates(name)[0]) == -np.sign(G)), name


def test_unknown_optimizer_names_the_key_and_the_choices():
    with pytest.raises(ConfigError) as err:
        make_optimizer("lion", "constant", HP, TOTAL)
    assert "optim.name" in str(err.value) and "rmsprop" in str(err.value)
