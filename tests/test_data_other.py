"""Digits, sequence tasks, sentiment, file loaders, the registry, validation and post-processing."""

from __future__ import annotations

import gzip
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from omegaconf import OmegaConf

from harness.config import DataConfig
from harness.data import (
    DATASET_NAMES,
    DATASETS,
    SPECS,
    load_dataset,
    validate_data_config,
)
from harness.data.sequences import BASE_VOCAB, sentiment_label_scores, sentiment_vocab
from harness.errors import ConfigError, DataError

CONF = Path(__file__).resolve().parents[1] / "conf" / "data"


def same(a, b) -> bool:
    """Two data sets hold identical arrays."""
    return all(np.array_equal(v, b.arrays()[k]) for k, v in a.arrays().items())


# ------------------------------------------------------------------------------------ digits


def test_digits():
    ds = load_dataset(DataConfig(name="digits", train_fraction=0.8))
    assert ds.layout == "image" and ds.input_shape == (8, 8, 1)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int32
    assert ds.x_train.min() == 0.0 and ds.x_train.max() == 1.0
    assert ds.num_classes == 10 and ds.sizes["train"] + ds.sizes["test"] == 1797
    assert abs(ds.sizes["train"] - 0.8 * 1797) <= 10
    # Stratified: each class 80/20 (up to rounding).
    for c in range(10):
        n_tr, n_te = np.sum(ds.y_train == c), np.sum(ds.y_test == c)
        assert abs(n_tr - 0.8 * (n_tr + n_te)) <= 1
    # Train order is shuffled (max_train takes the first rows): not sorted by class.
    assert len(np.unique(ds.y_train[:30])) >= 6


def test_digits_deterministic():
    a = load_dataset(DataConfig(name="digits", seed=1))
    b = load_dataset(DataConfig(name="digits", seed=1))
    c = load_dataset(DataConfig(name="digits", seed=2))
    assert same(a, b) and not np.array_equal(a.y_train, c.y_train)


# ------------------------------------------------------------------------------------ adding


def test_adding():
    ds = load_dataset(DataConfig(name="adding", length=30, num_samples=1000, train_fraction=0.8))
    assert ds.task == "regression" and ds.layout == "sequence" and ds.input_shape == (30, 2)
    assert ds.sizes == {"train": 800, "val": 0, "test": 200}
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.float32
    x = np.concatenate([ds.x_train, ds.x_test])
    y = np.concatenate([ds.y_train, ds.y_test])
    values, markers = x[..., 0], x[..., 1]
    assert np.all((values >= 0) & (values < 1))
    assert np.all(markers[:, :15].sum(1) == 1) and np.all(markers[:, 15:].sum(1) == 1)
    np.testing.assert_allclose(y, (values * markers).sum(1), rtol=1e-6)
    assert ds.info["analytic_baseline_mse"] == pytest.approx(1 / 6)
    expect = float(np.mean((ds.y_test.astype(np.float64) - 1) ** 2))
    assert ds.info["baseline_mse"] == pytest.approx(expect)
    assert abs(ds.info["baseline_mse"] - 1 / 6) < 0.05


def test_adding_default_size_and_min_length():
    ds = load_dataset(DataConfig(name="adding", length=2))
    assert ds.sizes["train"] + ds.sizes["test"] == 5000
    assert np.all(ds.x_train[:, :, 1] == 1)  # T=2: both steps are marked
    with pytest.raises(ConfigError, match="data.length"):
        load_dataset(DataConfig(name="adding", length=1))


# -------------------------------------------------------------------------------------- copy


@pytest.mark.parametrize("length", [1, 5, 20])
def test_copy(length):
    ds = load_dataset(DataConfig(name="copy", length=length, num_samples=100))
    total = length + 20
    assert ds.targets == "sequence" and ds.task == "classification" and ds.num_classes == 10
    assert ds.x_train.shape == (50, total, 10) and ds.y_train.shape == (50, total)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int32
    assert np.all(ds.x_train.sum(-1) == 1)  # one-hot
    inputs = ds.x_train.argmax(-1)
    symbols = inputs[:, :10]
    assert np.all((symbols >= 1) & (symbols <= 8))
    assert np.all(inputs[:, 10 : length + 9] == 0)  # T-1 blanks
    assert np.all(inputs[:, length + 9] == 9)  # the delimiter
    assert np.all(inputs[:, length + 10 :] == 0)
    assert np.all(ds.y_train[:, :-10] == 0)
    np.testing.assert_array_equal(ds.y_train[:, -10:], symbols)
    assert ds.info["baseline_cross_entropy"] == pytest.approx(10 * math.log(8) / total)


