"""The page's controls: parsed from the URL's query, checked, and turned into harness configs.

Everything on screen is a short ``name=value`` list (the page keeps it in its URL, so a link
reproduces the setup). :func:`parse` checks the names and their types; :func:`member_configs`
composes the harness config each trained member runs (Hydra's ``conf/``, as ``harness-train``
composes it) and checks it with :mod:`harness.validate`, so a bad value fails with the same
one-line message as on the command line (``optim.lr=-1.0 is not allowed: a finite number >
0``). :func:`commands` writes the ``harness-train`` multirun, the W&B sweep file and the claim
file that reproduce what is on screen as a proper sweep.
"""

from __future__ import annotations

import copy
import dataclasses
import shlex
import threading
from typing import Any, Mapping

from omegaconf import DictConfig, OmegaConf

from harness.config import REGULARIZERS
from harness.data.playground import CLASSIFICATION_SETS, FEATURE_NAMES, PLAYGROUND_SETS, REGRESSION_SETS, task_of
from harness.errors import ConfigError

# A Play session trains until Pause, against a budget it does not reach in practice (hours of
# play); one number for every session, so a structure compiles once. The largest epoch has
# 1,080 steps (reg sets, 90% training data, batch 1): 1.08e9 steps, within int32 step counters.
EPOCHS = 1_000_000
# The page trains as TensorFlow Playground does (conf/experiment/playground.yaml); its science
# commands carry the same choice, so they reproduce what the page trained.
PRESET = {"experiment": "playground"}
MAX_LAYERS, MAX_NEURONS, MAX_SEEDS = 6, 8, 8  # Playground's limits (and ours for seeds)

# Playground's lists (playground's state.ts / index.html), in the harness's units.
LEARNING_RATES = (0.00001, 0.0001, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)
REG_RATES = (0.0, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)
ACTIVATIONS = ("relu", "tanh", "sigmoid", "linear")
BATCH_SIZES = (1, 3, 10, 30)
FEATURE_SETS = {
    "x1 x2": ["x1", "x2"],
    "x1² x2²": ["x1sq", "x2sq"],
    "x1 x2 x1² x2²": ["x1", "x2", "x1sq", "x2sq"],
    "x1 x2 x1x2": ["x1", "x2", "x1x2"],
    "sin x1 sin x2": ["sin_x1", "sin_x2"],
    "all seven": list(FEATURE_NAMES),
}


@dataclasses.dataclass(frozen=True)
class Control:
    """A control that compare mode can sweep: the config key it sets and its values."""

    key: str
    values: tuple
    labels: tuple[str, ...]


COMPARE: dict[str, Control] = {
    "activation": Control("model.activation", ACTIVATIONS, ACTIVATIONS),
    "lr": Control("optim.lr", LEARNING_RATES, tuple(f"lr {v:g}" for v in LEARNING_RATES)),
    "batch": Control("train.batch_size", BATCH_SIZES, tuple(f"batch {v}" for v in BATCH_SIZES)),
    "reg": Control("regularizer.kind", REGULARIZERS, ("no penalty", "L1", "L2")),
    "rate": Control("regularizer.rate", REG_RATES, tuple(f"rate {v:g}" for v in REG_RATES)),
    "features": Control("data.features", tuple(FEATURE_SETS.values()), tuple(FEATURE_SETS)),
}

# URL name -> (config key it sets, default as the URL writes it). Order = the URL's order.
PARAMS: dict[str, tuple[str, str]] = {
    "data": ("data", "circle"),
    "problem": ("problem", ""),  # classification | regression; empty: the data set's
    "noise": ("data.noise", "0"),
    "ratio": ("data.train_fraction", "0.5"),
    "batch": ("train.batch_size", "10"),
    "features": ("data.features", "x1,x2"),
    "hidden": ("model.hidden", "4,2"),
    "lr": ("optim.lr", "0.03"),
    "activation": ("model.activation", "tanh"),
    "reg": ("regularizer.kind", "none"),
    "rate": ("regularizer.rate", "0"),
    "seed": ("seed", "0"),
    "dataseed": ("data.seed", "0"),
    "compare": ("compare", "none"),
    "seeds": ("seeds", "1"),
    "showtest": ("showtest", "0"),  # the page only: draw the test points too
}


# The settings that change while a network trains, as in the Playground (its learning-rate and
# regularization-rate controls do not reset the network): numbers of the compiled program
# (harness.train.hparams.DYNAMIC), so the next segment uses them with nothing recompiled.
LIVE = ("lr", "rate")

