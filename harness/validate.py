"""Value checks on a composed config, run before any compute.

Hydra and the schema already reject unknown keys and wrong types while composing; this adds
the checks a type cannot express (ranges, known names, consistency). Every failure is a
:class:`~harness.errors.ConfigError` naming the key, the value and what is allowed.
"""

from __future__ import annotations

import math
from typing import Any

from omegaconf import DictConfig

from harness import config as schema
from harness.config import REGULARIZERS, resolved
from harness.data import generated_bytes, validate_data_config
from harness.errors import NO_VALUE, ConfigError
from harness.models import validate_model_config, validate_model_for_data
from harness.results import metric_names
from harness.train.loop import ORDERS, PARTIAL_BATCHES, make_budget
from harness.train.memory import available_bytes, boundary_bytes, host_available_bytes, member_bytes
from harness.train.hparams import select_path
from harness.train.objective import LOSSES, num_model_outputs, resolve_loss
from harness.train.optim import OPTIMIZERS, SCHEDULES
from harness.train.transfer import load_params

LOGGERS = ("wandb", "none")
MAX_STEPS = 2**31 - 1  # step counters are int32 inside the compiled program
MAX_SEED = 2**31 - 1  # seeds enter the program as int32 arrays (one per member) for PRNGKey
SEED_KEYS = ("seed", "train.order_seed")


def _number(key: str, value: Any, *, low: float | None = None, high: float | None = None,
            low_open: bool = False, high_open: bool = False) -> None:
    """Check a finite number within [low, high] (or open ends), naming the key on failure."""
    lo = "" if low is None else ("> " if low_open else ">= ") + f"{low:g}"
    hi = "" if high is None else ("< " if high_open else "<= ") + f"{high:g}"
    allowed = "a finite number" + (" " + " and ".join(s for s in (lo, hi) if s) if (lo or hi) else "")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(key, value, allowed)
    if low is not None and (value <= low if low_open else value < low):
        raise ConfigError(key, value, allowed)
    if high is not None and (value >= high if high_open else value > high):
        raise ConfigError(key, value, allowed)


def _count(key: str, value: Any, *, minimum: int = 1, optional: bool = False) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(key, value, f"an integer >= {minimum}")


