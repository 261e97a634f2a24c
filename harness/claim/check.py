"""Check a whole claim file before its first sweep starts.

``harness-claim`` runs a claim as several multiruns, one after the other. Without this check a
mistake surfaces only when the sweep that holds it runs (a misspelt ``metric:`` after every
sweep has trained, a bad override of the second setting after the first has trained). Here,
before anything is written:

- the claim's structure (:func:`harness.claim.spec.validate_claim`);
- every hypothesis kind (the claim's and each ``also:`` entry's) against
  :data:`harness.claim.spec.HYPOTHESIS_KINDS`;
- no setting, fixed or protocol override sets a key the claim sweeps (the scientific key or a
  tuned nuisance key): the sweep's value would silently replace it;
- every sweep's overrides composed as ``harness-train`` would compose them and checked with
  :func:`harness.validate.validate_config` -- each value of every swept key at least once;
- every metric the claim names (``metric``, ``select_metric``, ``columns``, ``also[].metric``,
  each protocol's ``target_metric``) against the metrics the sweep's runs will produce.

Every failure is a :class:`~harness.errors.ConfigError` naming the claim key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from omegaconf import DictConfig

from harness.claim.spec import HYPOTHESIS_KINDS, STAGE_REF, Sweep, scored_as, validate_claim
from harness.errors import NO_VALUE, ConfigError
from harness.overrides import override_key

# Columns the analysis derives from the stored metrics (harness.claim.analyze).
DERIVED_PREFIX = "gap/"
STEPS_TO_TARGET = "steps_to_target"


def check_claim(claim: dict, plan: list[Sweep], compose: Any) -> None:
    """Refuse a resolved claim, before any sweep runs, if any part of it would fail later.

    ``plan`` is the claim's sweeps (:func:`harness.claim.spec.sweeps`); ``compose(overrides)``
    returns the config ``harness-train`` composes from one job's overrides.
    """
    validate_claim(claim)
    _check_hypotheses(claim)
    _check_tuned_keys(claim)
    for sweep in plan:
        first = None
        for overrides, change in _jobs_of(sweep):
            cfg = _compose_checked(compose, claim, sweep, overrides, first if change else None, change)
            if change is None:
                first = cfg
                _check_metrics(claim, sweep, cfg)


def _check_hypotheses(claim: dict) -> None:
    """The claim's hypothesis kind, and every ``also:`` entry's, is one the analysis knows."""
    entries = [("claim.hypothesis", claim.get("hypothesis"))]
    entries += [(f"claim.also[{i}].hypothesis", extra.get("hypothesis") if isinstance(extra, dict) else extra)
                for i, extra in enumerate(claim.get("also") or [])]
    for key, hypothesis in entries:
        if hypothesis is None:
            continue
        if not isinstance(hypothesis, dict):
            raise ConfigError(key, hypothesis, "a mapping with a 'kind' (one of " + ", ".join(HYPOTHESIS_KINDS) + ")")
        kind = hypothesis.get("kind", next(iter(HYPOTHESIS_KINDS)))  # the first kind is the default
        if kind not in HYPOTHESIS_KINDS:
            raise ConfigError(f"{key}.kind", kind, tuple(HYPOTHESIS_KINDS))


def _check_tuned_keys(claim: dict) -> None:
    """A key the claim sweeps may not also be set by a setting, ``fixed`` or a protocol."""
    swept = {}
    sci = claim["scientific"]
    if isinstance(sci, dict) and sci.get("key") and not isinstance(sci.get("values"), dict):
        swept[sci["key"]] = "claim.scientific.key"
    for key in claim.get("nuisance") or {}:
        swept[key] = f"claim.nuisance.{key}"
    for name, protocol in (claim.get("protocols") or {}).items():
        for key in (protocol or {}).get("nuisance") or {}:
            swept.setdefault(key, f"claim.protocols.{name}.nuisance.{key}")
    sources = [("claim.fixed", claim.get("fixed") or [])]
    sources += [(f"claim.settings.{s}", o or []) for s, o in claim["settings"].items()]
    sources += [(f"claim.protocols.{p}.overrides", (v or {}).get("overrides") or [])
                for p, v in claim["protocols"].items()]
    for where, overrides in sources:
        for override in overrides:
            key = override_key(str(override))
            if key in swept:
                raise ConfigError(where, str(override), f"no value for {key}: the claim sweeps it ({swept[key]}), "
                                  "and the sweep's values would replace this one")


def _jobs_of(sweep: Sweep) -> list[tuple[list[str], tuple[str, Any] | None]]:
    """Jobs of ``sweep`` such that every value of every swept key appears once: per multirun,
    the first value of each (change None), then each further value of one key at a time, with
    that change as ``(key, value)`` when it is a plain value (not a config group choice)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from harness.config import CONF_DIR

    groups = {p.name for p in Path(CONF_DIR).iterdir() if p.is_dir()}
    parser = OverridesParser.create()
    jobs = []
    for _label, argv in sweep.commands("_"):
        # A ${stage:NAME} path (substituted into the stage root by Sweep.with_root) exists only
        # once the stage has run: checked by that sweep itself.
        overrides = [o for o in argv[2:] if not o.startswith("hydra.") and not STAGE_REF.search(o)
                     and not (sweep.stage_root and sweep.stage_root in o)]
        parsed = parser.parse_overrides(overrides)
        choices = [list(zip(o.sweep_string_iterator(), o.sweep_iterator())) if o.is_sweep_override() else []
                   for o in parsed]
        first = [f"{o.get_key_element()}={c[0][0]}" if c else o.input_line for o, c in zip(parsed, choices)]
        jobs.append((first, None))
        for i, (o, values) in enumerate(zip(parsed, choices)):
            key = o.get_key_element()
            plain = o.key_or_group not in groups and not o.is_add() and not o.is_delete()
            for text, value in values[1:]:
                jobs.append((first[:i] + [f"{key}={text}"] + first[i + 1:], (key, value) if plain else ("", None)))
    return jobs


