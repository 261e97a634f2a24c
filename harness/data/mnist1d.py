"""MNIST-1D (Greydanus 2020), generated offline with the ``mnist1d`` package and cached as .npz.

``mnist1d.data.make_dataset(get_dataset_args())`` builds the standard set (5000 examples,
4000 train / 1000 test, length 40) in about 2.5 s. We never call ``mnist1d.data.get_dataset``:
it downloads a pickle. The generated arrays are cached in a user cache directory,
keyed by the generator arguments, so later runs (and concurrent workers of a sweep) load them
in milliseconds.

``data.seed`` picks the generator seed: mnist1d's default seed 42 is ``data.seed=0``.
``data.num_samples`` (if set) replaces mnist1d's ``num_samples`` (5000; mnist1d keeps a multiple
of 10 and splits it 80/20). ``data.train_fraction`` is ignored: mnist1d has its own split.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from harness.data.base import Dataset

SEED_OFFSET = 42  # mnist1d's default seed is data.seed = 0
CACHE_VERSION = 1  # bump when the cached content or its meaning changes
# A separate stream of the data seed for the position permutation.
_PERMUTATION_STREAM = 0x6D6E31


def cache_dir() -> Path:
    """Where generated data sets are cached: $HARNESS_CACHE_DIR, else $XDG_CACHE_HOME/harness,
    else ~/.cache/harness."""
    if os.environ.get("HARNESS_CACHE_DIR"):
        return Path(os.environ["HARNESS_CACHE_DIR"]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "harness"
    return Path.home() / ".cache" / "harness"


def generator_args(seed: int = 0, num_samples: int | None = None) -> dict:
    """mnist1d's default generator arguments with the harness's seed (and size, if given)."""
    from mnist1d.data import get_dataset_args

    args = get_dataset_args(as_dict=True)
    args.pop("url", None)  # only get_dataset (the download) uses it
    args["seed"] = SEED_OFFSET + int(seed)
    if num_samples is not None:
        args["num_samples"] = int(num_samples)
    return args


def cache_path(args: dict) -> Path:
    """The cache file for these generator arguments (a hash of them, so any change misses)."""
    key = json.dumps({"version": CACHE_VERSION, "args": args}, sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return cache_dir() / f"mnist1d-{digest}.npz"


@contextlib.contextmanager
def _preserved_global_rng():
    """mnist1d seeds and draws from numpy's and Python's global RNGs: leave them as we found them."""
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        yield
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)


def generate(args: dict) -> dict[str, np.ndarray]:
    """Run mnist1d's generator: x float32 [n, 40], y int32 [n] for train and test."""
    from mnist1d.data import make_dataset
    from mnist1d.utils import ObjectView

    with _preserved_global_rng():
        raw = make_dataset(ObjectView(dict(args)))
    return {
        "x_train": np.asarray(raw["x"], dtype=np.float32),
        "y_train": np.asarray(raw["y"], dtype=np.int32),
        "x_test": np.asarray(raw["x_test"], dtype=np.float32),
        "y_test": np.asarray(raw["y_test"], dtype=np.int32),
        "t": np.asarray(raw["t"], dtype=np.float32),
    }


_KEYS = ("x_train", "y_train", "x_test", "y_test", "t")


def _read_cache(path: Path) -> dict[str, np.ndarray] | None:
    """The cached arrays, or None if the file is missing or unreadable (then we regenerate)."""
    try:
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in _KEYS}
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
        return None


def _write_cache(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write atomically: a temp file in the same directory, then os.replace.

    Readers in other processes see either no file or the complete one, never a partial one.
    A cache that cannot be written (read-only home) only costs regeneration next time.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.stem + ".", suffix=".tmp")
    except OSError:
        return
    try:
        with os.fdopen(fd, "wb") as f:  # a file object: np.savez adds no ".npz" suffix
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def load_arrays(seed: int = 0, num_samples: int | None = None) -> tuple[dict[str, np.ndarray], dict, bool]:
    """The generated arrays (from the cache if there), the generator args, and whether cached."""
    args = generator_args(seed, num_samples)
    path = cache_path(args)
    arrays = _read_cache(path) if path.exists() else None
    if arrays is not None:
        return arrays, args, True
    arrays = generate(args)
    _write_cache(path, arrays)
    return arrays, args, False


def position_permutation(seed: int, length: int) -> np.ndarray:
    """The one fixed permutation of the signal positions used by ``shuffle_positions``."""
    return np.random.default_rng([int(seed), _PERMUTATION_STREAM]).permutation(length)


def load_mnist1d(cfg) -> Dataset:
    """MNIST-1D: x float32 [n, 40, 1] (layout "signal"), y int32 in 0..9."""
    arrays, args, cached = load_arrays(cfg.seed, cfg.num_samples)
    x_train, x_test = arrays["x_train"], arrays["x_test"]
    info = {
        "source": "mnist1d.data.make_dataset (Greydanus 2020), generated offline",
        "generator_args": args,
        "cache_hit": cached,
        "shuffle_positions": bool(cfg.shuffle_positions),
    }
    if cfg.shuffle_positions:
        # The same permutation for every example of every split: it destroys locality, not
        # information, so a CNN's inductive bias is tested against an FNN's indifference.
        perm = position_permutation(cfg.seed, x_train.shape[1])
        x_train, x_test = x_train[:, perm], x_test[:, perm]
        info["position_permutation"] = perm.tolist()
    x_train, x_test = x_train[..., None], x_test[..., None]
    return Dataset(
        name="mnist1d",
        task="classification",
        layout="signal",
        x_train=x_train,
        y_train=arrays["y_train"],
        x_val=x_train[:0],
        y_val=arrays["y_train"][:0],
        x_test=x_test,
        y_test=arrays["y_test"],
        num_classes=10,
        info=info,
    )
