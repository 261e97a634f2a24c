"""Tests of harness.models: the three families, inits, activations, configs and presets.

Sizes are tiny so the file runs in well under a minute on two CPU cores.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from omegaconf import OmegaConf

from harness.config import ModelConfig
from harness.errors import ConfigError
from harness.models import (
    ACTIVATIONS,
    MODEL_FAMILIES,
    build_model,
    count_params,
    validate_model_config,
    validate_model_for_data,
)
from harness.models.activations import get_activation
from harness.models.fnn import bag_of_words
from harness.models.inits import get_init, get_recurrent_init

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
B = 3  # batch size used throughout


def cfg(**overrides) -> ModelConfig:
    """A ModelConfig with small defaults, overridden by keyword."""
    base = dict(hidden=[5, 4], channels=[3, 4], kernel=3, units=4, embed_dim=3)
    base.update(overrides)
    return ModelConfig(**base)


def leaves_named(tree, name):
    """All leaves of ``tree`` whose key is ``name``."""
    found = []
    jax.tree_util.tree_map_with_path(
        lambda path, x: found.append(x) if path[-1].key == name else None, tree
    )
    return found


# Data in each layout: (layout, x [B, ...]). Tokens use ids in [0, 7) with 0 as padding.
RNG = np.random.default_rng(0)
DATA = {
    "vector": RNG.normal(size=(B, 4)).astype(np.float32),
    "signal": RNG.normal(size=(B, 12, 1)).astype(np.float32),
    "image": RNG.normal(size=(B, 6, 6, 1)).astype(np.float32),
    "sequence": RNG.normal(size=(B, 5, 2)).astype(np.float32),
    "tokens": RNG.integers(0, 7, size=(B, 6)).astype(np.int32),
}
VOCAB = 7


def make(model_cfg, layout, num_outputs=3, targets="example"):
    """build_model for the test data in ``layout``."""
    x = DATA[layout]
    model = build_model(
        model_cfg,
        layout=layout,
        input_shape=x.shape[1:],
        num_outputs=num_outputs,
        vocab_size=VOCAB if layout == "tokens" else 0,
        targets=targets,
    )
    return model, x  # numpy: jit takes it as is, with no eager device op to compile


# XLA compiles slowly on small CPUs (~0.3 s per random draw in an init, ~1 s per small
# model), so shape checks use jax.eval_shape (tracing only), and value checks use parameters
# drawn with numpy in the shapes the model declares; only the init tests run model.init.


def param_shapes(model, x):
    """Shapes of ``model``'s params for input ``x``, without computing anything."""
    return jax.eval_shape(lambda k: model.init(k, x)["params"], jax.random.key(0))


def out_shape(model, x):
    """Shape of ``model``'s output for input ``x``, without computing anything."""
    return shapes(model, x)[1]


def shapes(model, x):
    """(param shapes, output shape) of ``model`` for input ``x``, from one trace."""

    def run(key):
        params = model.init(key, x)["params"]
        return params, model.apply({"params": params}, x)

    params, out = jax.eval_shape(run, jax.random.key(0))
    return params, out.shape


def fake_params(model, x, seed=0):
    """Params of the right shapes for ``model``, drawn N(0, 0.5^2) with numpy (no compile)."""
    rng = np.random.default_rng(seed)
    return jax.tree_util.tree_map(
        lambda s: np.asarray(0.5 * rng.normal(size=s.shape), s.dtype), param_shapes(model, x)
    )


def outputs_and_grads(models):
    """For each ``(model, x)``: (output, d sum(output^2) / d params), in one compile."""
    params = [fake_params(m, x) for m, x in models]

    @jax.jit
    def run(params):
        results = []
        for (model, x), p in zip(models, params):
            loss = lambda q, m=model, v=x: jnp.sum(m.apply({"params": q}, v) ** 2)  # noqa: E731
            results.append((model.apply({"params": p}, x), jax.grad(loss)(p)))
        return results

    return jax.device_get(run(params))


def assert_finite(tree):
    leaves = jax.tree_util.tree_leaves(tree)
    # numpy, not jnp: an eager jnp op compiles once per shape, slow on a small CPU.
    assert leaves and all(np.isfinite(np.asarray(leaf)).all() for leaf in leaves)


# ---------------------------------------------------------------- every family x activation