def test_copy_rejects_per_example_options():
    with pytest.raises(ConfigError, match="data.classes"):
        load_dataset(DataConfig(name="copy", classes=[0, 1]))
    with pytest.raises(ConfigError, match="data.layout"):
        load_dataset(DataConfig(name="copy", layout="vector"))


# --------------------------------------------------------------------------------- sentiment


def encode(text: str, t: int = 8) -> np.ndarray:
    """A left-padded token row from words."""
    vocab = sentiment_vocab()
    ids = [vocab.index(w) for w in text.split()]
    return np.array([[0] * (t - len(ids)) + ids])


@pytest.mark.parametrize(
    "text, score",
    [
        ("good", 1),
        ("not good", -1),
        ("not not good", 1),
        ("never bad movie", 1),
        ("not . good", 1),
        ("good not bad bad", 3),
        ("bad . no great . fine", -1),
        ("the movie", 0),
    ],
)
def test_sentiment_rule(text, score):
    assert sentiment_label_scores(encode(text), sentiment_vocab())[0] == score


@pytest.fixture(scope="module")
def sentiment():
    return load_dataset(DataConfig(name="sentiment", length=20, train_fraction=0.8))


def test_sentiment_shapes_and_balance(sentiment):
    ds = sentiment
    assert ds.layout == "tokens" and ds.x_train.dtype == np.int32 and ds.x_train.shape[1] == 20
    assert ds.sizes["train"] + ds.sizes["test"] == 4000
    assert ds.vocab_size == len(BASE_VOCAB) == len(ds.info["vocab"])
    assert ds.x_train.min() >= 0 and ds.x_train.max() < ds.vocab_size
    assert ds.y_train.mean() == 0.5 and ds.y_test.mean() == 0.5
    # Labels follow the rule, no ties; padding only on the left; at least half real tokens.
    for x, y in ((ds.x_train, ds.y_train), (ds.x_test, ds.y_test)):
        score = sentiment_label_scores(x, ds.info["vocab"])
        assert np.all(score != 0)
        np.testing.assert_array_equal(y, (score > 0).astype(np.int32))
        real = x != 0
        assert np.all(real[:, -1]) and np.all(np.diff(real.astype(int), axis=1) >= 0)
        assert np.all(real.sum(1) >= 10)


def test_sentiment_order_matters(sentiment):
    """A bag-of-words logistic regression stays clearly below the rule's 100%."""
    from sklearn.linear_model import LogisticRegression

    ds = sentiment

    def bow(x):
        counts = np.zeros((len(x), ds.vocab_size))
        np.add.at(counts, (np.repeat(np.arange(len(x)), x.shape[1]), x.ravel()), 1)
        return counts[:, 1:]

    model = LogisticRegression(max_iter=2000).fit(bow(ds.x_train), ds.y_train)
    assert model.score(bow(ds.x_train), ds.y_train) < 0.85
    assert model.score(bow(ds.x_test), ds.y_test) < 0.85


def test_sentiment_deterministic_and_vocab_size():
    a = load_dataset(DataConfig(name="sentiment", num_samples=300, length=12, seed=4))
    b = load_dataset(DataConfig(name="sentiment", num_samples=300, length=12, seed=4))
    c = load_dataset(DataConfig(name="sentiment", num_samples=300, length=12, seed=5))
    assert same(a, b) and not np.array_equal(a.x_train, c.x_train)
    big = load_dataset(DataConfig(name="sentiment", num_samples=300, length=12, vocab_size=100))
    assert big.vocab_size == 100 and len(big.info["vocab"]) == 100
    assert big.x_train.max() < 100
    with pytest.raises(ConfigError, match="data.vocab_size"):
        load_dataset(DataConfig(name="sentiment", vocab_size=10))
    with pytest.raises(ConfigError, match="data.length"):
        load_dataset(DataConfig(name="sentiment", length=3))


