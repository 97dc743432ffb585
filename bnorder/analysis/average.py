"""The average effect of an ordering over a sweep's points: the mean over points of each
point's mean difference from the baseline, with every point weighted equally.

Points are fixed (this sweep's grid), seeds are the noise: the question is "over these
settings, on average, does the contender score higher?", answered with the power of all runs.
Its standard error adds up the points' Welch variances; the degrees of freedom are
Welch-Satterthwaite's over all of them (:func:`~bnorder.analysis.power.average_se_df`), so one
point is exactly Welch's test. Where a point's runs do not vary (tied accuracies) or a point
has a single run, a stratified permutation test (labels shuffled within each point) gives an
exact p-value and no interval.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats

from bnorder.analysis.difference import PERMUTATIONS, Difference
from bnorder.analysis.power import average_se_df
from bnorder.analysis.stats import varies

__all__ = ["average_difference", "stratified_permutation"]

NAN = float("nan")
Pairs = Sequence[tuple[np.ndarray, np.ndarray]]  # (baseline runs, contender runs) per point


def _mean_of_diffs(pairs: Pairs) -> float:
    return float(np.mean([b.mean() - a.mean() for a, b in pairs]))


def stratified_permutation(pairs: Pairs, *, seed: int = 0, resamples: int = PERMUTATIONS) -> float:
    """Two-sided p-value of the mean over points of ``mean(b) - mean(a)``, permuting the
    baseline/contender labels within each point (seeded Monte Carlo, ``(1 + hits) / (1 +
    resamples)`` per side: valid at any number of resamples).

    Args:
        pairs: ``(a, b)`` runs per point; every point needs at least one run of each.
        seed: seeds the permutations.
        resamples: random permutations.

    Returns:
        The p-value; NaN when no run differs from another (nothing to permute) or a value is
        not finite.
    """
    pooled = [np.concatenate([a, b]) for a, b in pairs]
    if not pooled or not all(np.all(np.isfinite(x)) for x in pooled):
        return NAN
    if not any(varies(x) for x in pooled):
        return NAN
    rng = np.random.default_rng(seed)
    total = np.zeros(resamples)
    for (a, _), x in zip(pairs, pooled, strict=True):
        shuffled = rng.permuted(np.broadcast_to(x, (resamples, x.size)), axis=1)
        total += shuffled[:, a.size :].mean(axis=1) - shuffled[:, : a.size].mean(axis=1)
    total /= len(pairs)
    observed = _mean_of_diffs(pairs)
    tol = 1e-12 * max(1.0, abs(observed))  # equal sums of floats in another order
    upper = (1 + np.sum(total >= observed - tol)) / (1 + resamples)
    lower = (1 + np.sum(total <= observed + tol)) / (1 + resamples)
    return float(min(1.0, 2 * min(upper, lower)))


def average_difference(pairs: Pairs, *, seed: int = 0) -> Difference:
    """Test the average over points of ``mean(b) - mean(a)`` (module doc).

    Args:
        pairs: ``(a, b)`` runs per point (NaN-free); points missing either side are the
            caller's to drop.
        seed: seeds a permutation test.

    Returns:
        A :class:`~bnorder.analysis.difference.Difference` whose test is ``welch`` (Welch-
        Satterthwaite over the points, with an interval), ``permutation`` (stratified, no
        interval) or ``none``.
    """
    if not pairs or any(a.size == 0 or b.size == 0 for a, b in pairs):
        return Difference("none", NAN, NAN, note="a point lacks runs of one ordering")
    if not all(np.all(np.isfinite(np.r_[a, b])) for a, b in pairs):
        return Difference("none", NAN, NAN, note="infinite values: means undefined")
    diff = _mean_of_diffs(pairs)
    if all(a.size >= 2 and b.size >= 2 and varies(a) and varies(b) for a, b in pairs):
        sds = np.array([[a.std(ddof=1), b.std(ddof=1)] for a, b in pairs])
        sizes = np.array([[a.size, b.size] for a, b in pairs])
        se, df = average_se_df(sds[:, 0], sds[:, 1], sizes[:, 0], sizes[:, 1])
        p = 2 * float(stats.t.sf(abs(diff) / se, df))
        return Difference("welch", diff, min(1.0, p), se, df)
    p = stratified_permutation(pairs, seed=seed)
    if np.isnan(p):
        return Difference("none", diff, NAN, note="all runs identical: nothing to test")
    return Difference(
        "permutation",
        diff,
        p,
        note="a point has one run or runs that do not vary: stratified permutation test",
    )
