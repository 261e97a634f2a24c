"""harness.report.stats: t-intervals, paired tests, trend tests, Holm, TOST and verdict rules.

The simulation tests run the harness's own (vectorised) interval and decision rule on
thousands of simulated seed-paired experiments with fixed seeds: they pin the interval's
coverage and the rate at which a non-existent effect is called "supported".
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.report.stats import (adjacent_text, decide, holm, mean_ci, paired_difference, t_statistics, tost,
                                  trend_test, verdict, verdict_rule)

REPLICATES = 20000  # Monte Carlo error of a 95% coverage: sqrt(.95 * .05 / 20000) = 0.15%


def _run_noise(kind: str, rng: np.random.Generator, shape: tuple) -> np.ndarray:
    """Per-run noise with mean 0: normal, or right-skewed (exponential, skewness 2)."""
    if kind == "normal":
        return rng.normal(0.0, 0.02, shape)
    return 0.02 * (rng.exponential(1.0, shape) - 1.0)


def _paired_experiments(kind: str, n: int, effect: float, seed: int) -> np.ndarray:
    """REPLICATES experiments of n seeds: the per-seed differences a - b.

    Each seed has its own base accuracy (shared by both arms, as a seed shares its data order
    and init scale); each run adds its own noise; arm a is shifted by ``effect``.
    """
    rng = np.random.default_rng(seed)
    base = rng.normal(0.8, 0.05, (REPLICATES, n))
    a = base + effect + _run_noise(kind, rng, (REPLICATES, n))
    b = base + _run_noise(kind, rng, (REPLICATES, n))
    return a - b


@pytest.mark.parametrize("kind", ["normal", "skewed"])
@pytest.mark.parametrize("n", [5, 10])
def test_paired_interval_covers_the_true_difference(kind, n):
    effect = 0.01
    result = t_statistics(_paired_experiments(kind, n, effect, seed=n), 0.95)
    coverage = np.mean((result["low"] <= effect) & (effect <= result["high"]))
    assert coverage >= 0.93


@pytest.mark.parametrize("kind", ["normal", "skewed"])
@pytest.mark.parametrize("n", [5, 10])
def test_no_effect_is_rarely_called_supported(kind, n):
    result = t_statistics(_paired_experiments(kind, n, 0.0, seed=100 + n), 0.95)
    outcomes = decide(result["low"], result["high"], result["p"], 0.05, +1)
    assert np.mean(outcomes == "supported") <= 0.03
    assert np.mean(outcomes == "refuted") <= 0.03


@pytest.mark.parametrize("n", [5, 10])
def test_mean_interval_covers_on_normal_data(n):
    rng = np.random.default_rng(7 + n)
    result = t_statistics(rng.normal(0.9, 0.02, (REPLICATES, n)), 0.95)
    assert np.mean((result["low"] <= 0.9) & (0.9 <= result["high"])) >= 0.93


def test_interval_and_test_always_agree():
    rng = np.random.default_rng(11)
    d = rng.normal(0.01, 0.02, (5000, 5))
    result = t_statistics(d, 0.95)
    excludes = (result["low"] > 0) | (result["high"] < 0)
    assert np.array_equal(excludes, result["p"] < 0.05)


def test_paired_difference_is_the_vectorised_statistic():
    rng = np.random.default_rng(3)
    a, b = rng.normal(0.8, 0.05, 6), rng.normal(0.8, 0.05, 6)
    scalar = paired_difference(a, b)
    vector = t_statistics((a - b)[None, :], 0.95)
    assert scalar["low"] == pytest.approx(vector["low"][0]) and scalar["p_value"] == pytest.approx(vector["p"][0])
    from scipy import stats
    assert scalar["p_value"] == pytest.approx(stats.ttest_rel(a, b).pvalue)
    assert scalar["test"] == "paired t-test" and "t-interval" in scalar["method"]


def test_five_same_signed_small_differences_need_the_t_test():
    # Five positive differences with a large spread: the interval contains 0, not supported.
    a = np.array([0.81, 0.80, 0.85, 0.90, 0.79])
    b = a - np.array([0.001, 0.002, 0.03, 0.06, 0.0005])
    result = verdict(paired_difference(a, b), kind="pairwise", metric="m")
    assert result["verdict"] == "inconclusive" and result["p"] >= 0.05


def test_two_pairs_are_not_supported_unless_the_test_says_so():
    result = verdict(paired_difference([0.9, 0.8], [0.85, 0.7]), kind="pairwise", metric="m")
    assert result["verdict"] == "inconclusive"


def test_mean_ci_edge_cases():
    assert all(math.isnan(v) for v in mean_ci([]))
    mean, low, high = mean_ci([0.5])
    assert mean == 0.5 and math.isnan(low) and math.isnan(high)
    assert mean_ci([0.3, 0.3, 0.3]) == pytest.approx((0.3, 0.3, 0.3))
    assert mean_ci([1.0, 2.0, np.nan, np.inf])[0] == pytest.approx(1.5)
    _, low90, high90 = mean_ci([1.0, 2.0, 4.0], confidence=0.90)
    _, low99, high99 = mean_ci([1.0, 2.0, 4.0], confidence=0.99)
    assert low99 < low90 and high99 > high90


def test_paired_difference_edge_cases():
    x = np.arange(8.0)
    same = paired_difference(x, x)
    assert same["p_value"] == 1.0 and same["mean"] == 0.0
    shifted = paired_difference(x + 1, x)  # a constant shift: zero spread, p = 0
    assert shifted["p_value"] == 0.0 and shifted["low"] == shifted["high"] == 1.0
    one = paired_difference([1.0], [0.0])
    assert one["n"] == 1 and math.isnan(one["p_value"]) and math.isnan(one["low"])
    dropped = paired_difference([1.0, 1.1, 1.2, np.nan], [0.5, 0.62, 0.69, 0.3])
    assert dropped["n"] == 3
    with pytest.raises(ValueError, match="equal lengths"):
        paired_difference([1.0, 2.0], [1.0])


def test_holm_adjusts_step_down():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    adjusted = holm([0.2, float("nan"), 0.01])
    assert adjusted[0] == pytest.approx(0.2) and math.isnan(adjusted[1]) and adjusted[2] == pytest.approx(0.02)
    assert holm([]) == []


def _batch_blocks(means: list[float], noise: float, seeds: int = 10, seed: int = 0):
    """Accuracy per (seed, batch size): a per-seed base plus ``means`` per size plus noise."""
    rng = np.random.default_rng(seed)
    sizes = [2, 8, 32, 128, 512]
    base = rng.normal(0.0, 0.02, seeds)
    x, y, s = [], [], []
    for k in range(seeds):
        for size, m in zip(sizes, means):
            x.append(size), y.append(base[k] + m + rng.normal(0, noise)), s.append(k)
    return x, y, s


ORDERED = dict(kind="ordered", metric="test/accuracy", direction="higher", axis="train.batch_size", improves_as="decreasing")


def test_trend_supported_refuted_inconclusive():
    x, y, s = _batch_blocks([0.9, 0.88, 0.86, 0.84, 0.82], 0.003)
    supported = verdict(trend_test(x, y, s), **ORDERED)
    assert supported["verdict"] == "supported" and "Page" in supported["reason"]
    x, y, s = _batch_blocks([0.82, 0.84, 0.86, 0.88, 0.9], 0.003)
    assert verdict(trend_test(x, y, s), **ORDERED)["verdict"] == "refuted"
    x, y, s = _batch_blocks([0.9] * 5, 0.01, seed=5)
    assert verdict(trend_test(x, y, s), **ORDERED)["verdict"] == "inconclusive"


def test_trend_reports_ties_and_which_values_differ():
    # Batch 2, 8, 32 tie; only the large end drops (the MNIST-1D pattern of the issue).
    x, y, s = _batch_blocks([0.6, 0.6, 0.6, 0.55, 0.45], 0.002)
    result = trend_test(x, y, s)
    assert adjacent_text(result["adjacent"]) == "2 ~ 8 ~ 32 > 128 > 512"
    assert "2 ~ 8 ~ 32 > 128 > 512" in verdict(result, **ORDERED)["reason"]


def test_trend_is_blocked_by_seed():
    # A large per-seed offset hides a consistent within-seed trend from a pooled correlation.
    rng = np.random.default_rng(2)
    x, y, s = [], [], []
    for k in range(6):
        offset = rng.normal(0, 0.5)
        for i, size in enumerate([2, 8, 32]):
            x.append(size), y.append(offset - 0.01 * i), s.append(k)
    result = trend_test(x, y, s)
    assert result["n"] == 6 and result["p_decreasing"] < 0.01


def test_trend_ranks_censored_runs_as_worst():
    # Steps to target, lower is better; inf = never reached. Larger batches miss the target.
    inf = float("inf")
    x = [2, 8, 32] * 6
    y = [100, 200, inf] * 6
    result = trend_test(x, y, [k for k in range(6) for _ in range(3)], direction="lower")
    assert result["p_decreasing"] < 0.01 and result["adjacent"][1]["test"] == "sign test"
    assert math.isnan(trend_test([1, 2], [1, 2])["p_value"])


def test_tost_equivalence():
    rng = np.random.default_rng(4)
    base = rng.normal(0.8, 0.05, 10)
    close = tost(base + rng.normal(0, 0.002, 10), base, margin=0.02)
    assert verdict(close, kind="equivalence", metric="m", a="linear", b="logreg")["verdict"] == "supported"
    far = tost(base + 0.1 + rng.normal(0, 0.002, 10), base, margin=0.02)
    assert verdict(far, kind="equivalence", metric="m")["verdict"] == "refuted"
    noisy = tost(base + rng.normal(0, 0.05, 10), base, margin=0.02)
    assert verdict(noisy, kind="equivalence", metric="m")["verdict"] == "inconclusive"


def test_an_equivalence_verdict_carries_the_p_of_its_own_finding():
    """Holm adjusts the p of what a verdict found: TOST's p for "equivalent", the p of a
    difference beyond the margin for "refuted" (TOST's p is near 1 there, and would turn
    every refutation inconclusive after any adjustment)."""
    rng = np.random.default_rng(4)
    base = rng.normal(0.8, 0.05, 10)
    far = verdict(tost(base + 0.1 + rng.normal(0, 0.01, 10), base, margin=0.02), kind="equivalence", metric="m")
    assert far["verdict"] == "refuted" and far["evidence"]["p_value"] > 0.99
    assert far["p"] == far["evidence"]["p_outside"] < 1e-6
    below = verdict(tost(base - 0.1 + rng.normal(0, 0.01, 10), base, margin=0.02), kind="equivalence", metric="m")
    assert below["verdict"] == "refuted" and below["p"] < 1e-6
    close = verdict(tost(base + rng.normal(0, 0.002, 10), base, margin=0.02), kind="equivalence", metric="m")
    assert close["verdict"] == "supported" and close["p"] == close["evidence"]["p_value"] < 0.05
    same = tost(base, base, margin=0.02)  # every pair equal: no spread
    assert (same["p_value"], same["p_outside"]) == (0.0, 1.0)


@pytest.mark.parametrize("n", [5, 10])
def test_equivalence_at_the_margin_is_rarely_called_either_way(n):
    """A true difference of exactly the margin is neither equivalent nor beyond it: TOST calls
    it "supported" at most alpha of the time, and the beyond-the-margin rule "refuted" at most
    alpha / 2 (one side of a 95% interval); pinned at 6% and 3% over 20,000 experiments."""
    margin = 0.02
    diffs = _paired_experiments("normal", n, margin, seed=11)
    base = np.zeros(n)
    outcomes = [verdict(tost(d, base, margin), kind="equivalence", metric="m")["verdict"] for d in diffs]
    assert outcomes.count("supported") / len(outcomes) <= 0.06
    assert outcomes.count("refuted") / len(outcomes) <= 0.03


def test_verdict_pairwise_sides_and_confidence():
    rng = np.random.default_rng(6)
    base = rng.normal(0.8, 0.03, 8)
    kwargs = dict(kind="pairwise", metric="test/accuracy", direction="higher", a="relu", b="tanh")
    better = verdict(paired_difference(base + 0.02, base + rng.normal(0, 0.002, 8)), **kwargs)
    assert better["verdict"] == "supported" and better["ci"][0] > 0 and better["n"] == 8
    assert verdict(paired_difference(base - 0.02 + rng.normal(0, 0.002, 8), base), **kwargs)["verdict"] == "refuted"
    loss = verdict(paired_difference(base - 0.02 + rng.normal(0, 0.002, 8), base),
                   **{**kwargs, "metric": "test/loss", "direction": "lower"})
    assert loss["verdict"] == "supported"
    with pytest.raises(ValueError, match="confidence=0.99"):
        verdict(paired_difference(base, base), kind="pairwise", metric="m", alpha=0.01)


def test_verdict_rule_text_and_bad_choices():
    rule = verdict_rule("ordered", metric="test/accuracy", axis="train.batch_size", improves_as="decreasing", alpha=0.01)
    assert "Page" in rule and "p < 0.01" in rule and "train.batch_size decreases" in rule
    assert "t-interval" in verdict_rule("pairwise", metric="m")
    with pytest.raises(ValueError, match="kind="):
        verdict({}, kind="sideways", metric="m")
    with pytest.raises(ValueError, match="direction="):
        verdict({}, kind="ordered", metric="m", direction="up")


def test_critical_batch_fit_recovers_the_bend():
    from harness.report.stats import critical_batch_fit

    rng = np.random.default_rng(9)
    sizes = [2, 8, 32, 128, 512]
    batch, steps, seeds = [], [], []
    for seed in range(10):
        for b in sizes:
            batch.append(b), seeds.append(seed)
            steps.append(100 * (1 + 40 / b) * np.exp(rng.normal(0, 0.05)))
    steps[0] = float("inf")  # a run that never reached the target is left out of its seed's fit
    fit = critical_batch_fit(batch, steps, seeds)
    assert fit["n"] == 10 and fit["ci"][0] < 40 < fit["ci"][1] and fit["b_crit"] == pytest.approx(40, rel=0.15)
    assert fit["s_min"] == pytest.approx(100, rel=0.15)
    flat = critical_batch_fit([2, 8], [100, 100], [0, 0])  # no bend: excluded, not a number
    assert flat["n"] == 0 and flat["excluded"] == 1 and math.isnan(flat["b_crit"])


@pytest.mark.parametrize("n_seeds", [5, 10])
def test_critical_batch_interval_covers_by_simulation(n_seeds):
    """The B_crit interval (per-seed fit, t-interval of log B_crit) covers the true critical
    batch size at least 93% of the time, on steps with 10% multiplicative run noise."""
    from harness.report.stats import critical_batch_fit

    rng = np.random.default_rng(20261202 + n_seeds)
    sizes, true_b, replicates = np.array([2, 8, 32, 128, 512]), 40.0, 1000
    covered = 0
    for _ in range(replicates):
        steps = 100 * (1 + true_b / sizes) * np.exp(rng.normal(0, 0.1, (n_seeds, sizes.size)))
        fit = critical_batch_fit(np.tile(sizes, n_seeds), steps.ravel(), np.repeat(np.arange(n_seeds), sizes.size))
        covered += fit["ci"][0] <= true_b <= fit["ci"][1]
    assert covered / replicates >= 0.93
