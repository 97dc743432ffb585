"""One-sample summaries and two-sample effect sizes on 1-D samples (one value per run).

Conventions, the same in every module of :mod:`bnorder.analysis`:

- ``a`` is the baseline and ``b`` the contender: every effect is **b minus a**, so a positive
  value means the contender scores higher (whether higher is better is the metric's
  :func:`~bnorder.analysis.frames.direction`, applied by the tables, not here).
- NaN values are dropped (a run with no score carries no evidence). Infinite values (the loss
  of a diverged run) are kept: rank statistics use them, mean-based ones answer NaN.
- Runs "vary" only beyond floating-point noise (:func:`varies`): accuracies are k/N and tie
  often, and ``[0.9] * 4`` has a float variance of about 1e-32, which is no spread at all.
- Where a quantity is undefined or not valid at this n, the answer is NaN, never a number
  made up to fill the gap and never a warning.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy import special, stats

__all__ = [
    "cliffs_delta",
    "hedges_g",
    "iqm",
    "prob_improvement",
    "sample",
    "std",
    "std_ci",
    "t_ci",
    "varies",
]

ArrayLike = npt.ArrayLike
NAN = float("nan")
# Spread below this fraction of the values' magnitude is rounding, not variation: float64
# sums of a few k/N accuracies disagree in the 16th digit, real runs differ in the 4th.
RELATIVE_TIES = 1e-9


def sample(values: ArrayLike) -> np.ndarray:
    """The values of a 1-D sample as floats, NaN dropped (infinities kept)."""
    x = np.asarray(values, dtype=float).ravel()
    return x[~np.isnan(x)]


def varies(values: ArrayLike) -> bool:
    """True when the finite runs differ by more than floating-point noise.

    Example:
        >>> varies([0.9, 0.9, 0.9 + 1e-17]), varies([0.9, 0.9001])
        (False, True)
    """
    x = sample(values)
    if x.size < 2 or not np.all(np.isfinite(x)):
        return False
    scale = max(1.0, float(np.max(np.abs(x))))
    return float(np.ptp(x)) > RELATIVE_TIES * scale


def _finite(x: np.ndarray) -> bool:
    return bool(np.all(np.isfinite(x)))


def iqm(values: ArrayLike, axis: int = -1) -> float | np.ndarray:
    """Interquartile mean: the mean of the middle 50% (robust to one wild run).

    ``scipy.stats.trim_mean(x, 0.25)``, as rliable's ``aggregate_iqm``: with fewer than 4
    values nothing is trimmed and it equals the mean.

    Args:
        values: the sample (NaN is not dropped along ``axis``; use on clean data).
        axis: the axis to reduce, so it works on bootstrap resamples.

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
    """Sample standard deviation (ddof 1); NaN for n < 2 or infinite values."""
    x = np.asarray(values, dtype=float)
    if x.shape[axis] < 2:
        return np.full(np.delete(x.shape, axis), NAN) if x.ndim > 1 else NAN
    if x.ndim == 1 and not _finite(x):
        return NAN
    return np.std(x, axis=axis, ddof=1)


def t_ci(values: ArrayLike, *, level: float = 0.95) -> tuple[float, float]:
    """Student's t confidence interval of the mean: ``mean ± t_{n-1} · sd / sqrt(n)``.

    Exact for normal runs at every n ≥ 2 (with 2 runs the multiplier is 12.7, with 3 it is
    4.3): the honest interval at the n people run, where a bootstrap one is far too narrow.

    Args:
        values: one value per run; NaN dropped.
        level: the confidence level.

    Returns:
        ``(low, high)``; NaN with fewer than 2 values or an infinite one. Runs that do not
        vary give the zero-width interval at their value.

    Example:
        >>> [round(v, 2) for v in t_ci([1.0, 2.0, 3.0])]
        [-0.48, 4.48]
    """
    x = sample(values)
    if x.size < 2 or not _finite(x):
        return NAN, NAN
    if not varies(x):
        return float(x[0]), float(x[0])
    half = stats.t.ppf(0.5 + level / 2, x.size - 1) * x.std(ddof=1) / np.sqrt(x.size)
    return float(x.mean() - half), float(x.mean() + half)