FAMILY_CASES = {
    "fnn": ("vector", {}),
    "cnn": ("signal", {"dense": [4]}),
    "rnn": ("sequence", {"cell": "simple"}),  # the activation reaches the simple cell only
}
# Finite gradients through whole models, one compiled program per family: every activation
# for the FNN; for the costlier CNN / RNN programs a few activations, spread over the layouts,
# cells and targets (the activation functions themselves are all checked separately).
GRAD_CASES = {
    "fnn": [(dict(activation=a, hidden=[4]), "vector", "example") for a in sorted(ACTIVATIONS)]
    + [(dict(), "sequence", "sequence")],
    "cnn": [
        (dict(activation="relu", pool="max", stride=1, dense=[4]), "signal", "example"),
        (dict(activation="gelu", pool="avg", stride=1, dense=[3]), "image", "sequence"),
    ],
    "rnn": [
        (dict(cell="simple", activation="relu", readout="mean"), "sequence", "example"),
        (dict(cell="gru", readout="flatten"), "image", "example"),
        (dict(cell="lstm"), "tokens", "sequence"),
    ],
}


@pytest.mark.parametrize("family", sorted(FAMILY_CASES))
def test_every_activation_gives_outputs_of_the_right_shape(family):
    layout, extra = FAMILY_CASES[family]
    for activation in sorted(ACTIVATIONS):
        model, x = make(cfg(family=family, activation=activation, **extra), layout)
        assert out_shape(model, x) == (B, 3)


@pytest.mark.parametrize("family", sorted(GRAD_CASES))
def test_finite_outputs_and_gradients(family):
    models = [
        make(cfg(family=family, **extra), layout, targets=targets)
        for extra, layout, targets in GRAD_CASES[family]
    ]
    for (out, grads), (_, x), (_, _, targets) in zip(
        outputs_and_grads(models), models, GRAD_CASES[family]
    ):
        assert out.shape == ((B, 3) if targets == "example" else (B, x.shape[1], 3))
        assert_finite(out)
        assert_finite(grads)


def test_activation_functions_and_their_gradients():
    x = np.linspace(-3.0, 3.0, 7, dtype=np.float32)
    values, grads = jax.device_get(jax.jit(
        lambda v: ({n: f(v) for n, f in ACTIVATIONS.items()},
                   {n: jax.vmap(jax.grad(f))(v) for n, f in ACTIVATIONS.items()})
    )(x))
    assert_finite(grads)
    assert all(v.shape == x.shape for v in values.values())
    assert np.allclose(values["linear"], x)
    assert np.allclose(values["relu"], np.maximum(x, 0))
    assert np.allclose(values["swish"], x / (1 + np.exp(-x)), atol=1e-6)
    assert get_activation("tanh") is ACTIVATIONS["tanh"]
    with pytest.raises(ConfigError) as err:
        get_activation("mish")
    assert err.value.key == "model.activation"


@pytest.mark.parametrize("cell", ["simple", "gru", "lstm"])
@pytest.mark.parametrize("layout", ["vector", "signal", "image", "sequence", "tokens"])
def test_rnn_cells_read_every_layout(cell, layout):
    model, x = make(cfg(family="rnn", cell=cell), layout)
    params, out = shapes(model, x)
    assert out == (B, 3)
    first = params["layer0"]
    # The first layer's input width: 1 feature (vector), w * c (image rows), embed_dim (tokens).
    width = {"vector": 1, "signal": 1, "image": 6, "sequence": 2, "tokens": 3}[layout]
    input_kernel = {"simple": "i", "gru": "ir", "lstm": "ii"}[cell]
    assert first[input_kernel]["kernel"].shape == (width, 4)


@pytest.mark.parametrize("layout", ["vector", "signal", "image", "sequence", "tokens"])
def test_fnn_reads_every_layout(layout):
    model, x = make(cfg(family="fnn"), layout)
    params, out = shapes(model, x)
    assert out == (B, 3)
    inputs = {"vector": 4, "signal": 12, "image": 36, "sequence": 10, "tokens": VOCAB}[layout]
    assert params["Dense_0"]["kernel"].shape == (inputs, 5)


