"""Holm's step-down correction, and the per-comparison levels that agree with it.

An interval shown next to a Holm-adjusted p-value must be adjusted the same way, or the two
contradict each other ("not significant" beside a 95% interval that excludes 0). Holm tests
the j-th smallest of m p-values at ``alpha / (m - j + 1)`` and stops at the first it cannot
reject; :func:`holm_levels` gives each comparison the level it was decided at, so its
``1 - level`` interval excludes 0 exactly when Holm rejects it.
"""

from __future__ import annotations

import numpy as np

from bnorder.analysis.stats import ArrayLike

__all__ = ["holm", "holm_levels"]


def holm(pvalues: ArrayLike) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values: the i-th smallest of m becomes
    ``max over j <= i of min(1, (m - j + 1) p_(j))``.

    The numbers of ``statsmodels``' ``multipletests(method="holm")`` (the tests check), without
    its cost: it runs ``gc.collect()`` on every call, 25-130 ms in a process holding torch,
    which the calibration's thousands of families cannot afford.

    Args:
        pvalues: raw p-values in any order; NaN ones stay NaN and do not count in m.

    Returns:
        Adjusted p-values in the input's order; Holm rejects where ``adjusted < alpha``.

    Example:
        >>> holm([0.01, 0.04, 0.03]).round(2).tolist()
        [0.03, 0.06, 0.06]
    """
    p = np.asarray(pvalues, dtype=float).ravel()
    out = np.full(p.shape, np.nan)
    finite = np.flatnonzero(~np.isnan(p))
    order = finite[np.argsort(p[finite], kind="stable")]
    scaled = (order.size - np.arange(order.size)) * p[order]
    out[order] = np.minimum(1.0, np.maximum.accumulate(scaled))
    return out


def holm_levels(pvalues: ArrayLike, alpha: float) -> np.ndarray:
    """The significance level Holm's procedure decided each comparison at.

    A rejected comparison at step j gets ``alpha / (m - j + 1)`` (its raw p is below it); every
    comparison from the first retained one on gets that first retained step's level (their raw
    p-values are all above it). So ``p < level`` exactly when Holm rejects, and an interval at
    ``1 - level`` excludes 0 exactly then.

    Args:
        pvalues: raw p-values; NaN ones get a NaN level and do not count in m.
        alpha: the family-wise error rate.

    Returns:
        One level per p-value, in the input's order.

    Example:
        >>> holm_levels([0.001, 0.04, 0.03], 0.05).round(4).tolist()
        [0.0167, 0.025, 0.025]
    """
    p = np.asarray(pvalues, dtype=float).ravel()
    out = np.full(p.shape, np.nan)
    finite = np.flatnonzero(~np.isnan(p))
    order = finite[np.argsort(p[finite], kind="stable")]
    m = order.size
    steps = alpha / (m - np.arange(m))  # alpha/m, alpha/(m-1), ..., alpha
    failed = np.flatnonzero(p[order] >= steps)
    stop = failed[0] if failed.size else m
    out[order[:stop]] = steps[:stop]
    out[order[stop:]] = steps[stop] if stop < m else np.nan
    return out
