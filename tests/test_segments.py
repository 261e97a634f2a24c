"""Training in segments (GroupProgram) is the same computation as one call (run_group).

Checkpointing, preemption resume and the live playground all drive a group segment by
segment; they are only correct if cutting the run changes nothing, bit for bit.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest

from conftest import SHRINK, compose_config
from harness.train.engine import GroupProgram, run_group

CASES = {
    # Playground FNN with the gradient-noise-scale measurement and a diverging member.
    "fnn": ["data=circle", "train.epochs=7", "train.grad_noise_scale=true"],
    "rnn": ["data=sentiment", "model=rnn", "model.units=8", "data.num_samples=400", "train.batch_size=20", "train.epochs=3", "optim=adam"],
}


def _cfgs(case: str) -> list:
    base = SHRINK + CASES[case]
    return [
        compose_config(base + ["optim.lr=0.01", "seed=0"]),
        compose_config(base + ["optim.lr=0.05", "seed=1", "regularizer=l2", "regularizer.rate=0.001"]),
    ]


def _assert_bitwise(a: dict, b: dict) -> None:
    flat_a, tree_a = jax.tree_util.tree_flatten(a)
    flat_b, tree_b = jax.tree_util.tree_flatten(b)
    assert tree_a == tree_b
    for x, y in zip(flat_a, flat_b):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.mark.parametrize(
    "case, segment_periods",
    [("fnn", 3), pytest.param("fnn", 1, marks=pytest.mark.slow), pytest.param("rnn", 2, marks=pytest.mark.slow)],
)
def test_segments_equal_one_call_bitwise(case, segment_periods):
    cfgs = _cfgs(case)
    whole = run_group(cfgs)
    program = GroupProgram(cfgs, segment_periods=segment_periods)
    seen = []
    while not program.done:
        program.step()
        seen.append(program.next_period)
    # Segments of equal length; the last one stops at the budget (padded periods dropped).
    assert seen[-1] == program.num_periods and len(seen) == -(-program.num_periods // segment_periods)
    pieces = program.finish()
    for a, b in zip(whole.outputs, pieces.outputs):
        _assert_bitwise(a, b)


def test_resume_from_a_stored_state_is_bitwise_equal():
    """A run stopped after some segments and restored in a new program (as after preemption)
    ends exactly like an uninterrupted one."""
    cfgs = _cfgs("fnn")
    whole = run_group(cfgs)
    first = GroupProgram(cfgs, segment_periods=3)
    first.step()
    first.step()
    saved_state = jax.tree_util.tree_map(np.asarray, jax.device_get(first.state))
    saved_curves, saved_confusions = first.curves_so_far()

    second = GroupProgram(cfgs, segment_periods=3)
    second.restore(saved_state, first.next_period, saved_curves, saved_confusions)
    resumed = second.finish()
    for a, b in zip(whole.outputs, resumed.outputs):
        _assert_bitwise(a, b)
