"""TensorFlow Playground's 2-D data sets, ported from playground's ``src/dataset.ts``.

Each generator follows the TypeScript original line by line (same distributions, same noise
semantics, same point counts), with ``Math.random()`` replaced by a seeded numpy Generator:

- ``circle``, ``xor``, ``reg_plane``, ``reg_gauss`` draw a noise offset, compute the label
  on the *noisy* point, and store the *un-noised* point (so noise flips labels near the
  boundary without moving points);
- ``gauss`` widens its two Gaussians: variance 0.5 .. 4 as noise goes 0 .. 0.5;
- ``spiral`` adds ``uniform(-1, 1) * noise`` to each stored coordinate.

Playground's labels are -1/+1; classification labels are stored as int32 0/1 (1 means
Playground's +1). Regression targets are Playground's float labels as they are:
``reg_gauss`` lies in [-1, 1]; ``reg_plane`` is Playground's *unclamped* linear scale
(x + y) / 10, so it reaches +-1.2 at the corners of the square (and +-1.8 with noise 0.5),
exactly as in Playground.

Like Playground, the points are shuffled and the first ``floor(n * train_fraction)`` become
the training split. Inputs are Playground's feature columns (``x1, x2, x1sq, x2sq, x1x2,
sin_x1, sin_x2``) in the order of ``data.features``, computed by :func:`feature_map`, which
the training code also uses to evaluate models on a decision-boundary grid.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np

from harness.data.base import Dataset
from harness.errors import ConfigError

# Playground's INPUTS table (playground.ts), under this harness's names.
FEATURES: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "x1": lambda x, y: x,
    "x2": lambda x, y: y,
    "x1sq": lambda x, y: x * x,
    "x2sq": lambda x, y: y * y,
    "x1x2": lambda x, y: x * y,
    "sin_x1": lambda x, y: np.sin(x),
    "sin_x2": lambda x, y: np.sin(y),
}
FEATURE_NAMES = tuple(FEATURES)

CLASSIFICATION_SETS = ("circle", "xor", "gauss", "spiral")
REGRESSION_SETS = ("reg_plane", "reg_gauss")
PLAYGROUND_SETS = CLASSIFICATION_SETS + REGRESSION_SETS

# Playground's default number of points per problem type.
DEFAULT_NUM_SAMPLES = {"classification": 500, "regression": 1200}
# Every generator keeps its points in this square (up to noise): the heat-map extent.
INPUT_EXTENT = (-6.0, 6.0)
# Playground's slider goes to 0.5; its URL accepts up to 0.8 (playground.ts raises the slider's max).
NOISE_RANGE = (0.0, 0.8)


def check_features(features: Sequence[str], key: str = "data.features") -> tuple[str, ...]:
    """Return ``features`` as a tuple, or raise ConfigError: unknown, empty or duplicated."""
    features = tuple(str(f) for f in features)
    if not features:
        raise ConfigError(key, list(features), "a non-empty list of " + ", ".join(FEATURE_NAMES))
    for f in features:
        if f not in FEATURES:
            raise ConfigError(key, list(features), "names from " + ", ".join(FEATURE_NAMES))
    if len(set(features)) != len(features):
        raise ConfigError(key, list(features), "each feature at most once")
    return features


def feature_map(points_xy: np.ndarray, features: Sequence[str]) -> np.ndarray:
    """Playground's input features of 2-D points: float32 [n, len(features)], in that order.

    The one definition of the features: the generator and the decision-boundary grid both
    call it, so a model sees grid points exactly as it saw training points.
    """
    features = check_features(features)
    pts = np.asarray(points_xy, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"points_xy must have shape [n, 2], got {pts.shape}")
    x, y = pts[:, 0], pts[:, 1]
    cols = [FEATURES[f](x, y) for f in features]
    return np.stack(cols, axis=1).astype(np.float32)


def _uniform(rng: np.random.Generator, a: float, b: float, n: int) -> np.ndarray:
    """Playground's randUniform(a, b): ``random() * (b - a) + a``, n times."""
    return rng.random(n) * (b - a) + a


def _half(num_samples: int) -> int:
    """Points per class where Playground loops ``for (i = 0; i < numSamples / 2; i++)``."""
    return math.ceil(num_samples / 2)


