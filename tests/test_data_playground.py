"""TensorFlow Playground data sets: definitions as in playground's src/dataset.ts."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.config import DataConfig
from harness.data import load_dataset
from harness.data.playground import (
    CLASSIFICATION_SETS,
    FEATURE_NAMES,
    PLAYGROUND_SETS,
    REGRESSION_SETS,
    GENERATORS,
    feature_map,
)
from harness.errors import ConfigError


def generate_points(name: str, num_samples: int, noise: float, seed: int):
    """The raw Playground points in generation order: xy float64 [n, 2], labels."""
    return GENERATORS[name](np.random.default_rng(seed), num_samples, noise)


def cfg(name: str, **kw) -> DataConfig:
    """A DataConfig for one Playground set."""
    return DataConfig(name=name, **kw)


def all_points(ds) -> np.ndarray:
    """The raw 2-D points of train and test, in that order."""
    return np.concatenate([ds.info["points"]["train"], ds.info["points"]["test"]])


def all_y(ds) -> np.ndarray:
    return np.concatenate([ds.y_train, ds.y_test])


@pytest.mark.parametrize("name", PLAYGROUND_SETS)
def test_shapes_dtypes_and_defaults(name):
    ds = load_dataset(cfg(name))
    n = 500 if name in CLASSIFICATION_SETS else 1200
    assert ds.sizes == {"train": n // 2, "val": 0, "test": n // 2}
    assert ds.layout == "vector" and ds.x_train.shape == (n // 2, 2)
    assert ds.x_train.dtype == np.float32 and ds.x_test.dtype == np.float32
    assert ds.feature_names == ("x1", "x2")
    assert ds.input_extent == (-6.0, 6.0)
    if name in CLASSIFICATION_SETS:
        assert ds.task == "classification" and ds.num_classes == 2
        assert ds.y_train.dtype == np.int32 and set(np.unique(all_y(ds))) <= {0, 1}
    else:
        assert ds.task == "regression" and ds.num_classes == 0 and ds.num_outputs == 1
        assert ds.y_train.dtype == np.float32


@pytest.mark.parametrize("name", PLAYGROUND_SETS)
def test_deterministic_from_seed(name):
    a = load_dataset(cfg(name, seed=3, noise=0.2))
    b = load_dataset(cfg(name, seed=3, noise=0.2))
    c = load_dataset(cfg(name, seed=4, noise=0.2))
    for key, arr in a.arrays().items():
        np.testing.assert_array_equal(arr, b.arrays()[key])
    assert not np.array_equal(a.x_train, c.x_train)


def test_global_numpy_state_untouched():
    state = np.random.get_state()[1].copy()
    load_dataset(cfg("spiral", noise=0.3))
    np.testing.assert_array_equal(np.random.get_state()[1], state)


@pytest.mark.parametrize("fraction", [0.1, 0.3, 0.5, 0.9])
def test_train_fraction_split(fraction):
    ds = load_dataset(cfg("xor", train_fraction=fraction))
    assert ds.sizes["train"] == math.floor(500 * fraction)
    assert ds.sizes["train"] + ds.sizes["test"] == 500


def test_shuffled_before_split():
    # Playground generates class +1 first: unshuffled, train would be all one class.
    ds = load_dataset(cfg("spiral"))
    assert 0.35 < ds.y_train.mean() < 0.65 and 0.35 < ds.y_test.mean() < 0.65


def test_circle_definition_noise_free():
    ds = load_dataset(cfg("circle"))
    p, y = all_points(ds), all_y(ds)
    r = np.hypot(p[:, 0], p[:, 1])
    np.testing.assert_array_equal(y, (r < 2.5).astype(np.int32))
    # Inner disc r < 2.5, outer ring 3.5 <= r <= 5; exactly half each.
    assert np.all((r < 2.5) | ((r >= 3.5 - 1e-5) & (r <= 5 + 1e-5)))
    assert np.sum(y == 1) == 250 and np.sum(y == 0) == 250


def test_circle_noise_moves_labels_not_points():
    ds = load_dataset(cfg("circle", noise=0.5))
    p, y = all_points(ds), all_y(ds)
    r = np.hypot(p[:, 0], p[:, 1])
    # Stored points are un-noised: still the disc and the ring.
    assert np.all((r < 2.5) | ((r >= 3.5 - 1e-5) & (r <= 5 + 1e-5)))
    # Labels come from the noisy point, so some disagree with the clean radius.
    assert np.any(y != (r < 2.5))


def test_xor_definition_noise_free():
    ds = load_dataset(cfg("xor"))
    p, y = all_points(ds), all_y(ds)
    np.testing.assert_array_equal(y, (p[:, 0] * p[:, 1] >= 0).astype(np.int32))
    # Points are pushed 0.3 away from both axes, inside [-5.3, 5.3].
    assert np.all(np.abs(p) >= 0.3 - 1e-6) and np.all(np.abs(p) <= 5.3 + 1e-5)
    assert 0.4 < y.mean() < 0.6


def test_xor_noise_flips_some_labels():
    ds = load_dataset(cfg("xor", noise=0.5))
    p, y = all_points(ds), all_y(ds)
    assert np.all(np.abs(p) >= 0.3 - 1e-6)
    assert np.any(y != (p[:, 0] * p[:, 1] >= 0))


def test_spiral_definition():
    ds = load_dataset(cfg("spiral"))
    p, y = all_points(ds), all_y(ds)
    r = np.hypot(p[:, 0], p[:, 1])
    assert r.min() >= 0 and r.max() < 5
    # Each arm has radii i / 250 * 5, i = 0..249.
    for label in (0, 1):
        np.testing.assert_allclose(np.sort(r[y == label]), np.arange(250) / 250 * 5, atol=1e-5)
    assert np.sum(y == 1) == 250


def test_spiral_arms_are_point_symmetric():
    xy, labels = generate_points("spiral", 500, 0.0, seed=0)
    np.testing.assert_allclose(xy[labels == 1], -xy[labels == -1], atol=1e-12)


def test_spiral_noise_added_to_coordinates():
    clean, _ = generate_points("spiral", 500, 0.0, seed=0)
    noisy, _ = generate_points("spiral", 500, 0.5, seed=0)
    diff = np.abs(noisy - clean)
    assert diff.max() <= 0.5 and diff.max() > 0.3


@pytest.mark.parametrize("noise, variance", [(0.0, 0.5), (0.25, 2.25), (0.5, 4.0)])
def test_gauss_variance_scale(noise, variance):
    xy, labels = generate_points("gauss", 20000, noise, seed=1)
    pos = xy[labels == 1]
    np.testing.assert_allclose(pos.mean(0), [2, 2], atol=0.1)
    np.testing.assert_allclose(xy[labels == -1].mean(0), [-2, -2], atol=0.1)
    np.testing.assert_allclose(pos.var(0), [variance, variance], rtol=0.06)
    assert np.sum(labels == 1) == np.sum(labels == -1) == 10000


def test_reg_plane_definition():
    ds = load_dataset(cfg("reg_plane"))
    p, y = all_points(ds), all_y(ds)
    np.testing.assert_allclose(y, (p[:, 0] + p[:, 1]) / 10, atol=1e-6)
    assert np.all(np.abs(p) <= 6) and np.all(np.abs(y) <= 1.2 + 1e-6)
    noisy = load_dataset(cfg("reg_plane", noise=0.5))
    q, z = all_points(noisy), all_y(noisy)
    assert np.all(np.abs(q) <= 6)  # points stay clean
    assert not np.allclose(z, (q[:, 0] + q[:, 1]) / 10, atol=1e-3)


def reg_gauss_label(x: float, y: float) -> float:
    """regressGaussian's getLabel, written out as in dataset.ts (scalar)."""
    label = 0.0
    for cx, cy, sign in [(-4, 2.5, 1), (0, 2.5, -1), (4, 2.5, 1), (-4, -2.5, -1), (0, -2.5, 1), (4, -2.5, -1)]:
        d = math.hypot(x - cx, y - cy)
        new = sign * min(max(1 - d / 2, 0.0), 1.0)
        if abs(new) > abs(label):
            label = new
    return label


