"""Can "no difference" be claimed? Two one-sided tests (TOST, Schuirmann 1987; Lakens 2017):
the difference is shown to lie inside ``±margin`` when both one-sided tests reject, i.e. when
the ``1 - 2 alpha`` interval of the difference lies inside the margin. Without it, a
non-significant difference only says "not detected", never "equal".

The margin is the user's: the smallest difference that would matter (``bnorder report
--margin``, in the metric's units: 0.01 is one accuracy point).
"""

from __future__ import annotations

import math

from scipy import stats
from statsmodels.stats.weightstats import ttost_ind

from bnorder.analysis.difference import _welch_ok
from bnorder.analysis.stats import ArrayLike, sample

__all__ = ["tost", "tost_t"]

NAN = float("nan")


def tost(a: ArrayLike, b: ArrayLike, margin: float) -> float:
    """p-value of Welch's TOST that ``mean(b) - mean(a)`` lies inside ``(-margin, margin)``.

    ``statsmodels.stats.weightstats.ttost_ind`` with unequal variances: the larger of the
    two one-sided p-values; equivalence is claimed where it is below ``alpha``.

    Args:
        a: baseline runs.
        b: contender runs.
        margin: the equivalence margin (> 0), in the data's units.

    Returns:
        The p-value; NaN where Welch's test is undefined (fewer than 2 runs, a group that does
        not vary, infinite values) or the margin is not positive.

    Example:
        >>> p = tost([0.80, 0.81, 0.79, 0.80], [0.80, 0.80, 0.81, 0.79], margin=0.02)
        >>> bool(p < 0.05)
        True
    """
    x, y = sample(a), sample(b)
    if not (margin > 0) or not _welch_ok(x, y):
        return NAN
    return float(ttost_ind(y, x, -margin, margin, usevar="unequal")[0])


def tost_t(diff: float, se: float, df: float, margin: float) -> float:
    """TOST p-value for an estimate ``diff`` with standard error ``se`` and ``df`` degrees of
    freedom (a t statistic): what :func:`tost` computes, for estimates built elsewhere (the
    average effect across a sweep's settings)."""
    if not (margin > 0 and se > 0 and df > 0) or math.isnan(diff):
        return NAN
    lower = stats.t.sf((diff + margin) / se, df)  # H0: diff <= -margin
    upper = stats.t.cdf((diff - margin) / se, df)  # H0: diff >= +margin
    return float(max(lower, upper))
