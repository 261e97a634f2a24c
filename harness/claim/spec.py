"""A claim file (``conf/claim/<name>.yaml``) and the sweeps it implies.

A claim declares, following the Deep Learning Tuning Playbook:

- ``scientific``: the hyperparameter the claim is about and its values (``key`` is what the
  sweep overrides -- a config key, or a config group such as ``model``; ``column``, if given,
  is the result column the table is by, e.g. ``model.family`` for a group sweep);
- ``nuisance``: hyperparameters tuned separately for every scientific value, on the
  validation split (``select_metric``), never on test;
- ``fixed``: everything else, as overrides;
- ``settings``: the data set / model pairs it is tested on (one verdict per protocol each);
- ``protocols``: the budgets it is compared under (each may change the nuisance grid, e.g.
  the naive fixed-learning-rate comparison, labelled as such);
- ``seeds`` (>= 5 at full scale), ``metric`` and its ``direction``, the ``hypothesis``.

``scales.<name>`` holds overrides of any of these for a smaller run (``claim.scale=small``).
Every (setting, protocol) pair becomes one ordinary Hydra multirun of ``harness-train``.

Two optional shapes for protocols that one sweep over a config key cannot express:

- ``scientific.values`` may be a mapping ``label: [overrides]`` (*variants*): each label is
  its own multirun into ``<sweep dir>/<label>``, and the table's column (``scientific.column``,
  default ``variant``) is the label -- e.g. ``scratch: [train.init_from=null]`` against
  ``probe: [train.init_from=..., train.freeze=features]``;
- ``stages: {name: {overrides: [...]}}`` run first, one multirun each over the claim's seeds
  into ``<out>/runs/_stages/<name>``, then indexed by seed as ``<name>/seed_<seed>/`` (links
  to the run's files, see :func:`harness.claim.run.index_stage`); a later override refers to a stage's
  folder as ``${stage:<name>}``, e.g. ``train.init_from=${stage:pretrain}/seed_${seed}/params.npz``
  (``${seed}`` is left for Hydra, so each seed loads its own pretrained weights).
"""

from __future__ import annotations

import copy
import dataclasses
import re
import shlex
from typing import Any

from harness.errors import ConfigError

# The hypothesis kinds a claim may declare (``hypothesis.kind``): the keys each needs and
# may have, and what it tests. One registry: the analysis dispatches on it and
# ``harness.claim.check`` validates claim files against it.
HYPOTHESIS_KINDS: dict[str, dict[str, Any]] = {
    "ordered": {"required": (), "optional": ("better_when",),
                "tests": "the metric improves monotonically along the scientific axis (better_when: smaller|larger); "
                         "Page's trend test blocked by seed, neighbouring values compared, ties reported"},
    "pairwise": {"required": ("better", "than"), "optional": (),
                 "tests": "each value in `better` beats `than`, paired by seed (one verdict per pair, Holm-adjusted)"},
    "best": {"required": (), "optional": (),
             "tests": "the value best on the validation metric is better on test than every other value"},
    "sweet_spot": {"required": (), "optional": (),
                   "tests": "too small a value underfits and too large a value diverges"},
    "interaction": {"required": ("better", "than", "controls"), "optional": (),
                    "tests": "`better`'s advantage over `than` is larger in a setting than in its control setting "
                             "(controls: {setting: control setting}); the difference of the per-seed differences"},
    "equivalence": {"required": ("a", "b", "margin"), "optional": ("metric",),
                    "tests": "values `a` and `b` differ by less than `margin` (TOST, two one-sided t-tests)"},
}
GRID_EXTENSIONS = 2  # default for claim.grid_extensions: how often an edge choice may extend its grid

REQUIRED = ("name", "statement", "source", "scientific", "settings", "protocols", "metric", "seeds")
MEASURES = ("final", "steps_to_target")
STAGES = "_stages"  # the setting name stages run under: <out>/runs/_stages/<stage>
STAGE_REF = re.compile(r"\$\{stage:([A-Za-z0-9_]+)\}")


