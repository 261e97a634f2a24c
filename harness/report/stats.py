"""Statistics over seeds: confidence intervals, paired differences, trend tests, verdicts.

Pure functions on numpy arrays (scipy underneath), deterministic for a given ``seed``.
Non-finite values (NaN, inf) are never part of a statistic: each function uses the finite
values only and reports how many it used as ``n``, so the caller can show what was left out
(the ablation tables count diverged runs separately for exactly this reason).

A claim's verdict comes from :func:`verdict`, one explicit rule per hypothesis kind:

* ``"ordered"``: the metric improves monotonically along an ordered scientific axis
  (batch size, width, learning rate...). Evidence: Spearman's rank correlation
  (:func:`trend_test`); supported when its sign is the claimed one and ``p < alpha``,
  refuted when it is significant with the opposite sign, inconclusive otherwise.
* ``"pairwise"``: value A beats value B. Evidence: the seed-paired difference A - B and its
  bootstrap confidence interval at level ``1 - alpha`` (:func:`paired_difference`); supported
  when the interval lies wholly on A's better side of 0, refuted when wholly on the other
  side, inconclusive when it contains 0.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Mapping, Sequence

import numpy as np

DIRECTIONS = ("higher", "lower")
KINDS = ("ordered", "pairwise")
AXIS_DIRECTIONS = ("increasing", "decreasing")
VERDICTS = ("supported", "refuted", "inconclusive")
# Below this many pairs the exact Wilcoxon test cannot reach p < 0.05 (its smallest two-sided
# p-value at n=5 is 2/32 = 0.0625), so a paired t-test is used instead.
MIN_WILCOXON_N = 6


def _finite(values: Sequence[float] | np.ndarray) -> np.ndarray:
    """The finite entries of ``values`` as a flat float64 array."""
    array = np.asarray(values, dtype=np.float64).ravel()
    return array[np.isfinite(array)]


def _mean_along(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Vectorised mean for scipy.stats.bootstrap (one call for all resamples)."""
    return np.mean(x, axis=axis)