@pytest.mark.parametrize("noise", [0.0, 0.3])
def test_reg_gauss_definition(noise):
    ds = load_dataset(cfg("reg_gauss", noise=noise))
    p, y = all_points(ds), all_y(ds)
    assert np.all(y >= -1) and np.all(y <= 1) and np.all(np.abs(p) <= 6)
    if noise == 0:
        expect = np.array([reg_gauss_label(float(a), float(b)) for a, b in p.astype(np.float64)])
        np.testing.assert_allclose(y, expect, atol=1e-5)
    assert np.sum(y > 0.5) > 20 and np.sum(y < -0.5) > 20


def test_regression_targets_bounded():
    for name in REGRESSION_SETS:
        y = all_y(load_dataset(cfg(name, noise=0.0)))
        bound = 1.0 if name == "reg_gauss" else 1.2  # reg_plane: Playground's unclamped scale
        assert np.all(np.abs(y) <= bound + 1e-6)


def test_odd_num_samples_like_playground():
    # Playground loops i < numSamples / 2 per class: 7 points give 4 + 4.
    ds = load_dataset(cfg("gauss", num_samples=7))
    assert ds.sizes["train"] + ds.sizes["test"] == 8
    ds = load_dataset(cfg("xor", num_samples=7))  # xor draws numSamples points
    assert ds.sizes["train"] + ds.sizes["test"] == 7


