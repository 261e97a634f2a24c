"""MNIST-1D: offline generation, the .npz cache, seeds and shuffled positions.

The full set takes ~2.5 s to generate: it is generated once per module (into a temporary
cache directory); the other tests read it from that cache or use small ``num_samples``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from harness.config import DataConfig
from harness.data import load_dataset
from harness.data import mnist1d as m1d
from harness.errors import ConfigError

CONF = Path(__file__).resolve().parents[1] / "conf" / "data"


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """A fresh cache directory for this module, set as $HARNESS_CACHE_DIR."""
    path = tmp_path_factory.mktemp("harness-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HARNESS_CACHE_DIR", str(path))
        yield path


@pytest.fixture(scope="module")
def generated(cache):
    """The default MNIST-1D, generated once (cache miss), and the global RNG states around it."""
    np.random.seed(1234)
    before = np.random.get_state()[1].copy()
    import random

    random.seed(99)
    py_before = random.getstate()
    ds = load_dataset(DataConfig(name="mnist1d"))
    after, py_after = np.random.get_state()[1].copy(), random.getstate()
    return ds, before, after, py_before, py_after


def test_shapes_and_dtypes(generated):
    ds = generated[0]
    assert ds.sizes == {"train": 4000, "val": 0, "test": 1000}
    assert ds.layout == "signal" and ds.input_shape == (40, 1)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int32
    assert ds.task == "classification" and ds.num_classes == 10
    assert set(np.unique(ds.y_train)) == set(range(10))
    assert not ds.info["cache_hit"]
    assert ds.info["generator_args"]["seed"] == 42


def test_global_rng_state_restored(generated):
    _, before, after, py_before, py_after = generated
    np.testing.assert_array_equal(before, after)
    assert py_before == py_after


def test_cache_written_and_reused(generated, cache):
    files = sorted(p.name for p in cache.iterdir())
    assert len(files) == 1 and files[0].startswith("mnist1d-") and files[0].endswith(".npz")
    again = load_dataset(DataConfig(name="mnist1d"))
    assert again.info["cache_hit"]  # read back, not generated again
    for key, arr in generated[0].arrays().items():
        np.testing.assert_array_equal(arr, again.arrays()[key])
    with np.load(cache / files[0], allow_pickle=False) as f:  # a plain npz, no pickles
        assert set(f.files) >= {"x_train", "y_train", "x_test", "y_test"}


def test_matches_mnist1d_make_dataset(cache):
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples = 200  # small: same generator, same seed 42
    raw = make_dataset(args)
    ds = load_dataset(DataConfig(name="mnist1d", num_samples=200))
    np.testing.assert_allclose(ds.x_train[..., 0], raw["x"], rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(ds.y_test, raw["y_test"])
    assert ds.sizes == {"train": 160, "val": 0, "test": 40}


def test_seed_selects_generator_seed(cache):
    a = load_dataset(DataConfig(name="mnist1d", num_samples=200, seed=1))
    b = load_dataset(DataConfig(name="mnist1d", num_samples=200, seed=1))
    c = load_dataset(DataConfig(name="mnist1d", num_samples=200, seed=2))
    assert a.info["generator_args"]["seed"] == 43
    np.testing.assert_array_equal(a.x_train, b.x_train)
    assert not np.array_equal(a.x_train, c.x_train)


def test_shuffle_positions_is_one_fixed_permutation(generated):
    plain = generated[0]
    shuffled = load_dataset(DataConfig(name="mnist1d", shuffle_positions=True))
    perm = np.asarray(shuffled.info["position_permutation"])
    assert sorted(perm) == list(range(40)) and not np.array_equal(perm, np.arange(40))
    for split in ("train", "test"):
        x, xs = getattr(plain, f"x_{split}"), getattr(shuffled, f"x_{split}")
        # The same multiset of values in every example ...
        np.testing.assert_array_equal(np.sort(x, axis=1), np.sort(xs, axis=1))
        # ... moved by the same permutation in every example and every split.
        np.testing.assert_array_equal(xs, x[:, perm])
        np.testing.assert_array_equal(getattr(plain, f"y_{split}"), getattr(shuffled, f"y_{split}"))
    again = load_dataset(DataConfig(name="mnist1d", shuffle_positions=True))
    assert again.info["position_permutation"] == shuffled.info["position_permutation"]
    other = load_dataset(DataConfig(name="mnist1d", num_samples=200, seed=5, shuffle_positions=True))
    assert other.info["position_permutation"] != shuffled.info["position_permutation"]


def test_yaml_defaults(generated):
    raw = OmegaConf.load(CONF / "mnist1d.yaml")
    raw.pop("defaults")
    ds = load_dataset(OmegaConf.merge(OmegaConf.structured(DataConfig), raw))
    assert ds.sizes == {"train": 3600, "val": 400, "test": 1000}
    assert ds.info["cache_hit"]
    # Validation rows come out of the original training rows.
    both = np.concatenate([ds.x_train, ds.x_val])
    assert {r.tobytes() for r in both} == {r.tobytes() for r in generated[0].x_train}


def test_classes_and_layout(generated):
    ds = load_dataset(DataConfig(name="mnist1d", classes=[7, 3], layout="vector"))
    y = generated[0].y_train
    assert ds.num_classes == 2 and ds.x_train.shape == (np.sum((y == 3) | (y == 7)), 40)
    assert np.sum(ds.y_train == 0) == np.sum(y == 7)  # listed order: 7 -> 0
    seq = load_dataset(DataConfig(name="mnist1d", layout="sequence"))
    assert seq.layout == "sequence" and seq.input_shape == (40, 1)
    with pytest.raises(ConfigError, match="data.layout"):
        load_dataset(DataConfig(name="mnist1d", layout="image"))
    with pytest.raises(ConfigError, match="data.classes"):
        load_dataset(DataConfig(name="mnist1d", classes=[3, 10]))


def test_corrupt_cache_is_regenerated(cache):
    path = m1d.cache_path(m1d.generator_args(seed=7, num_samples=100))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not a zip file")
    ds = load_dataset(DataConfig(name="mnist1d", seed=7, num_samples=100))
    assert not ds.info["cache_hit"] and ds.sizes["train"] == 80
    assert load_dataset(DataConfig(name="mnist1d", seed=7, num_samples=100)).info["cache_hit"]
    assert not list(cache.glob("*.tmp"))  # atomic writes leave no temp files


def test_cache_dir_resolution(monkeypatch, tmp_path):
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "a"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert m1d.cache_dir() == tmp_path / "a"
    monkeypatch.delenv("HARNESS_CACHE_DIR")
    assert m1d.cache_dir() == tmp_path / "xdg" / "harness"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert m1d.cache_dir() == tmp_path / "home" / ".cache" / "harness"


def test_cache_key_depends_on_args():
    a = m1d.cache_path(m1d.generator_args(seed=0))
    assert a == m1d.cache_path(m1d.generator_args(seed=0))
    assert a != m1d.cache_path(m1d.generator_args(seed=1))
    assert a != m1d.cache_path(m1d.generator_args(seed=0, num_samples=1000))


def test_unwritable_cache_still_loads(monkeypatch, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache dir should be")
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(blocker / "sub"))
    ds = load_dataset(DataConfig(name="mnist1d", num_samples=50))
    assert ds.sizes["train"] == 40 and not ds.info["cache_hit"]


@pytest.mark.parametrize("num_samples", [0, 10, 19])
def test_too_few_samples(num_samples):
    with pytest.raises(ConfigError, match="data.num_samples"):
        load_dataset(DataConfig(name="mnist1d", num_samples=num_samples))


def test_never_downloads(monkeypatch, cache):
    import mnist1d.data

    def no_download(*a, **k):
        raise AssertionError("get_dataset downloads: it must not be called")

    monkeypatch.setattr(mnist1d.data, "get_dataset", no_download)
    assert load_dataset(DataConfig(name="mnist1d", num_samples=100, seed=3)).sizes["test"] == 20
    assert os.environ["HARNESS_CACHE_DIR"] == str(cache)