# The Playground's classroom controls (playground.ts HIDABLE_CONTROLS: label, state name).
# ``<name>_hide=true`` in the URL hides that control (state.ts HIDE_STATE_SUFFIX), and
# ``hideText=true`` the page's text; the page reads them, the server never sees them.
HIDABLE_CONTROLS = (
    ("Show test data", "showTestData"),
    ("Discretize output", "discretize"),
    ("Play button", "playButton"),
    ("Step button", "stepButton"),
    ("Reset button", "resetButton"),
    ("Learning rate", "learningRate"),
    ("Activation", "activation"),
    ("Regularization", "regularization"),
    ("Regularization rate", "regularizationRate"),
    ("Problem type", "problem"),
    ("Which dataset", "dataset"),
    ("Ratio train data", "percTrainData"),
    ("Noise level", "noise"),
    ("Batch size", "batchSize"),
    ("# of hidden layers", "numHiddenLayers"),
)


class ParamError(ConfigError):
    """A bad URL/API parameter: a ConfigError on the config key, plus the URL name."""

    def __init__(self, param: str, key: str, value: Any, allowed: Any):
        super().__init__(key, value, allowed)
        self.param = param


@dataclasses.dataclass(frozen=True)
class Settings:
    """One page's setup, typed. ``compare`` is ``none`` or a key of :data:`COMPARE`."""

    data: str = "circle"
    noise: float = 0.0
    ratio: float = 0.5
    batch: int = 10
    features: tuple[str, ...] = ("x1", "x2")
    hidden: tuple[int, ...] = (4, 2)
    lr: float = 0.03
    activation: str = "tanh"
    reg: str = "none"
    rate: float = 0.0
    seed: int = 0
    dataseed: int = 0
    compare: str = "none"
    seeds: int = 1
    showtest: bool = False

    @property
    def problem(self) -> str:
        return task_of(self.data)

    def query(self) -> dict[str, str]:
        """The URL's query for these settings (every parameter, so a link pins them all)."""
        return {
            "data": self.data, "noise": f"{self.noise:g}", "ratio": f"{self.ratio:g}", "batch": str(self.batch),
            "features": ",".join(self.features), "hidden": ",".join(str(h) for h in self.hidden),
            "lr": f"{self.lr:g}", "activation": self.activation, "reg": self.reg, "rate": f"{self.rate:g}",
            "seed": str(self.seed), "dataseed": str(self.dataseed), "compare": self.compare,
            "seeds": str(self.seeds), "showtest": "1" if self.showtest else "0",
        }

    def as_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["features"], d["hidden"], d["problem"] = list(self.features), list(self.hidden), self.problem
        return d


def _text(query: Mapping[str, Any], name: str) -> str:
    value = query.get(name, PARAMS[name][1])
    if isinstance(value, (list, tuple)):  # JSON lists for features / hidden
        return ",".join(str(v) for v in value)
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value).strip()


def _float(query, name: str) -> float:
    raw = _text(query, name)
    try:
        return float(raw)
    except ValueError:
        raise ParamError(name, PARAMS[name][0], raw, "a number") from None


def _int(query, name: str, minimum: int = 0, maximum: int | None = None) -> int:
    raw = _text(query, name)
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or value < minimum or (maximum is not None and value > maximum):
        allowed = f"an integer >= {minimum}" + (f" and <= {maximum}" if maximum is not None else "")
        raise ParamError(name, PARAMS[name][0], raw if value is None else value, allowed)
    return value


def _choice(query, name: str, allowed) -> str:
    raw = _text(query, name)
    if raw not in allowed:
        raise ParamError(name, PARAMS[name][0], raw, allowed)
    return raw