def test_simple_cell_uses_the_activation_gru_does_not():
    x = DATA["sequence"]
    cases = [(cell, act) for cell in ("simple", "gru") for act in ("tanh", "relu")]
    models = [make(cfg(family="rnn", cell=c, activation=a), "sequence")[0] for c, a in cases]
    params = [fake_params(m, x) for m in models[::2]]  # one set per cell, shared by both acts
    outs = jax.jit(lambda ps: [m.apply({"params": ps[i // 2]}, x) for i, m in enumerate(models)])(
        params
    )
    simple_tanh, simple_relu, gru_tanh, gru_relu = outs
    assert not np.allclose(simple_tanh, simple_relu)
    assert np.allclose(gru_tanh, gru_relu)


# ---------------------------------------------------------------- FNN specifics


def test_empty_hidden_is_one_affine_layer():
    model, x = make(cfg(family="fnn", hidden=[]), "vector")
    params = fake_params(model, x)
    assert list(params) == ["Dense_0"]
    assert params["Dense_0"]["kernel"].shape == (4, 3)
    y = jnp.asarray(RNG.normal(size=x.shape), jnp.float32)
    a, b = 2.5, -0.7
    jitted = jax.jit(lambda v: model.apply({"params": params}, v))
    x = np.asarray(x)

    def f(v):
        return np.asarray(jitted(v))

    # Affine: f(a x + b y) = a f(x) + b f(y) + (1 - a - b) f(0).
    lhs = f(a * x + b * y)
    rhs = a * f(x) + b * f(y) + (1 - a - b) * f(jnp.zeros_like(x))
    assert np.allclose(lhs, rhs, atol=1e-5)


def test_bag_of_words_counts_and_ignores_padding():
    tokens = jnp.array([[1, 2, 2, 0, 0], [0, 0, 0, 0, 3]])
    counts = bag_of_words(tokens, 4)
    assert counts.tolist() == [[0, 1, 2, 0], [0, 0, 0, 1]]


def outputs_on_both(models, x, other):
    """[(model(x), model(other))] for each model, with fake params, in one compiled call."""
    params = [fake_params(m, x) for m in models]
    return jax.jit(
        lambda ps: [(m.apply({"params": p}, x), m.apply({"params": p}, other))
                    for m, p in zip(models, ps)]
    )(params)


def test_fnn_bag_of_words_is_order_invariant_rnn_is_not():
    x = DATA["tokens"]
    models = [make(cfg(family=f), "tokens")[0] for f in ("fnn", "rnn")]
    (fnn_a, fnn_b), (rnn_a, rnn_b) = outputs_on_both(models, x, x[:, ::-1])
    assert np.allclose(fnn_a, fnn_b, atol=1e-5)
    assert not np.allclose(rnn_a, rnn_b, atol=1e-4)


def test_fnn_flatten_tokens_embeds_each_position_and_counts_its_params():
    model, x = make(cfg(family="fnn", tokens="flatten"), "tokens")
    params, out = shapes(model, x)
    assert out == (B, 3)
    assert params["Embed_0"]["embedding"].shape == (VOCAB, 3)  # vocab x embed_dim
    assert params["Dense_0"]["kernel"].shape == (6 * 3, 5)  # T * embed_dim inputs
    # embedding + (18 -> 5) + (5 -> 4) + (4 -> 3), weights and biases
    assert count_params(params) == VOCAB * 3 + (18 * 5 + 5) + (5 * 4 + 4) + (4 * 3 + 3)


def test_fnn_flatten_tokens_sees_positions_bag_does_not():
    x = DATA["tokens"]
    permuted = x[:, [3, 0, 5, 1, 4, 2]]  # same tokens per row, other positions
    assert not np.array_equal(x, permuted)
    models = [make(cfg(family="fnn", tokens=t), "tokens")[0] for t in ("bag", "flatten")]
    (bag_a, bag_b), (flat_a, flat_b) = outputs_on_both(models, x, permuted)
    assert np.allclose(bag_a, bag_b, atol=1e-5)
    assert not np.allclose(flat_a, flat_b, atol=1e-4)


def test_fnn_tokens_mode_leaves_other_layouts_alone():
    x = DATA["vector"]
    bag, flat = (make(cfg(family="fnn", tokens=t), "vector")[0] for t in ("bag", "flatten"))
    assert param_shapes(bag, x) == param_shapes(flat, x)


# ---------------------------------------------------------------- CNN specifics


@pytest.mark.parametrize(
    "layout,extra,expected_kernel",
    [
        ("signal", {}, (3, 1, 3)),  # 1-D: kernel [k, in, out]
        ("sequence", {}, (3, 2, 3)),
        ("image", {}, (3, 3, 1, 3)),  # 2-D: kernel [k, k, in, out]
        ("image", {"pool": "max", "stride": 1}, (3, 3, 1, 3)),
        ("signal", {"pool": "avg", "padding": "VALID", "stride": 1}, (3, 1, 3)),
        ("signal", {"padding": "1"}, (3, 1, 3)),
    ],
)
def test_cnn_1d_and_2d_shapes(layout, extra, expected_kernel):
    model, x = make(cfg(family="cnn", **extra), layout)
    params, out = shapes(model, x)
    assert params["Conv_0"]["kernel"].shape == expected_kernel
    assert out == (B, 3)


@pytest.mark.parametrize(
    "layout,extra,flat",
    [
        # signal length 12, kernel 3, stride 2, 4 channels last
        ("signal", {"padding": "SAME"}, 3 * 4),  # 12 -> 6 -> 3
        ("signal", {"padding": "VALID"}, 2 * 4),  # 12 -> 5 -> 2
        ("signal", {"padding": "1"}, 3 * 4),  # 12 -> 6 -> 3
        ("signal", {"stride": 1, "pool": "max"}, 3 * 4),  # 12 -> 12 -> 6 -> 6 -> 3
        ("image", {"padding": "SAME"}, 2 * 2 * 4),  # 6x6 -> 3x3 -> 2x2
        ("image", {"padding": "VALID", "stride": 1}, 2 * 2 * 4),  # 6x6 -> 4x4 -> 2x2
    ],
)
def test_cnn_flattened_size_follows_padding_and_pool(layout, extra, flat):
    model, x = make(cfg(family="cnn", **extra), layout)
    assert param_shapes(model, x)["Dense_0"]["kernel"].shape == (flat, 3)


def test_cnn_that_shrinks_the_input_to_nothing_is_a_config_error():
    bad = cfg(family="cnn", channels=[2, 2, 2], kernel=5, padding="VALID")  # 12 -> 4 -> 0
    # Caught before building (so a multirun can be checked before any compute) ...
    with pytest.raises(ConfigError) as err:
        validate_model_for_data(bad, layout="signal", input_shape=(12, 1))
    assert err.value.key == "model.channels" and "conv layer 2" in str(err.value)
    with pytest.raises(ConfigError):
        make(bad, "signal")
    # ... and by the module itself when traced on too small an input.
    model, _ = make(cfg(family="cnn", channels=[2, 2], kernel=3, padding="VALID"), "signal")
    with pytest.raises(ConfigError) as err:
        param_shapes(model, np.zeros((B, 4, 1), np.float32))  # 4 -> 1 -> 0
    assert err.value.key == "model.channels"
    # Pooling halves each axis too: 8x8 digits, stride 1, max pool -> 4, 2, 1, then nothing.
    with pytest.raises(ConfigError):
        validate_model_for_data(
            cfg(family="cnn", channels=[4] * 4, stride=1, pool="max"), "image", (8, 8, 1)
        )
    validate_model_for_data(
        cfg(family="cnn", channels=[4] * 3, stride=1, pool="max"), "image", (8, 8, 1)
    )


@pytest.mark.parametrize("layout", ["vector", "tokens"])
def test_cnn_rejects_non_grid_layouts(layout):
    with pytest.raises(ConfigError) as err:
        make(cfg(family="cnn"), layout)
    assert err.value.key == "model.family"
    assert "grid-like" in str(err.value)
    with pytest.raises(ConfigError):
        validate_model_config(cfg(family="cnn"), layout=layout)


# ---------------------------------------------------------------- RNN specifics


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("readout", ["last", "mean", "flatten"])
def test_rnn_readouts(readout, bidirectional):
    layers = 2 if readout == "last" else 1  # stacking is independent of the readout
    model, x = make(
        cfg(family="rnn", readout=readout, bidirectional=bidirectional, layers=layers),
        "sequence",
    )
    params, out = shapes(model, x)
    directions = 2 if bidirectional else 1
    features = 4 * directions * (5 if readout == "flatten" else 1)  # units 4, T 5
    assert params["Dense_0"]["kernel"].shape == (features, 3)
    cells = [k for k in params if k.startswith("layer")]
    assert len(cells) == layers * directions
    assert out == (B, 3)


def test_rnn_readout_values():
    """Identity output layers expose each readout's features, to compare with the definitions."""
    x = DATA["sequence"]  # T = 5, units 4, two directions -> 8 features a step

    def probe(readout, bidirectional, width):
        model_cfg = cfg(family="rnn", readout=readout, bidirectional=bidirectional)
        return build_model(model_cfg, layout="sequence", input_shape=(5, 2), num_outputs=width)

    def head(width):
        return {"Dense_0": {"kernel": jnp.eye(width), "bias": jnp.zeros(width)}}

    flat = probe("flatten", True, 40)
    cells = dict(fake_params(flat, x))
    del cells["Dense_0"]

    @jax.jit
    def run(cells):
        seq = flat.apply({"params": {**cells, **head(40)}}, x).reshape(B, 5, 8)
        last = probe("last", True, 8).apply({"params": {**cells, **head(8)}}, x)
        mean = probe("mean", True, 8).apply({"params": {**cells, **head(8)}}, x)
        # The backward cell alone, run forward over the reversed sequence.
        backward = {"layer0": cells["layer0_backward"], **head(4)}
        backward_final = probe("last", False, 4).apply({"params": backward}, x[:, ::-1])
        return seq, last, mean, backward_final

    seq, last, mean, backward_final = jax.device_get(run(cells))
    assert np.allclose(mean, seq.mean(axis=1), atol=1e-6)
    assert np.allclose(last[:, :4], seq[:, -1, :4], atol=1e-6)  # forward: last step
    assert np.allclose(last[:, 4:], backward_final, atol=1e-5)  # backward: its final state,
    assert np.allclose(seq[:, 0, 4:], backward_final, atol=1e-5)  # which sits at step 0


# ---------------------------------------------------------------- sequence targets


@pytest.mark.parametrize(
    "family,layout,extra",
    [
        ("fnn", "sequence", {}),
        ("fnn", "tokens", {}),
        ("cnn", "sequence", {}),
        ("rnn", "sequence", {"readout": "flatten"}),  # readout is ignored for sequence targets
        ("rnn", "tokens", {"bidirectional": True}),
    ],
)
def test_sequence_targets_output_every_step(family, layout, extra):
    model, x = make(cfg(family=family, **extra), layout, num_outputs=2, targets="sequence")
    assert out_shape(model, x) == (B, x.shape[1], 2)


# ---------------------------------------------------------------- inits


def test_playground_initialisers():
    kernel_init, bias_init = get_init("playground")
    kernel = kernel_init(jax.random.key(0), (50, 40))
    # Uniform on [-0.5, 0.5] whatever the fan-in (not a fan-in-scaled normal).
    kernel = np.asarray(kernel)
    assert -0.5 <= kernel.min() < -0.45 and 0.45 < kernel.max() <= 0.5
    assert kernel.std() == pytest.approx(1 / 12**0.5, rel=0.05)
    assert np.all(np.asarray(bias_init(jax.random.key(0), (7,))) == np.float32(0.1))
    assert get_recurrent_init("playground") is kernel_init


def test_playground_init_of_a_model():
    model, x = make(cfg(family="fnn", init="playground", hidden=[16]), "vector")
    params = jax.jit(lambda k: model.init(k, x)["params"])(jax.random.key(0))
    for kernel in leaves_named(params, "kernel"):
        kernel = np.asarray(kernel)
        assert kernel.min() >= -0.5 and kernel.max() <= 0.5
        assert kernel.max() - kernel.min() > 0.5
    for bias in leaves_named(params, "bias"):
        assert np.all(np.asarray(bias) == np.float32(0.1))


def _constant_inits(monkeypatch):
    """Make every family draw kernels = 1, recurrent kernels = 2, biases = 3 (cheap to compile,
    and tells the three apart)."""
    import harness.models.cnn as cnn_module
    import harness.models.fnn as fnn_module
    import harness.models.rnn as rnn_module

    def const(value):
        return lambda key, shape, dtype=jnp.float32: jnp.full(shape, value, dtype)

    for module in (fnn_module, cnn_module, rnn_module):
        monkeypatch.setattr(module, "get_init", lambda name: (const(1.0), const(3.0)))
    monkeypatch.setattr(rnn_module, "get_recurrent_init", lambda name: const(2.0))


@pytest.mark.parametrize(
    "family,layout,extra",
    [("fnn", "vector", {}), ("cnn", "image", {"dense": [3]}), ("cnn", "signal", {})],
)
def test_every_layer_takes_the_init_scheme(family, layout, extra, monkeypatch):
    _constant_inits(monkeypatch)
    model, x = make(cfg(family=family, **extra), layout)
    params = jax.jit(lambda k: model.init(k, x)["params"])(jax.random.key(0))
    assert leaves_named(params, "kernel") and leaves_named(params, "bias")
    assert all(np.all(np.asarray(k) == 1.0) for k in leaves_named(params, "kernel"))
    assert all(np.all(np.asarray(b) == 3.0) for b in leaves_named(params, "bias"))


@pytest.mark.parametrize("cell", ["simple", "gru", "lstm"])
def test_every_cell_takes_the_init_scheme(cell, monkeypatch):
    """Input kernels, recurrent kernels and biases each come from the scheme's initialisers."""
    _constant_inits(monkeypatch)
    model, x = make(cfg(family="rnn", cell=cell, bidirectional=True), "sequence")
    params = jax.jit(lambda k: model.init(k, x)["params"])(jax.random.key(0))
    for direction in ("layer0_forward", "layer0_backward"):
        for name, dense in params[direction].items():
            expected = 2.0 if name.startswith("h") else 1.0  # h*: hidden-to-hidden
            assert np.all(np.asarray(dense["kernel"]) == expected), (direction, name)
            if "bias" in dense:
                assert np.all(np.asarray(dense["bias"]) == 3.0), (direction, name)
    assert np.all(np.asarray(params["Dense_0"]["kernel"]) == 1.0)
    assert np.all(np.asarray(params["Dense_0"]["bias"]) == 3.0)


@pytest.mark.parametrize(
    "scheme,std", [("default", 1 / 16), ("he", 2**0.5 / 16), ("glorot", (2 / 320) ** 0.5)]
)
def test_other_inits(scheme, std):
    kernel_init, bias_init = get_init(scheme)
    assert np.all(np.asarray(bias_init(jax.random.key(0), (5,))) == 0)
    kernel = kernel_init(jax.random.key(0), (256, 64))  # fan-in 256, fan-out 64
    assert np.asarray(kernel).std() == pytest.approx(std, rel=0.1)
    assert get_recurrent_init(scheme) is not None


def test_zero_init_sets_every_weight_and_bias_to_zero():
    kernel_init, bias_init = get_init("zero")
    assert not np.asarray(kernel_init(jax.random.key(0), (4, 3))).any()
    assert not np.asarray(bias_init(jax.random.key(0), (3,))).any()
    assert not np.asarray(get_recurrent_init("zero")(jax.random.key(0), (3, 3))).any()


def test_unknown_init_is_a_config_error():
    for fn in (get_init, get_recurrent_init):
        with pytest.raises(ConfigError) as err:
            fn("zeros")
        assert err.value.key == "model.init"


# ---------------------------------------------------------------- dropout

DROPOUT_CASES = [("fnn", "vector"), ("cnn", "signal"), ("rnn", "sequence")]


def test_dropout_differs_between_keys_when_rate_positive():
    cases = [DROPOUT_CASES[0], DROPOUT_CASES[2]]  # the CNN's dropout sites are those of the FNN
    models = [make(cfg(family=f, dropout=0.5), lay) for f, lay in cases]
    params = [fake_params(m, x) for m, x in models]
    keys = jax.random.split(jax.random.key(1))

    @jax.jit
    def run(params, keys):
        results = []
        for (model, x), p in zip(models, params):
            def train(k, m=model, x=x, p=p):
                return m.apply({"params": p}, x, train=True, rngs={"dropout": k})

            evaluation = model.apply({"params": p}, x, train=False)  # needs no dropout rng
            # vmap over the two keys: one random draw per layer in the compiled program.
            results.append((jax.vmap(train)(keys), evaluation))
        return results

    for (family, _), (two_keys, evaluation) in zip(cases, jax.device_get(run(params, keys))):
        assert not np.allclose(two_keys[0], two_keys[1]), family
        assert not np.allclose(two_keys[0], evaluation), family
        assert_finite(evaluation)


@pytest.mark.parametrize("family,layout", DROPOUT_CASES)
def test_zero_dropout_adds_no_op(family, layout):
    """Rate 0 (or evaluation) draws no random bits, and training is then the same program."""

    def program(rate, train):
        model, x = make(cfg(family=family, dropout=rate, layers=2), layout)
        params = param_shapes(model, x)
        jaxpr = jax.make_jaxpr(
            lambda p, k: model.apply({"params": p}, x, train=train, rngs={"dropout": k})
        )(params, jax.random.key(0))
        return str(jaxpr)

    assert program(0.0, train=True) == program(0.0, train=False)
    assert "random_bits" not in program(0.0, train=True)
    assert "random_bits" not in program(0.5, train=False)
    assert "random_bits" in program(0.5, train=True)


# ---------------------------------------------------------------- vmap over members

MEMBERS = 4
VMAP_CASES = [  # dropout under vmap is exercised by test_dropout_only_when_rate_positive
    (dict(family="fnn"), "vector"),
    (dict(family="cnn"), "image"),
    (dict(family="rnn"), "tokens"),
]


def test_vmap_over_stacked_params():
    models = [make(cfg(**c), layout) for c, layout in VMAP_CASES]
    stacked = [
        jax.tree_util.tree_map(
            lambda *ps: np.stack(ps), *[fake_params(m, x, seed) for seed in range(MEMBERS)]
        )
        for m, x in models
    ]

    @jax.jit
    def run(stacked):
        results = []
        for (model, x), params in zip(models, stacked):
            def member(p, m=model, x=x):
                return m.apply({"params": p}, x, train=True)

            one = jax.tree_util.tree_map(lambda p: p[2], params)
            results.append((jax.vmap(member)(params), member(one)))
        return results

    for out, solo in jax.device_get(run(stacked)):
        assert out.shape == (MEMBERS, B, 3)
        assert not np.allclose(out[0], out[1])  # members differ
        assert np.allclose(out[2], solo, atol=1e-5)  # and each matches its own apply


@pytest.mark.parametrize("case", range(len(VMAP_CASES)))
def test_vmap_over_init(case):
    c, layout = VMAP_CASES[case]
    model, x = make(cfg(**c), layout)
    keys = jax.random.split(jax.random.key(0), MEMBERS)
    # Tracing applies the batching rules, so eval_shape catches an init that cannot vmap.
    shapes = jax.eval_shape(jax.vmap(lambda k: model.init(k, x)["params"]), keys)
    assert all(leaf.shape[0] == MEMBERS for leaf in jax.tree_util.tree_leaves(shapes))


def test_models_are_hashable_static_arguments():
    model, x = make(cfg(family="cnn"), "image")
    twin, _ = make(cfg(family="cnn"), "image")
    assert hash(model) == hash(twin) and model == twin
    f = jax.jit(lambda m, p, v: m.apply({"params": p}, v), static_argnums=0)
    assert f(model, fake_params(model, x), x).shape == (B, 3)


# ---------------------------------------------------------------- config values


@pytest.mark.parametrize(
    "key,value",
    [
        ("family", "transformer"),
        ("activation", "mish"),
        ("init", "zeros"),
        ("dropout", 1.0),
        ("dropout", -0.1),
        ("hidden", [8, 0]),
        ("channels", [4, -1]),
        ("dense", [0]),
        ("kernel", 0),
        ("stride", 0),
        ("padding", "FULL"),
        ("padding", "-1"),
        ("pool", "min"),
        ("cell", "transformer"),
        ("units", 0),
        ("layers", 0),
        ("readout", "first"),
        ("embed_dim", 0),
        ("tokens", "onehot"),
    ],
)
def test_bad_values_raise_config_error_naming_the_key(key, value):
    bad = dataclasses.replace(ModelConfig(), **{key: value})
    with pytest.raises(ConfigError) as err:
        validate_model_config(bad)
    assert err.value.key == f"model.{key}"
    with pytest.raises(ConfigError) as err:
        build_model(bad, layout="signal", input_shape=(12, 1), num_outputs=2)
    assert err.value.key == f"model.{key}"


def test_validate_accepts_defaults_and_dictconfig():
    values = validate_model_config(ModelConfig())
    assert values["hidden"] == (8, 8) and isinstance(values["channels"], tuple)
    dc = OmegaConf.structured(ModelConfig(family="fnn", hidden=[3]))
    model = build_model(dc, layout="vector", input_shape=(4,), num_outputs=2)
    assert model.hidden == (3,)  # ListConfig became a tuple
    assert validate_model_config({"family": "rnn", "units": 2})["units"] == 2


def test_bad_data_arguments_raise_value_error():
    with pytest.raises(ValueError):
        build_model(ModelConfig(), layout="vector", input_shape=(4, 1), num_outputs=2)
    with pytest.raises(ValueError):
        build_model(ModelConfig(), layout="tokens", input_shape=(4,), num_outputs=2)
    with pytest.raises(ValueError):
        build_model(ModelConfig(), layout="vector", input_shape=(4,), num_outputs=2,
                    targets="token")


def test_registry():
    assert sorted(MODEL_FAMILIES) == ["cnn", "fnn", "rnn"]


# ---------------------------------------------------------------- presets


PRESETS = ["fnn", "cnn", "rnn", "mnist1d_mlp", "mnist1d_cnn", "mnist1d_gru"]


def load_preset(name):
    """conf/model/<name>.yaml merged onto the ModelConfig schema (as Hydra does)."""
    text = (CONF_DIR / "model" / f"{name}.yaml").read_text()
    assert text.startswith("#"), "every preset begins with a comment saying what it is"
    node = OmegaConf.load(CONF_DIR / "model" / f"{name}.yaml")
    node.pop("defaults", None)
    return OmegaConf.merge(OmegaConf.structured(ModelConfig), node)


@pytest.mark.parametrize("name", PRESETS)
def test_presets_build(name):
    model_cfg = load_preset(name)
    validate_model_config(model_cfg)
    layout = "vector" if name == "fnn" else "signal"
    x = jnp.zeros((2, 2)) if layout == "vector" else jnp.zeros((2, 40, 1))
    model = build_model(model_cfg, layout=layout, input_shape=x.shape[1:], num_outputs=2)
    assert out_shape(model, x) == (2, 2)


@pytest.mark.parametrize(
    "name,expected", [("mnist1d_mlp", 15210), ("mnist1d_cnn", 5160), ("mnist1d_gru", 5110)]
)
def test_mnist1d_preset_param_counts(name, expected):
    # Source (greydanus/mnist1d notebooks/models.py): MLP 15,210, CNN 5,210, GRU 5,134;
    # the differences are explained in each yaml's leading comment.
    model = build_model(load_preset(name), layout="signal", input_shape=(40, 1), num_outputs=10)
    shapes = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 40, 1)))
    assert count_params(shapes) == expected


def test_presets_compose_with_hydra():
    """Each preset through the real conf/config.yaml, typed by the ModelConfig schema."""
    from hydra import compose, initialize_config_dir

    from harness.config import register_configs

    register_configs()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        for name in PRESETS:
            composed = compose("config", overrides=[f"model={name}"])
            assert composed.model == load_preset(name)
            validate_model_config(composed.model)


@pytest.mark.parametrize("shape", [(2, 9, 3), (2, 7, 5, 2)])
@pytest.mark.parametrize("padding", ["SAME", "VALID", 2])
@pytest.mark.parametrize("stride", [1, 3])
def test_patch_conv_equals_flax_conv(shape, padding, stride):
    """The CNN's im2col convolution has nn.Conv's parameters and output (up to rounding)."""
    import jax
    import numpy as np
    from flax import linen as nn

    from harness.models.cnn import PatchConv

    window = (3,) * (len(shape) - 2)
    reference = nn.Conv(4, kernel_size=window, strides=(stride,) * len(window), padding=padding)
    ours = PatchConv(4, kernel_size=window, strides=(stride,) * len(window), padding=padding)
    x = jax.random.normal(jax.random.PRNGKey(0), shape)
    params = reference.init(jax.random.PRNGKey(1), x)
    ours_params = ours.init(jax.random.PRNGKey(1), x)
    assert jax.tree_util.tree_map(np.shape, params) == jax.tree_util.tree_map(np.shape, ours_params)
    np.testing.assert_allclose(ours.apply(params, x), reference.apply(params, x), atol=2e-6)