@dataclasses.dataclass(frozen=True)
class Sweep:
    """One multirun of a claim: a setting under a protocol."""

    setting: str
    protocol: str
    label: str
    overrides: list[str]  # every override, sweeps included (comma lists, range(...))
    nuisance: dict[str, list]
    measure: str
    target: float | None
    target_metric: str | None
    variants: tuple = ()  # ((label, [overrides]), ...) when the scientific values are variants
    stage_root: str | None = None  # ${stage:NAME} -> <stage_root>/NAME (set by with_root)

    def _resolve(self, overrides: list[str]) -> list[str]:
        if self.stage_root is None:
            return list(overrides)
        return [STAGE_REF.sub(lambda m: f"{self.stage_root}/{m.group(1)}", o) for o in overrides]

    def with_root(self, stage_root: str) -> "Sweep":
        """This sweep with ``${stage:NAME}`` pointing into ``stage_root``."""
        return dataclasses.replace(self, stage_root=stage_root)

    def commands(self, sweep_dir: str) -> list[tuple[str | None, list[str]]]:
        """``[(variant label or None, argv)]``: one multirun per variant, else one."""
        if not self.variants:
            return [(None, ["harness-train", "-m", *self._resolve(self.overrides), f"hydra.sweep.dir={sweep_dir}"])]
        return [(label, ["harness-train", "-m", *self._resolve([*self.overrides, *extra]),
                         f"hydra.sweep.dir={sweep_dir}/{label}"]) for label, extra in self.variants]

    def command(self, sweep_dir: str) -> list[str]:
        """The exact ``harness-train`` command line of this sweep (its first, if variants)."""
        return self.commands(sweep_dir)[0][1]

    def shell(self, sweep_dir: str) -> str:
        """The command(s) as a user would paste them into a shell, one per line."""
        return "\n".join(" ".join(shlex.quote(a) for a in argv) for _, argv in self.commands(sweep_dir))


