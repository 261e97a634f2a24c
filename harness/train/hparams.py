"""Split configs into *static* settings (one compiled program each) and *dynamic* numbers.

A compile *group* is the set of jobs whose static settings are equal; inside a group each
job is a *member*, and its dynamic numbers become one row of the hparams arrays that
``jit(vmap(train))`` takes. The split is declared once, in :data:`DYNAMIC`.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
from typing import Any, Iterable, Sequence

import numpy as np
from omegaconf import DictConfig

from harness.config import resolved

# config path -> name in the hparams dict. Everything else in the config is static, except
# the keys in NOT_COMPUTE, which do not touch the computation at all.
DYNAMIC: dict[str, str] = {
    "optim.lr": "lr",
    "optim.momentum": "momentum",
    "optim.b1": "b1",
    "optim.b2": "b2",
    "optim.eps": "eps",
    "optim.decay": "decay",
    "optim.weight_decay": "weight_decay",
    "optim.schedule.warmup_steps": "warmup_steps",
    "optim.schedule.final_fraction": "final_fraction",
    "model.init_scale": "init_scale",
    "seed": "seed",
    "train.order_seed": "order_seed",
    # The regularizer's kind and rate become two rates (l1, l2), so none / l1 / l2 share a
    # program: a penalty with rate 0 is no penalty.
    "regularizer.kind": "",
    "regularizer.rate": "",
}
NOT_COMPUTE = ("logger", "output.plots", "output.save_params", "output.discretize", "search", "hydra",
               "train.checkpoint_every", "optimized_metric")
# Keys a result's config hash leaves out (:func:`config_hash`). Not NOT_COMPUTE, and it cannot
# become it without changing every stored hash (resume would stop finding results): it drops
# all of ``output`` (output.boundary_resolution changes the program, so it is in a group's key,
# but no metric) and keeps ``search`` (the distributions a drawn job came from).
NOT_HASHED = ("logger", "output", "hydra", "optimized_metric", "train.checkpoint_every",
              "train.diverge_above")  # judges the stored curves after training (a record's status)
# Keys added after results were stored, with the value that does what the harness did before
# they existed: at that value a key is left out of the compile group and the config hash, so
# results stored before it keep their hash (resume still finds them).
NEUTRAL_DEFAULTS: dict[str, Any] = {
    "train.order": "reshuffle",
    "train.partial_batch": "drop",
    "regularizer.dead_links": False,
    "model.tokens": "bag",
}
INTEGER_HPARAMS = ("seed", "order_seed")


def hparams_of(cfg: DictConfig) -> dict[str, float | int]:
    """The dynamic numbers of one job, by hparam name (the train function's ``hparams``)."""
    plain = resolved(cfg)  # read from plain data: one conversion (cached for a sweep's jobs), not ~15 selects
    hp: dict[str, float | int] = {}
    for path, name in DYNAMIC.items():
        if name:
            hp[name] = select_path(plain, path)
    if hp["order_seed"] is None:
        hp["order_seed"] = hp["seed"]
    kind, rate = str(plain["regularizer"]["kind"]), float(plain["regularizer"]["rate"])
    hp["l1"] = rate if kind == "l1" else 0.0
    hp["l2"] = rate if kind == "l2" else 0.0
    return hp


def _drop(container: dict, path: str) -> None:
    *parents, leaf = path.split(".")
    node = container
    for p in parents:
        node = node.get(p, {})
        if not isinstance(node, dict):
            return
    node.pop(leaf, None)


def select_path(container: dict, path: str) -> Any:
    """The value at a dotted ``path`` of a plain config (None where it is absent)."""
    node: Any = container
    for p in path.split("."):
        if not isinstance(node, dict) or p not in node:
            return None
        node = node[p]
    return node


def drop_neutral(container: dict) -> dict:
    """``container`` (a resolved config) without the keys at their value in NEUTRAL_DEFAULTS."""
    for path, neutral in NEUTRAL_DEFAULTS.items():
        if select_path(container, path) == neutral:
            _drop(container, path)
    return container


def static_part(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config minus dynamic and non-compute keys: equal dicts, equal program."""
    container = drop_neutral(resolved(cfg))
    for path in list(DYNAMIC) + list(NOT_COMPUTE):
        _drop(container, path)
    return container


def digest(obj: Any) -> str:
    """A short stable hash of a JSON-able object."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def config_hash(cfg: DictConfig) -> str:
    """Hash of the resolved config minus what does not change results (:data:`NOT_HASHED`)
    and minus keys at their neutral default (:data:`NEUTRAL_DEFAULTS`).

    A stored result whose hash equals a job's hash is that job's result (resume skips it).
    """
    return container_hash(resolved(cfg))


def container_hash(container: dict[str, Any]) -> str:
    """:func:`config_hash` of a resolved config as plain data (a stored record's ``config``):
    resume recomputes a record's hash from its config instead of trusting its ``config_hash``."""
    container = drop_neutral(copy.deepcopy(container))
    for path in NOT_HASHED:
        _drop(container, path)
    return digest(container)


def group_key(cfg: DictConfig) -> str:
    """Identifier of the compile group a config belongs to."""
    return digest(static_part(cfg))


@dataclasses.dataclass
class Group:
    """Jobs that share one compiled program."""

    key: str
    members: list[int]  # indices into the list of configs given to plan_groups

    def __len__(self) -> int:
        return len(self.members)


def plan_groups(cfgs: Sequence[DictConfig]) -> list[Group]:
    """Group configs by static settings, keeping first-seen order of groups and members."""
    groups: dict[str, Group] = {}
    for i, cfg in enumerate(cfgs):
        key = group_key(cfg)
        groups.setdefault(key, Group(key, [])).members.append(i)
    return list(groups.values())


def stack_hparams(cfgs: Iterable[DictConfig]) -> dict[str, np.ndarray]:
    """Member-major arrays of every hparam: float32, or int32 for seeds."""
    rows = [hparams_of(c) for c in cfgs]
    return {
        name: np.asarray([r[name] for r in rows], np.int32 if name in INTEGER_HPARAMS else np.float32)
        for name in rows[0]
    }