def std_ci(values: ArrayLike, *, level: float = 0.95) -> tuple[float, float]:
    """Chi-square confidence interval of the standard deviation (exact for normal runs).

    With 3 runs its upper end is about 6 times the sample SD: few runs say little about
    spread, and this interval says so where a bootstrap one cannot see past the sample.

    Args:
        values: one value per run; NaN dropped.
        level: the confidence level.

    Returns:
        ``(low, high)``; NaN with fewer than 2 values or an infinite one.

    Example:
        >>> [round(v, 2) for v in std_ci([1.0, 2.0, 3.0])]
        [0.52, 6.28]
    """
    x = sample(values)
    if x.size < 2 or not _finite(x):
        return NAN, NAN
    dof, tail = x.size - 1, (1 - level) / 2
    ss = dof * x.var(ddof=1) if varies(x) else 0.0
    return float(np.sqrt(ss / stats.chi2.ppf(1 - tail, dof))), float(
        np.sqrt(ss / stats.chi2.ppf(tail, dof))
    )


def hedges_g(a: ArrayLike, b: ArrayLike) -> float:
    """Hedges' g of b relative to a: Cohen's d with the exact small-sample correction.

    ``g = J(df) · (mean(b) - mean(a)) / pooled SD`` with ``df = n_a + n_b - 2`` and
    ``J(df) = Γ(df/2) / (sqrt(df/2) Γ((df-1)/2))``: Cohen's d overstates the effect by
    ``1/J``, a factor 4/3 at 2 runs per group (``statsmodels``' ``effectsize_smd`` agrees).

    Args:
        a: baseline runs.
        b: contender runs.

    Returns:
        The standardised difference, positive when b is higher; NaN with fewer than 2 runs
        in a group, infinite values, or no spread in either group (the scale is undefined,
        not zero).

    Example:
        >>> round(hedges_g([1, 2, 3], [3, 4, 5]), 2)
        1.6
    """
    x, y = sample(a), sample(b)
    if x.size < 2 or y.size < 2 or not (_finite(x) and _finite(y)):
        return NAN
    if not (varies(x) or varies(y)):
        return NAN
    df = x.size + y.size - 2
    pooled = ((x.size - 1) * x.var(ddof=1) + (y.size - 1) * y.var(ddof=1)) / df
    j = np.exp(special.gammaln(df / 2) - special.gammaln((df - 1) / 2)) / np.sqrt(df / 2)
    return float(j * (y.mean() - x.mean()) / np.sqrt(pooled))


def _dominance(a: ArrayLike, b: ArrayLike) -> tuple[float, float]:
    """(P(B > A), P(B = A)) over all pairs of one run of a and one of b."""
    x, y = sample(a), sample(b)
    if x.size == 0 or y.size == 0:
        return NAN, NAN
    diff = y[:, None] - x[None, :]
    with np.errstate(invalid="ignore"):  # inf - inf: the pair ties
        greater, equal = diff > 0, (diff == 0) | (y[:, None] == x[None, :])
    return float(np.mean(greater)), float(np.mean(equal))


def cliffs_delta(a: ArrayLike, b: ArrayLike) -> float:
    """Cliff's delta: ``P(B > A) - P(B < A)`` over all pairs, in [-1, 1]; positive favours b.

    Example:
        >>> cliffs_delta([1, 2], [2, 3])
        0.75
    """
    greater, equal = _dominance(a, b)
    return greater - (1.0 - greater - equal)


def prob_improvement(a: ArrayLike, b: ArrayLike) -> float:
    """Probability that a run of b scores higher than a run of a: ``P(B > A) + P(B = A) / 2``.

    Equals the Mann-Whitney U of b divided by ``n_a n_b`` (rliable's per-task probability of
    improvement); 0.5 is no difference. Pass the groups swapped for a metric where lower is
    better.

    Example:
        >>> prob_improvement([1, 2], [2, 3])
        0.875
    """
    greater, equal = _dominance(a, b)
    return greater + 0.5 * equal