def _circle(rng: np.random.Generator, num_samples: int, noise: float):
    """classifyCircleData: +1 inside radius 2.5 (drawn from r < 2.5), -1 from r in [3.5, 5]."""
    radius = 5.0

    def ring(r_lo: float, r_hi: float) -> tuple[np.ndarray, np.ndarray]:
        n = _half(num_samples)
        r = _uniform(rng, r_lo, r_hi, n)
        angle = _uniform(rng, 0.0, 2 * math.pi, n)
        x, y = r * np.sin(angle), r * np.cos(angle)
        nx = _uniform(rng, -radius, radius, n) * noise
        ny = _uniform(rng, -radius, radius, n) * noise
        # The label is that of the noisy point; the stored point is the clean one.
        label = np.where(np.hypot(x + nx, y + ny) < radius * 0.5, 1, -1)
        return np.stack([x, y], axis=1), label

    p1, l1 = ring(0.0, radius * 0.5)
    p2, l2 = ring(radius * 0.7, radius)
    return np.concatenate([p1, p2]), np.concatenate([l1, l2])


def _xor(rng: np.random.Generator, num_samples: int, noise: float):
    """classifyXORData: uniform in [-5, 5]^2 pushed 0.3 away from the axes; label sign(x*y)."""
    n, padding = num_samples, 0.3
    x = _uniform(rng, -5.0, 5.0, n)
    x = x + np.where(x > 0, padding, -padding)
    y = _uniform(rng, -5.0, 5.0, n)
    y = y + np.where(y > 0, padding, -padding)
    nx = _uniform(rng, -5.0, 5.0, n) * noise
    ny = _uniform(rng, -5.0, 5.0, n) * noise
    label = np.where((x + nx) * (y + ny) >= 0, 1, -1)
    return np.stack([x, y], axis=1), label


def _normal(rng: np.random.Generator, mean: float, variance: float, n: int) -> np.ndarray:
    """Playground's normalRandom(mean, variance): mean + sqrt(variance) * N(0, 1)."""
    return mean + math.sqrt(variance) * rng.standard_normal(n)


def _gauss(rng: np.random.Generator, num_samples: int, noise: float):
    """classifyTwoGaussData: +1 around (2, 2), -1 around (-2, -2); variance 0.5 + 7 * noise."""
    # d3.scale.linear().domain([0, .5]).range([0.5, 4])
    variance = 0.5 + (4.0 - 0.5) * noise / 0.5
    pts, labels = [], []
    for c, label in ((2.0, 1), (-2.0, -1)):
        n = _half(num_samples)
        pts.append(np.stack([_normal(rng, c, variance, n), _normal(rng, c, variance, n)], 1))
        labels.append(np.full(n, label))
    return np.concatenate(pts), np.concatenate(labels)


def _spiral(rng: np.random.Generator, num_samples: int, noise: float):
    """classifySpiralData: two arms of 1.75 turns, radius 0 .. 5, noise added to coordinates."""
    n = num_samples / 2  # a float in Playground too
    pts, labels = [], []
    for delta_t, label in ((0.0, 1), (math.pi, -1)):
        i = np.arange(math.ceil(n), dtype=np.float64)
        r = i / n * 5
        t = 1.75 * i / n * 2 * math.pi + delta_t
        # Playground draws x's noise, then y's, point by point; the order of draws is the
        # only thing that differs here, not the distribution.
        x = r * np.sin(t) + _uniform(rng, -1.0, 1.0, len(i)) * noise
        y = r * np.cos(t) + _uniform(rng, -1.0, 1.0, len(i)) * noise
        pts.append(np.stack([x, y], axis=1))
        labels.append(np.full(len(i), label))
    return np.concatenate(pts), np.concatenate(labels)


def _regress_points(rng: np.random.Generator, num_samples: int, noise: float):
    """Shared by both regression sets: clean points in [-6, 6]^2 and their noisy twins."""
    radius = 6.0
    x = _uniform(rng, -radius, radius, num_samples)
    y = _uniform(rng, -radius, radius, num_samples)
    nx = _uniform(rng, -radius, radius, num_samples) * noise
    ny = _uniform(rng, -radius, radius, num_samples) * noise
    return np.stack([x, y], axis=1), x + nx, y + ny


def _reg_plane(rng: np.random.Generator, num_samples: int, noise: float):
    """regressPlane: label = (x + y) / 10 at the noisy point (d3 linear scale, not clamped)."""
    pts, xn, yn = _regress_points(rng, num_samples, noise)
    return pts, (xn + yn) / 10.0