def _merge(base: dict, extra: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key not in ("nuisance", "settings"):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def resolve_scale(claim: dict) -> dict:
    """The claim with ``scales[claim.scale]`` merged in; ``full`` is the file as written."""
    scale = claim.get("scale", "full")
    scales = claim.get("scales") or {}
    if scale != "full" and scale not in scales:
        raise ConfigError("claim.scale", scale, ["full", *scales])
    merged = _merge(claim, scales.get(scale, {})) if scale != "full" else copy.deepcopy(claim)
    merged.pop("scales", None)
    return merged


def validate_claim(claim: dict) -> None:
    """Check a resolved claim's structure; ConfigError names the key."""
    for key in REQUIRED:
        if key not in claim or claim[key] in (None, "", [], {}):
            raise ConfigError(f"claim.{key}", claim.get(key), "required in a claim file")
    sci = claim["scientific"]
    variants = isinstance((sci or {}).get("values"), dict) if isinstance(sci, dict) else False
    if not isinstance(sci, dict) or ("key" not in sci and not variants) or len(sci.get("values") or []) < 2:
        raise ConfigError("claim.scientific", sci, "{key: <config key>, values: [at least two values]} "
                          "or {column: <name>, values: {label: [overrides], ...}}")
    for name, stage in (claim.get("stages") or {}).items():
        if not isinstance(stage, dict) or not isinstance(stage.get("overrides"), list):
            raise ConfigError(f"claim.stages.{name}", stage, "{overrides: [...]}")
    if not isinstance(claim["seeds"], int) or claim["seeds"] < 1:
        raise ConfigError("claim.seeds", claim["seeds"], "an integer >= 1")
    if claim.get("direction", "higher") not in ("higher", "lower"):
        raise ConfigError("claim.direction", claim.get("direction"), ("higher", "lower"))
    validate_hypothesis(claim.get("hypothesis") or {"kind": "ordered"}, "claim.hypothesis")
    for extra in claim.get("also") or []:
        validate_hypothesis((extra or {}).get("hypothesis") or {}, f"claim.also.{(extra or {}).get('name')}.hypothesis")
    for name, protocol in claim["protocols"].items():
        measure = (protocol or {}).get("measure", "final")
        if measure not in MEASURES:
            raise ConfigError(f"claim.protocols.{name}.measure", measure, MEASURES)
        if measure == "steps_to_target" and (protocol or {}).get("target") is None:
            raise ConfigError(f"claim.protocols.{name}.target", None, "a metric value to reach")


def validate_hypothesis(hypothesis: dict, key: str) -> None:
    """A hypothesis names a kind of :data:`HYPOTHESIS_KINDS` and gives that kind's required keys."""
    kind = hypothesis.get("kind", "ordered")
    if kind not in HYPOTHESIS_KINDS:
        raise ConfigError(f"{key}.kind", kind, tuple(HYPOTHESIS_KINDS))
    for required in HYPOTHESIS_KINDS[kind]["required"]:
        if hypothesis.get(required) in (None, "", []):
            raise ConfigError(f"{key}.{required}", hypothesis.get(required), f"required by kind {kind}")


def scientific_column(claim: dict) -> str:
    """The result column a claim's tables are by."""
    sci = claim["scientific"]
    return sci.get("column") or ("variant" if isinstance(sci.get("values"), dict) else sci["key"])


def scientific_values(claim: dict) -> list:
    """The scientific values (variant labels, for variants) in file order."""
    values = claim["scientific"]["values"]
    return list(values) if isinstance(values, dict) else list(values)


def scored_as(claim: dict, setting: str) -> dict:
    """The claim as one setting is scored: ``setting_metrics.<setting>`` (its own metric,
    select_metric, direction; regression sets by MSE) over the claim's own."""
    return {**claim, **((claim.get("setting_metrics") or {}).get(setting) or {})}


def stages(claim: dict, logger: str = "none") -> list[Sweep]:
    """The claim's stages, in file order: multiruns over the seeds, one folder per seed."""
    out = []
    for name, stage in (claim.get("stages") or {}).items():
        overrides = [*stage["overrides"], f"seed=range({claim['seeds']})", f"logger={logger}", "output.plots=false"]
        out.append(Sweep(STAGES, name, stage.get("label", name), overrides, {}, "final", None, None))
    return out


def _values(values: list) -> str:
    return ",".join(_format(v) for v in values)


def _format(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_format(v) for v in value) + "]"
    return str(value)


def sweeps(claim: dict, logger: str = "none") -> list[Sweep]:
    """Every (setting, protocol) multirun of a resolved claim, in file order."""
    validate_claim(claim)
    sci = claim["scientific"]
    out = []
    for setting, setting_overrides in claim["settings"].items():
        for name, protocol in claim["protocols"].items():
            protocol = protocol or {}
            nuisance = protocol.get("nuisance", claim.get("nuisance") or {})
            variants = isinstance(sci["values"], dict)
            overrides = [
                *claim.get("fixed", []),
                *setting_overrides,
                *protocol.get("overrides", []),
                None if variants else f"{sci['key']}={_values(sci['values'])}",
                *(f"{key}={_values(values)}" for key, values in nuisance.items()),
                f"seed=range({claim['seeds']})",
                # The data set (sample and split) drawn anew per seed: the CI then covers data variance too.
                "data.seed=${seed}" if claim.get("vary_data_seed") else None,
                f"logger={logger}",
                "output.plots=false",
                f"logger.group={claim['name']}-{setting}-{name}" if logger == "wandb" else None,
            ]
            out.append(Sweep(setting, name, protocol.get("label", name), [o for o in overrides if o],
                             {k: list(v) for k, v in nuisance.items()}, protocol.get("measure", "final"),
                             (protocol.get("targets") or {}).get(setting, protocol.get("target")),
                             protocol.get("target_metric", claim.get("select_metric")),
                             tuple((str(k), list(v)) for k, v in sci["values"].items()) if variants else ()))
    return out
