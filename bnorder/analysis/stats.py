"""Small, pure statistics on 1-D samples (one value per run), for comparing two orderings.

Conventions, the same in every function:

- ``a`` is the baseline and ``b`` the contender: every effect is **b minus a**, so a positive
  value means the contender scores higher.
- NaN values in the input are dropped (a run with no score carries no evidence).
- Where a quantity is undefined (too few runs, no variation at all) the answer is NaN, never a
  number made up to fill the gap and never a warning.
- Bootstraps are seeded: the same input gives the same interval.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy import stats

__all__ = [
    "bootstrap_ci",
    "cliffs_delta",
    "cohens_d",
    "diff_ci",
    "holm",
    "iqm",
    "mannwhitney",
    "min_detectable_difference",
    "prob_improvement",
    "std",
    "std_ci",
    "t_ci",
    "welch",
    "welch_ci",
]

ArrayLike = npt.ArrayLike
Statistic = Callable[..., object]
NAN = float("nan")
N_RESAMPLES = 10_000  # Monte-Carlo error of a 95% percentile bound well below the runs' noise


def _sample(values: ArrayLike) -> np.ndarray:
    """The finite-or-infinite values of a 1-D sample as floats, NaN dropped."""
    x = np.asarray(values, dtype=float).ravel()
    return x[~np.isnan(x)]


def _constant(*samples: np.ndarray) -> bool:
    """True when every value of every sample is the same (no variation to test)."""
    joined = np.concatenate(samples)
    return bool(joined.size == 0 or np.all(joined == joined[0]))


def iqm(values: ArrayLike, axis: int = -1) -> float | np.ndarray:
    """Interquartile mean: the mean of the middle 50% (robust to one wild run).

    With fewer than 4 values nothing is trimmed and it equals the mean.

    Args:
        values: the sample (NaN is not dropped along ``axis``; use on clean data).
        axis: the axis to reduce, so it works as a vectorised bootstrap statistic.

    Returns:
        The 25%-trimmed mean; NaN for an empty sample.

    Example:
        >>> float(iqm([1, 2, 3, 100]))
        2.5
    """
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return NAN
    return stats.trim_mean(x, 0.25, axis=axis)


def std(values: ArrayLike, axis: int = -1) -> float | np.ndarray:
    """Sample standard deviation (ddof 1), vectorisable for the bootstrap; NaN for n < 2."""
    x = np.asarray(values, dtype=float)
    if x.shape[axis] < 2:
        return np.full(np.delete(x.shape, axis), NAN) if x.ndim > 1 else NAN
    return np.std(x, axis=axis, ddof=1)


def bootstrap_ci(
    values: ArrayLike,
    statistic: Statistic = np.mean,
    *,
    level: float = 0.95,
    n_resamples: int = N_RESAMPLES,
    seed: int = 0,
    method: Literal["percentile", "BCa", "basic"] = "percentile",
) -> tuple[float, float]:
    """Seeded bootstrap confidence interval of ``statistic`` over one sample.

    The percentile method is the default: with the 3-10 seeds typical here BCa's jackknife
    corrections are themselves noisy. Any bootstrap interval from few runs is too narrow (it
    cannot see spread the sample does not show): read it as optimistic.

    Args:
        values: one value per run; NaN dropped.
        statistic: a function of the sample; if it takes ``axis`` it is called vectorised.
        level: the confidence level.
        n_resamples: bootstrap resamples.
        seed: seeds the resampling, so the interval is reproducible.
        method: ``scipy.stats.bootstrap``'s method.

    Returns:
        ``(low, high)``; ``(nan, nan)`` with fewer than 2 values. Constant data give the
        zero-width interval at the statistic's value.

    Example:
        >>> low, high = bootstrap_ci([0.71, 0.74, 0.69, 0.72, 0.70])
        >>> bool(0.69 <= low < high <= 0.74)
        True
    """
    x = _sample(values)
    if x.size < 2:
        return NAN, NAN
    if _constant(x):
        value = float(np.asarray(statistic(x)))
        return value, value
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # BCa on degenerate resamples: NaN says it already
        res = stats.bootstrap(
            (x,),
            statistic,
            confidence_level=level,
            n_resamples=n_resamples,
            method=method,
            rng=np.random.default_rng(seed),
        )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def diff_ci(
    a: ArrayLike,
    b: ArrayLike,
    *,
    level: float = 0.95,
    n_resamples: int = N_RESAMPLES,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap CI of ``mean(b) - mean(a)``, each group resampled independently.

    Args:
        a: baseline runs; NaN dropped.
        b: contender runs; NaN dropped.
        level: the confidence level (not adjusted for multiple comparisons).
        n_resamples: bootstrap resamples.
        seed: seeds the resampling.

    Returns:
        ``(low, high)``; ``(nan, nan)`` when either group has fewer than 2 runs.

    Example:
        >>> low, high = diff_ci([70, 71, 72, 70, 71], [74, 75, 73, 74, 76])
        >>> bool(low > 0)
        True
    """
    x, y = _sample(a), _sample(b)
    if x.size < 2 or y.size < 2:
        return NAN, NAN
    if _constant(x) and _constant(y):
        d = float(y[0] - x[0])
        return d, d

    def mean_diff(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.mean(y, axis=axis) - np.mean(x, axis=axis)

    res = stats.bootstrap(
        (x, y),
        mean_diff,
        confidence_level=level,
        n_resamples=n_resamples,
        method="percentile",
        vectorized=True,
        rng=np.random.default_rng(seed),
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def holm(pvalues: ArrayLike) -> np.ndarray:
    """Holm-Bonferroni step-down adjusted p-values (family-wise error control).

    The i-th smallest of m p-values becomes ``max over j <= i of min(1, (m - j + 1) p_(j))``:
    monotone in the raw p-values and capped at 1. NaN p-values stay NaN and do not count in m.

    Args:
        pvalues: raw p-values, in any order.

    Returns:
        Adjusted p-values in the input's order; reject where ``adjusted < alpha``.

    Example:
        >>> holm([0.01, 0.04, 0.03]).round(2).tolist()
        [0.03, 0.06, 0.06]
    """
    p = np.asarray(pvalues, dtype=float).ravel()
    out = np.full(p.shape, NAN)
    finite = np.flatnonzero(~np.isnan(p))
    order = finite[np.argsort(p[finite], kind="stable")]
    m = order.size
    scaled = (m - np.arange(m)) * p[order]
    out[order] = np.minimum(1.0, np.maximum.accumulate(scaled))
    return out


def cohens_d(a: ArrayLike, b: ArrayLike) -> float:
    """Cohen's d of b relative to a: ``(mean(b) - mean(a)) / pooled SD`` (ddof 1 per group).

    Args:
        a: baseline runs.
        b: contender runs.

    Returns:
        The standardised difference, positive when b is higher; NaN when either group has
        fewer than 2 runs or neither group varies (the scale is undefined).

    Example:
        >>> cohens_d([1, 2, 3], [2, 3, 4])
        1.0
    """
    x, y = _sample(a), _sample(b)
    if x.size < 2 or y.size < 2:
        return NAN
    pooled = ((x.size - 1) * x.var(ddof=1) + (y.size - 1) * y.var(ddof=1)) / (x.size + y.size - 2)
    if pooled == 0:
        return NAN
    return float((y.mean() - x.mean()) / np.sqrt(pooled))


def _dominance(a: ArrayLike, b: ArrayLike) -> tuple[float, float]:
    """(P(B > A), P(B = A)) over all pairs of one run of a and one of b."""
    x, y = _sample(a), _sample(b)
    if x.size == 0 or y.size == 0:
        return NAN, NAN
    diff = y[:, None] - x[None, :]
    return float(np.mean(diff > 0)), float(np.mean(diff == 0))


def cliffs_delta(a: ArrayLike, b: ArrayLike) -> float:
    """Cliff's delta: ``P(B > A) - P(B < A)`` over all pairs, in [-1, 1]; positive favours b.

    Args:
        a: baseline runs.
        b: contender runs.

    Returns:
        The delta; NaN when either group is empty.

    Example:
        >>> cliffs_delta([1, 2], [2, 3])
        0.75
    """
    greater, equal = _dominance(a, b)
    return greater - (1.0 - greater - equal)


def prob_improvement(a: ArrayLike, b: ArrayLike) -> float:
    """Probability that a run of b beats a run of a: ``P(B > A) + 0.5 P(B = A)``.

    Equals the Mann-Whitney U of b divided by ``n_a n_b`` (and ``(delta + 1) / 2``); 0.5 is
    no difference.

    Args:
        a: baseline runs.
        b: contender runs.

    Returns:
        The probability; NaN when either group is empty.

    Example:
        >>> prob_improvement([1, 2], [2, 3])
        0.875
    """
    greater, equal = _dominance(a, b)
    return greater + 0.5 * equal


def _testable(x: np.ndarray, y: np.ndarray) -> bool:
    return x.size >= 2 and y.size >= 2 and not _constant(x, y)


def welch(a: ArrayLike, b: ArrayLike) -> float:
    """Two-sided p-value of Welch's t-test (unequal variances) for a difference in means.

    Args:
        a: baseline runs.
        b: contender runs.

    Returns:
        The p-value; NaN when either group has fewer than 2 runs, or when neither group
        varies (the t statistic is undefined, scipy would answer 0 or NaN with a warning).
    """
    x, y = _sample(a), _sample(b)
    if not _testable(x, y) or (x.var() == 0 and y.var() == 0):
        return NAN
    return float(stats.ttest_ind(x, y, equal_var=False).pvalue)


def welch_ci(a: ArrayLike, b: ArrayLike, *, level: float = 0.95) -> tuple[float, float]:
    """Welch's t confidence interval of ``mean(b) - mean(a)``: the interval that agrees with
    :func:`welch`'s p-value (it excludes 0 exactly when ``p < 1 - level``).

    With few runs per group the percentile bootstrap (:func:`diff_ci`) is too narrow (with 3
    runs it spans little more than the observed range); this interval accounts for the
    uncertainty of the SDs through the t distribution.

    Args:
        a: baseline runs.
        b: contender runs.
        level: the confidence level.

    Returns:
        ``(low, high)``; ``(nan, nan)`` where :func:`welch` is NaN.

    Example:
        >>> low, high = welch_ci([70, 71, 72, 70, 71], [74, 75, 73, 74, 76])
        >>> bool(low > 0)
        True
    """
    x, y = _sample(a), _sample(b)
    if not _testable(x, y) or (x.var() == 0 and y.var() == 0):
        return NAN, NAN
    ci = stats.ttest_ind(y, x, equal_var=False).confidence_interval(confidence_level=level)
    return float(ci.low), float(ci.high)


def t_ci(values: ArrayLike, *, level: float = 0.95) -> tuple[float, float]:
    """Student's t confidence interval of the mean: ``mean ± t_{n-1} · sd / sqrt(n)``.

    Assumes roughly normal runs; unlike the bootstrap it widens properly for small n (with 3
    runs the multiplier is 4.3, not about 2).

    Args:
        values: one value per run; NaN dropped.
        level: the confidence level.

    Returns:
        ``(low, high)``; ``(nan, nan)`` with fewer than 2 values.

    Example:
        >>> [round(v, 2) for v in t_ci([1.0, 2.0, 3.0])]
        [-0.48, 4.48]
    """
    x = _sample(values)
    if x.size < 2:
        return NAN, NAN
    half = stats.t.ppf(0.5 + level / 2, x.size - 1) * x.std(ddof=1) / np.sqrt(x.size)
    return float(x.mean() - half), float(x.mean() + half)


def std_ci(values: ArrayLike, *, level: float = 0.95) -> tuple[float, float]:
    """Chi-square confidence interval of the standard deviation (assumes normal runs).

    The companion of a bootstrap CI of the SD, which with few runs cannot reach above the
    spread it sees: with 3 runs this interval's upper end is about 6 times the sample SD.

    Args:
        values: one value per run; NaN dropped.
        level: the confidence level.

    Returns:
        ``(low, high)``; ``(nan, nan)`` with fewer than 2 values.

    Example:
        >>> [round(v, 2) for v in std_ci([1.0, 2.0, 3.0])]
        [0.52, 6.28]
    """
    x = _sample(values)
    if x.size < 2:
        return NAN, NAN
    dof, tail = x.size - 1, (1 - level) / 2
    ss = dof * x.var(ddof=1)
    return float(np.sqrt(ss / stats.chi2.ppf(1 - tail, dof))), float(
        np.sqrt(ss / stats.chi2.ppf(tail, dof))
    )


def mannwhitney(a: ArrayLike, b: ArrayLike, *, seed: int = 0) -> float:
    """Two-sided p-value of the Mann-Whitney U test.

    Without ties scipy's choice (exact for small samples). With ties (accuracies often tie on
    a finite test set) a permutation test, exact when there are at most 9999 splits and seeded
    otherwise: scipy's normal approximation is anti-conservative there (it gives 3 vs 3
    fully separated runs p = 0.047, where the exact answer is 0.1). With 3 runs per group the
    smallest possible p-value is 0.1: no 3-vs-3 comparison can be significant at 0.05.

    Args:
        a: baseline runs.
        b: contender runs.
        seed: seeds the permutations when they are sampled rather than enumerated.

    Returns:
        The p-value; NaN when either group has fewer than 2 runs or all values are identical.
    """
    x, y = _sample(a), _sample(b)
    if not _testable(x, y):
        return NAN
    joined = np.concatenate([x, y])
    method: str | stats.PermutationMethod = "auto"
    if np.unique(joined).size < joined.size:
        method = stats.PermutationMethod(n_resamples=9999, rng=np.random.default_rng(seed))
    return float(stats.mannwhitneyu(x, y, alternative="two-sided", method=method).pvalue)


def min_detectable_difference(
    sd_a: float,
    sd_b: float,
    n_a: int,
    n_b: int,
    alpha: float = 0.05,
    power: float = 0.8,
) -> float:
    """The smallest true difference in means a two-sided test at ``alpha`` detects with
    probability ``power``: ``(z_{1-alpha/2} + z_{power}) * sqrt(sd_a²/n_a + sd_b²/n_b)``.

    A normal approximation: with few runs the t distribution's heavier tails make the real
    detectable difference larger, so read the answer as optimistic. An observed difference
    smaller than this is one the experiment could easily have missed: absence of a significant
    result is then no evidence of absence.

    Args:
        sd_a: standard deviation of the baseline's runs.
        sd_b: standard deviation of the contender's runs.
        n_a: baseline runs.
        n_b: contender runs.
        alpha: the test's significance level (two-sided).
        power: the desired probability of detection.

    Returns:
        The difference, in the units of the data; NaN when either n < 2 or an SD is NaN.

    Example:
        >>> round(min_detectable_difference(1.0, 1.0, 10, 10), 2)
        1.25
    """
    if n_a < 2 or n_b < 2 or np.isnan(sd_a) or np.isnan(sd_b):
        return NAN
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    return float(z * np.sqrt(sd_a**2 / n_a + sd_b**2 / n_b))
