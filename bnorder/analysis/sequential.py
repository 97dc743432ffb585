"""How many seeds: stopping rules that add runs until a comparison is clear, without the
false positives of "stop when it looks significant".

Two rules (Jennison & Turnbull 2000, *Group Sequential Methods*):

- **verdict** (``until: verdict``): stop adding runs to a comparison once it is significant
  or equivalent within the margin.
- **precision** (``until: {ci_halfwidth: h}``): stop once its interval is at most ``h`` on
  each side, whatever the difference.

Both are decided as a group-sequential test. A comparison is looked at after each batch
(``n = min, min + step, ..., max`` runs per ordering). Lan-DeMets alpha spending of
O'Brien-Fleming type gives each look a nominal level, small early and close to alpha at the
last look, so that over all looks the false-positive rate stays at alpha whenever the runs
stop. Equivalence (TOST within the margin) spends its alpha the same way. Bonferroni splits
alpha over the ``comparisons`` of the family. The interval at a look's level is the repeated
confidence interval: it excludes 0 exactly when the look rejects, and covers at
``1 - alpha`` over all looks.

The precision rule needs this too. Its width depends on the runs' spread only, yet stopping
when the spread happens to be small inflates the t statistic: Welch's fixed-n test at the
stopping n rejected 6-8% of true nulls at alpha = 0.05 (simulated in
``tests/analysis/test_sequential.py``).

Example:
    >>> rule = StoppingRule(min_n=3, max_n=9, step=2, until="verdict")
    >>> rule.looks
    (3, 5, 7, 9)
    >>> [round(x, 4) for x in rule.significance_levels]
    [0.0002, 0.0052, 0.0204, 0.0431]
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import numpy as np
from scipy import integrate, optimize, stats

from bnorder.analysis.comparisons import DEFAULT_MARGIN, verdict
from bnorder.analysis.difference import difference
from bnorder.analysis.equivalence import tost
from bnorder.analysis.stats import ArrayLike, sample

__all__ = ["Call", "StoppingRule", "obrien_fleming_bounds"]

Until = Literal["verdict", "precision"]
_GRID = 2001  # points of the numerical integration per look: bounds to ~1e-6 (tests check)


def obrien_fleming_bounds(fractions: ArrayLike, alpha: float) -> np.ndarray:
    """One-sided z boundaries of a group-sequential design with Lan-DeMets O'Brien-Fleming
    spending ``alpha(t) = 2 - 2 Phi(z_{1 - alpha / 2} / sqrt(t))``.

    The probability of first crossing at look k under the null equals the alpha spent between
    looks k-1 and k; it is computed by numerical integration over the continuation region
    (Armitage, McPherson & Rowe 1969), so the numbers are deterministic.

    Args:
        fractions: information fractions of the looks, increasing, the last one 1 (runs at
            the look over runs at the last look).
        alpha: one-sided level spent over all looks.

    Returns:
        The z boundary of each look: reject at look k when the z statistic exceeds it.

    Example:
        >>> obrien_fleming_bounds([0.2, 0.4, 0.6, 0.8, 1.0], 0.025).round(3).tolist()
        [4.877, 3.357, 2.68, 2.29, 2.031]
    """
    t = np.asarray(fractions, dtype=float)
    if t.size == 0 or np.any(np.diff(t) <= 0) or t[0] <= 0 or not math.isclose(t[-1], 1.0):
        raise ValueError(f"fractions must increase to 1, got {t.tolist()}")
    spent = 2 * stats.norm.sf(stats.norm.isf(alpha / 2) / np.sqrt(t))
    spent[-1] = alpha
    spend = np.diff(spent, prepend=0.0)
    bounds = np.empty(t.size)
    # S_k = Z_k sqrt(t_k) has independent N(0, t_k - t_{k-1}) increments; `mass` is the
    # density of S_{k-1} times the integration weights over the region not yet stopped
    grid, mass = np.zeros(1), np.ones(1)
    previous = 0.0
    for k, info in enumerate(t):
        sd = math.sqrt(info - previous)

        b = optimize.brentq(
            _excess, grid.min() - 10 * sd, grid.max() + 40 * sd, (grid, mass, sd, spend[k]), 1e-12
        )
        bounds[k] = b / math.sqrt(info)
        new = np.linspace(-12 * math.sqrt(info), b, _GRID)
        density = mass @ stats.norm.pdf((new[None, :] - grid[:, None]) / sd) / sd
        weights = integrate.simpson(np.eye(_GRID), x=new, axis=1)
        grid, mass, previous = new, density * weights, info
    return bounds


def _excess(b: float, grid: np.ndarray, mass: np.ndarray, sd: float, target: float) -> float:
    """Probability of first crossing ``b`` at this look, minus the alpha it may spend."""
    return float(mass @ stats.norm.sf((b - grid) / sd)) - target


@dataclass(frozen=True)
class Call:
    """The rule's answer for one comparison at its current runs."""

    n: int  # runs per ordering the look used (the smaller group)
    done: bool  # no more runs for this comparison
    verdict: str  # better, worse, equivalent, inconclusive or untested, at this look's level
    level: float  # two-sided level of the look (its interval is at 1 - level)
    reason: str  # one phrase: why done or not