def parse(query: Mapping[str, Any]) -> Settings:
    """Settings from a URL query or a JSON object; ParamError names the first bad one."""
    unknown = sorted(set(query) - set(PARAMS))
    if unknown:
        raise ParamError(unknown[0], unknown[0], query[unknown[0]], "a parameter of the page: " + ", ".join(PARAMS))
    data = _choice(query, "data", PLAYGROUND_SETS)
    problem = _text(query, "problem")
    if problem:
        _choice(query, "problem", ("classification", "regression"))
        if task_of(data) != problem:
            sets = CLASSIFICATION_SETS if problem == "classification" else REGRESSION_SETS
            raise ParamError("data", "data", data, f"one of {', '.join(sets)} (a {problem} data set)")
    features = tuple(f.strip() for f in _text(query, "features").split(",") if f.strip())
    if not features or any(f not in FEATURE_NAMES for f in features) or len(set(features)) != len(features):
        raise ParamError("features", "data.features", list(features),
                         "a non-empty list of distinct names from " + ", ".join(FEATURE_NAMES))
    hidden_raw = [h.strip() for h in _text(query, "hidden").split(",") if h.strip()]
    limits = f"up to {MAX_LAYERS} layers of 1 to {MAX_NEURONS} neurons (the playground's limits)"
    try:
        hidden = tuple(int(h) for h in hidden_raw)
    except ValueError:
        raise ParamError("hidden", "model.hidden", hidden_raw, limits) from None
    if len(hidden) > MAX_LAYERS or any(not 1 <= h <= MAX_NEURONS for h in hidden):
        raise ParamError("hidden", "model.hidden", list(hidden), limits)
    settings = Settings(
        data=data,
        noise=_float(query, "noise"),
        ratio=_float(query, "ratio"),
        batch=_int(query, "batch", minimum=1),
        features=features,
        hidden=hidden,
        lr=_float(query, "lr"),
        activation=_text(query, "activation"),
        reg=_choice(query, "reg", REGULARIZERS),
        rate=_float(query, "rate"),
        seed=_int(query, "seed"),
        dataseed=_int(query, "dataseed"),
        compare=_choice(query, "compare", ("none", *COMPARE)),
        seeds=_int(query, "seeds", minimum=1, maximum=MAX_SEEDS),
        showtest=_choice(query, "showtest", ("0", "1")) == "1",
    )
    if settings.compare == "rate" and settings.reg == "none":
        raise ParamError("reg", "regularizer.kind", "none", "l1 or l2 when compare=rate (a rate of no penalty changes nothing)")
    if settings.compare == "reg" and settings.rate <= 0:
        raise ParamError("rate", "regularizer.rate", settings.rate, "a rate > 0 when compare=reg (at rate 0 no penalty changes anything)")
    return settings


def live_change(settings: Settings, update: Mapping[str, Any]) -> Settings:
    """``settings`` with the :data:`LIVE` values in ``update`` (URL strings or numbers),
    checked as :func:`parse` checks them; ParamError for any other name, or for the
    control that compare mode sweeps (every value of it is training already)."""
    for name in update:
        if name not in LIVE:
            raise ParamError(name, name, update[name], "one of " + ", ".join(LIVE) + " (the settings that change while training)")
        if settings.compare == name:
            raise ParamError(name, PARAMS[name][0], update[name],
                             f"unchanged while compare={name} trains every value of it (start a new session instead)")
    return parse({**settings.query(), **update})


# --- configs --------------------------------------------------------------------------------

_COMPOSE_LOCK = threading.Lock()  # Hydra's global state is not thread-safe
_TEMPLATES: dict[str, DictConfig] = {}


def _template(data: str) -> DictConfig:
    """The composed config of ``harness-train data=<data>`` (with no logger, no plots, the
    play budget), composed by Hydra once per data set; members are copies of it."""
    with _COMPOSE_LOCK:
        if data not in _TEMPLATES:
            from hydra import compose, initialize_config_module

            from harness.config import CONF_PACKAGE, register_configs

            register_configs()
            overrides = [f"data={data}", *(f"{k}={v}" for k, v in PRESET.items()), "logger=none",
                         "output.plots=false", f"train.epochs={EPOCHS}"]
            with initialize_config_module(config_module=CONF_PACKAGE, version_base="1.3"):
                _TEMPLATES[data] = compose("config", overrides=overrides)
        return copy.deepcopy(_TEMPLATES[data])


def values_of(settings: Settings) -> dict[str, Any]:
    """The config keys and values the settings set (one member, before the compared value)."""
    return {
        "data.noise": settings.noise,
        "data.train_fraction": settings.ratio,
        "data.seed": settings.dataseed,
        "data.features": list(settings.features),
        "model.hidden": list(settings.hidden),
        "model.activation": settings.activation,
        "optim.lr": settings.lr,
        "regularizer.kind": settings.reg,
        "regularizer.rate": settings.rate,
        "train.batch_size": settings.batch,
        "seed": settings.seed,
    }


@dataclasses.dataclass(frozen=True)
class Member:
    """One trained network of a session: the compared value (by index and label) and its seed."""

    value: int
    label: str
    seed: int
    cfg: DictConfig


def compared(settings: Settings) -> tuple[str, tuple, tuple[str, ...]]:
    """(config key, values, labels) of the compared control; one value when not comparing."""
    if settings.compare == "none":
        return "", (None,), ("",)
    c = COMPARE[settings.compare]
    return c.key, c.values, c.labels


