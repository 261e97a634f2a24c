"""Data sets: one registry, one entry point, one place for the generic post-processing.

``load_dataset(cfg)`` checks ``cfg`` (:func:`validate_data_config`), calls the loader registered
under ``cfg.name`` in :data:`DATASETS`, then applies, in this order:

1. ``classes``: keep only these classes (all splits) and relabel them 0..k-1 *in the order
   listed* (``[3, 1]`` makes 3 -> 0 and 1 -> 1);
2. ``val_fraction``: carve a random validation split from train (rng from the data seed);
3. ``max_train``: keep the first N remaining training examples. Carving validation first keeps
   the validation set the same across a ``max_train`` sweep, and makes N the exact train size;
   smaller N give nested subsets;
4. ``layout``: ``vector`` flattens x; ``sequence`` reads a signal as it is and an image's rows
   as time steps; ``image`` only keeps an image an image. Anything else is a ConfigError.

Config values are read by attribute, so ``cfg`` may be an OmegaConf DictConfig, a
:class:`harness.config.DataConfig` or any object with those attributes (missing ones take
DataConfig's defaults). Keys that do not apply to a data set are ignored.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from types import SimpleNamespace
from typing import Any, Callable

import numpy as np

from harness.config import DataConfig
from harness.data import digits, files, mnist1d, playground, sequences
from harness.data.base import LAYOUTS, Dataset, split_validation
from harness.errors import ConfigError

__all__ = [
    "DATASETS",
    "DATASET_NAMES",
    "SPECS",
    "Dataset",
    "load_dataset",
    "validate_data_config",
    "generated_bytes",
    "feature_map",
]

feature_map = playground.feature_map

# name -> loader(cfg) -> Dataset with an empty validation split.
DATASETS: dict[str, Callable[[Any], Dataset]] = {
    **playground.LOADERS,
    "mnist1d": mnist1d.load_mnist1d,
    "digits": digits.load_digits,
    "adding": sequences.load_adding,
    "copy": sequences.load_copy,
    "sentiment": sequences.load_sentiment,
    "files": files.load_files,
}
DATASET_NAMES = tuple(DATASETS)


@dataclasses.dataclass(frozen=True)
class Spec:
    """What is known about a data set before generating it (for early validation)."""

    task: str
    layout: str
    num_classes: int | None  # None: known only once loaded (files)
    targets: str = "example"


SPECS: dict[str, Spec] = {
    **{n: Spec("classification", "vector", 2) for n in playground.CLASSIFICATION_SETS},
    **{n: Spec("regression", "vector", 0) for n in playground.REGRESSION_SETS},
    "mnist1d": Spec("classification", "signal", 10),
    "digits": Spec("classification", "image", 10),
    "adding": Spec("regression", "sequence", 0),
    "copy": Spec("classification", "sequence", 10, targets="sequence"),
    "sentiment": Spec("classification", "tokens", 2),
    "files": Spec("classification", "image", None),
}

LAYOUT_CHOICES = ("auto", "vector", "image", "sequence")
# Which natural layouts each override may be applied to.
LAYOUT_SOURCES = {
    "vector": ("vector", "signal", "image", "sequence"),  # not tokens: the FNN bags them itself
    "image": ("image",),
    "sequence": ("sequence", "signal", "image"),  # an image is read row by row
}
# Sets whose train/test split is drawn by train_fraction, and their sizes when fixed.
_USES_TRAIN_FRACTION = playground.PLAYGROUND_SETS + ("digits", "adding", "copy", "sentiment")
_DIGITS_SIZE = 1797
_MNIST1D_MIN_SAMPLES = 20  # two per class, so that the 80/20 split leaves each side non-empty
_VAL_STREAM = 0x76616C  # a separate random stream of the data seed for the validation split


# ---------------------------------------------------------------------------------------------
# Reading the config


def _defaults() -> dict[str, Any]:
    """DataConfig's field defaults."""
    out = {}
    for f in dataclasses.fields(DataConfig):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            out[f.name] = f.default_factory()  # type: ignore[misc]
    return out


def _plain(value: Any) -> Any:
    """OmegaConf ListConfig -> list (recursively is not needed: lists of scalars only)."""
    if value is not None and not isinstance(value, (str, bytes)) and hasattr(value, "__iter__") \
            and not isinstance(value, dict):
        return list(value)
    return value


