"""Image classification data from files the user already has: MNIST-style IDX files or an .npz.

``data.path`` is either

- a folder holding the four IDX files of MNIST / Fashion-MNIST (``train-images-idx3-ubyte``,
  ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``), each raw
  or gzipped (``.gz``); they are parsed here with numpy and their magic numbers checked; or
- an ``.npz`` file with arrays ``x_train, y_train, x_test, y_test`` (loaded with
  ``allow_pickle=False``). Images may be [n, H, W], [n, H, W, C] or flat [n, H*H] (square).

Pixels are scaled to [0, 1] (integer pixels, or floats above 1, are divided by 255); x is
float32 [n, H, W, C] (layout "image"), y int32; ``num_classes`` is the largest label + 1.
A missing path or file, or a malformed one, raises :class:`harness.errors.DataError` naming the
path and what was expected.
"""

from __future__ import annotations

import gzip
import math
import zipfile
from pathlib import Path

import numpy as np

from harness.data.base import Dataset
from harness.errors import DataError

IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
# IDX magic: two zero bytes, the element type (0x08 = unsigned byte), the number of dimensions.
IDX_MAGIC = {3: 0x00000803, 1: 0x00000801}
NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")


def _find_idx(folder: Path, stem: str) -> Path:
    """The raw file if present, else its .gz; DataError if neither exists."""
    for candidate in (folder / stem, folder / (stem + ".gz")):
        if candidate.is_file():
            return candidate
    raise DataError(f"{folder}: expected {stem} or {stem}.gz (MNIST IDX file) in this folder")


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """Parse one IDX file of unsigned bytes with ``ndim`` dimensions (raw or gzipped)."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:  # gzip.BadGzipFile is an OSError
        raise DataError(f"{path}: cannot read an IDX file ({e})") from e
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path}: too short for an IDX header ({len(data)} bytes)")
    magic = int.from_bytes(data[:4], "big")
    if magic != IDX_MAGIC[ndim]:
        raise DataError(
            f"{path}: bad IDX magic number 0x{magic:08x}, expected 0x{IDX_MAGIC[ndim]:08x} "
            f"(unsigned bytes, {ndim} dimension{'s' if ndim > 1 else ''})"
        )
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    body = np.frombuffer(data, dtype=np.uint8, offset=header)
    if body.size != math.prod(shape):
        raise DataError(f"{path}: header says shape {shape} but holds {body.size} values")
    return body.reshape(shape)


def _load_idx_folder(folder: Path) -> dict[str, np.ndarray]:
    """The four MNIST arrays from a folder of IDX files."""
    return {
        key: read_idx(_find_idx(folder, stem), 3 if key.startswith("x") else 1)
        for key, stem in IDX_FILES.items()
    }


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    """The four arrays from an .npz (no pickled objects allowed)."""
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = [k for k in NPZ_KEYS if k not in f.files]
            if missing:
                raise DataError(f"{path}: missing arrays {missing}; expected keys {list(NPZ_KEYS)}")
            return {k: f[k] for k in NPZ_KEYS}
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise DataError(f"{path}: cannot read as .npz with keys {list(NPZ_KEYS)} ({e})") from e


def _as_images(x: np.ndarray, where: str) -> np.ndarray:
    """float32 [n, H, W, C] in [0, 1] from [n, H, W], [n, H, W, C] or flat square [n, D]."""
    if x.ndim == 2:
        side = math.isqrt(x.shape[1])
        if side * side != x.shape[1]:
            raise DataError(f"{where}: flat images of {x.shape[1]} pixels are not square")
        x = x.reshape(len(x), side, side)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4:
        raise DataError(f"{where}: expected images [n, H, W] or [n, H, W, C], got shape {x.shape}")
    if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
        raise DataError(f"{where}: expected numeric pixels, got dtype {x.dtype}")
    integer = np.issubdtype(x.dtype, np.integer)
    x = x.astype(np.float32)
    # Integer pixels, or floats that are evidently 0..255, are scaled to [0, 1].
    if integer or (x.size and float(x.max()) > 1.0):
        x = x / np.float32(255.0)
    return x


def _as_labels(y: np.ndarray, n: int, where: str) -> np.ndarray:
    """int32 [n] class indices, checked."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:  # a column vector of labels
        y = y[:, 0]
    if not np.issubdtype(y.dtype, np.number):
        raise DataError(f"{where}: expected numeric labels, got dtype {y.dtype}")
    if y.ndim != 1 or len(y) != n:
        raise DataError(f"{where}: expected {n} labels (one per image), got shape {y.shape}")
    if y.size and (not np.all(np.equal(np.mod(y, 1), 0)) or y.min() < 0):
        raise DataError(f"{where}: labels must be non-negative integers")
    return y.astype(np.int32)


def check_as_data(path: Path, features: dict[str, np.ndarray], labels: dict[str, np.ndarray]) -> None:
    """What a classification data set must be, checked on the arrays: no empty split, finite
    features, labels that are class indices 0..K-1 with K no more than the examples (one
    stray label of 10^9 would otherwise make a 10^9-way output layer), at least two classes.
    Each failure is a DataError naming the file and what is wrong."""
    for name, x in features.items():
        if len(x) == 0:
            raise DataError(f"{path} {name}: no examples (the split is empty)")
        bad = int(np.size(x) - np.count_nonzero(np.isfinite(x)))
        if bad:
            raise DataError(f"{path} {name}: {bad} feature values are NaN or infinite (features must be finite)")
    n = sum(len(y) for y in labels.values())
    for name, y in labels.items():
        if int(y.max()) >= n:
            raise DataError(f"{path} {name}: label {int(y.max())} is out of range (labels are class indices "
                            f"0..K-1 with K at most the {n} examples)")
    classes = np.unique(np.concatenate(list(labels.values())))
    if len(classes) < 2:
        raise DataError(f"{path}: every label is {int(classes[0])}, a single class (classification needs at least two)")


def load_files(cfg) -> Dataset:
    """Images and labels from ``data.path`` (an IDX folder or an .npz file)."""
    if not cfg.path:
        raise DataError("data.path is not set: expected a folder of MNIST IDX files or an .npz file")
    path = Path(str(cfg.path)).expanduser()
    if not path.exists():
        raise DataError(f"{path}: no such file or folder (expected an IDX folder or an .npz file)")
    if path.is_dir():
        raw, kind = _load_idx_folder(path), "idx"
    else:
        raw, kind = _load_npz(path), "npz"

    x_train = _as_images(raw["x_train"], f"{path} x_train")
    x_test = _as_images(raw["x_test"], f"{path} x_test")
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DataError(f"{path}: train images {x_train.shape[1:]} and test images {x_test.shape[1:]} differ")
    y_train = _as_labels(raw["y_train"], len(x_train), f"{path} y_train")
    y_test = _as_labels(raw["y_test"], len(x_test), f"{path} y_test")
    check_as_data(path, {"x_train": x_train, "x_test": x_test}, {"y_train": y_train, "y_test": y_test})
    num_classes = int(max(y_train.max(), y_test.max())) + 1
    return Dataset(
        name="files",
        task="classification",
        layout="image",
        x_train=x_train,
        y_train=y_train,
        x_val=x_train[:0],
        y_val=y_train[:0],
        x_test=x_test,
        y_test=y_test,
        num_classes=num_classes,
        info={"source": str(path), "format": kind},
    )
