"""Statistics over seeds: confidence intervals, paired tests, trend tests, verdicts.

Pure functions on numpy arrays (scipy underneath), deterministic. Non-finite values (NaN,
a diverged run) are never part of a statistic: each function uses the finite values only
and reports how many it used as ``n``, so the caller can show what was left out.

One method, so that the interval and the test say the same thing: the **t-interval** of a
mean and the **paired t-test** on the same seed-paired differences come from one t
statistic, so a ``1 - alpha`` interval excludes 0 exactly when the two-sided p < alpha.
The old BCa bootstrap under-covered at the seed counts used (simulated: 83% at n = 5 on
normal data); ``tests/test_stats.py`` simulates the t-interval's coverage and false-
"supported" rate on normal and skewed run noise at n = 5 and 10 (see ``docs/claims.md``
for what those simulations do and do not cover).

A claim's verdict comes from :func:`verdict`, one explicit rule per hypothesis kind, and a
verdict needs the interval *and* the test to agree (:func:`decide`):

* ``"ordered"``: the metric improves monotonically along an ordered axis (batch size...).
  Evidence: Page's trend test blocked by seed (:func:`trend_test`), with the adjacent
  values compared pairwise (Holm-adjusted) to say *which* values differ and which tie.
* ``"pairwise"``: value A beats value B: the seed-paired difference, t-interval and t-test.
* ``"interaction"``: A's advantage over B is larger in one setting than in a control
  setting: the paired difference of the two per-seed differences.
* ``"equivalence"``: A and B differ by less than a declared margin: TOST (two one-sided
  t-tests), its ``1 - 2 alpha`` interval inside ``(-margin, margin)``.

:func:`holm` adjusts the p-values of a claim's verdicts for multiple comparisons.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np

DIRECTIONS = ("higher", "lower")
KINDS = ("ordered", "pairwise", "interaction", "equivalence")
AXIS_DIRECTIONS = ("increasing", "decreasing")
VERDICTS = ("supported", "refuted", "inconclusive")
PAIRED_TEST = "paired t-test"
INTERVAL = "t-interval"


def _finite(values: Sequence[float] | np.ndarray) -> np.ndarray:
    """The finite entries of ``values`` as a flat float64 array."""
    array = np.asarray(values, dtype=np.float64).ravel()
    return array[np.isfinite(array)]


def t_statistics(x: np.ndarray, confidence: float = 0.95) -> dict[str, np.ndarray]:
    """Mean, t-interval and two-sided one-sample t-test p (against 0) along the last axis.

    Vectorised: ``x`` has shape ``(..., n)`` with finite entries (the simulations in the
    tests call this on thousands of samples at once; the harness on one). The interval
    ``mean +- t_{n-1, (1+confidence)/2} * s / sqrt(n)`` and the p-value come from the same
    t statistic, so the interval excludes 0 exactly when ``p < 1 - confidence``. Zero spread:
    the interval is the point itself and p is 0 (a constant non-zero shift) or 1 (all zero).
    n < 2: interval and p are NaN.
    """
    # Student's t quantile and tail from scipy.special, not scipy.stats: the same functions
    # (scipy.stats.t calls them), imported in ~0.2 s instead of ~1 s (every sweep's closing
    # table comes through here).
    from scipy.special import stdtr, stdtrit

    x = np.asarray(x, dtype=np.float64)
    n = x.shape[-1]
    mean = x.mean(axis=-1)
    if n < 2:
        nan = np.full(mean.shape, np.nan)
        return {"mean": mean, "low": nan, "high": nan, "p": nan.copy(), "n": n}
    se = x.std(axis=-1, ddof=1) / math.sqrt(n)
    half = stdtrit(n - 1, 0.5 + confidence / 2) * se
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.abs(mean) / se
    p = np.where(se > 0, 2 * stdtr(n - 1, -t), np.where(mean == 0, 1.0, 0.0))
    return {"mean": mean, "low": mean - half, "high": mean + half, "p": p, "n": n}


def mean_ci(values: Sequence[float] | np.ndarray, confidence: float = 0.95, n_resamples: int = 0,
            seed: int = 0) -> tuple[float, float, float]:
    """Mean of the finite ``values`` and its t-interval at ``confidence``.

    ``n_resamples`` and ``seed`` are accepted for callers written for the former bootstrap
    interval and ignored (the t-interval is exact arithmetic, nothing is resampled).
    n = 0 gives (nan, nan, nan); n = 1 gives (x, nan, nan); all-equal values give (x, x, x).
    """
    x = _finite(values)
    if x.size == 0:
        return (math.nan, math.nan, math.nan)
    result = t_statistics(x, confidence)
    return (float(result["mean"]), float(result["low"]), float(result["high"]))


def paired_difference(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    confidence: float = 0.95,
    n_resamples: int = 0,
    seed: int = 0,
) -> dict[str, Any]:
    """The seed-paired difference ``a - b``: mean, t-interval and the paired t-test's p.

    ``a[i]`` and ``b[i]`` must come from the same seed (see
    :func:`harness.report.tables.paired_by_seed`); pairs where either value is non-finite
    are left out and ``n`` counts the pairs used. The interval and p come from one t
    statistic (:func:`t_statistics`), so they agree. ``n_resamples``/``seed`` are ignored.

    Returns ``dict(mean, low, high, p_value, n, test, method, confidence)``.
    """
    a_arr = np.asarray(a, dtype=np.float64).ravel()
    b_arr = np.asarray(b, dtype=np.float64).ravel()
    if a_arr.shape != b_arr.shape:
        raise ValueError(f"paired_difference needs equal lengths, got {a_arr.size} and {b_arr.size}")
    keep = np.isfinite(a_arr) & np.isfinite(b_arr)
    diff = a_arr[keep] - b_arr[keep]
    result = t_statistics(diff, confidence) if diff.size else {"mean": math.nan, "low": math.nan,
                                                                 "high": math.nan, "p": math.nan}
    return {
        "mean": float(result["mean"]),
        "low": float(result["low"]),
        "high": float(result["high"]),
        "p_value": float(result["p"]),
        "n": int(diff.size),
        "test": PAIRED_TEST,
        "method": f"{INTERVAL} and {PAIRED_TEST}",
        "confidence": float(confidence),
    }


def decide(low, high, p, alpha: float, sign: int):
    """The verdict when the interval and the test must agree (vectorised over arrays).

    ``sign`` is +1 when a positive value is the claimed effect, -1 when a negative one is.
    ``supported``: the interval lies wholly on the claimed side of 0 *and* p < alpha;
    ``refuted``: wholly on the other side and p < alpha; ``inconclusive`` otherwise
    (including a NaN interval or p). Returns a str for scalars, an array of str otherwise.
    """
    low, high, p = (np.asarray(v, dtype=np.float64) for v in (low, high, p))
    significant = p < alpha
    above, below = (low > 0) & significant, (high < 0) & significant
    claimed, opposite = (above, below) if sign > 0 else (below, above)
    out = np.where(claimed, "supported", np.where(opposite, "refuted", "inconclusive"))
    return str(out) if out.ndim == 0 else out


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (family-wise error control); NaN stays NaN and
    is not counted in the family.

    Sorted ascending, ``p_(i)`` becomes ``max_{j <= i} min(1, (m - j) p_(j))`` (0-based j),
    so a verdict is significant after adjustment when its adjusted p < alpha.
    """
    p = np.asarray(p_values, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    idx = np.flatnonzero(np.isfinite(p))
    m = idx.size
    if m == 0:
        return out.tolist()
    order = idx[np.argsort(p[idx], kind="stable")]
    adjusted = np.minimum(1.0, (m - np.arange(m)) * p[order])
    out[order] = np.maximum.accumulate(adjusted)
    return out.tolist()


def sign_test_p(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided exact sign test of paired values (``inf`` allowed: a censored run); ties dropped."""
    from scipy import stats

    wins, losses = int(np.sum(a > b)), int(np.sum(a < b))
    if wins + losses == 0:
        return 1.0
    return float(stats.binomtest(wins, wins + losses, 0.5).pvalue)


def seed_blocks(x: Sequence[float], y: Sequence[float], seeds: Sequence[Any]) -> tuple[list[float], np.ndarray]:
    """``(axis values ascending, matrix seeds x values)`` of the runs; seeds without a
    non-NaN value at every axis value are left out (a complete block per seed). ``inf`` is
    kept: a right-censored run (never reached a target) is orderable."""
    x_arr = np.asarray(x, dtype=np.float64).ravel()
    y_arr = np.asarray(y, dtype=np.float64).ravel()
    levels = sorted({float(v) for v in x_arr if math.isfinite(v)})
    by_seed: dict[Any, dict[float, float]] = {}
    for xv, yv, s in zip(x_arr, y_arr, seeds):
        if math.isfinite(xv) and not math.isnan(yv):
            by_seed.setdefault(s, {})[float(xv)] = float(yv)
    rows = [[cells[v] for v in levels] for _, cells in sorted(by_seed.items(), key=lambda kv: str(kv[0]))
            if all(v in cells for v in levels)]
    return levels, np.asarray(rows, dtype=np.float64).reshape(len(rows), len(levels))


def trend_test(x: Sequence[float], y: Sequence[float], seeds: Sequence[Any] | None = None, *,
               direction: str = "higher", alpha: float = 0.05) -> dict[str, Any]:
    """Monotone trend of ``y`` along the ordered axis ``x``, blocked by seed.

    Page's L test (``scipy.stats.page_trend_test``) on the matrix seeds x axis values
    (:func:`seed_blocks`): the one-sided p for "better as x increases" (``p_increasing``) and
    for "better as x decreases" (``p_decreasing``); ``p_value`` is the two-sided
    ``min(1, 2 min(...))``. ``direction`` says whether a higher ``y`` is better. ``y`` may be
    ``inf`` (a right-censored steps-to-target: worse than any reached value).

    ``adjacent`` compares each pair of neighbouring axis values paired by seed (t-test when
    all values are finite, exact sign test otherwise), Holm-adjusted over the pairs, so the
    report can say which values differ and which tie. Fewer than 2 complete seeds or fewer
    than 3 axis values: p is NaN.
    """
    from scipy import stats

    seeds = list(range(len(np.ravel(x)))) if seeds is None else list(seeds)
    levels, matrix = seed_blocks(x, y, seeds)
    score = matrix if direction == "higher" else -matrix  # higher score = better
    out: dict[str, Any] = {"test": "page", "levels": levels, "n": int(matrix.shape[0]), "p_value": math.nan,
                           "p_increasing": math.nan, "p_decreasing": math.nan, "adjacent": []}
    if matrix.shape[0] < 2 or len(levels) < 3:
        return out
    # Page's test ranks within each seed: +/-inf rank as the worst/best, equal values tie.
    finite_score = np.where(np.isposinf(score), np.finfo(float).max, np.where(np.isneginf(score), -np.finfo(float).max, score))
    if np.all(finite_score == finite_score[:, :1]):
        out.update(p_value=1.0, p_increasing=1.0, p_decreasing=1.0)
    else:
        up = float(stats.page_trend_test(finite_score).pvalue)
        down = float(stats.page_trend_test(finite_score[:, ::-1]).pvalue)
        out.update(p_increasing=up, p_decreasing=down, p_value=min(1.0, 2 * min(up, down)))
    out["adjacent"] = adjacent_pairs(levels, score, alpha)
    return out


def adjacent_pairs(levels: list[float], score: np.ndarray, alpha: float) -> list[dict[str, Any]]:
    """Neighbouring axis values compared by seed on a better-is-higher ``score`` matrix."""
    pairs = []
    for i in range(len(levels) - 1):
        a, b = score[:, i + 1], score[:, i]
        if np.all(np.isfinite(a)) and np.all(np.isfinite(b)):
            evidence = paired_difference(a, b, confidence=1 - alpha)
            p, effect, test = evidence["p_value"], evidence["mean"], PAIRED_TEST
        else:  # a censored run (inf): only the order of the pair is known
            p, effect, test = sign_test_p(a, b), float(np.sum(a > b) - np.sum(a < b)), "sign test"
        pairs.append({"low": levels[i], "high": levels[i + 1], "better_at_high": float(effect), "p": float(p), "test": test})
    for pair, adjusted in zip(pairs, holm([p["p"] for p in pairs])):
        pair["p_adjusted"] = adjusted
        pair["differs"] = bool(adjusted < alpha)
    return pairs


def _format_level(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def adjacent_text(adjacent: list[dict[str, Any]]) -> str:
    """The ordering in words, ties as ties: ``2 ~ 8 ~ 32 > 128 > 512`` (``>``: better, ``<``: worse)."""
    if not adjacent:
        return ""
    text = _format_level(adjacent[0]["low"])
    for pair in adjacent:
        relation = "~" if not pair["differs"] else ("<" if pair["better_at_high"] > 0 else ">")
        text += f" {relation} {_format_level(pair['high'])}"
    return text


def tost(a: Sequence[float], b: Sequence[float], margin: float, alpha: float = 0.05) -> dict[str, Any]:
    """Equivalence of paired ``a`` and ``b`` within ``margin`` by two one-sided t-tests.

    ``p_value`` is the TOST p (the larger one-sided p); equivalence at level alpha when the
    ``1 - 2 alpha`` t-interval lies inside ``(-margin, margin)``, which is the same event.
    ``p_outside`` is the p of the opposite finding, a difference beyond the margin on the
    side of the mean (twice the one-sided p against that margin): below alpha exactly when
    the ``1 - alpha`` t-interval lies wholly outside ``(-margin, margin)``, the refutation.
    ``low``/``high`` are the ``1 - 2 alpha`` interval; ``p_difference`` the ordinary
    two-sided t-test p.
    """
    from scipy import stats

    evidence = paired_difference(a, b, confidence=1 - 2 * alpha)
    n = evidence["n"]
    keep = np.isfinite(np.asarray(a, float)) & np.isfinite(np.asarray(b, float))
    diff = (np.asarray(a, float) - np.asarray(b, float))[keep]
    p = p_outside = math.nan
    if n >= 2:
        se = float(np.std(diff, ddof=1) / math.sqrt(n))
        mean = evidence["mean"]
        if se > 0:
            p_lower = float(stats.t.sf((mean + margin) / se, n - 1))
            p_upper = float(stats.t.cdf((mean - margin) / se, n - 1))
            p = max(p_lower, p_upper)
            beyond = stats.t.sf((mean - margin) / se, n - 1) if mean >= 0 else stats.t.cdf((mean + margin) / se, n - 1)
            p_outside = min(1.0, 2.0 * float(beyond))
        else:  # every pair differs by the same amount
            p = 0.0 if abs(mean) < margin else 1.0
            p_outside = 0.0 if abs(mean) > margin else 1.0
    return {**evidence, "p_difference": evidence["p_value"], "p_value": p, "p_outside": p_outside, "margin": float(margin),
            "test": "TOST (two one-sided paired t-tests)", "method": f"TOST, {100 * (1 - 2 * alpha):g}% {INTERVAL}"}


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
    margin: float | None = None,
) -> str:
    """The decision rule :func:`verdict` applies, in words (for a report to print)."""
    _check_choice("kind", kind, KINDS)
    _check_choice("direction", direction, DIRECTIONS)
    _check_choice("improves_as", improves_as, AXIS_DIRECTIONS)
    level = f"{100 * (1 - alpha):g}%"
    if kind == "ordered":
        return (
            f"Ordered rule: Page's trend test of {metric} ({direction} is better) along {axis}, blocked by seed "
            f"(every seed's runs ranked against each other); supported if {metric} improves as {axis} "
            f"{_verb(improves_as)} with two-sided p < {alpha:g} and no pair of neighbouring values significantly "
            f"reversed; refuted if the trend is significant the other way; inconclusive otherwise. Neighbouring values "
            f"are compared by seed (paired t-test, or an exact sign test when some run never reached its target), "
            f"Holm-adjusted; values that cannot be told apart are reported as ties (~)."
        )
    side = "> 0" if direction == "higher" else "< 0"
    if kind == "equivalence":
        return (
            f"Equivalence rule (TOST): d = {metric}[{a}] - {metric}[{b}], paired by seed; supported (equivalent) if the "
            f"{100 * (1 - 2 * alpha):g}% t-interval of d lies inside (-{margin:g}, {margin:g}) (TOST p < {alpha:g}); "
            f"refuted if the {level} t-interval lies wholly outside the margin (a difference larger than {margin:g}); "
            "inconclusive otherwise."
        )
    what = (f"d = ({metric}[{a}] - {metric}[{b}]) in the setting minus the same difference in its control, paired by seed"
            if kind == "interaction" else f"d = {metric}[{a}] - {metric}[{b}], paired by seed")
    return (
        f"{kind.capitalize()} rule: {what}, with its {level} t-interval and paired t-test; "
        f"supported if the whole interval is {side} and p < {alpha:g} ({a} better, {direction} is better); "
        f"refuted if the whole interval is on the other side of 0 and p < {alpha:g}; "
        f"inconclusive otherwise (interval contains 0, or fewer than 2 seed pairs)."
    )


def _verb(improves_as: str) -> str:
    return "increases" if improves_as == "increasing" else "decreases"


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

    * ``kind="ordered"``: ``evidence`` is a :func:`trend_test` result (computed with the
      claim's ``direction``); ``improves_as`` says whether the claim has the metric improving
      as the axis is ``"increasing"`` or ``"decreasing"``.
    * ``kind="pairwise"`` / ``"interaction"``: ``evidence`` is a :func:`paired_difference`
      result at ``confidence = 1 - alpha`` (for an interaction, of the per-seed differences).
    * ``kind="equivalence"``: ``evidence`` is a :func:`tost` result.

    Returns ``dict(verdict, reason, rule, kind, metric, direction, alpha, evidence, method,
    ci, p, n)``, where ``reason`` is one sentence with the numbers and ``rule`` the rule.
    """
    rule = verdict_rule(kind, metric=metric, direction=direction, alpha=alpha, axis=axis, improves_as=improves_as,
                        a=a, b=b, margin=_num(evidence.get("margin")))
    if kind == "ordered":
        outcome, reason = _ordered_verdict(evidence, metric, direction, alpha, axis, improves_as)
        ci, method = None, "Page's trend test blocked by seed; adjacent pairs Holm-adjusted"
    elif kind == "equivalence":
        outcome, reason = _equivalence_verdict(evidence, metric, alpha, a, b)
        ci, method = [_num(evidence.get("low")), _num(evidence.get("high"))], evidence.get("method")
        p = equivalence_p(evidence, outcome)
    else:
        outcome, reason = _pairwise_verdict(evidence, metric, direction, alpha, a, b)
        ci, method = [_num(evidence.get("low")), _num(evidence.get("high"))], evidence.get("method")
    return {
        "verdict": outcome,
        "reason": reason,
        "rule": rule,
        "kind": kind,
        "metric": metric,
        "direction": direction,
        "alpha": alpha,
        "evidence": dict(evidence),
        "method": method,
        "ci": ci,
        "p": p if kind == "equivalence" else _num(evidence.get("p_value")),
        "n": int(evidence.get("n", 0) or 0),
        "improves_as": improves_as if kind == "ordered" else None,
    }


def _num(value: Any) -> float:
    """A float, nan for None or anything unparsable (evidence may come from JSON)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _ordered_verdict(evidence, metric, direction, alpha, axis, improves_as) -> tuple[str, str]:
    p, n = _num(evidence.get("p_value")), evidence.get("n", 0)
    claimed = _num(evidence.get("p_increasing" if improves_as == "increasing" else "p_decreasing"))
    opposite = _num(evidence.get("p_decreasing" if improves_as == "increasing" else "p_increasing"))
    order = adjacent_text(evidence.get("adjacent") or [])
    stats_text = (f"Page's trend test p = {p:.3g} (n = {n} seeds) for {metric} along {axis}"
                  + (f"; by neighbouring values ({direction} {metric} is better: > better, < worse, ~ tie): {order}"
                     if order else ""))
    if not math.isfinite(p):
        return "inconclusive", f"inconclusive: no trend could be measured ({stats_text}; needs >= 2 seeds with a run at each of >= 3 values)."
    # Along the claimed direction, a significant step the wrong way contradicts "monotone".
    reversed_steps = [s for s in evidence.get("adjacent") or []
                      if s["differs"] and (s["better_at_high"] > 0) != (improves_as == "increasing")]
    if p < alpha and claimed < opposite:
        if reversed_steps:
            return "inconclusive", f"inconclusive: {stats_text}: the overall trend has the claimed sign but some neighbouring values are significantly reversed."
        return "supported", f"supported: {stats_text}: {metric} improves as {axis} {_verb(improves_as)}."
    if p < alpha:
        return "refuted", f"refuted: {stats_text}: significant in the opposite direction to the claim."
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
        f"({100 * (1 - alpha):g}% t-interval, n = {n} seed pairs, {test} p = {p:.3g})"
    )
    if not (math.isfinite(low) and math.isfinite(high)):
        return "inconclusive", f"inconclusive: no confidence interval for {stats_text}; needs >= 2 seed pairs."
    outcome = decide(low, high, p, alpha, 1 if direction == "higher" else -1)
    if outcome == "supported":
        return outcome, f"supported: {stats_text} excludes 0 on the side where {a} is better ({direction} is better)."
    if outcome == "refuted":
        return outcome, f"refuted: {stats_text} excludes 0 on the side where {b} is better ({direction} is better)."
    return "inconclusive", f"inconclusive: {stats_text} contains 0."


def equivalence_p(evidence: Mapping[str, Any], outcome: str) -> float:
    """The p of an equivalence verdict's finding, the one Holm adjusts: TOST's for
    "supported", the beyond-the-margin test's for "refuted", the smaller of the two for
    "inconclusive" (its strongest finding, so an adjustment never turns on which was tried)."""
    tost_p, outside = _num(evidence.get("p_value")), _num(evidence.get("p_outside"))
    if outcome == "supported":
        return tost_p
    if outcome == "refuted":
        return outside
    return float(np.nanmin([tost_p, outside])) if np.isfinite([tost_p, outside]).any() else math.nan


def _equivalence_verdict(evidence, metric, alpha, a, b) -> tuple[str, str]:
    mean, low, high = _num(evidence.get("mean")), _num(evidence.get("low")), _num(evidence.get("high"))
    margin, p, n = _num(evidence.get("margin")), _num(evidence.get("p_value")), evidence.get("n", 0)
    stats_text = (f"{metric}[{a}] - {metric}[{b}] = {mean:.4g} [{low:.4g}, {high:.4g}] "
                  f"({100 * (1 - 2 * alpha):g}% t-interval, n = {n} seed pairs, TOST p = {p:.3g}, margin {margin:g})")
    if not (math.isfinite(low) and math.isfinite(high) and math.isfinite(p)):
        return "inconclusive", f"inconclusive: no interval for {stats_text}; needs >= 2 seed pairs."
    if p < alpha and -margin < low and high < margin:
        return "supported", f"supported (equivalent): {stats_text} lies inside the margin."
    wide = t_interval_from(evidence, 1 - alpha)
    outside = _num(evidence.get("p_outside"))
    if wide is not None and (wide[0] > margin or wide[1] < -margin):
        return "refuted", (f"refuted: {stats_text}; the {100 * (1 - alpha):g}% interval [{wide[0]:.4g}, {wide[1]:.4g}] "
                           f"lies wholly outside the margin (p beyond the margin = {outside:.3g}).")
    return "inconclusive", f"inconclusive: {stats_text} is not inside the margin."


def t_interval_from(evidence: Mapping[str, Any], confidence: float) -> tuple[float, float] | None:
    """The t-interval of a :func:`paired_difference` result re-expressed at another level."""
    from scipy import stats

    mean, low, high = _num(evidence.get("mean")), _num(evidence.get("low")), _num(evidence.get("high"))
    n, level = int(evidence.get("n", 0) or 0), _num(evidence.get("confidence"))
    if n < 2 or not all(map(math.isfinite, (mean, low, high, level))):
        return None
    se = (high - mean) / stats.t.ppf(0.5 + level / 2, n - 1)
    half = stats.t.ppf(0.5 + confidence / 2, n - 1) * se
    return (mean - half, mean + half)


def critical_batch_fit(batch: Sequence[float], steps: Sequence[float], seeds: Sequence[Any],
                       confidence: float = 0.95) -> dict[str, Any]:
    """Fit S = S_min (1 + B_crit / B) to steps to a target S at batch size B, per seed.

    S is linear in 1/B (intercept S_min, slope S_min B_crit), so each seed's finite points
    (a run that never reached the target, ``inf``, is left out; >= 2 batch sizes needed) give
    one least-squares line and B_crit = slope / intercept. Across seeds: the t-interval of
    log B_crit, reported back on the batch scale (a geometric mean and its interval), so a
    seed's B_crit counts by its ratio to the others. Seeds whose fit has a non-positive
    intercept or slope (no bend to fit) are left out and counted in ``excluded``.
    """
    b_arr = np.asarray(batch, dtype=np.float64).ravel()
    s_arr = np.asarray(steps, dtype=np.float64).ravel()
    per_seed, s_min, excluded = [], [], 0
    for seed in dict.fromkeys(seeds):
        mine = np.array([s == seed for s in seeds]) & np.isfinite(b_arr) & np.isfinite(s_arr) & (b_arr > 0)
        if np.unique(b_arr[mine]).size < 2:
            excluded += 1
            continue
        inverse = 1.0 / b_arr[mine]
        slope, intercept = np.polyfit(inverse, s_arr[mine], 1)
        # A flat line fits a slope of rounding size, of either sign by machine: a bend smaller
        # than 1e-9 of S_min over the batch sizes run is no bend.
        if intercept <= 0 or slope * np.ptp(inverse) <= 1e-9 * intercept:
            excluded += 1
            continue
        per_seed.append(slope / intercept)
        s_min.append(intercept)
    out = {"method": "S = S_min (1 + B_crit / B) fitted per seed by least squares in 1/B; "
                     f"{100 * confidence:g}% t-interval of log B_crit over seeds",
           "n": len(per_seed), "excluded": excluded, "b_crit": math.nan, "ci": [math.nan, math.nan],
           "s_min": math.nan, "per_seed": [float(v) for v in per_seed]}
    if per_seed:
        result = t_statistics(np.log(per_seed), confidence)
        out.update(b_crit=float(np.exp(result["mean"])), s_min=float(np.exp(np.mean(np.log(s_min)))),
                   ci=[float(np.exp(result["low"])), float(np.exp(result["high"]))])
    return out
