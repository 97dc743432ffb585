"""Is a contender's mean different from the baseline's? The test that is valid for the runs at
hand, its p-value and the interval that agrees with it.

- **Welch's t** when both groups vary and every value is finite: valid at every n ≥ 2 (at
  n = 2 it is conservative: its 95% interval covers about 98% of the time), with the
  interval that excludes 0 exactly when ``p < 1 - level``.
- **The exact permutation test** of the mean difference when a group does not vary (tied
  accuracies are common: they are k/N). Welch is undefined there: scipy would divide by a
  float variance of 1e-32 and call ``[0.9] * 4`` vs ``[0.905] * 4`` significant at p ≈ 1e-29.
  No interval is given (inverting the test gives a single point).
- **Mann-Whitney** when a value is infinite (the loss of a diverged run): means are undefined,
  ranks are not.

Conventions as in :mod:`bnorder.analysis.stats`: ``a`` is the baseline, effects are b − a.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats

from bnorder.analysis.stats import ArrayLike, sample, varies

__all__ = ["Difference", "difference", "mannwhitney", "permutation", "welch", "welch_ci"]

NAN = float("nan")
# Up to this many splits of the runs the permutation test enumerates them all (exact; 10 vs
# 10 runs have 184,756); beyond it, this many seeded random ones (Monte-Carlo error of a
# p-value near 0.05 is then 0.002).
PERMUTATIONS = 20_000
Test = Literal["welch", "permutation", "mann-whitney", "none"]
TESTS_WITH_INTERVAL = ("welch",)


def _runs(a: ArrayLike, b: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    return sample(a), sample(b)


def _welch_ok(x: np.ndarray, y: np.ndarray) -> bool:
    return x.size >= 2 and y.size >= 2 and varies(x) and varies(y)


def welch(a: ArrayLike, b: ArrayLike) -> float:
    """Two-sided p-value of Welch's t-test of ``mean(b) - mean(a)``.

    Returns:
        The p-value; NaN with fewer than 2 runs in a group, an infinite value, or a group
        whose runs do not vary (use :func:`difference`, which then falls back to the exact
        permutation test).

    Example:
        >>> round(welch([70, 71, 72], [74, 75, 73]), 4)
        0.0161
    """
    x, y = _runs(a, b)
    if not _welch_ok(x, y):
        return NAN
    return float(stats.ttest_ind(y, x, equal_var=False).pvalue)


def welch_ci(a: ArrayLike, b: ArrayLike, *, level: float = 0.95) -> tuple[float, float]:
    """Welch's t interval of ``mean(b) - mean(a)``: it excludes 0 exactly when
    ``welch(a, b) < 1 - level``.

    Returns:
        ``(low, high)``; NaN wherever :func:`welch` is NaN.

    Example:
        >>> low, high = welch_ci([70, 71, 72, 70, 71], [74, 75, 73, 74, 76])
        >>> bool(low > 0)
        True
    """
    x, y = _runs(a, b)
    if not _welch_ok(x, y):
        return NAN, NAN
    ci = stats.ttest_ind(y, x, equal_var=False).confidence_interval(confidence_level=level)
    return float(ci.low), float(ci.high)


def _mean_diff(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(y, axis=axis) - np.mean(x, axis=axis)


def permutation(a: ArrayLike, b: ArrayLike, *, seed: int = 0) -> float:
    """Two-sided p-value of the permutation test of ``mean(b) - mean(a)``.

    Exact (every split of the pooled runs) up to :data:`PERMUTATIONS` splits, seeded
    Monte Carlo beyond. Valid at any n without assuming normal runs; with 4 runs per group
    the smallest possible p is 2/70 = 0.029, with 3 it is 0.1.

    Returns:
        The p-value; NaN with fewer than 2 runs in a group, an infinite value, or when all
        runs of both groups are identical (there is nothing to permute).

    Example:
        >>> round(permutation([0.9] * 4, [0.905] * 4), 4)
        0.0286
    """
    x, y = _runs(a, b)
    if x.size < 2 or y.size < 2 or not np.all(np.isfinite(np.r_[x, y])):
        return NAN
    if not varies(np.r_[x, y]):
        return NAN
    res = stats.permutation_test(
        (x, y),
        _mean_diff,
        permutation_type="independent",
        vectorized=True,
        n_resamples=PERMUTATIONS,
        alternative="two-sided",
        rng=np.random.default_rng(seed),
    )
    return float(res.pvalue)


def mannwhitney(a: ArrayLike, b: ArrayLike, *, seed: int = 0) -> float:
    """Two-sided p-value of the Mann-Whitney U test (ranks: infinite values are fine).

    Exact without ties (scipy's choice for small samples); with ties a permutation test,
    exact up to 9,999 splits and seeded beyond, where scipy's normal approximation would call
    3 vs 3 fully separated runs p = 0.047 (the exact answer is 0.1).

    Returns:
        The p-value; NaN with fewer than 2 runs in a group or when all values are identical.
    """
    x, y = _runs(a, b)
    joined = np.concatenate([x, y])
    if x.size < 2 or y.size < 2 or np.all(joined == joined[0]):
        return NAN
    method: str | stats.PermutationMethod = "auto"
    if np.unique(joined).size < joined.size:
        method = stats.PermutationMethod(n_resamples=9999, rng=np.random.default_rng(seed))
    return float(stats.mannwhitneyu(x, y, alternative="two-sided", method=method).pvalue)


@dataclass(frozen=True)
class Difference:
    """The mean difference of b over a, and the test valid for these runs.

    Attributes:
        test: ``welch``, ``permutation``, ``mann-whitney`` or ``none`` (too few runs).
        diff: ``mean(b) - mean(a)``; NaN when a value is infinite.
        p: the test's two-sided p-value (NaN for ``none``).
        se: Welch's standard error of ``diff`` (NaN for the other tests).
        df: Welch-Satterthwaite degrees of freedom (NaN for the other tests).
        note: why the test is not Welch's, in words ("" when it is).
    """

    test: Test
    diff: float
    p: float
    se: float = NAN
    df: float = NAN
    note: str = ""

    def ci(self, level: float) -> tuple[float, float]:
        """The interval of ``diff`` at ``level`` that agrees with the test; NaN unless Welch."""
        if self.test not in TESTS_WITH_INTERVAL or math.isnan(self.se):
            return NAN, NAN
        half = stats.t.ppf(0.5 + level / 2, self.df) * self.se
        return self.diff - half, self.diff + half


def difference(a: ArrayLike, b: ArrayLike, *, seed: int = 0) -> Difference:
    """Test ``mean(b) - mean(a)`` with the test that is valid for these runs (module doc).

    Args:
        a: baseline runs; NaN dropped.
        b: contender runs; NaN dropped.
        seed: seeds a Monte-Carlo permutation test (only when splits are too many to list).

    Returns:
        :class:`Difference`.

    Example:
        >>> d = difference([0.9] * 4, [0.905] * 4)
        >>> d.test, round(d.p, 4), d.note
        ('permutation', 0.0286, 'no spread in either group: exact permutation test')
    """
    x, y = _runs(a, b)
    if x.size < 2 or y.size < 2:
        return Difference("none", _diff(x, y), NAN, note="fewer than 2 runs in a group")
    if not np.all(np.isfinite(np.r_[x, y])):
        p = mannwhitney(x, y, seed=seed)
        return Difference("mann-whitney", NAN, p, note="infinite values: Mann-Whitney test")
    if _welch_ok(x, y):
        res = stats.ttest_ind(y, x, equal_var=False)
        return Difference("welch", _diff(x, y), float(res.pvalue), _se(x, y), float(res.df))
    if not varies(np.r_[x, y]):
        return Difference("none", 0.0, NAN, note="all runs identical: nothing to test")
    flat = [name for name, s in (("baseline", x), ("contender", y)) if not varies(s)]
    which = "either group" if len(flat) == 2 else f"the {flat[0]}'s runs"
    note = f"no spread in {which}: exact permutation test"
    return Difference("permutation", _diff(x, y), permutation(x, y, seed=seed), note=note)


def _diff(x: np.ndarray, y: np.ndarray) -> float:
    return float(y.mean() - x.mean()) if x.size and y.size else NAN


def _se(x: np.ndarray, y: np.ndarray) -> float:
    return math.sqrt(x.var(ddof=1) / x.size + y.var(ddof=1) / y.size)