def read_config(cfg: Any) -> SimpleNamespace:
    """A plain namespace with every DataConfig key, read by attribute from ``cfg``."""
    values = _defaults()
    for key in values:
        try:
            values[key] = _plain(getattr(cfg, key))
        except AttributeError:
            pass  # keep DataConfig's default
        except Exception as e:  # omegaconf.MissingMandatoryValue for an unset data.name
            allowed = sorted(DATASETS) if key == "name" else "a value must be set"
            raise ConfigError(f"data.{key}", None, allowed) from e
    return SimpleNamespace(**values)


# ---------------------------------------------------------------------------------------------
# Validation (no data generated)


def _is_int(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _default_size(c: SimpleNamespace) -> int | None:
    """How many examples the train/test split divides, where known without loading."""
    if c.name in playground.PLAYGROUND_SETS:
        return c.num_samples or playground.DEFAULT_NUM_SAMPLES[playground.task_of(c.name)]
    if c.name in sequences.DEFAULT_NUM_SAMPLES:
        return c.num_samples or sequences.DEFAULT_NUM_SAMPLES[c.name]
    if c.name == "digits":
        return _DIGITS_SIZE
    return None


def validate_data_config(cfg: Any) -> SimpleNamespace:
    """Check every value of a data config without generating data; return it as a namespace.

    Raises ConfigError naming the full key (``data.noise``), the value and what is allowed.
    Cheap: a launcher can run it over every job of a multirun before any compute.
    """
    c = read_config(cfg)
    if c.name not in DATASETS:
        raise ConfigError("data.name", c.name, sorted(DATASETS))
    spec = SPECS[c.name]

    if not _is_int(c.seed) or c.seed < 0:
        raise ConfigError("data.seed", c.seed, "an integer >= 0")
    if not _is_number(c.val_fraction) or not 0.0 <= c.val_fraction < 1.0:
        raise ConfigError("data.val_fraction", c.val_fraction, "a number in [0, 1)")
    if c.max_train is not None and (not _is_int(c.max_train) or c.max_train < 1):
        raise ConfigError("data.max_train", c.max_train, "null or an integer >= 1")
    if not isinstance(c.shuffle_positions, bool):
        raise ConfigError("data.shuffle_positions", c.shuffle_positions, "true or false")
    _validate_classes(c, spec)
    _validate_layout(c, spec)

    if c.name in playground.PLAYGROUND_SETS:
        lo, hi = playground.NOISE_RANGE
        if not _is_number(c.noise) or not lo <= c.noise <= hi:
            raise ConfigError("data.noise", c.noise, f"a number in [{lo}, {hi}] (Playground's range)")
        if isinstance(c.features, str) or not isinstance(c.features, (list, tuple)):
            raise ConfigError("data.features", c.features, "a list of " + ", ".join(playground.FEATURE_NAMES))
        playground.check_features(c.features)
    if c.name in sequences.MIN_LENGTH:
        m = sequences.MIN_LENGTH[c.name]
        if not _is_int(c.length) or c.length < m:
            raise ConfigError("data.length", c.length, f"an integer >= {m} for {c.name}")
    if c.name == "sentiment":
        base = len(sequences.BASE_VOCAB)
        if not _is_int(c.vocab_size) or (c.vocab_size != 0 and c.vocab_size < base):
            raise ConfigError("data.vocab_size", c.vocab_size, f"0 (the generator's {base} words) or an integer >= {base}")
    if c.name == "files" and (not isinstance(c.path, str) or not c.path.strip()):
        raise ConfigError("data.path", c.path, "a folder of MNIST IDX files or an .npz file")

    if c.num_samples is not None:
        minimum = _MNIST1D_MIN_SAMPLES if c.name == "mnist1d" else 2
        if not _is_int(c.num_samples) or c.num_samples < minimum:
            raise ConfigError("data.num_samples", c.num_samples, f"null or an integer >= {minimum}")
    if c.name in _USES_TRAIN_FRACTION:
        if not _is_number(c.train_fraction) or not 0.0 < c.train_fraction < 1.0:
            raise ConfigError("data.train_fraction", c.train_fraction, "a number in (0, 1)")
        n = _default_size(c)
        n_train = math.floor(n * c.train_fraction)
        if n_train < 1 or n - n_train < 1:
            raise ConfigError(
                "data.train_fraction", c.train_fraction,
                f"a fraction leaving at least one of the {n} examples in train and in test",
            )
    return c


# Peak bytes per example (per time step for sequences) of the arrays each generator allocates,
# read off the loaders: adding holds two float64 [n, T] arrays and x float32 [n, T, 2]; copy
# int32 inputs and targets and a one-hot float32 x of 10 per step; sentiment int64 kinds and
# int32 tokens for at least 256 candidate rows; the Playground sets float64 points and
# features plus float32 copies; MNIST-1D float64 signals of 40 positions with templates.
_BYTES_PER_STEP = {"adding": 24, "copy": 48, "sentiment": 12}
_SEQUENCE_EXTRA_STEPS = {"copy": 2 * sequences.COPY_SYMBOLS}
_MNIST1D_BYTES = 40 * 8 * 8


def generated_bytes(c: SimpleNamespace) -> int | None:
    """Estimated peak bytes of generating the data set ``c`` names (a validated namespace),
    before any is generated; None where the size is fixed and small (digits) or read from
    files (checked once loaded)."""
    n = _default_size(c)
    if c.name in _BYTES_PER_STEP:
        rows = max(256, n) if c.name == "sentiment" else n
        return rows * (int(c.length) + _SEQUENCE_EXTRA_STEPS.get(c.name, 0)) * _BYTES_PER_STEP[c.name]
    if c.name in playground.PLAYGROUND_SETS:
        return n * (2 + len(c.features)) * (8 + 4)
    if c.name == "mnist1d" and c.num_samples is not None:  # its default size is small
        return c.num_samples * _MNIST1D_BYTES
    return None


def _validate_classes(c: SimpleNamespace, spec: Spec) -> None:
    """``data.classes``: distinct known class indices, at least two, classification only."""
    if c.classes is None:
        return
    if spec.task != "classification" or spec.targets != "example":
        raise ConfigError("data.classes", c.classes, f"null for {c.name} (it has no per-example classes)")
    if not isinstance(c.classes, (list, tuple)) or not all(_is_int(k) for k in c.classes):
        raise ConfigError("data.classes", c.classes, "null or a list of class indices")
    if len(c.classes) < 2 or len(set(c.classes)) != len(c.classes):
        raise ConfigError("data.classes", c.classes, "at least two distinct class indices")
    top = spec.num_classes
    if any(k < 0 or (top is not None and k >= top) for k in c.classes):
        allowed = f"indices in 0..{top - 1}" if top is not None else "non-negative indices"
        raise ConfigError("data.classes", c.classes, f"{allowed} for {c.name}")


def _validate_layout(c: SimpleNamespace, spec: Spec) -> None:
    """``data.layout``: a known choice that makes sense for this set's natural layout."""
    if c.layout not in LAYOUT_CHOICES:
        raise ConfigError("data.layout", c.layout, LAYOUT_CHOICES)
    if c.layout == "auto":
        return
    sources = LAYOUT_SOURCES[c.layout]
    ok = spec.layout in sources and not (c.layout == "vector" and spec.targets == "sequence")
    if not ok:
        allowed = [k for k, src in LAYOUT_SOURCES.items() if spec.layout in src]
        if spec.targets == "sequence":
            allowed = [k for k in allowed if k != "vector"]
        raise ConfigError(
            "data.layout", c.layout,
            f"one of {', '.join(['auto'] + allowed)} for {c.name} (natural layout {spec.layout})",
        )


# ---------------------------------------------------------------------------------------------
# Post-processing (one place for every data set)


def _take_rows(ds: Dataset, rows: dict[str, np.ndarray], **changes: Any) -> Dataset:
    """Select rows of each split (and of the per-row arrays in ``info['points']``)."""
    new = {}
    for split, idx in rows.items():
        new[f"x_{split}"] = getattr(ds, f"x_{split}")[idx]
        new[f"y_{split}"] = changes.pop(f"y_{split}", getattr(ds, f"y_{split}"))[idx]
    info = dict(ds.info)
    if "points" in info:  # Playground's raw 2-D points stay row for row with x
        info["points"] = {s: p[rows[s]] if s in rows else p for s, p in info["points"].items()}
    return dataclasses.replace(ds, **new, **changes, info=info)


def _filter_classes(ds: Dataset, classes: list[int]) -> Dataset:
    """Keep the listed classes in every split, relabelled 0..k-1 in the listed order."""
    if ds.num_classes and max(classes) >= ds.num_classes:
        raise ConfigError("data.classes", classes, f"indices in 0..{ds.num_classes - 1} for {ds.name}")
    lookup = np.full(max(max(classes), ds.num_classes) + 1, -1, dtype=np.int32)
    lookup[np.asarray(classes)] = np.arange(len(classes), dtype=np.int32)
    rows, relabelled = {}, {}
    for split in ("train", "val", "test"):
        y = getattr(ds, f"y_{split}")
        mapped = lookup[y]
        rows[split] = np.flatnonzero(mapped >= 0)
        relabelled[f"y_{split}"] = mapped
    for split in ("train", "test"):
        if len(rows[split]) == 0:
            raise ConfigError("data.classes", classes, f"classes present in the {split} split of {ds.name}")
    info = dict(ds.info, classes=list(classes))
    ds = dataclasses.replace(ds, info=info)
    return _take_rows(ds, rows, num_classes=len(classes), **relabelled)


def _carve_validation(ds: Dataset, val_fraction: float, seed: int) -> Dataset:
    """Move a random ``val_fraction`` of the training rows to the validation split."""
    rng = np.random.default_rng([seed, _VAL_STREAM])
    n = len(ds.x_train)
    # split_validation on the row indices tells us which rows went where.
    idx = np.arange(n)
    _, train_idx, _, val_idx = split_validation(idx, idx, val_fraction, rng)
    if len(train_idx) == 0:
        raise ConfigError("data.val_fraction", val_fraction, f"a fraction leaving training data ({n} rows)")
    x, y = ds.x_train, ds.y_train
    info = dict(ds.info)
    if "points" in info:
        p = info["points"]["train"]
        info["points"] = dict(info["points"], train=p[train_idx], val=p[val_idx])
    return dataclasses.replace(
        ds, x_train=x[train_idx], y_train=y[train_idx], x_val=x[val_idx], y_val=y[val_idx], info=info
    )


def _limit_train(ds: Dataset, max_train: int) -> Dataset:
    """Keep the first ``max_train`` training rows."""
    n = len(ds.x_train)
    if max_train > n:
        raise ConfigError(
            "data.max_train", max_train,
            f"at most {n} (the training examples of {ds.name} after the validation split)",
        )
    return _take_rows(ds, {"train": np.arange(max_train)})


def _relayout(ds: Dataset, layout: str) -> Dataset:
    """Reshape x for an overridden layout (the combination was validated beforehand)."""
    if layout == ds.layout:
        return ds

    def reshape(x: np.ndarray) -> np.ndarray:
        # Explicit sizes, not -1: an empty validation split cannot infer them.
        if layout == "vector":
            return x.reshape(x.shape[0], math.prod(x.shape[1:]))
        if layout == "sequence" and ds.layout == "image":  # rows are time steps
            return x.reshape(x.shape[0], x.shape[1], math.prod(x.shape[2:]))
        return x  # a signal already is [n, time, channels]

    return dataclasses.replace(
        ds,
        layout=layout,
        x_train=reshape(ds.x_train),
        x_val=reshape(ds.x_val),
        x_test=reshape(ds.x_test),
        info=dict(ds.info, natural_layout=ds.layout),
    )


def postprocess(ds: Dataset, c: SimpleNamespace) -> Dataset:
    """classes -> val_fraction -> max_train -> layout, for every data set alike."""
    if c.classes is not None:
        ds = _filter_classes(ds, list(c.classes))
    if c.val_fraction > 0:
        ds = _carve_validation(ds, float(c.val_fraction), int(c.seed))
    if c.max_train is not None:
        ds = _limit_train(ds, int(c.max_train))
    if c.layout != "auto":
        ds = _relayout(ds, c.layout)
    return ds


def load_dataset(cfg: Any) -> Dataset:
    """Validate ``cfg``, generate or load the data set it names, and post-process it."""
    c = validate_data_config(cfg)
    ds = DATASETS[c.name](c)
    assert ds.layout in LAYOUTS, ds.layout
    return postprocess(ds, c)
