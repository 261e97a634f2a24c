"""Hydra overrides as plain strings: the key an override sets and which overrides describe a run.

Shared by the W&B names, the per-run plot titles, the sweep ending and the claim checks, so
it sits at the bottom of the layers (no JAX, no Hydra).
"""

from __future__ import annotations

from typing import Iterable

# Override keys that say how a run is logged or drawn, not what it trains: never in names or tags.
NOT_DESCRIPTIVE = ("logger", "hydra", "output")


def override_key(override: str) -> str:
    """The config key of a Hydra override (``+a.b=1`` -> ``a.b``)."""
    return override.split("=", 1)[0].lstrip("+~")


def describing_overrides(overrides: Iterable[str]) -> list[str]:
    """The overrides that change what a run trains (not ``logger.*``, ``hydra.*``, ``output.*``)."""
    return [o for o in overrides if override_key(o).split(".", 1)[0].split("/", 1)[0] not in NOT_DESCRIPTIVE]


def varying_keys(job_overrides: Iterable[Iterable[str]]) -> set[str]:
    """Override keys whose value differs between the jobs of a sweep (or that only some set)."""
    values: dict[str, set[str | None]] = {}
    jobs = [dict((override_key(o), o) for o in describing_overrides(overrides)) for overrides in job_overrides]
    for job in jobs:
        for key in job:
            values.setdefault(key, set())
    for job in jobs:
        for key, seen in values.items():
            seen.add(job.get(key))
    return {key for key, seen in values.items() if len(seen) > 1}