def _compose_checked(compose: Any, claim: dict, sweep: Sweep, overrides: list[str], first: DictConfig | None,
                     change: tuple[str, Any] | None) -> DictConfig:
    """One job's config, composed (or, for one plain value changed from the sweep's first job,
    that job's config with the value assigned, typed by the schema as composing would) and
    validated; errors name the setting and the job."""
    import copy

    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from harness.hydra_errors import one_line
    from harness.validate import validate_config

    try:
        if first is not None and change and change[0]:
            cfg = copy.deepcopy(first)
            OmegaConf.update(cfg, change[0], change[1], merge=False)
        else:
            cfg = compose(overrides)
        validate_config(cfg)
    except ConfigError as exc:
        where = _source_of(claim, sweep, exc.key)
        raise ConfigError(f"{where}: {exc.key}", exc.value, f"{exc.allowed} (setting {sweep.setting}, "
                          f"protocol {sweep.protocol})") from None
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConfigError(f"claim.settings.{sweep.setting}", NO_VALUE, f"overrides harness-train accepts "
                          f"(protocol {sweep.protocol}): {one_line(exc)}") from None
    return cfg


def _source_of(claim: dict, sweep: Sweep, key: str) -> str:
    """The part of the claim whose override sets ``key`` for ``sweep`` (the last one wins, as in
    Hydra); the setting if none names it."""
    protocol = claim["protocols"][sweep.protocol] or {} if sweep.protocol in claim["protocols"] else {}
    sources = [("claim.fixed", claim.get("fixed") or []),
               (f"claim.settings.{sweep.setting}", claim["settings"].get(sweep.setting) or []),
               (f"claim.protocols.{sweep.protocol}.overrides", protocol.get("overrides") or [])]
    named = [where for where, overrides in sources if any(override_key(str(o)) == key for o in overrides)]
    return named[-1] if named else f"claim.settings.{sweep.setting}"


def expected_metrics(cfg: DictConfig) -> set[str]:
    """Metric names the run of ``cfg`` stores (``result.json``'s ``metrics``), and those the
    analysis derives from them, without running it."""
    from harness.data import SPECS

    splits = ["train", "test"] + (["val"] if float(cfg.data.val_fraction) > 0 else [])
    score = "accuracy" if SPECS[str(cfg.data.name)].task == "classification" else "mse"
    curves = {f"{split}/{name}" for split in splits for name in ("loss", score)}
    if cfg.train.grad_noise_scale:
        curves |= {"gns/grad_sq", "gns/trace_cov", "gns/b_simple"}
    stored = curves | {f"best/{c}" for c in curves if not c.startswith("gns/")} | {"weight_sparsity"}
    if cfg.train.grad_noise_scale:
        stored.add("gns/b_simple_median")
    derived = {f"{DERIVED_PREFIX}{name}" for name in ("loss", score)} | {STEPS_TO_TARGET}
    return stored | derived


def _named_metrics(claim: dict, sweep: Sweep) -> Iterable[tuple[str, Any]]:
    yield "claim.metric", claim.get("metric")
    if claim.get("select_metric") is not None:
        yield "claim.select_metric", claim["select_metric"]
    for i, column in enumerate(claim.get("columns") or []):
        yield f"claim.columns[{i}]", column
    for i, extra in enumerate(claim.get("also") or []):
        if isinstance(extra, dict) and "metric" in extra:
            yield f"claim.also[{i}].metric", extra["metric"]
    if sweep.measure == STEPS_TO_TARGET:
        yield f"claim.protocols.{sweep.protocol}.target_metric", sweep.target_metric


def _check_metrics(claim: dict, sweep: Sweep, cfg: DictConfig) -> None:
    """Every metric the claim names is one this sweep's runs will produce."""
    known = expected_metrics(cfg)
    for key, name in _named_metrics(scored_as(claim, sweep.setting), sweep):
        if name not in known:
            raise ConfigError(key, name, f"a metric the runs of setting {sweep.setting} produce: "
                              + ", ".join(sorted(known)))


def hydra_compose(overrides: list[str]) -> DictConfig:
    """``harness-train``'s config for ``overrides``, composed by the running Hydra app."""
    from hydra import compose

    return compose(config_name="config", overrides=list(overrides))