@dataclass(frozen=True)
class StoppingRule:
    """When to stop adding runs (seeds) to the orderings of a comparison.

    Args:
        min_n: runs every ordering gets first.
        max_n: runs no ordering exceeds.
        step: runs added per batch to an ordering whose comparison is still open.
        until: ``"verdict"`` (group-sequential test) or ``"precision"`` (interval width).
        halfwidth: the precision rule's target half-width, in the metric's units.
        alpha: two-sided family-wise level of the comparisons.
        margin: equivalence margin of the verdict rule, in the metric's units.
        comparisons: comparisons in the family; the verdict rule gives each ``alpha / m``.
    """

    min_n: int
    max_n: int
    step: int
    until: Until = "verdict"
    halfwidth: float | None = None
    alpha: float = 0.05
    margin: float = DEFAULT_MARGIN
    comparisons: int = 1

    def __post_init__(self) -> None:
        if not 2 <= self.min_n <= self.max_n or self.step < 1:
            raise ValueError(f"need 2 <= min <= max and step >= 1, got {self}")
        if self.until == "precision" and not (self.halfwidth and self.halfwidth > 0):
            raise ValueError("the precision rule needs a positive halfwidth")

    @property
    def looks(self) -> tuple[int, ...]:
        """Runs per ordering at each look: min, min + step, ..., and max."""
        return (*range(self.min_n, self.max_n, self.step), self.max_n)

    def look(self, n: int) -> int:
        """Index of the last look ``n`` runs have reached; -1 before the first."""
        return int(np.searchsorted(self.looks, n, side="right")) - 1

    @cached_property
    def _fractions(self) -> np.ndarray:
        return np.asarray(self.looks, dtype=float) / self.max_n

    @cached_property
    def significance_levels(self) -> tuple[float, ...]:
        """Two-sided nominal level of each look (verdict rule)."""
        one_sided = self.alpha / self.comparisons / 2
        z = obrien_fleming_bounds(self._fractions, one_sided)
        return tuple(float(2 * stats.norm.sf(b)) for b in z)

    @cached_property
    def equivalence_levels(self) -> tuple[float, ...]:
        """Nominal level of each look's two one-sided tests (TOST; verdict rule)."""
        z = obrien_fleming_bounds(self._fractions, self.alpha / self.comparisons)
        return tuple(float(stats.norm.sf(b)) for b in z)

    def describe(self) -> str:
        """The rule in one sentence, for reports and dry runs."""
        runs = f"{self.min_n} to {self.max_n} seeds per ordering, {self.step} at a time"
        until = (
            f"the interval of each difference is within ±{_points(self.halfwidth or 0)}"
            if self.until == "precision"
            else f"each comparison is significant or equivalent within ±{_points(self.margin)}"
        )
        return (
            f"{runs}, until {until} (group-sequential: O'Brien-Fleming alpha spending over "
            f"looks at n = {', '.join(map(str, self.looks))}, alpha {self.alpha:g} split over "
            f"{self.comparisons} comparison{'s' * (self.comparisons != 1)})"
        )

    def call(self, a: ArrayLike, b: ArrayLike, *, higher: bool = True) -> Call:
        """Whether the comparison of contender ``b`` with baseline ``a`` needs more runs.

        Args:
            a: the baseline ordering's runs (NaN dropped).
            b: the contender's runs.
            higher: whether a higher metric is better (accuracy) or lower (loss).

        Returns:
            :class:`Call`. ``done`` at max runs, or when the rule is met at the current look.
        """
        x, y = sample(a), sample(b)
        n = min(x.size, y.size)
        k = self.look(n)
        at_max = n >= self.max_n
        if k < 0:
            return Call(n, at_max, "untested", math.nan, "too few")
        level = self.significance_levels[k]
        d = difference(x, y)
        significant = d.p < level
        equivalent = tost(x, y, self.margin) < self.equivalence_levels[k]
        better = None if math.isnan(d.diff) or d.diff == 0 else (d.diff > 0) == higher
        v = verdict(p=d.p, significant=significant, equivalent=equivalent, better=better)
        if self.until == "precision":
            low, high = d.ci(1 - level)
            half = (high - low) / 2
            met = half <= (self.halfwidth or 0)
            reason = f"±{_points(half)}" if not math.isnan(half) else "no interval"
        else:
            met = v in ("better", "worse", "equivalent")
            reason = v if met else "open"
        return Call(n, met or at_max, v, level, reason if met or not at_max else "max")


def _points(x: float) -> str:
    return f"{100 * x:.2g} point{'' if abs(100 * x) == 1 else 's'}"
