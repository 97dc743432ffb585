"""Statistics of results that hold up at the 2-5 seeds people run: which trials count, per-
ordering summaries, comparisons against a baseline corrected for multiplicity, verdicts across
a sweep's points (rankings, average effects, equivalence, rliable aggregates), how many runs
would settle a question, run-to-run stability, and the seed notebook's table.

Every interval and test here was simulated at 2, 3, 5 and 10 runs (``python -m
bnorder.analysis.calibration`` prints the table); where one does not hold its promise at the
n it is given it is not computed, and a ``note`` says what it would need. No plotting and no
rendering here (that is :mod:`bnorder.report`).

Example:
    >>> import bnorder
    >>> from bnorder.analysis import across_settings, compare, scored, summary
    >>> rows = scored(bnorder.load("results/quickstart").trials)  # doctest: +SKIP
    >>> compare(rows, baseline="case1")  # doctest: +SKIP
    >>> across_settings(rows, baseline="case1").effects  # doctest: +SKIP
"""

from __future__ import annotations

from bnorder.analysis.aggregate import iqm_interval, poi_interval, score_distribution
from bnorder.analysis.average import average_difference, stratified_permutation
from bnorder.analysis.comparisons import DEFAULT_MARGIN, compare
from bnorder.analysis.coverage import Coverage, coverage
from bnorder.analysis.difference import (
    Difference,
    difference,
    mannwhitney,
    permutation,
    welch,
    welch_ci,
)
from bnorder.analysis.equivalence import tost, tost_t
from bnorder.analysis.frames import (
    RESULT_PHASES,
    RESULT_STATUSES,
    direction,
    point_columns,
    scored,
)
from bnorder.analysis.multiplicity import holm, holm_levels
from bnorder.analysis.power import (
    min_detectable_difference,
    runs_needed,
    welch_power,
)
from bnorder.analysis.ranks import critical_difference, friedman, mean_ranks, nemenyi
from bnorder.analysis.robustness import Generalisation, generalisation, tuned_vs_fixed
from bnorder.analysis.sequential import StoppingRule, obrien_fleming_bounds
from bnorder.analysis.settings import AcrossSettings, across_settings
from bnorder.analysis.stats import (
    cliffs_delta,
    hedges_g,
    iqm,
    prob_improvement,
    std,
    std_ci,
    t_ci,
    varies,
)
from bnorder.analysis.tables import seed_table, stability, summary

__all__ = [
    "DEFAULT_MARGIN",
    "RESULT_PHASES",
    "RESULT_STATUSES",
    "AcrossSettings",
    "Coverage",
    "Difference",
    "Generalisation",
    "StoppingRule",
    "across_settings",
    "average_difference",
    "cliffs_delta",
    "compare",
    "coverage",
    "critical_difference",
    "difference",
    "direction",
    "friedman",
    "generalisation",
    "hedges_g",
    "holm",
    "holm_levels",
    "iqm",
    "iqm_interval",
    "mannwhitney",
    "mean_ranks",
    "min_detectable_difference",
    "nemenyi",
    "obrien_fleming_bounds",
    "permutation",
    "poi_interval",
    "point_columns",
    "prob_improvement",
    "runs_needed",
    "score_distribution",
    "scored",
    "seed_table",
    "stability",
    "std",
    "std_ci",
    "stratified_permutation",
    "summary",
    "t_ci",
    "tost",
    "tost_t",
    "tuned_vs_fixed",
    "varies",
    "welch",
    "welch_ci",
    "welch_power",
]