def _choice(key: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(key, value, allowed)


class _Plain(dict):
    """A resolved config as plain data, read with attributes as a ``DictConfig`` is: reading
    a value of plain data costs ~0.1 us against ~15 us through OmegaConf, and a sweep checks
    every job's ~60 values."""

    def __getattr__(self, name: str) -> Any:
        try:
            value = self[name]
        except KeyError:
            raise AttributeError(name) from None
        return _Plain(value) if isinstance(value, dict) else value


def _known_keys(cfg: dict) -> None:
    """Keys the schema does not know (``+optim.lr_decay=...`` adds one silently) are errors
    (``cfg``: the resolved config as plain data)."""
    import dataclasses

    def check(node: Any, cls: type, prefix: str) -> None:
        fields = {f.name: f for f in dataclasses.fields(cls)}
        for name in fields:  # only ``~key`` removes a schema key
            if isinstance(node, dict) and name not in node:
                raise ConfigError(f"~{prefix}{name}", NO_VALUE, f"removing a key of the schema ({prefix}{name} "
                                  "must stay; set its values instead)")
        for key in node if isinstance(node, dict) else ():
            if key not in fields:
                raise ConfigError(f"{prefix}{key}", node.get(key), "a key of " + (prefix.rstrip(".") or "the config")
                                  + ": " + ", ".join(sorted(fields)))
            sub = fields[key].default_factory if fields[key].default_factory is not dataclasses.MISSING else None
            if dataclasses.is_dataclass(sub) and isinstance(node.get(key), dict):
                check(node.get(key), sub, f"{prefix}{key}.")

    check(cfg, schema.Config, "")


def _resolve_all(node: Any, prefix: str = "") -> None:
    """Read every value once, so that interpolations (``${oc.env:HOME}``, ``${now:}``) resolve
    and are typed against the schema here, as one ConfigError, not later inside training."""
    from omegaconf import ListConfig
    from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

    if not prefix:
        try:  # one conversion resolves (and types) every value; walk key by key only to name a failing one
            resolved(node)
            return
        except OmegaConfBaseException:
            pass
    keys = range(len(node)) if isinstance(node, ListConfig) else list(node.keys())
    for key in keys:
        full = f"{prefix}[{key}]" if isinstance(node, ListConfig) else f"{prefix}{'.' if prefix else ''}{key}"
        try:
            value = node[key]
        except MissingMandatoryValue:  # '???': the checks that follow say what to set
            continue
        except OmegaConfBaseException as exc:
            raw = node._get_node(key)._value()  # the text as written, e.g. '${oc.env:UNSET}'
            reason = " ".join(str(getattr(exc, "msg", None) or exc).split("\n")[0].split())
            raise ConfigError(full, raw, f"a value that resolves to the key's type ({reason})") from None
        if isinstance(value, (DictConfig, ListConfig)):
            _resolve_all(value, full)


def _seed(key: str, value: Any, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SEED:
        raise ConfigError(key, value, f"an integer in 0..{MAX_SEED} (seeds are int32 inside the program)")


def _params_file(path: Any) -> None:
    """``train.init_from``: null, or a readable params.npz of arrays (checked by reading it)."""
    if path is None:
        return

    load_params(str(path))


def validate_config(cfg: DictConfig) -> None:
    """Check every value that can be checked without generating data."""

    _resolve_all(cfg)
    cfg = _Plain(resolved(cfg))  # every value resolved: the checks read plain data
    _known_keys(cfg)
    o = cfg.optim
    _choice("optim.name", o.name, OPTIMIZERS)
    _number("optim.lr", o.lr, low=0, low_open=True)
    _number("optim.momentum", o.momentum, low=0, high=1, high_open=True)
    _number("optim.b1", o.b1, low=0, high=1, high_open=True)
    _number("optim.b2", o.b2, low=0, high=1, high_open=True)
    _number("optim.eps", o.eps, low=0, low_open=True)
    _number("optim.decay", o.decay, low=0, high=1, high_open=True)
    _number("optim.weight_decay", o.weight_decay, low=0)
    _choice("optim.schedule.kind", o.schedule.kind, SCHEDULES)
    _number("optim.schedule.warmup_steps", o.schedule.warmup_steps, low=0)
    _number("optim.schedule.final_fraction", o.schedule.final_fraction, low=0, high=1)

    _choice("regularizer.kind", cfg.regularizer.kind, REGULARIZERS)
    _number("regularizer.rate", cfg.regularizer.rate, low=0)

    t = cfg.train
    _count("train.batch_size", t.batch_size)
    _count("train.epochs", t.epochs, optional=True)
    _count("train.steps", t.steps, optional=True)
    _count("train.examples", t.examples, optional=True)
    _count("train.eval_every", t.eval_every, optional=True)
    if t.steps is not None and t.examples is not None:
        raise ConfigError("train.examples", t.examples, "null when train.steps is set (one budget at a time)")
    if t.epochs is None and t.steps is None and t.examples is None:
        raise ConfigError("train.epochs", None, "an integer >= 1 unless train.steps or train.examples is set")
    _choice("train.loss", t.loss, LOSSES)
    _choice("train.order", t.order, ORDERS)
    _choice("train.partial_batch", t.partial_batch, PARTIAL_BATCHES)
    every = t.get("checkpoint_every")
    if every is not None and (isinstance(every, bool) or not isinstance(every, int) or every < 0):
        raise ConfigError("train.checkpoint_every", every, "null or 0 (off), or an integer >= 1 (epochs between checkpoints)")
    _choice("train.freeze", t.freeze, ("none", "features"))
    if t.get("diverge_above") is not None:
        _number("train.diverge_above", t.diverge_above, low=1, low_open=True)
    _params_file(t.init_from)
    _seed("seed", cfg.seed)
    _seed("train.order_seed", t.order_seed, optional=True)
    _count("data.seed", cfg.data.seed, minimum=0)

    _choice("logger.name", cfg.logger.name, LOGGERS)
    if cfg.logger.mode is not None:
        _choice("logger.mode", cfg.logger.mode, ("offline", "online", "disabled"))
    _count("output.boundary_resolution", cfg.output.boundary_resolution, minimum=2)
    if not (isinstance(cfg.output.plots, bool) or cfg.output.plots == "auto"):
        raise ConfigError("output.plots", cfg.output.plots, "auto, true or false")

    _data_fits_in_memory(validate_data_config(cfg.data))
    validate_model_config(cfg.model)


def validate_with_data(cfg: DictConfig, dataset) -> None:
    """Checks that need the data set's sizes: the batch must fit in the training split."""
    typed, cfg = cfg, _Plain(resolved(cfg))  # the checks read plain data; the memory estimate takes the config
    n_train = len(dataset.x_train)
    if cfg.train.batch_size > n_train:
        raise ConfigError("train.batch_size", cfg.train.batch_size, f"an integer <= {n_train} (the training-set size)")

    loss = resolve_loss(str(cfg.train.loss), dataset.task)
    outputs = num_model_outputs(loss, dataset.task, dataset.num_classes)
    validate_model_for_data(cfg.model, dataset.layout, dataset.input_shape, outputs, dataset.vocab_size, dataset.targets)

    budget = make_budget(cfg.train, n_train)
    if budget.total_steps > MAX_STEPS:
        key = next(k for k in ("steps", "examples", "epochs") if cfg.train[k] is not None)
        raise ConfigError(f"train.{key}", cfg.train[key], f"a budget of at most {MAX_STEPS} steps "
                          f"(this one is {budget.total_steps} steps of batch {budget.batch_size})")
    _fits_in_memory(typed, cfg, dataset)
    _optimized_metric(cfg, dataset)


def _optimized_metric(cfg: DictConfig, dataset) -> None:
    """``optimized_metric`` must name a metric these runs store (a sweeper optimises it)."""
    key = cfg.get("optimized_metric")
    if key is None:
        return

    names = metric_names(cfg, dataset)
    if key not in names:
        raise ConfigError("optimized_metric", key, "null or a metric these runs store: " + ", ".join(sorted(names)))


SEQUENCE_SETS = ("adding", "copy", "sentiment")  # data.length applies
WIDTH_KEYS = {"fnn": "model.hidden", "cnn": "model.channels", "rnn": "model.units"}
_MEMBER_BYTES: dict[str, tuple[int, int]] = {}


def _data_fits_in_memory(data) -> None:
    """Generating the data set must fit in host memory (checked before any is generated)."""

    need = generated_bytes(data)
    free = host_available_bytes()
    if need is None or need <= free:
        return
    candidates = ["data.num_samples"] + (["data.length"] if data.name in SEQUENCE_SETS else [])
    key = _grown_most({"data.num_samples": data.num_samples, "data.length": data.length}, candidates)
    raise ConfigError(key, getattr(data, key.split(".")[1]),
                      f"a data set that fits in memory (generating it needs about {need / 2**30:.1f} GiB, "
                      f"{free / 2**30:.1f} GiB is free)")


# Schema defaults that a size is measured against when the memory check names the key that
# grew, and how the memory grows with it (the grid's points grow with the square of its side).
_GROWN_FROM = {"data.num_samples": (500, 1), "data.length": (50, 1), "output.boundary_resolution": (50, 2),
               "model.hidden": (8, 1), "model.channels": (25, 1), "model.units": (64, 1)}


def _grown_most(values: dict[str, Any], keys: list[str]) -> str:
    """The key among ``keys`` that multiplied the memory most from its schema default (a list
    counts by its largest entry): the one to blame when memory runs out."""
    def growth(key: str) -> float:
        value = values.get(key)
        value = max(value, default=0) if isinstance(value, (list, tuple)) else (value or 0)
        default, power = _GROWN_FROM[key]
        return (float(value) / default) ** power

    return max(keys, key=growth)


def _fits_in_memory(typed: DictConfig, cfg: _Plain, dataset) -> None:
    """One member must fit in memory: its model (absurd widths or sequence lengths) and its
    decision-boundary grid (``output.boundary_resolution``) fail here, not in an out-of-memory
    crash. The message names the key that grew most. (``typed``: the config, for the
    estimates; ``cfg``: the same resolved, for the checks.)"""
    import json

    key = json.dumps([cfg.model, int(cfg.train.batch_size), str(cfg.train.loss),
                      dataset.name, list(dataset.input_shape), dataset.sizes, int(cfg.output.boundary_resolution)],
                     sort_keys=True, default=str)
    if key not in _MEMBER_BYTES:  # the grid is evaluated in the program whether or not plots are drawn
        _MEMBER_BYTES[key] = (member_bytes(typed, dataset), boundary_bytes(typed, dataset))
    model, grid = _MEMBER_BYTES[key]
    need, free = model + grid, available_bytes()
    if need <= free:
        return
    names = [WIDTH_KEYS.get(str(cfg.model.family), "model.hidden")]
    if dataset.layout in ("sequence", "tokens") and "length" in cfg.data:
        names.append("data.length")
    if grid:
        names.append("output.boundary_resolution")
    values = {n: select_path(cfg, n) for n in names}
    name = _grown_most(values, names)
    value = values[name]
    raise ConfigError(name, value, f"sizes that fit in memory (one run needs about "
                      f"{need / 2**30:.1f} GiB, {free / 2**30:.1f} GiB is free)")
