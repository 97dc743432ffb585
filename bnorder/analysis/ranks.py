"""Do the orderings rank differently across a sweep's points? Demšar (2006): the Friedman test
on each point's ranking, the Nemenyi post-hoc test when it rejects, and the critical difference
(CD) of average ranks drawn in the CD diagram.

The Friedman p-value is a permutation test (orderings' labels shuffled within each point),
exact whenever the arrangements can be listed, so it holds its level at 2 or 3 points where the
chi-square approximation does not, and it says how small a p-value the points can give at all
(:func:`~bnorder.analysis.validity.friedman_min_p`). Nemenyi's p-values come from
``scikit-posthocs``; it is only run after Friedman rejects, as Demšar prescribes (simulated
family-wise error at most 5.4% at alpha = 0.05 for 3-5 orderings over 2-20 points).

Scores here are in "higher is better" units (negate losses first).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scikit_posthocs as sp
from scipy import stats

__all__ = ["Friedman", "critical_difference", "friedman", "mean_ranks", "nemenyi"]

NAN = float("nan")
PERMUTATIONS = 20_000  # exact up to this many arrangements, seeded Monte Carlo beyond


@dataclass(frozen=True)
class Friedman:
    """The Friedman test over T points (rows) and k orderings (columns).

    Attributes:
        statistic: Friedman's chi-square statistic (no tie correction; the permutation
            distribution accounts for ties).
        p: its permutation p-value.
        exact: whether every arrangement was enumerated.
    """

    statistic: float
    p: float
    exact: bool


def _ranks(matrix: np.ndarray) -> np.ndarray:
    """Rank of each ordering within its point, 1 = best (highest), ties averaged."""
    return stats.rankdata(-matrix, axis=-1)


def _statistic(*columns: np.ndarray, axis: int = -1) -> np.ndarray:
    x = np.stack(columns, axis=-1)  # (..., T, k)
    t, k = x.shape[-2], x.shape[-1]
    rank_sums = _ranks(x).sum(axis=-2)
    return 12 / (t * k * (k + 1)) * (rank_sums**2).sum(axis=-1) - 3 * t * (k + 1)


def friedman(matrix: np.ndarray, *, seed: int = 0, resamples: int = PERMUTATIONS) -> Friedman:
    """Permutation Friedman test of equal rankings.

    Args:
        matrix: ``(points, orderings)`` scores, higher is better, no NaN.
        seed: seeds the permutations when they are too many to list.
        resamples: list every arrangement up to this many, else draw this many.

    Returns:
        :class:`Friedman`; NaN p with fewer than 2 points or orderings.

    Example:
        >>> res = friedman(np.array([[3.0, 2.0, 1.0]] * 4))
        >>> round(res.p, 4), res.exact
        (0.0046, True)
    """
    x = np.asarray(matrix, dtype=float)
    t, k = x.shape
    if t < 2 or k < 2:
        return Friedman(NAN, NAN, False)
    arrangements = math.factorial(k) ** t  # each point's orderings shuffled independently
    res = stats.permutation_test(
        tuple(x.T),
        _statistic,
        permutation_type="samples",
        vectorized=True,
        n_resamples=resamples,
        alternative="greater",
        rng=np.random.default_rng(seed),
    )
    return Friedman(float(res.statistic), float(res.pvalue), arrangements <= resamples)


def mean_ranks(matrix: np.ndarray) -> np.ndarray:
    """Each ordering's rank averaged over points (1 = best)."""
    return _ranks(np.asarray(matrix, dtype=float)).mean(axis=0)


def nemenyi(matrix: np.ndarray, names: list[str]) -> pd.DataFrame:
    """Nemenyi's pairwise p-values (``scikit_posthocs.posthoc_nemenyi_friedman``).

    Args:
        matrix: ``(points, orderings)`` scores, higher is better.
        names: the orderings, in column order.

    Returns:
        A symmetric ``orderings x orderings`` frame of p-values (1 on the diagonal).
    """
    p = sp.posthoc_nemenyi_friedman(np.asarray(matrix, dtype=float))
    p.index = p.columns = names
    return p


def critical_difference(points: int, orderings: int, alpha: float = 0.05) -> float:
    """Demšar's critical difference of average ranks for the Nemenyi test:
    ``q_alpha / sqrt(2) · sqrt(k (k + 1) / (6 T))`` with q the studentized range quantile.

    Example:
        >>> round(critical_difference(10, 3), 3)
        1.048
    """
    if points < 1 or orderings < 2:
        return NAN
    q = stats.studentized_range.ppf(1 - alpha, orderings, np.inf) / np.sqrt(2)
    return float(q * np.sqrt(orderings * (orderings + 1) / (6 * points)))