def test_feature_definitions():
    pts = np.array([[0.5, -2.0], [3.0, 1.5], [-1.0, 0.0]])
    f = feature_map(pts, FEATURE_NAMES)
    x, y = pts[:, 0], pts[:, 1]
    expect = np.stack([x, y, x * x, y * y, x * y, np.sin(x), np.sin(y)], 1)
    assert f.dtype == np.float32 and f.shape == (3, 7)
    np.testing.assert_allclose(f, expect, rtol=1e-6)


def test_features_in_given_order_match_feature_map():
    features = ["sin_x2", "x1x2", "x1sq", "x2"]
    ds = load_dataset(cfg("spiral", features=features, noise=0.1))
    assert ds.feature_names == tuple(features) and ds.x_train.shape[1] == 4
    np.testing.assert_array_equal(ds.x_train, feature_map(ds.info["points"]["train"], features))
    np.testing.assert_array_equal(ds.x_test, feature_map(ds.info["points"]["test"], features))


@settings(max_examples=30, deadline=None)
@given(st.lists(st.sampled_from(FEATURE_NAMES), min_size=1, max_size=7, unique=True))
def test_feature_map_columns_are_independent(features):
    pts = np.random.default_rng(0).uniform(-6, 6, size=(20, 2))
    full = feature_map(pts, FEATURE_NAMES)
    np.testing.assert_array_equal(feature_map(pts, features), full[:, [FEATURE_NAMES.index(f) for f in features]])


@pytest.mark.parametrize("features", [[], ["x1", "x3"], ["x1", "x1"], "x1"])
def test_bad_features(features):
    with pytest.raises(ConfigError, match="data.features"):
        load_dataset(cfg("circle", features=features))


def test_feature_map_rejects_bad_input():
    with pytest.raises(ConfigError, match="data.features"):
        feature_map(np.zeros((3, 2)), ["cos_x1"])
    with pytest.raises(ValueError):
        feature_map(np.zeros((3, 3)), ["x1"])


@pytest.mark.parametrize("noise", [-0.1, 0.81, 2])
def test_bad_noise(noise):
    with pytest.raises(ConfigError, match="data.noise"):
        load_dataset(cfg("spiral", noise=noise))


def test_points_follow_postprocessing():
    ds = load_dataset(cfg("circle", val_fraction=0.2, max_train=100, features=["x2", "x1"]))
    assert ds.sizes == {"train": 100, "val": 50, "test": 250}
    for split in ("train", "val", "test"):
        pts = ds.info["points"][split]
        np.testing.assert_array_equal(getattr(ds, f"x_{split}"), feature_map(pts, ["x2", "x1"]))
        r = np.hypot(pts[:, 0], pts[:, 1])
        np.testing.assert_array_equal(getattr(ds, f"y_{split}"), (r < 2.5).astype(np.int32))


def test_dataclass_replace_keeps_dataset_valid():
    ds = load_dataset(cfg("gauss"))
    assert dataclasses.replace(ds).input_shape == (2,)


def test_noise_up_to_what_playgrounds_url_accepts():
    """Playground's slider stops at 50 but its URL takes noise up to 80 (0.8 here)."""
    ds = load_dataset(cfg("circle", noise=0.8))
    assert ds.info["noise"] == 0.8 and len(ds.x_train) == 250
