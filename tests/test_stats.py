"""harness.report.stats: bootstrap CIs, paired differences, trend tests and verdict rules."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.report.stats import mean_ci, paired_difference, trend_test, verdict, verdict_rule


def test_mean_ci_contains_mean_and_is_deterministic():
    x = np.random.default_rng(0).normal(0.9, 0.02, 8)
    mean, low, high = mean_ci(x)
    assert mean == pytest.approx(x.mean())
    assert low < mean < high
    assert mean_ci(x, seed=0) == (mean, low, high)
    assert mean_ci(x, seed=1) != (mean, low, high)  # the seed drives the resamples


def test_mean_ci_narrows_with_more_seeds():
    rng = np.random.default_rng(1)
    widths = []
    for n in (4, 16, 64):
        _, low, high = mean_ci(rng.normal(0.0, 1.0, n))
        widths.append(high - low)
    assert widths[0] > widths[1] > widths[2]


def test_mean_ci_edge_cases():
    assert all(math.isnan(v) for v in mean_ci([]))
    mean, low, high = mean_ci([0.5])
    assert mean == 0.5 and math.isnan(low) and math.isnan(high)
    assert mean_ci([0.3, 0.3, 0.3]) == (0.3, 0.3, 0.3)
    mean, low, high = mean_ci([0.0, 1.0])  # n=2: percentile interval within the data
    assert 0.0 <= low <= mean <= high <= 1.0
    # Non-finite values (a diverged run's loss) are not part of the mean.
    assert mean_ci([1.0, 2.0, np.nan, np.inf])[0] == pytest.approx(1.5)


def test_mean_ci_confidence_level_widens_interval():
    x = np.random.default_rng(2).normal(0, 1, 20)
    _, low90, high90 = mean_ci(x, confidence=0.90)
    _, low99, high99 = mean_ci(x, confidence=0.99)
    assert low99 < low90 and high99 > high90


def test_paired_difference_detects_consistent_shift():
    rng = np.random.default_rng(3)
    base = rng.normal(0.8, 0.05, 10)  # large between-seed spread
    a = base + 0.01 + rng.normal(0, 0.001, 10)  # small, consistent improvement
    result = paired_difference(a, base)
    assert result["test"] == "wilcoxon" and result["n"] == 10
    assert result["low"] > 0 and result["mean"] == pytest.approx(np.mean(a - base))
    assert result["p_value"] < 0.01


def test_paired_difference_small_n_uses_t_test_and_drops_nan_pairs():
    a = np.array([1.0, 1.1, 1.2, np.nan])
    b = np.array([0.5, 0.62, 0.69, 0.3])
    result = paired_difference(a, b)
    assert result["test"] == "paired t-test" and result["n"] == 3
    assert result["p_value"] < 0.05 and result["low"] > 0


def test_paired_difference_all_zero_and_tiny():
    x = np.arange(8.0)
    same = paired_difference(x, x)
    assert same["test"] == "paired t-test" and same["p_value"] == 1.0 and same["mean"] == 0.0
    one = paired_difference([1.0], [0.0])
    assert one["n"] == 1 and math.isnan(one["p_value"]) and math.isnan(one["low"])
    with pytest.raises(ValueError, match="equal lengths"):
        paired_difference([1.0, 2.0], [1.0])


def test_trend_test_sign_and_repeated_x():
    rng = np.random.default_rng(4)
    x = np.repeat([16, 32, 64, 128, 256], 4)  # axis values repeat over seeds
    down = trend_test(x, 1.0 - np.log2(x) / 10 + rng.normal(0, 0.01, x.size))
    up = trend_test(x, np.log2(x) / 10 + rng.normal(0, 0.01, x.size))
    assert down["rho"] < -0.8 and down["p_value"] < 1e-4 and down["n"] == 20 and down["test"] == "spearman"
    assert up["rho"] > 0.8
    flat = trend_test(x, np.ones(x.size))
    assert math.isnan(flat["rho"]) and math.isnan(flat["p_value"])
    assert trend_test([1, 2, np.nan, 4], [1, 2, 3, np.nan])["n"] == 2


def _batch_data(slope: float, noise: float, seed: int = 0):
    """Accuracy against batch size: ``slope`` per doubling, 5 seeds per size."""
    rng = np.random.default_rng(seed)
    x = np.repeat([16, 32, 64, 128, 256], 5)
    return x, 0.9 + slope * np.log2(x) + rng.normal(0, noise, x.size)


ORDERED = dict(kind="ordered", metric="test/accuracy", direction="higher", axis="train.batch_size", improves_as="decreasing")


def test_verdict_ordered_supported_refuted_inconclusive():
    x, y = _batch_data(-0.02, 0.005)  # smaller batch clearly better: the claim
    supported = verdict(trend_test(x, y), **ORDERED)
    assert supported["verdict"] == "supported"
    assert "rho = -" in supported["reason"] and "p = " in supported["reason"]
    x, y = _batch_data(+0.02, 0.005)  # clearly the opposite
    assert verdict(trend_test(x, y), **ORDERED)["verdict"] == "refuted"
    x, y = _batch_data(0.0, 0.02, seed=5)  # noise only
    noise = verdict(trend_test(x, y), **ORDERED)
    assert noise["verdict"] == "inconclusive" and "not significant" in noise["reason"]


def test_verdict_ordered_lower_is_better_flips_sign():
    x, y = _batch_data(+0.02, 0.005)  # a loss rising with batch size: smaller batch better
    result = verdict(trend_test(x, y), kind="ordered", metric="test/loss", direction="lower",
                     axis="train.batch_size", improves_as="decreasing")
    assert result["verdict"] == "supported"
    assert "rho is positive" in result["rule"]


def test_verdict_pairwise():
    rng = np.random.default_rng(6)
    base = rng.normal(0.8, 0.03, 8)
    kwargs = dict(kind="pairwise", metric="test/accuracy", direction="higher", a="relu", b="tanh")
    better = verdict(paired_difference(base + 0.02, base + rng.normal(0, 0.002, 8)), **kwargs)
    assert better["verdict"] == "supported" and "relu" in better["reason"]
    worse = verdict(paired_difference(base - 0.02, base), **kwargs)
    assert worse["verdict"] == "refuted"
    noise = verdict(paired_difference(base + rng.normal(0, 0.01, 8), base + rng.normal(0, 0.01, 8)), **kwargs)
    assert noise["verdict"] == "inconclusive" and "contains 0" in noise["reason"]
    # For a loss, a negative difference is the improvement.
    loss = verdict(paired_difference(base - 0.02, base), **{**kwargs, "metric": "test/loss", "direction": "lower"})
    assert loss["verdict"] == "supported"


def test_verdict_pairwise_confidence_must_match_alpha():
    a, b = np.arange(8.0) + 1, np.arange(8.0)
    with pytest.raises(ValueError, match="confidence=0.99"):
        verdict(paired_difference(a, b), kind="pairwise", metric="m", alpha=0.01)
    assert verdict(paired_difference(a, b, confidence=0.99), kind="pairwise", metric="m", alpha=0.01)["verdict"] == "supported"


def test_verdict_insufficient_evidence_is_inconclusive():
    assert verdict(trend_test([1, 2], [1, 2]), **ORDERED)["verdict"] == "inconclusive"
    assert verdict(paired_difference([1.0], [0.0]), kind="pairwise", metric="m")["verdict"] == "inconclusive"


def test_verdict_rule_text_and_bad_choices():
    rule = verdict_rule("ordered", metric="test/accuracy", axis="train.batch_size", improves_as="decreasing", alpha=0.01)
    assert "negative" in rule and "p < 0.01" in rule and "train.batch_size decreases" in rule
    assert "95% bootstrap CI" in verdict_rule("pairwise", metric="m")
    with pytest.raises(ValueError, match="kind="):
        verdict({}, kind="sideways", metric="m")
    with pytest.raises(ValueError, match="direction="):
        verdict({}, kind="ordered", metric="m", direction="up")
