"""Each ordering against the baseline at each point of a sweep: the difference, the test valid
for those runs, Holm's correction with intervals at the level each comparison was decided at,
an equivalence test, effect sizes, what the runs could detect and how many runs would.

Every number in a row agrees with every other: the interval excludes 0 exactly when the
comparison is significant after Holm, and the detectable difference is computed at that same
level, so it always exceeds a difference that was not detected.

Example:
    >>> rows = scored(bnorder.load("results/quickstart").trials)  # doctest: +SKIP
    >>> compare(rows, baseline="case1")[["arch", "ordering", "diff", "verdict"]]  # doctest: +SKIP
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from bnorder.analysis.difference import Difference, difference, mannwhitney
from bnorder.analysis.equivalence import tost
from bnorder.analysis.frames import (
    By,
    canonical,
    check_metric,
    direction,
    groups,
    orderings,
    resolve_by,
    table,
    values,
)
from bnorder.analysis.multiplicity import holm, holm_levels
from bnorder.analysis.power import min_detectable_difference, runs_needed
from bnorder.analysis.stats import cliffs_delta, hedges_g, prob_improvement, sample, std

if TYPE_CHECKING:  # sequential.py builds on this module
    from bnorder.analysis.sequential import StoppingRule

__all__ = ["DEFAULT_MARGIN", "VERDICTS", "compare", "decide", "pooled_sd", "verdict"]

# One accuracy point: below it, seed noise on a 10k test set (±0.4 points at 75%) and the
# spread between seeds dominate; a user who cares about less says so with --margin.
DEFAULT_MARGIN = 0.01
VERDICTS = ("better", "worse", "equivalent", "inconclusive", "untested")

COMPARE = ["baseline", "n_base", "n", "mean_base", "mean", "diff", "test", "p", "p_holm"]
COMPARE += ["level", "ci_low", "ci_high", "significant", "tost_p", "tost_p_holm", "equivalent"]
COMPARE += ["verdict", "mannwhitney_p", "mannwhitney_p_holm", "hedges_g", "cliffs_delta"]
COMPARE += ["prob_improvement", "sd_base", "sd", "min_detectable_diff", "target_diff"]
COMPARE += ["runs_needed", "note"]


def verdict(*, p: float, significant: bool, equivalent: bool, better: bool | None) -> str:
    """``equivalent`` (within the margin, shown by TOST: even if a real difference was also
    detected, it is too small to matter), ``better`` / ``worse`` (significant), else
    ``inconclusive``, or ``untested`` where no test could run."""
    if equivalent:
        return "equivalent"
    if significant and better is not None:
        return "better" if better else "worse"
    return "untested" if math.isnan(p) else "inconclusive"


def pooled_sd(a: np.ndarray, b: np.ndarray) -> float:
    """The pooled SD of two groups of runs (what planning assumes for both); NaN with fewer
    than 2 runs in a group or an infinite value."""
    if a.size < 2 or b.size < 2 or not np.all(np.isfinite(np.r_[a, b])):
        return math.nan
    df = a.size + b.size - 2
    return math.sqrt(((a.size - 1) * a.var(ddof=1) + (b.size - 1) * b.var(ddof=1)) / df)


def _row(a: np.ndarray, b: np.ndarray, margin: float, higher: bool) -> tuple[dict, Difference]:
    """The statistics of one contender (b) against the baseline (a) that need no correction."""
    a, b = sample(a), sample(b)
    d = difference(a, b)
    good_a, good_b = (a, b) if higher else (b, a)
    finite = np.all(np.isfinite(np.r_[a, b]))
    row = {
        "n_base": a.size,
        "n": b.size,
        "mean_base": float(a.mean()) if a.size and finite else math.nan,
        "mean": float(b.mean()) if b.size and finite else math.nan,
        "diff": d.diff,
        "test": d.test,
        "p": d.p,
        "tost_p": tost(a, b, margin),
        "mannwhitney_p": mannwhitney(a, b),
        "hedges_g": hedges_g(a, b),
        "cliffs_delta": cliffs_delta(a, b),
        "prob_improvement": prob_improvement(good_a, good_b),
        "sd_base": float(std(a)),
        "sd": float(std(b)),
        "note": d.note,
    }
    return row, d


def decide(
    rows: list[dict[str, Any]],
    tests: list[Difference],
    pooled: list[Any],
    *,
    alpha: float,
    higher: bool,
    target: float | None,
    rule: StoppingRule | None = None,
) -> None:
    """Fill each row's decision, Holm over all ``rows``: ``p_holm``, ``level`` and the interval
    at it, ``significant``, ``tost_p_holm`` and ``equivalent``, ``verdict``, ``target_diff``
    and ``runs_needed`` (planned with ``pooled`` SDs: one per row, or one per point).

    With a stopping ``rule`` (adaptive seeds), each row is decided at the nominal levels of
    the look its runs reached instead (Bonferroni over the rule's family,
    alpha spent over the looks); ``p_holm`` and ``tost_p_holm`` stay for reference."""
    p = np.array([r["p"] for r in rows], dtype=float)
    adjusted, levels = holm(p), holm_levels(p, alpha)
    tost_adj = holm([r["tost_p"] for r in rows])
    for r, d, p_holm, level, t_holm, sd in zip(
        rows, tests, adjusted, levels, tost_adj, pooled, strict=True
    ):
        r["p_holm"], r["tost_p_holm"] = p_holm, t_holm
        r["significant"], r["equivalent"] = bool(p_holm < alpha), bool(t_holm < alpha)
        if rule is not None:
            # fewer runs than the first look (failed runs): judged as at the first look
            k = max(0, rule.look(min(r["n_base"], r["n"])))
            level = rule.significance_levels[k]
            r["significant"] = bool(r["p"] < level)
            r["equivalent"] = bool(r["tost_p"] < rule.equivalence_levels[k])
        r["level"] = float(level)
        r["ci_low"], r["ci_high"] = d.ci(1 - level)
        shift = d.diff if not math.isnan(d.diff) else r.get("cliffs_delta", math.nan)
        better = None if math.isnan(shift) or shift == 0 else (shift > 0) == higher
        r["verdict"] = verdict(
            p=d.p, significant=r["significant"], equivalent=r["equivalent"], better=better
        )
        r["target_diff"] = abs(d.diff) if target is None else target
        if rule is None:
            r["runs_needed"] = runs_needed(r["target_diff"], sd, alpha=float(level))
        else:  # more runs than the design planned are a new study: at its last look's levels
            r["runs_needed"] = _sequential_runs(r["target_diff"], sd, rule)


def _sequential_runs(diff: float, sd: float, rule: StoppingRule) -> float:
    """Runs per ordering that settle a comparison left open by a sequential design: to show
    equivalence when the difference lies inside the margin (TOST: each one-sided test with
    90% power, both then at least 80%), else to detect the difference (80%)."""
    if abs(diff) < rule.margin:
        eq = rule.equivalence_levels[-1]
        return runs_needed(rule.margin - abs(diff), sd, alpha=2 * eq, power=0.9)
    return runs_needed(diff, sd, alpha=rule.significance_levels[-1])


def compare(
    df: pd.DataFrame,
    baseline: str = "conv-bn-relu",
    by: By = None,
    metric: str = "score",
    alpha: float = 0.05,
    margin: float = DEFAULT_MARGIN,
    target_diff: float | None = None,
    rule: StoppingRule | None = None,
) -> pd.DataFrame:
    """Each ordering against the baseline, within each group, corrected for multiplicity.

    Args:
        df: scored rows (:func:`~bnorder.analysis.frames.scored`).
        baseline: the reference ordering, any spelling or alias (``"case1"``).
        by: grouping columns; default :func:`~bnorder.analysis.frames.point_columns`.
        metric: the column compared; its :func:`~bnorder.analysis.frames.direction` says
            whether a positive difference is better.
        alpha: family-wise error rate over every row of the table (Holm).
        margin: equivalence margin in the metric's units (0.01 = one accuracy point).
        target_diff: the difference ``runs_needed`` plans for; default the observed one.
        rule: the stopping rule the runs were collected under (adaptive seeds): each row is
            decided at its look's nominal level (see :func:`decide`), with the rule's own
            alpha and margin.

    Returns:
        One row per group and contender: ``baseline``, ``n_base``, ``n``, ``mean_base``,
        ``mean``, ``diff`` (contender minus baseline), ``test`` (``welch``; ``permutation``
        when a group's runs do not vary; ``mann-whitney`` with infinite values; ``none``),
        its ``p`` and Holm-adjusted ``p_holm``; ``level``, the level Holm decided the row at,
        and the interval at ``1 - level`` (``ci_low``/``ci_high``: Welch only), which excludes
        0 exactly when ``significant`` (``p_holm < alpha``); ``tost_p``/``tost_p_holm`` and
        ``equivalent`` (the difference lies within ``±margin``); ``verdict`` (better, worse,
        equivalent, inconclusive, untested); ``mannwhitney_p`` (+``_holm``); ``hedges_g``,
        ``cliffs_delta`` (signed like ``diff``); ``prob_improvement`` (P(a contender run is
        *better* than a baseline run)); ``sd_base``, ``sd`` (ddof 1);
        ``min_detectable_diff``, the true difference this test detects with 80% power at
        ``level``; ``target_diff`` and ``runs_needed``, the runs per ordering (pooled SD as
        observed) to detect it with 80% power at ``level``; ``note`` (why a test is not
        Welch's). ``.attrs``: ``missing`` (groups without baseline runs), ``direction``,
        ``alpha``, ``margin``.

    Raises:
        ConfigError: an unknown baseline ordering, or a missing column.
    """
    check_metric(df, metric)
    if rule is not None:
        alpha, margin = rule.alpha, rule.margin  # the design's, which the sweep stopped on
    base, better = canonical(baseline), direction(df, metric)
    higher = better == "higher"
    cols, rows, tests, pooled, missing = resolve_by(df, by), [], [], [], []
    for key, g in groups(df, cols):
        if base not in set(g["ordering"]):
            missing.append(key)
            continue
        a = values(g, base, metric)
        for o in orderings(g):
            if o != base:
                b = values(g, o, metric)
                row, d = _row(a, b, margin, higher)
                rows.append({**key, "ordering": o, "baseline": base, **row})
                tests.append(d)
                pooled.append(pooled_sd(sample(a), sample(b)))
    if rows:
        decide(rows, tests, pooled, alpha=alpha, higher=higher, target=target_diff, rule=rule)
        for r, p in zip(rows, holm([r["mannwhitney_p"] for r in rows]), strict=True):
            r["mannwhitney_p_holm"] = p
        for r, d in zip(rows, tests, strict=True):
            r["min_detectable_diff"] = (
                min_detectable_difference(r["sd_base"], r["sd"], r["n_base"], r["n"], r["level"])
                if d.test == "welch"
                else math.nan
            )
    attrs = {"missing": missing, "direction": better, "alpha": alpha, "margin": margin}
    attrs["rule"] = rule
    return table(rows, [*cols, "ordering", *COMPARE], df, baseline=base, **attrs)
