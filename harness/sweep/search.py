"""Quasi-random search: draw a sweep's dynamic numbers from a scrambled Sobol / Halton sequence.

    harness-train -m +search.optim.lr='loguniform(1e-4,1)' search.n=32

Each ``search.<config path>`` entry is a distribution; ``search.n`` points are drawn with
``scipy.stats.qmc`` (low-discrepancy, so 32 points cover a range better than 32 random ones)
and every point becomes a job with ordinary overrides (``optim.lr=0.00342...``), so it is
stored, resumed and reported like any other job. Dynamic settings make this nearly free:
all points of one structure run as members of one compiled group.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

from harness.errors import ConfigError

RESERVED = ("n", "method", "seed")
DISTRIBUTIONS = ("uniform", "loguniform", "intuniform")
_SPEC = re.compile(r"^\s*(\w+)\s*\(\s*([^,]+?)\s*,\s*([^,]+?)\s*\)\s*$")


def parse_distribution(key: str, spec: Any) -> tuple[str, float, float]:
    """``"loguniform(1e-4,1)"`` -> ``("loguniform", 1e-4, 1.0)``, or a ConfigError."""
    match = _SPEC.match(str(spec))
    allowed = "uniform(low,high), loguniform(low,high) with 0 < low, or intuniform(low,high), low < high"
    if not match or match.group(1) not in DISTRIBUTIONS:
        raise ConfigError(key, spec, allowed)
    kind = match.group(1)
    try:
        low, high = float(match.group(2)), float(match.group(3))
    except ValueError:
        raise ConfigError(key, spec, allowed) from None
    if not (math.isfinite(low) and math.isfinite(high) and low < high) or (kind == "loguniform" and low <= 0):
        raise ConfigError(key, spec, allowed)
    return kind, low, high


def _leaves(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for k, v in node.items():
            out.update(_leaves(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: node}


def search_space(search: dict | None) -> dict[str, tuple[str, float, float]]:
    """The distributions of a ``search`` config node, by config path."""
    if not search:
        return {}
    dims = {k: v for k, v in search.items() if k not in RESERVED}
    return {path: parse_distribution(f"search.{path}", spec) for path, spec in _leaves(dims).items()}


def draw(search: dict | None) -> list[dict[str, float | int]]:
    """The points of a search: ``search.n`` dicts of config path -> value (empty if no search)."""
    space = search_space(search)
    n = int((search or {}).get("n", 0) or 0)
    if not space:
        if n:
            raise ConfigError("search.n", n, "0 unless search.<key>=<distribution> entries are given")
        return []
    if n < 1:
        raise ConfigError("search.n", n, "an integer >= 1 when a search space is given")
    method = str((search or {}).get("method", "sobol"))
    seed = int((search or {}).get("seed", 0))
    from scipy.stats import qmc

    if method == "sobol":
        sampler = qmc.Sobol(d=len(space), scramble=True, seed=seed)
    elif method == "halton":
        sampler = qmc.Halton(d=len(space), scramble=True, seed=seed)
    else:
        raise ConfigError("search.method", method, ("sobol", "halton"))
    unit = sampler.random(n)  # Sobol warns when n is not a power of two; the points stay valid
    points = []
    for row in unit:
        point: dict[str, float | int] = {}
        for u, (path, (kind, low, high)) in zip(row, space.items()):
            if kind == "uniform":
                point[path] = float(low + u * (high - low))
            elif kind == "loguniform":
                point[path] = float(np.exp(np.log(low) + u * (np.log(high) - np.log(low))))
            else:
                point[path] = int(min(math.floor(low + u * (high - low + 1)), high))
        points.append(point)
    return points


def as_overrides(point: dict[str, float | int]) -> list[str]:
    """A drawn point as Hydra overrides, with full float precision."""
    return [f"{path}={value!r}" for path, value in point.items()]


def register_hydra_functions() -> None:
    """Let overrides say ``+search.optim.lr=loguniform(1e-4,1)`` without quotes.

    Hydra's override grammar knows a fixed set of functions (choice, range, interval, ...);
    unknown ones fail to parse. We add ``uniform``, ``loguniform`` and ``intuniform``, each
    returning its own spec as a string, which :func:`parse_distribution` reads later. The
    quoted form ``'+search.optim.lr="loguniform(1e-4,1)"'`` works without this.
    """
    from typing import Union

    from hydra.core.override_parser import overrides_parser

    if getattr(overrides_parser.create_functions, "_harness", False):
        return
    original = overrides_parser.create_functions

    def make(kind: str):
        def spec(low, high):
            return f"{kind}({low!r},{high!r})"

        # Real types, not strings (this module uses postponed annotations): Hydra checks them.
        spec.__annotations__ = {"low": Union[int, float], "high": Union[int, float], "return": str}
        return spec

    def create_functions():
        functions = original()
        for kind in DISTRIBUTIONS:
            functions.register(name=kind, func=make(kind))
        return functions

    create_functions._harness = True  # type: ignore[attr-defined]
    overrides_parser.create_functions = create_functions
