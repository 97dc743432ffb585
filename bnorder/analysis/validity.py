"""Where each statistic is valid, decided by simulation rather than hope.

Every interval and test the report shows was simulated at the n people run (2, 3, 5 and 10
runs per ordering; :mod:`bnorder.analysis.calibration` prints the whole table, and
``tests/analysis/test_calibration.py`` holds a seeded slice of it). Where a statistic could not
keep its promise (coverage within 3 points of nominal, false-positive rate at most
``alpha + 0.02``) it is not computed, and :func:`why_not` says what it would need.
"""

from __future__ import annotations

import math

__all__ = [
    "MIN_RUNS_SPREAD_TEST",
    "aggregate_interval_ok",
    "friedman_min_p",
    "kendall_min_p",
    "why_not",
]

# Brown-Forsythe (Levene around the median): at 2 runs both distances to the median are
# equal and F is infinite (p = 0 whatever the data); at 3 the median run has distance 0 and
# the test can never reject; at 4 it rejects 6-7% of true nulls, at 5 under 1%. From 6 runs
# per ordering it holds its level (3-4% at alpha = 0.05) and has some power.
MIN_RUNS_SPREAD_TEST = 6

# Stratified-bootstrap intervals of the IQM and of the probability of improvement across a
# sweep's points (t-calibrated, runs rescaled by sqrt(n / (n - 1))): with fewer points or runs
# their coverage fell below 92% for skewed runs, unequal spreads or a large effect (the
# estimate sits at 0 or 1 and the bootstrap cannot see past it).
AGGREGATE_MIN = ((10, 5), (20, 3))  # (points, runs per ordering and point): either suffices


def aggregate_interval_ok(points: int, runs: int) -> bool:
    """Whether an IQM or probability-of-improvement interval over ``points`` settings with at
    least ``runs`` runs per ordering in each keeps its coverage (see AGGREGATE_MIN)."""
    return any(points >= p and runs >= r for p, r in AGGREGATE_MIN)


def friedman_min_p(points: int, orderings: int) -> float:
    """The smallest p-value the exact Friedman test can give: every point ranks the
    orderings the same way, one arrangement in ``(k!) ** (points - 1)``."""
    if points < 2 or orderings < 2:
        return 1.0
    return math.exp(-(points - 1) * math.lgamma(orderings + 1))


def kendall_min_p(n: int) -> float:
    """The smallest two-sided p-value of Kendall's tau over ``n`` orderings (no ties):
    2 / n!, so 3 orderings can never agree significantly (p >= 0.33), 4 neither (0.083)."""
    return 1.0 if n < 2 else min(1.0, 2.0 / math.factorial(n))


def why_not(statistic: str, needs: str, has: str) -> str:
    """One clause saying why a statistic is not shown: ``"<statistic> needs <needs> (has
    <has>)"``."""
    return f"{statistic} needs {needs} (has {has})"