# ------------------------------------------------------------------------------------- files


def idx_bytes(arr: np.ndarray, magic: int | None = None) -> bytes:
    """An IDX file of unsigned bytes."""
    magic = (0x0800 | arr.ndim) if magic is None else magic
    head = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in arr.shape)
    return head + arr.astype(np.uint8).tobytes()


def write_idx_folder(folder: Path, gz: bool, n_train: int = 12, n_test: int = 6) -> dict:
    """Four small MNIST-shaped IDX files; returns the arrays written."""
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28)),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28)),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test),
    }
    arrays["train-labels-idx1-ubyte"][:10] = np.arange(10)
    folder.mkdir(parents=True, exist_ok=True)
    for name, arr in arrays.items():
        data = idx_bytes(arr)
        if gz:
            (folder / (name + ".gz")).write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)
    return arrays


@pytest.mark.parametrize("gz", [False, True])
def test_idx_folder(tmp_path, gz):
    arrays = write_idx_folder(tmp_path / "mnist", gz)
    ds = load_dataset(DataConfig(name="files", path=str(tmp_path / "mnist")))
    assert ds.layout == "image" and ds.x_train.shape == (12, 28, 28, 1) and ds.x_test.shape == (6, 28, 28, 1)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int32
    np.testing.assert_allclose(ds.x_train[..., 0], arrays["train-images-idx3-ubyte"] / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(ds.y_test, arrays["t10k-labels-idx1-ubyte"])
    assert ds.num_classes == 10 and 0 <= ds.x_train.min() and ds.x_train.max() <= 1


def test_idx_bad_magic(tmp_path):
    write_idx_folder(tmp_path, gz=False)
    bad = tmp_path / "train-labels-idx1-ubyte"
    bad.write_bytes(idx_bytes(np.zeros(12), magic=0x0803))
    with pytest.raises(DataError, match="train-labels-idx1-ubyte.*magic"):
        load_dataset(DataConfig(name="files", path=str(tmp_path)))


def test_idx_truncated(tmp_path):
    write_idx_folder(tmp_path, gz=True)
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.zeros((6, 28, 28)))[:-5]))
    with pytest.raises(DataError, match="t10k-images"):
        load_dataset(DataConfig(name="files", path=str(tmp_path)))


def test_idx_missing_file(tmp_path):
    write_idx_folder(tmp_path, gz=False)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte"):
        load_dataset(DataConfig(name="files", path=str(tmp_path)))


def test_npz(tmp_path):
    rng = np.random.default_rng(1)
    path = tmp_path / "data.npz"
    x_train = rng.integers(0, 256, (20, 784)).astype(np.uint8)  # flat, square
    np.savez(path, x_train=x_train, y_train=np.arange(20) % 3,
             x_test=rng.random((5, 28, 28)).astype(np.float32), y_test=np.arange(5) % 3)
    ds = load_dataset(DataConfig(name="files", path=str(path), val_fraction=0.25, classes=[2, 0]))
    assert ds.x_train.shape[1:] == (28, 28, 1) and ds.num_classes == 2
    assert ds.x_test.max() <= 1.0 and ds.x_train.max() <= 1.0
    assert set(np.unique(ds.y_test)) == {0, 1}


def test_npz_missing_key_and_not_npz(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, x_train=np.zeros((2, 4, 4)), y_train=np.zeros(2))
    with pytest.raises(DataError, match="x_test"):
        load_dataset(DataConfig(name="files", path=str(path)))
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"junk")
    with pytest.raises(DataError, match="junk.npz"):
        load_dataset(DataConfig(name="files", path=str(junk)))
    objects = tmp_path / "objects.npz"
    np.savez(objects, x_train=np.array([None, 1], dtype=object), y_train=np.zeros(2),
             x_test=np.zeros((1, 4, 4)), y_test=np.zeros(1))
    with pytest.raises(DataError, match="objects.npz"):  # pickled objects are refused
        load_dataset(DataConfig(name="files", path=str(objects)))


