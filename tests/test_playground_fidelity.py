"""``experiment=playground`` trains as TensorFlow Playground's own code does.

The reference is tests/fixtures/playground_reference.json, written by
scripts/playground_reference/make_fixture.sh: Playground's src/nn.ts and src/dataset.ts
compiled unchanged and trained headlessly the way playground.ts trains. Each case holds the
data (in Playground's training order), the initial weights and the per-epoch train and test
loss Playground computed, and which links L1 killed. Here the harness's Playground-exact mode
gets the same data, order and initial weights and must give the same curves, to float32
rounding (the harness computes in float32, Playground in float64).
"""

from __future__ import annotations

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import SHRINK, compose_config
from harness.data.base import Dataset
from harness.data.playground import feature_map
from harness.train.hparams import hparams_of
from harness.train.loop import make_segments, prepare_data

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "playground_reference.json").read_text())
CASES = {case["name"]: case for case in FIXTURE["cases"]}
# float32 rounding, accumulated over a few hundred SGD steps on losses of order 0.01 .. 0.5.
RTOL, ATOL = 1e-4, 1e-6


def _split(points: dict, features: list[str], task: str) -> tuple[np.ndarray, np.ndarray]:
    xy = np.stack([points["x"], points["y"]], axis=1).astype(np.float32)
    labels = np.asarray(points["label"], np.float32)
    y = (labels > 0).astype(np.int32) if task == "classification" else labels
    return feature_map(xy, features), y


def _dataset(case: dict) -> Dataset:
    """The fixture's points as a harness data set, training split in Playground's order."""
    s = case["settings"]
    x_train, y_train = _split(case["train"], s["features"], s["task"])
    x_test, y_test = _split(case["test"], s["features"], s["task"])
    return Dataset(name=s["data"], task=s["task"], layout="vector", x_train=x_train, y_train=y_train,
                   x_val=x_train[:0], y_val=y_train[:0], x_test=x_test, y_test=y_test,
                   num_classes=2 if s["task"] == "classification" else 0, feature_names=tuple(s["features"]))


def _config(case: dict):
    s = case["settings"]
    hidden = ",".join(str(h) for h in s["hidden"])
    return compose_config(SHRINK + [
        "experiment=playground", f"data={s['data']}", f"data.features=[{','.join(s['features'])}]",
        f"model.hidden=[{hidden}]", f"model.activation={s['activation']}", f"optim.lr={s['lr']}",
        f"regularizer={s['reg']}", f"regularizer.rate={s['rate']}", f"train.batch_size={s['batch']}",
        f"train.epochs={s['epochs']}",
    ])


def _params(case: dict) -> dict:
    """Playground's initial network as Flax Dense params: kernel[j, i] = weight of link j -> i."""
    return {f"Dense_{i}": {"kernel": jnp.asarray(np.asarray(layer["weights"], np.float32).T),
                           "bias": jnp.asarray(np.asarray(layer["biases"], np.float32))}
            for i, layer in enumerate(case["initial_layers"])}


def _train(case: dict):
    """Curves and final params of the harness run from the case's data, order and weights."""
    cfg = _config(case)
    dataset = _dataset(case)
    segments = make_segments(cfg, dataset)
    hparams = {k: jnp.asarray(v) for k, v in hparams_of(cfg).items()}
    key = jax.random.PRNGKey(int(cfg.seed))
    data = {k: jnp.asarray(v) for k, v in prepare_data(dataset).items()}
    params = _params(case)

    @jax.jit
    def run(hparams, key, data, params):
        state = segments.init(hparams, key, data, params=params)
        return segments.advance(state, hparams, key, data, jnp.arange(segments.num_periods))

    state, (curves, _) = run(hparams, key, data, params)
    return curves, state["params"]


@pytest.mark.parametrize("name", sorted(CASES))
def test_playground_exact_mode_follows_playgrounds_own_training(name):
    case = CASES[name]
    curves, params = _train(case)
    np.testing.assert_allclose(np.asarray(curves["train/loss"]), case["loss_train"], rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(np.asarray(curves["test/loss"]), case["loss_test"], rtol=RTOL, atol=ATOL)
    # The links Playground's L1 killed are the harness's zero weights, and only those.
    dead = [np.asarray(params[f"Dense_{i}"]["kernel"]).T == 0 for i in range(len(case["dead_at_end"]))]
    for layer, (mine, theirs) in enumerate(zip(dead, case["dead_at_end"])):
        np.testing.assert_array_equal(mine, np.asarray(theirs, bool), err_msg=f"dead links of layer {layer}")


def test_fixture_covers_the_cases_playground_exactness_is_claimed_for():
    """Circle, xor + L2, spiral with 7 features, reg_plane, circle + L1 with dead links, a
    partial batch carried over, from a recorded Playground commit."""
    assert len(FIXTURE["playground_commit"]) == 40
    settings = {name: case["settings"] for name, case in CASES.items()}
    assert settings["xor_l2"]["reg"] == "l2" and settings["circle_l1"]["reg"] == "l1"
    assert len(settings["spiral_7_features"]["features"]) == 7
    assert settings["reg_plane"]["task"] == "regression"
    assert CASES["circle_l1"]["dead_links_per_epoch"][-1] > 0, "some links die"
    assert any(len(c["train"]["x"]) % c["settings"]["batch"] for c in CASES.values()), "a leftover batch"
