"""How big a difference could these runs detect, and how many runs would detect a given one?

The power of the test that is actually run (Welch's, or Welch-Satterthwaite's over several
points), at the level it is actually run at (after Holm's correction, below ``alpha``), for
normal runs with the observed SDs taken as the truth.

With 2-3 runs a group, Welch's degrees of freedom are themselves random and small, and that
costs power: the noncentral t with the df the SDs imply promised 80% power where Welch's test
had 48% at 2 runs and 70% at 3. So power here integrates over the runs' sample variances:
given them, the test statistic's numerator is normal, and the probability of rejecting has a
closed form; it is averaged over seeded draws of the variances (chi-square). Exact up to a
Monte-Carlo error of about 0.006, deterministic, and for many runs it meets ``statsmodels``'
``TTestIndPower`` (which the tests check, along with simulated Welch tests at small n).

Example:
    >>> round(min_detectable_difference(1.0, 1.0, 10, 10), 2)
    1.34
    >>> runs_needed(1.0, 1.0)
    18.0
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from scipy import optimize, stats

__all__ = [
    "POWER",
    "average_power",
    "average_se_df",
    "min_detectable_difference",
    "runs_needed",
    "welch_power",
]

ArrayLike = npt.ArrayLike
NAN = float("nan")
POWER = 0.8  # the conventional target: a real effect of that size is missed 1 time in 5
MAX_RUNS = 10_000  # beyond this, "more than 10,000 runs" is the useful answer
DRAWS = 4000  # draws of the sample variances: Monte-Carlo error of a power near 0.8 ~0.006


def average_se_df(
    sds_a: ArrayLike, sds_b: ArrayLike, n_a: ArrayLike, n_b: ArrayLike
) -> tuple[float, float]:
    """Standard error and Welch-Satterthwaite df of the mean over T points of per-point mean
    differences, given each point's SDs and run counts (T = 1: Welch's own)."""
    sa, sb = np.asarray(sds_a, dtype=float), np.asarray(sds_b, dtype=float)
    na, nb = np.broadcast_to(n_a, sa.shape), np.broadcast_to(n_b, sb.shape)
    t = sa.size
    va, vb = sa**2 / na / t**2, sb**2 / nb / t**2
    total = float(va.sum() + vb.sum())
    if total == 0 or np.any(na < 2) or np.any(nb < 2):
        return NAN, NAN
    df = total**2 / float((va**2 / (na - 1)).sum() + (vb**2 / (nb - 1)).sum())
    return math.sqrt(total), df


def _plan(sds_a: ArrayLike, sds_b: ArrayLike, n_a: ArrayLike, n_b: ArrayLike):
    sa = np.atleast_1d(np.asarray(sds_a, dtype=float))
    sb = np.atleast_1d(np.asarray(sds_b, dtype=float))
    na = np.broadcast_to(np.asarray(n_a, dtype=float), sa.shape)
    nb = np.broadcast_to(np.asarray(n_b, dtype=float), sb.shape)
    return sa, sb, na, nb


def _valid(sa: np.ndarray, sb: np.ndarray, na: np.ndarray, nb: np.ndarray) -> bool:
    finite = not (np.isnan(sa).any() or np.isnan(sb).any())
    return finite and bool(np.all(na >= 2) and np.all(nb >= 2)) and (sa.max() > 0 or sb.max() > 0)


class _Draws:
    """Seeded draws of the sample variances, shared by every power evaluation of one plan
    (common random numbers: power is then smooth and monotone in the difference)."""

    def __init__(self, sa, sb, na, nb, alpha: float, draws: int = DRAWS, seed: int = 0):
        rng = np.random.default_rng(seed)
        t = sa.size
        va = sa**2 * rng.chisquare(na - 1, (draws, t)) / (na - 1) / na / t**2
        vb = sb**2 * rng.chisquare(nb - 1, (draws, t)) / (nb - 1) / nb / t**2
        se2 = va.sum(axis=1) + vb.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):  # a point with no spread
            df = se2**2 / ((va**2 / (na - 1)).sum(axis=1) + (vb**2 / (nb - 1)).sum(axis=1))
        self.threshold = stats.t.ppf(1 - alpha / 2, np.nan_to_num(df, nan=1.0)) * np.sqrt(se2)
        self.true_se = math.sqrt(float((sa**2 / na + sb**2 / nb).sum())) / t

    def power(self, diff: float) -> float:
        z = stats.norm.cdf((abs(diff) - self.threshold) / self.true_se)
        z += stats.norm.cdf((-abs(diff) - self.threshold) / self.true_se)
        return float(np.mean(z))


def average_power(
    diff: float,
    sds_a: ArrayLike,
    sds_b: ArrayLike,
    n_a: ArrayLike,
    n_b: ArrayLike,
    alpha: float = 0.05,
) -> float:
    """Power of the two-sided Welch(-Satterthwaite) test of the average over points of the
    mean difference, at ``alpha``, when the true difference is ``diff`` and the points' SDs
    are ``sds_a`` / ``sds_b`` with ``n_a`` / ``n_b`` runs (one value each: one point).

    Returns:
        The probability of rejecting; NaN with fewer than 2 runs, a NaN SD or no spread.
    """
    sa, sb, na, nb = _plan(sds_a, sds_b, n_a, n_b)
    if math.isnan(diff) or not _valid(sa, sb, na, nb):
        return NAN
    return _Draws(sa, sb, na, nb, alpha).power(diff)


def welch_power(
    diff: float, sd_a: float, sd_b: float, n_a: int, n_b: int, alpha: float = 0.05
) -> float:
    """Power of Welch's two-sided test at ``alpha`` for a true difference ``diff``.

    Example:
        >>> round(welch_power(1.0, 1.0, 1.0, 18, 18), 2)
        0.81
    """
    return average_power(diff, sd_a, sd_b, n_a, n_b, alpha)


def min_detectable_difference(
    sd_a: float,
    sd_b: float,
    n_a: int,
    n_b: int,
    alpha: float = 0.05,
    power: float = POWER,
) -> float:
    """The smallest true difference Welch's test at ``alpha`` detects with probability
    ``power``, given these SDs and run counts.

    An observed difference that was not significant is below it (the test's interval is
    narrower), so "not detected" beside "could detect smaller" cannot happen.

    Args:
        sd_a: standard deviation of the baseline's runs.
        sd_b: standard deviation of the contender's runs.
        n_a: baseline runs.
        n_b: contender runs.
        alpha: the level the test was run at (Holm's, if corrected).
        power: the probability of detection.

    Returns:
        The difference, in the data's units; NaN with n < 2, a NaN SD or no spread at all.
    """
    sa, sb, na, nb = _plan(sd_a, sd_b, n_a, n_b)
    if not _valid(sa, sb, na, nb):
        return NAN
    draws = _Draws(sa, sb, na, nb, alpha)
    top = draws.true_se
    while draws.power(top) < power:  # at 2 runs the answer is many standard errors
        top *= 2
    return float(optimize.brentq(lambda d: draws.power(d) - power, 0.0, top, xtol=1e-12))


def runs_needed(
    diff: float,
    sds_a: ArrayLike,
    sds_b: ArrayLike | None = None,
    alpha: float = 0.05,
    power: float = POWER,
    *,
    max_runs: int = MAX_RUNS,
) -> float:
    """Runs per ordering (per point) for the test at ``alpha`` to detect a true difference
    ``diff`` with probability ``power``.

    One point: Welch's test with SDs ``sds_a`` and ``sds_b``. Several points (arrays of their
    SDs): the test of the average difference over the points, every point with the same
    number of runs.

    Args:
        diff: the difference to detect (the observed one, or a target).
        sds_a: the baseline's SD (pooled SD of what was observed), or one per point.
        sds_b: the contender's, likewise; default: the same as ``sds_a``.
        alpha: the level the test runs at.
        power: the probability of detection.
        max_runs: search limit.

    Returns:
        The number of runs (at least 2); ``inf`` when more than ``max_runs`` would be needed
        or ``diff`` is 0; NaN when an SD is NaN or none is positive (nothing to plan on).

    Example:
        >>> runs_needed(0.01, 0.01)
        18.0
    """
    sa = np.atleast_1d(np.asarray(sds_a, dtype=float))
    sb = sa if sds_b is None else np.atleast_1d(np.asarray(sds_b, dtype=float))
    two = np.full(sa.shape, 2)
    if math.isnan(diff) or math.isnan(alpha) or not _valid(sa, sb, two, two):
        return NAN

    def enough(n: int) -> bool:
        return average_power(diff, sa, sb, n, n, alpha) >= power

    if diff == 0 or not enough(max_runs):
        return math.inf
    low, high = 2, max_runs  # power grows with n: bisect for the first n that reaches it
    if enough(low):
        return float(low)
    while high - low > 1:
        mid = (low + high) // 2
        if enough(mid):
            high = mid
        else:
            low = mid
    return float(high)