def test_files_missing_path(tmp_path):
    with pytest.raises(ConfigError, match="data.path"):
        load_dataset(DataConfig(name="files"))
    with pytest.raises(DataError, match="nowhere"):
        load_dataset(DataConfig(name="files", path=str(tmp_path / "nowhere")))


# ---------------------------------------------------------------------------- registry, yaml


def test_registry_matches_yaml_files():
    assert set(DATASET_NAMES) == set(DATASETS) == set(SPECS)
    assert {p.stem for p in CONF.glob("*.yaml")} == set(DATASET_NAMES)


def test_unknown_name():
    with pytest.raises(ConfigError, match="data.name") as err:
        load_dataset(DataConfig(name="cifar"))
    assert "spiral" in str(err.value) and "mnist1d" in str(err.value)
    with pytest.raises(ConfigError, match="data.name"):
        load_dataset(DataConfig())  # name left at MISSING


def yaml_config(name: str):
    """conf/data/<name>.yaml merged onto the DataConfig schema (as Hydra would)."""
    raw = OmegaConf.load(CONF / f"{name}.yaml")
    assert list(raw.pop("defaults")) == ["data_schema", "_self_"]
    return OmegaConf.merge(OmegaConf.structured(DataConfig), raw)  # unknown keys fail here


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_yaml_files(name):
    text = (CONF / f"{name}.yaml").read_text()
    assert text.startswith("# ")
    cfg = yaml_config(name)
    assert cfg.name == name
    if name != "files":  # files needs a path the user supplies
        validate_data_config(cfg)


@pytest.mark.parametrize("name", sorted(set(DATASETS) - {"files", "mnist1d"}))
def test_yaml_loads_and_matches_spec(name):
    ds = load_dataset(yaml_config(name))
    spec = SPECS[name]
    assert (ds.task, ds.layout, ds.num_classes, ds.targets) == (
        spec.task, spec.layout, spec.num_classes, spec.targets)
    assert ds.name == name
    for arr in (ds.x_train, ds.x_val, ds.x_test):
        assert arr.dtype == (np.int32 if ds.layout == "tokens" else np.float32)
    assert ds.sizes["train"] > 0 and ds.sizes["test"] > 0


def test_config_kinds_are_equivalent():
    kw = dict(name="xor", seed=2, noise=0.1, features=["x1", "x1x2"])
    a = load_dataset(DataConfig(**kw))
    b = load_dataset(OmegaConf.structured(DataConfig(**kw)))
    c = load_dataset(SimpleNamespace(**kw))  # missing keys take DataConfig's defaults
    assert same(a, b) and same(a, c)


# -------------------------------------------------------------------------------- validation


BAD = [
    (dict(name="spiral", noise=0.9), "data.noise"),
    (dict(name="circle", noise=-0.01), "data.noise"),
    (dict(name="xor", train_fraction=0.0), "data.train_fraction"),
    (dict(name="xor", train_fraction=1.0), "data.train_fraction"),
    (dict(name="xor", num_samples=2, train_fraction=0.2), "data.train_fraction"),
    (dict(name="digits", train_fraction=1.5), "data.train_fraction"),
    (dict(name="mnist1d", val_fraction=1.0), "data.val_fraction"),
    (dict(name="spiral", val_fraction=-0.1), "data.val_fraction"),
    (dict(name="gauss", features=[]), "data.features"),
    (dict(name="gauss", features=["x1", "y"]), "data.features"),
    (dict(name="gauss", features=["x2", "x2"]), "data.features"),
    (dict(name="adding", length=0), "data.length"),
    (dict(name="copy", length=0), "data.length"),
    (dict(name="sentiment", length=2), "data.length"),
    (dict(name="spiral", num_samples=1), "data.num_samples"),
    (dict(name="adding", num_samples=1), "data.num_samples"),
    (dict(name="files", path=None), "data.path"),
    (dict(name="files", path=""), "data.path"),
    (dict(name="spiral", layout="grid"), "data.layout"),
    (dict(name="spiral", layout="image"), "data.layout"),
    (dict(name="sentiment", layout="vector"), "data.layout"),
    (dict(name="adding", layout="image"), "data.layout"),
    (dict(name="digits", max_train=0), "data.max_train"),
    (dict(name="digits", classes=[1]), "data.classes"),
    (dict(name="digits", classes=[1, 1]), "data.classes"),
    (dict(name="digits", classes=[1, 10]), "data.classes"),
    (dict(name="circle", classes=[0, 2]), "data.classes"),
    (dict(name="reg_plane", classes=[0, 1]), "data.classes"),
    (dict(name="spiral", seed=-1), "data.seed"),
    (dict(name="mnist1d", shuffle_positions="yes"), "data.shuffle_positions"),
]


