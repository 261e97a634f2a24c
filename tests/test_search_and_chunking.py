"""Quasi-random search draws in-range, reproducible points; chunking splits members evenly.

In-process unit tests of harness.sweep.search and harness.sweep.chunking (no Hydra run).
"""

from __future__ import annotations

import math

import pytest

from harness.errors import ConfigError
from harness.sweep.chunking import chunk_sizes
from harness.sweep.search import as_overrides, draw, parse_distribution, search_space


@pytest.mark.parametrize("spec, parsed", [
    ("uniform(0,1)", ("uniform", 0.0, 1.0)),
    (" loguniform( 1e-4 , 1 ) ", ("loguniform", 1e-4, 1.0)),
    ("intuniform(1,8)", ("intuniform", 1.0, 8.0)),
])
def test_distributions_parse(spec, parsed):
    assert parse_distribution("search.x", spec) == parsed


@pytest.mark.parametrize("spec", ["normal(0,1)", "uniform(1,0)", "uniform(0,0)", "loguniform(0,1)",
                                  "uniform(a,1)", "uniform(0,inf)", "uniform(0)"])
def test_bad_distribution_names_its_key(spec):
    with pytest.raises(ConfigError) as err:
        parse_distribution("search.optim.lr", spec)
    assert "search.optim.lr" in str(err.value)


def test_search_space_reads_nested_paths_and_skips_reserved_keys():
    space = search_space({"n": 4, "seed": 1, "method": "sobol", "optim": {"lr": "loguniform(1e-3,1)"},
                          "model": {"init_scale": "uniform(0.5,2)"}})
    assert space == {"optim.lr": ("loguniform", 1e-3, 1.0), "model.init_scale": ("uniform", 0.5, 2.0)}


@pytest.mark.parametrize("method", ["sobol", "halton"])
def test_points_are_in_range_and_reproducible_by_seed(method):
    search = {"n": 16, "method": method, "seed": 3,
              "optim": {"lr": "loguniform(1e-4,1)"}, "train": {"batch_size": "intuniform(1,8)"},
              "model": {"init_scale": "uniform(0.5,2)"}}
    points = draw(search)
    assert len(points) == 16 and points == draw(search)
    assert points != draw({**search, "seed": 4})
    for p in points:
        assert 1e-4 <= p["optim.lr"] <= 1 and 0.5 <= p["model.init_scale"] <= 2
        assert isinstance(p["train.batch_size"], int) and 1 <= p["train.batch_size"] <= 8
    # log-uniform: about half the points below the geometric middle (1e-2), not 1% of them
    below = sum(p["optim.lr"] < 1e-2 for p in points)
    assert 4 <= below <= 12
    assert {p["train.batch_size"] for p in points} >= {1, 8}  # both ends can be drawn


def test_points_become_overrides_with_every_digit():
    point = {"optim.lr": 1 / 3, "train.batch_size": 4}
    assert as_overrides(point) == [f"optim.lr={1 / 3!r}", "train.batch_size=4"]
    assert float(as_overrides(point)[0].split("=")[1]) == 1 / 3


@pytest.mark.parametrize("search, key", [
    ({"n": 4}, "search.n"),
    ({"n": 0, "optim": {"lr": "uniform(0,1)"}}, "search.n"),
    ({"n": 4, "method": "grid", "optim": {"lr": "uniform(0,1)"}}, "search.method"),
])
def test_bad_search_settings_name_their_key(search, key):
    with pytest.raises(ConfigError) as err:
        draw(search)
    assert key in str(err.value)


def test_no_search_draws_no_points():
    assert draw(None) == [] and draw({"n": 0}) == []


@pytest.mark.parametrize("n, limit", [(1, 1), (10, 3), (10, 10), (10, 100), (7, 2), (1000, 64)])
def test_chunks_cover_all_members_evenly_within_the_limit(n, limit):
    sizes = chunk_sizes(n, limit)
    assert sum(sizes) == n and max(sizes) <= limit
    assert max(sizes) - min(sizes) <= 1  # near-equal: the last chunk is not a small leftover
    assert len(sizes) == math.ceil(n / limit)


def test_a_limit_below_one_still_makes_chunks_of_one():
    assert chunk_sizes(3, 0) == [1, 1, 1]
