"""scikit-learn's bundled 8x8 handwritten digits (UCI optdigits test set, 1797 images).

``sklearn.datasets.load_digits`` reads a file shipped inside scikit-learn: no download.
Pixels (0..16) are scaled to [0, 1]; x is float32 [n, 8, 8, 1] (layout "image"), y int32 0..9.
The train/test split is stratified by class and deterministic from ``data.seed``.
"""

from __future__ import annotations

import numpy as np

from harness.data.base import Dataset


def stratified_split(
    y: np.ndarray, train_fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a stratified train/test split, each in random order.

    Each class contributes ``round(n_c * train_fraction)`` rows to train (at least one to each
    side when it has two or more rows), so class proportions match in both splits. The train
    order is shuffled because ``data.max_train`` keeps the *first* N training rows.
    """
    train, test = [], []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        k = int(round(len(idx) * train_fraction))
        if len(idx) >= 2:
            k = min(max(k, 1), len(idx) - 1)
        train.append(idx[:k])
        test.append(idx[k:])
    train_idx = rng.permutation(np.concatenate(train))
    test_idx = rng.permutation(np.concatenate(test))
    return train_idx, test_idx


def load_digits(cfg) -> Dataset:
    """The 8x8 digits as images in [0, 1], split by ``data.train_fraction`` (yaml: 0.8)."""
    from sklearn.datasets import load_digits as sk_load_digits

    bunch = sk_load_digits()
    x = (bunch.images.astype(np.float32) / 16.0)[..., None]
    y = bunch.target.astype(np.int32)
    rng = np.random.default_rng(cfg.seed)
    train_idx, test_idx = stratified_split(y, float(cfg.train_fraction), rng)
    return Dataset(
        name="digits",
        task="classification",
        layout="image",
        x_train=x[train_idx],
        y_train=y[train_idx],
        x_val=x[:0],
        y_val=y[:0],
        x_test=x[test_idx],
        y_test=y[test_idx],
        num_classes=10,
        info={"source": "sklearn.datasets.load_digits (UCI optdigits, 8x8)"},
    )
