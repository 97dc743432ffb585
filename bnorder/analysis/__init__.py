"""Statistics of results that hold up: which trials count, per-ordering summaries with
bootstrap intervals, comparisons against a baseline corrected for multiplicity, run-to-run
stability, whether effects generalise across archs and survive tuning, and the seed notebook's
table. No plotting and no rendering here (that is :mod:`bnorder.report`).

Example:
    >>> import bnorder
    >>> from bnorder.analysis import compare, scored, summary
    >>> rows = scored(bnorder.load("results/quickstart").trials)  # doctest: +SKIP
    >>> summary(rows)  # doctest: +SKIP
    >>> compare(rows, baseline="case1")  # doctest: +SKIP
"""

from __future__ import annotations

from bnorder.analysis.coverage import Coverage, coverage
from bnorder.analysis.frames import RESULT_PHASES, RESULT_STATUSES, point_columns, scored
from bnorder.analysis.robustness import Generalisation, generalisation, tuned_vs_fixed
from bnorder.analysis.stats import (
    bootstrap_ci,
    cliffs_delta,
    cohens_d,
    diff_ci,
    holm,
    iqm,
    mannwhitney,
    min_detectable_difference,
    prob_improvement,
    std,
    std_ci,
    t_ci,
    welch,
    welch_ci,
)
from bnorder.analysis.tables import compare, seed_table, stability, summary

__all__ = [
    "RESULT_PHASES",
    "RESULT_STATUSES",
    "Coverage",
    "Generalisation",
    "bootstrap_ci",
    "cliffs_delta",
    "cohens_d",
    "compare",
    "coverage",
    "diff_ci",
    "generalisation",
    "holm",
    "iqm",
    "mannwhitney",
    "min_detectable_difference",
    "point_columns",
    "prob_improvement",
    "scored",
    "seed_table",
    "stability",
    "std",
    "std_ci",
    "summary",
    "t_ci",
    "tuned_vs_fixed",
    "welch",
    "welch_ci",
]
