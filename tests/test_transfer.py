"""train.init_from / train.freeze: pretrained feature layers, a fresh head, frozen or not."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from conftest import compose_config
from harness.errors import ConfigError
from harness.data.cache import dataset_for
from harness.train.hparams import hparams_of
from harness.train.loop import make_train, prepare_data
from harness.train.transfer import head_module
from harness.validate import validate_config

COMMON = ["data=digits", "model.hidden=[16]", "model.activation=relu", "optim=adam", "optim.lr=0.01",
          "train.batch_size=32", "train.steps=20", "train.eval_every=20", "logger=none"]


def _train(overrides):
    cfg = compose_config([*COMMON, *overrides])
    validate_config(cfg)
    dataset = dataset_for(cfg)
    train, _ = make_train(cfg, dataset)
    hp = {k: np.asarray(v) for k, v in hparams_of(cfg).items()}
    out = jax.jit(train)(hp, jax.random.PRNGKey(int(cfg.seed)), prepare_data(dataset))
    return jax.tree_util.tree_map(np.asarray, out)


def _save(params, path):
    flat = {jax.tree_util.keystr(p): np.asarray(v) for p, v in jax.tree_util.tree_leaves_with_path(params)}
    np.savez(path, **flat)
    return flat


def test_init_from_loads_features_and_freeze_keeps_them(tmp_path):
    pre = _train(["data.classes=[0,1,2]", "seed=3"])["params"]
    flat = _save(pre, tmp_path / "params.npz")
    assert head_module(pre) == "Dense_1"
    target = ["data.classes=[5,6,7,8]", "data.max_train=64", f"train.init_from={tmp_path / 'params.npz'}"]
    probe = _train([*target, "train.freeze=features"])["params"]
    # Frozen features stay exactly the pretrained ones; the new head (4 classes, not 3) trains.
    np.testing.assert_array_equal(probe["Dense_0"]["kernel"], flat["['Dense_0']['kernel']"])
    assert probe["Dense_1"]["kernel"].shape == (16, 4)


@pytest.mark.slow
def test_finetune_starts_from_pretrained_features(tmp_path):
    pre = _train(["data.classes=[0,1,2]", "seed=3"])["params"]
    flat = _save(pre, tmp_path / "params.npz")
    target = ["data.classes=[5,6,7,8]", "data.max_train=64", f"train.init_from={tmp_path / 'params.npz'}"]
    finetune = _train([*target, "train.freeze=none"])["params"]
    assert not np.array_equal(finetune["Dense_0"]["kernel"], flat["['Dense_0']['kernel']"])
    # It moves away from the pretrained features only a little.
    moved = np.abs(finetune["Dense_0"]["kernel"] - flat["['Dense_0']['kernel']"]).mean()
    assert moved < 0.5 * np.abs(flat["['Dense_0']['kernel']"]).mean()


def test_init_from_errors(tmp_path):
    with pytest.raises(ConfigError, match="train.init_from"):
        validate_config(compose_config([*COMMON, f"train.init_from={tmp_path / 'missing.npz'}"]))
    with pytest.raises(ConfigError, match="train.freeze"):
        validate_config(compose_config([*COMMON, "train.freeze=head"]))
    np.savez(tmp_path / "wide.npz", **{"['Dense_0']['kernel']": np.zeros((64, 32)), "['Dense_0']['bias']": np.zeros(32)})
    cfg = compose_config([*COMMON, f"train.init_from={tmp_path / 'wide.npz'}"])
    with pytest.raises(ConfigError, match="shape"):
        make_train(cfg, dataset_for(cfg))