# regressGaussian's six bumps: centre x, centre y, sign.
_REG_GAUSSIANS = ((-4, 2.5, 1), (0, 2.5, -1), (4, 2.5, 1), (-4, -2.5, -1), (0, -2.5, 1), (4, -2.5, -1))


def _reg_gauss(rng: np.random.Generator, num_samples: int, noise: float):
    """regressGaussian: the signed bump (1 at its centre, 0 beyond distance 2) largest in |.|."""
    pts, xn, yn = _regress_points(rng, num_samples, noise)
    label = np.zeros(num_samples)
    for cx, cy, sign in _REG_GAUSSIANS:
        # d3.scale.linear().domain([0, 2]).range([1, 0]).clamp(true)
        new = sign * np.clip(1.0 - np.hypot(xn - cx, yn - cy) / 2.0, 0.0, 1.0)
        # Playground replaces only on a strictly larger magnitude: the first bump wins ties.
        label = np.where(np.abs(new) > np.abs(label), new, label)
    return pts, label


GENERATORS = {
    "circle": _circle,
    "xor": _xor,
    "gauss": _gauss,
    "spiral": _spiral,
    "reg_plane": _reg_plane,
    "reg_gauss": _reg_gauss,
}


def boundary_grid(dataset: Dataset, resolution: int) -> np.ndarray | None:
    """Input features on a ``resolution``² grid over the Playground square, or None."""
    if dataset.input_extent is None or not dataset.feature_names:
        return None
    lo, hi = dataset.input_extent
    ticks = np.linspace(lo, hi, resolution, dtype=np.float32)
    xx, yy = np.meshgrid(ticks, ticks[::-1])  # row 0 is the top of the picture
    points = np.stack([xx.ravel(), yy.ravel()], axis=1)
    return feature_map(points, list(dataset.feature_names)).astype(np.float32)


def task_of(name: str) -> str:
    """'classification' or 'regression' for a Playground set."""
    return "classification" if name in CLASSIFICATION_SETS else "regression"


def load_playground(cfg, name: str) -> Dataset:
    """Generate one Playground set from ``cfg`` (seed, noise, num_samples, train_fraction, features)."""
    task = task_of(name)
    num_samples = cfg.num_samples if cfg.num_samples is not None else DEFAULT_NUM_SAMPLES[task]
    features = check_features(cfg.features)
    rng = np.random.default_rng(cfg.seed)
    xy, labels = GENERATORS[name](rng, int(num_samples), float(cfg.noise))

    # Playground shuffles, then takes the first floor(n * ratio) points for training.
    order = rng.permutation(len(xy))
    xy, labels = xy[order], labels[order]
    split = int(math.floor(len(xy) * float(cfg.train_fraction)))

    # Features from the float32 points that are stored, so feature_map(points) == x exactly.
    xy = xy.astype(np.float32)
    x = feature_map(xy, features)
    if task == "classification":
        y = (labels > 0).astype(np.int32)  # Playground's +1 -> 1, -1 -> 0
    else:
        y = labels.astype(np.float32)
    return Dataset(
        name=name,
        task=task,
        layout="vector",
        x_train=x[:split],
        y_train=y[:split],
        x_val=x[:0],
        y_val=y[:0],
        x_test=x[split:],
        y_test=y[split:],
        num_classes=2 if task == "classification" else 0,
        feature_names=features,
        input_extent=INPUT_EXTENT,
        info={
            "source": "TensorFlow Playground src/dataset.ts",
            "noise": float(cfg.noise),
            "num_samples": int(len(xy)),
            # The raw 2-D points of each split, row for row, for scatter plots under the
            # decision boundary (the features may not contain x1, x2). load_dataset keeps
            # them in step with the rows it filters. Arrays: not JSON-serialisable.
            "points": {
                "train": xy[:split],
                "val": xy[:0],
                "test": xy[split:],
            },
        },
    )


def _loader(name: str):
    """A registry entry: ``cfg -> Dataset`` for one Playground set."""

    def load(cfg) -> Dataset:
        return load_playground(cfg, name)

    load.__name__ = f"load_{name}"
    load.__doc__ = f"TensorFlow Playground's {name!r} data set."
    return load


LOADERS = {name: _loader(name) for name in PLAYGROUND_SETS}