def mean_ci(
    values: Sequence[float] | np.ndarray,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Mean of the finite ``values`` and a bootstrap confidence interval for it.

    Method: ``scipy.stats.bootstrap`` of the sample mean with ``n_resamples`` resamples drawn
    from ``numpy.random.default_rng(seed)`` (so the interval is reproducible). The BCa
    (bias-corrected and accelerated) interval is used when n >= 3; when BCa is undefined
    or degenerate (scipy warns, or returns a non-finite bound) it falls back to the
    percentile interval, as it does for n = 2. Edge cases: n = 0 gives (nan, nan, nan);
    n = 1 gives (x, nan, nan) (no spread to resample); all-equal values give (x, x, x),
    the only value any resample can take.
    """
    x = _finite(values)
    if x.size == 0:
        return (math.nan, math.nan, math.nan)
    mean = float(np.mean(x))
    if x.size == 1:
        return (mean, math.nan, math.nan)
    if np.all(x == x[0]):
        return (mean, mean, mean)
    methods = ("BCa", "percentile") if x.size >= 3 else ("percentile",)
    for method in methods:
        low, high = _bootstrap_interval(x, method, confidence, n_resamples, seed)
        if math.isfinite(low) and math.isfinite(high):
            # The interval of a mean always lies within the data's range.
            return (mean, max(low, float(x.min())), min(high, float(x.max())))
    return (mean, math.nan, math.nan)


def _bootstrap_interval(x: np.ndarray, method: str, confidence: float, n_resamples: int, seed: int) -> tuple[float, float]:
    """One scipy bootstrap interval; (nan, nan) when scipy warns that it is degenerate."""
    from scipy import stats  # here, not at the top: scipy.stats takes ~1 s to import
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a DegenerateDataWarning means: try the next method
        try:
            result = stats.bootstrap(
                (x,),
                _mean_along,
                n_resamples=n_resamples,
                vectorized=True,
                confidence_level=confidence,
                method=method,
                rng=np.random.default_rng(seed),
            )
        except (Warning, ValueError, FloatingPointError):
            return (math.nan, math.nan)
    interval = result.confidence_interval
    return (float(interval.low), float(interval.high))


def paired_difference(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """The seed-paired difference ``a - b``: mean, bootstrap CI and a two-sided p-value.

    ``a[i]`` and ``b[i]`` must come from the same seed (see
    :func:`harness.report.tables.paired_by_seed`); pairs where either value is non-finite
    are left out and ``n`` counts the pairs used. The CI is :func:`mean_ci` of the
    differences. The p-value is the two-sided Wilcoxon signed-rank test
    (``scipy.stats.wilcoxon``) when n >= 6 and some difference is non-zero; otherwise a
    paired t-test (``scipy.stats.ttest_rel``); identical pairs give p = 1 (no evidence of a
    difference), and fewer than 2 pairs give p = nan. ``test`` names the test used.

    Returns ``dict(mean, low, high, p_value, n, test, confidence)``.
    """
    a_arr = np.asarray(a, dtype=np.float64).ravel()
    b_arr = np.asarray(b, dtype=np.float64).ravel()
    if a_arr.shape != b_arr.shape:
        raise ValueError(f"paired_difference needs equal lengths, got {a_arr.size} and {b_arr.size}")
    keep = np.isfinite(a_arr) & np.isfinite(b_arr)
    diff = a_arr[keep] - b_arr[keep]
    mean, low, high = mean_ci(diff, confidence, n_resamples, seed)
    p_value, test = _paired_p_value(diff, a_arr[keep], b_arr[keep])
    return {
        "mean": mean,
        "low": low,
        "high": high,
        "p_value": p_value,
        "n": int(diff.size),
        "test": test,
        "confidence": float(confidence),
    }


def _paired_p_value(diff: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[float, str]:
    """Two-sided p-value of ``diff`` centred on 0, and the name of the test that gave it."""
    from scipy import stats
    all_zero = bool(np.all(diff == 0))
    if diff.size >= MIN_WILCOXON_N and not all_zero:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ties/zeros make scipy switch method and warn
            result = stats.wilcoxon(diff, alternative="two-sided")
        return (float(result.pvalue), "wilcoxon")
    test = "paired t-test"
    if diff.size < 2:
        return (math.nan, test)
    if all_zero:
        return (1.0, test)
    if np.all(diff == diff[0]):
        # Constant non-zero differences: zero spread, t is infinite; scipy returns nan here.
        return (0.0, test)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = stats.ttest_rel(a, b)
    return (float(result.pvalue), test)


def trend_test(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> dict[str, Any]:
    """Monotone trend of ``y`` along the ordered axis ``x``: Spearman's rank correlation.

    ``x`` may repeat (one entry per run, several seeds per axis value); ties get average
    ranks. Pairs with a non-finite ``x`` or ``y`` are left out. The p-value is two-sided
    (``scipy.stats.spearmanr``). With fewer than 3 pairs, or a constant ``x`` or ``y``,
    there is no trend to measure: rho and p are nan.

    Returns ``dict(rho, p_value, n, test="spearman")``.
    """
    x_arr = np.asarray(x, dtype=np.float64).ravel()
    y_arr = np.asarray(y, dtype=np.float64).ravel()
    if x_arr.shape != y_arr.shape:
        raise ValueError(f"trend_test needs equal lengths, got {x_arr.size} and {y_arr.size}")
    keep = np.isfinite(x_arr) & np.isfinite(y_arr)
    x_arr, y_arr = x_arr[keep], y_arr[keep]
    n = int(x_arr.size)
    if n < 3 or np.all(x_arr == x_arr[0]) or np.all(y_arr == y_arr[0]):
        return {"rho": math.nan, "p_value": math.nan, "n": n, "test": "spearman"}
    from scipy import stats

    result = stats.spearmanr(x_arr, y_arr)
    return {"rho": float(result.statistic), "p_value": float(result.pvalue), "n": n, "test": "spearman"}


def _check_choice(name: str, value: str, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is not allowed: one of {', '.join(allowed)}")


def verdict_rule(
    kind: str,
    *,
    metric: str,
    direction: str = "higher",
    alpha: float = 0.05,
    axis: str = "the axis",
    improves_as: str = "increasing",
    a: Any = "A",
    b: Any = "B",
) -> str:
    """The decision rule :func:`verdict` applies, in words (for a report to print)."""
    _check_choice("kind", kind, KINDS)
    _check_choice("direction", direction, DIRECTIONS)
    _check_choice("improves_as", improves_as, AXIS_DIRECTIONS)
    if kind == "ordered":
        sign = _claimed_sign(direction, improves_as)
        word = "positive" if sign > 0 else "negative"
        return (
            f"Ordered rule: Spearman's rho between {axis} and {metric} ({direction} is better) over all runs; "
            f"supported if rho is {word} (i.e. {metric} improves as {axis} {_verb(improves_as)}) and p < {alpha:g}; "
            f"refuted if rho has the opposite sign and p < {alpha:g}; "
            f"inconclusive otherwise (p >= {alpha:g}, fewer than 3 runs, or a constant axis or metric)."
        )
    side = "> 0" if direction == "higher" else "< 0"
    return (
        f"Pairwise rule: d = {metric}[{a}] - {metric}[{b}], paired by seed, with its {100 * (1 - alpha):g}% bootstrap CI; "
        f"supported if the whole CI is {side} ({a} better, {direction} is better); "
        f"refuted if the whole CI is on the other side of 0 ({b} better); "
        f"inconclusive if the CI contains 0 or cannot be computed (fewer than 2 pairs)."
    )


def _verb(improves_as: str) -> str:
    return "increases" if improves_as == "increasing" else "decreases"


def _claimed_sign(direction: str, improves_as: str) -> int:
    """Sign of rho(axis, metric) the claim predicts: + when the metric rises along the axis."""
    metric_rises = (direction == "higher") == (improves_as == "increasing")
    return 1 if metric_rises else -1


def verdict(
    evidence: Mapping[str, Any],
    *,
    kind: str,
    metric: str,
    direction: str = "higher",
    alpha: float = 0.05,
    axis: str = "the axis",
    improves_as: str = "increasing",
    a: Any = "A",
    b: Any = "B",
) -> dict[str, Any]:
    """Turn evidence into ``supported`` / ``refuted`` / ``inconclusive`` by an explicit rule.

    A claim declares: the ``metric`` and its ``direction`` (``"higher"`` or ``"lower"`` is
    better), the hypothesis ``kind`` and ``alpha``.

    * ``kind="ordered"``: ``evidence`` is a :func:`trend_test` result of (axis values, metric
      values); ``axis`` names the scientific column and ``improves_as`` says whether the
      claim has the metric improving as the axis is ``"increasing"`` or ``"decreasing"``
      (e.g. "smaller batches are better": axis ``train.batch_size``, ``improves_as=
      "decreasing"``). Supported when rho has the claimed sign and p < alpha; refuted when
      it has the opposite sign and p < alpha; inconclusive otherwise.
    * ``kind="pairwise"``: ``evidence`` is a :func:`paired_difference` result of (values at
      ``a``, values at ``b``) computed with ``confidence = 1 - alpha``; supported when the CI
      excludes 0 on ``a``'s better side, refuted when it excludes 0 on the other side,
      inconclusive otherwise.

    Returns ``dict(verdict, reason, rule, kind, metric, direction, alpha, evidence)``, where
    ``reason`` is one sentence with the numbers and ``rule`` the rule in words.
    """
    rule = verdict_rule(kind, metric=metric, direction=direction, alpha=alpha, axis=axis, improves_as=improves_as, a=a, b=b)
    if kind == "ordered":
        outcome, reason = _ordered_verdict(evidence, metric, direction, alpha, axis, improves_as)
    else:
        outcome, reason = _pairwise_verdict(evidence, metric, direction, alpha, a, b)
    return {
        "verdict": outcome,
        "reason": reason,
        "rule": rule,
        "kind": kind,
        "metric": metric,
        "direction": direction,
        "alpha": alpha,
        "evidence": dict(evidence),
    }


def _num(value: Any) -> float:
    """A float, nan for None or anything unparsable (evidence may come from JSON)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _ordered_verdict(evidence, metric, direction, alpha, axis, improves_as) -> tuple[str, str]:
    rho, p, n = _num(evidence.get("rho")), _num(evidence.get("p_value")), evidence.get("n", 0)
    stats_text = f"Spearman rho = {rho:.3g} (p = {p:.3g}, n = {n}) between {axis} and {metric}"
    claim_text = f"{metric} ({direction} is better) improving as {axis} {_verb(improves_as)}"
    if not (math.isfinite(rho) and math.isfinite(p)):
        return "inconclusive", f"inconclusive: no trend could be measured ({stats_text}; needs >= 3 runs and a non-constant axis and metric)."
    sign = _claimed_sign(direction, improves_as)
    if p < alpha and rho * sign > 0:
        return "supported", f"supported: {stats_text} has the claimed sign, {claim_text}, and p < {alpha:g}."
    if p < alpha and rho * sign < 0:
        return "refuted", f"refuted: {stats_text} is significant (p < {alpha:g}) in the opposite direction to {claim_text}."
    return "inconclusive", f"inconclusive: {stats_text} is not significant at alpha = {alpha:g}."


def _pairwise_verdict(evidence, metric, direction, alpha, a, b) -> tuple[str, str]:
    confidence = evidence.get("confidence")
    if confidence is not None and not math.isclose(float(confidence), 1 - alpha, abs_tol=1e-9):
        raise ValueError(
            f"pairwise evidence has a {100 * float(confidence):g}% CI but alpha={alpha:g} needs {100 * (1 - alpha):g}%: "
            f"call paired_difference(..., confidence={1 - alpha:g})"
        )
    mean, low, high = _num(evidence.get("mean")), _num(evidence.get("low")), _num(evidence.get("high"))
    n, p, test = evidence.get("n", 0), _num(evidence.get("p_value")), evidence.get("test", "?")
    stats_text = (
        f"{metric}[{a}] - {metric}[{b}] = {mean:.4g} [{low:.4g}, {high:.4g}] "
        f"({100 * (1 - alpha):g}% CI, n = {n} seed pairs, {test} p = {p:.3g})"
    )
    if not (math.isfinite(low) and math.isfinite(high)):
        return "inconclusive", f"inconclusive: no confidence interval for {stats_text}; needs >= 2 seed pairs."
    sign = 1 if direction == "higher" else -1
    if (low > 0 and sign > 0) or (high < 0 and sign < 0):
        return "supported", f"supported: {stats_text} excludes 0 on the side where {a} is better ({direction} is better)."
    if (high < 0 and sign > 0) or (low > 0 and sign < 0):
        return "refuted", f"refuted: {stats_text} excludes 0 on the side where {b} is better ({direction} is better)."
    return "inconclusive", f"inconclusive: {stats_text} contains 0."