@pytest.mark.parametrize("values, key", BAD, ids=[f"{v['name']}-{k}" for v, k in BAD])
def test_validation_names_the_key(values, key):
    with pytest.raises(ConfigError) as err:
        validate_data_config(SimpleNamespace(**values))
    assert err.value.key == key and str(err.value).startswith(key + "=")


def test_validation_generates_nothing(monkeypatch):
    calls = []
    for name in DATASETS:
        monkeypatch.setitem(DATASETS, name, lambda cfg: calls.append(cfg))
    for name in DATASET_NAMES:
        validate_data_config(DataConfig(name=name, path="/does/not/matter"))
    assert calls == []


def test_validation_accepts_defaults():
    for name in DATASET_NAMES:
        c = validate_data_config(DataConfig(name=name, path="x.npz"))
        assert c.name == name


# --------------------------------------------------------------------------- post-processing


def test_classes_relabel_in_listed_order():
    base = load_dataset(DataConfig(name="digits"))
    ds = load_dataset(DataConfig(name="digits", classes=[7, 2, 5]))
    assert ds.num_classes == 3 and ds.info["classes"] == [7, 2, 5]
    for split in ("train", "test"):
        y0 = getattr(base, f"y_{split}")
        keep = np.isin(y0, [7, 2, 5])
        np.testing.assert_array_equal(getattr(ds, f"x_{split}"), getattr(base, f"x_{split}")[keep])
        expect = np.array([{7: 0, 2: 1, 5: 2}[int(v)] for v in y0[keep]])
        np.testing.assert_array_equal(getattr(ds, f"y_{split}"), expect)


def test_val_fraction_carves_from_train():
    base = load_dataset(DataConfig(name="adding", num_samples=400))
    ds = load_dataset(DataConfig(name="adding", num_samples=400, val_fraction=0.25))
    assert ds.sizes == {"train": 150, "val": 50, "test": 200}
    np.testing.assert_array_equal(ds.x_test, base.x_test)
    merged = {r.tobytes() for r in np.concatenate([ds.x_train, ds.x_val])}
    assert merged == {r.tobytes() for r in base.x_train}
    again = load_dataset(DataConfig(name="adding", num_samples=400, val_fraction=0.25))
    assert same(ds, again)


def test_max_train_first_rows_nested_and_bounded():
    small = load_dataset(DataConfig(name="digits", val_fraction=0.1, max_train=50))
    big = load_dataset(DataConfig(name="digits", val_fraction=0.1, max_train=200))
    full = load_dataset(DataConfig(name="digits", val_fraction=0.1))
    assert small.sizes["train"] == 50 and big.sizes["train"] == 200
    np.testing.assert_array_equal(small.x_train, big.x_train[:50])
    np.testing.assert_array_equal(big.x_train, full.x_train[:200])
    np.testing.assert_array_equal(small.x_val, full.x_val)  # validation independent of N
    with pytest.raises(ConfigError, match="data.max_train"):
        load_dataset(DataConfig(name="digits", max_train=5000))


def test_layout_overrides():
    vec = load_dataset(DataConfig(name="digits", layout="vector", val_fraction=0.0))
    assert vec.layout == "vector" and vec.input_shape == (64,) and vec.x_val.shape == (0, 64)
    seq = load_dataset(DataConfig(name="digits", layout="sequence"))
    assert seq.layout == "sequence" and seq.input_shape == (8, 8)
    img = load_dataset(DataConfig(name="digits", layout="image"))
    assert img.input_shape == (8, 8, 1)
    flat = load_dataset(DataConfig(name="adding", layout="vector", length=10, num_samples=50))
    assert flat.input_shape == (20,)