def member_configs(settings: Settings) -> list[Member]:
    """Every member's checked config: each compared value x ``seeds`` seeds, value-major.

    Raises ConfigError (with the config key) for a value the harness does not take.
    """
    from harness.job import check  # imports JAX: loading the page's settings does not need it

    key, values, labels = compared(settings)
    members = []
    for i, (value, label) in enumerate(zip(values, labels)):
        base = values_of(settings)
        if key:
            base[key] = list(value) if isinstance(value, list) else value
        for s in range(settings.seeds):
            cfg = _template(settings.data)
            for k, v in {**base, "seed": settings.seed + s}.items():
                OmegaConf.update(cfg, k, v, merge=False)
            members.append(Member(i, label, settings.seed + s, cfg))
    checked = set()
    for m in members:  # one check per distinct config apart from the seed
        ident = (m.value,)
        if ident in checked:
            continue
        checked.add(ident)
        check(m.cfg)
    return members


# --- from play to science ---------------------------------------------------------------------


def _format(value: Any) -> str:
    """A value as a Hydra override writes it: lists in brackets, floats with a point."""
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_format(v) for v in value) + "]"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def fixed_overrides(settings: Settings, epochs: int, leave_out: str = "") -> list[str]:
    """``key=value`` overrides of everything on screen (but ``leave_out``) at ``epochs`` epochs."""
    values = {"data": settings.data, **PRESET, **values_of(settings)}
    values.pop("seed")
    if settings.reg == "none":
        values.pop("regularizer.rate")  # regularizer.kind=none: the rate does nothing
    values["train.epochs"] = max(int(epochs), 1)
    return [f"{k}={_format(v)}" for k, v in values.items() if k != leave_out]


def commands(settings: Settings, epochs: int) -> dict[str, str]:
    """What reproduces the screen as a proper sweep: a ``harness-train`` multirun, a W&B sweep
    file and a claim file (with the ``harness-claim`` command to run it)."""
    key, values, labels = compared(settings)
    seeds = list(range(settings.seed, settings.seed + settings.seeds))
    fixed = fixed_overrides(settings, epochs, leave_out=key)
    swept = [f"{key}=" + ",".join(_format(v) for v in values)] if key else []
    seed_arg = "seed=" + ",".join(str(s) for s in seeds)
    argv = ["harness-train", *(["-m"] if (key or len(seeds) > 1) else []), *fixed, *swept, seed_arg]
    hydra_cmd = " ".join(shlex.quote(a) for a in argv)

    def yaml_value(v: Any) -> str:
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(yaml_value(x) for x in v) + "]"
        return repr(v) if isinstance(v, float) else str(v)

    classification = settings.problem == "classification"
    metric = "test/accuracy" if classification else "test/loss"
    params = ([f"  {key}:", f"    values: [{', '.join(yaml_value(v) for v in values)}]"] if key else [])
    params += ["  seed:", f"    values: [{', '.join(str(s) for s in seeds)}]"]
    run_dir = "hydra.run.dir=outputs/wandb-sweeps/${oc.env:WANDB_SWEEP_ID,none}/${oc.env:WANDB_RUN_ID,none}"
    wandb = "\n".join([
        "# W&B sweep of the playground's screen (save as sweeps/play.yaml; wandb sweep sweeps/play.yaml)",
        "method: grid",
        "project: harness",
        "metric:",
        f"  name: {metric}",
        f"  goal: {'maximize' if classification else 'minimize'}",
        "parameters:",
        *params,
        "command:",
        "  - ${env}",
        "  - WANDB_MODE=online",
        "  - python",
        "  - -m",
        "  - harness.train",
        f'  - "{run_dir}"',
        *(f'  - "{o}"' for o in fixed),
        "  - ${args_no_hyphens}",
    ])
    name = f"play_{settings.compare if key else 'setup'}"
    claim = None
    if key:
        claim = "\n".join([
            f"# conf/claim/{name}.yaml, from harness-play; run: harness-claim claim={name}",
            f"name: {name}",
            f"statement: On {settings.data}, {settings.compare} changes how well this network trains (from the playground)",
            "source: harness-play",
            "scientific:",
            f"  key: {key}",
            f"  values: [{', '.join(yaml_value(v) for v in values)}]",
            "fixed: [" + ", ".join(f'"{o}"' for o in fixed if not o.startswith(("data=", "train.epochs="))) + "]",
            f"seeds: {max(5, settings.seeds)}",
            "settings:",
            f"  {settings.data}: [data={settings.data}]",
            "protocols:",
            "  fixed_epochs:",
            "    label: equal epochs",
            f"    overrides: [train.epochs={max(int(epochs), 1)}]",
            f"metric: {metric}",
            f"direction: {'higher' if classification else 'lower'}",
            "hypothesis:",
            "  kind: best",
        ])
    return {"hydra": hydra_cmd, "wandb": wandb, "claim": claim, "claim_command": f"harness-claim claim={name}" if claim else None}
