"""Findings across a sweep's points, in words: whether the orderings rank differently
(Friedman, Nemenyi), and each contender's average effect over the points, its equivalence
within the margin, its probability of improvement, and the runs per point a verdict needs."""

from __future__ import annotations

import math

import pandas as pd

from bnorder.analysis.settings import AcrossSettings, rows_in
from bnorder.report.wording import Units, level_text, p_text, runs_text, where

__all__ = ["across_findings"]

_TESTS = {"welch": "Welch-Satterthwaite", "permutation": "stratified permutation"}


def _resolved_pairs(order: list[str], posthoc: pd.DataFrame | None, alpha: float) -> str:
    pairs = [
        f"{a} ahead of {b} ({p_text(posthoc.loc[a, b])})"
        for i, a in enumerate(order)
        for b in order[i + 1 :]
        if posthoc is not None and posthoc.loc[a, b] < alpha
    ]
    return "Nemenyi resolves " + ("; ".join(pairs) if pairs else "no single pair")


def _ranking(
    row: pd.Series, ranks: pd.DataFrame, posthoc: pd.DataFrame | None, alpha: float
) -> str:
    if math.isnan(row.p):
        return f"Rankings across points not tested: {row.note}."
    order = ranks.sort_values("mean_rank")
    listed = ", ".join(f"{o} {r:.2f}" for o, r in zip(order.ordering, order.mean_rank, strict=True))
    head = f"Over the {int(row.points)} points with every ordering"
    kind = "exact" if row.exact else "Monte-Carlo"
    test = f"Friedman {p_text(row.p)}, {kind} permutation test"
    if row.p >= alpha:
        note = f"; {row.note}" if row.note else ""
        return (
            f"{head}, no evidence that the orderings rank differently ({test}{note}); "
            f"mean rank (1 = best): {listed}."
        )
    pairs = _resolved_pairs(list(order.ordering), posthoc, alpha)
    return (
        f"{head}, the orderings rank differently ({test}); mean rank (1 = best): {listed}. "
        f"{pairs} (critical difference {row.critical_difference:.2f} ranks)."
    )


def _poi(r: pd.Series) -> str:
    if math.isnan(r.poi):
        return ""
    ci = "" if math.isnan(r.poi_ci_low) else f" [{r.poi_ci_low:.2f}, {r.poi_ci_high:.2f}]"
    return f"; P(a run of it beats a baseline run) {r.poi:.2f}{ci}"


def _effect(r: pd.Series, units: Units, margin: float, alpha: float) -> str:
    head = f"On average over {int(r.points)} points, {r.ordering}"
    ci = ""
    if not math.isnan(r.ci_low):
        ci = f", {level_text(r.level)} CI {units.interval(r.ci_low, r.ci_high)}"
    test = _TESTS.get(r.test, r.test)
    evidence = f"{units.diff(r['diff'])}{ci}; {test} {p_text(r.p_holm)} after Holm"
    evidence += f"; {int(r.runs)}+ runs per point{_poi(r)}"
    if r.verdict in ("better", "worse"):
        return (
            f"{head} is {r.verdict} than {r.baseline} ({evidence}) — significant at "
            f"alpha={alpha:g}."
        )
    if r.verdict == "equivalent":
        real = ""
        if r.significant:
            real = f"; a real difference ({test} {p_text(r.p_holm)} after Holm), inside the margin"
        return (
            f"{head} and {r.baseline} are equivalent within ±{units.size(margin)} "
            f"({units.diff(r['diff'])}; TOST {p_text(r.tost_p_holm)} after Holm{real}{_poi(r)})."
        )
    if r.verdict == "inconclusive":
        plan = "no difference observed to plan for"
        if r.target_diff > 0:
            needed = runs_text(r.runs_needed)
            what = "the target" if r.target_diff != abs(r["diff"]) else "the observed"
            plan = f"detecting {what} {units.size(r.target_diff)} needs {needed} per ordering "
            plan += "and point"
        return f"{head} vs {r.baseline}: not resolved ({evidence}); {plan}."
    return f"{head} vs {r.baseline}: not tested ({r.note})."


def across_findings(verdict: AcrossSettings, units: Units) -> list[str]:
    """Sentences for :func:`~bnorder.analysis.across_settings`: per context (phase), the
    ranking, then each contender's average effect."""
    alpha = verdict.friedman.attrs.get("alpha", 0.05)
    margin = verdict.friedman.attrs.get("margin", math.nan)
    lines = []
    for key, row in verdict.blocks():
        prefix = f"{where(row, list(key))}: " if key else ""
        posthoc = verdict.posthoc.get(tuple(key.values()))
        lines.append(prefix + _ranking(row, rows_in(verdict.orderings, key), posthoc, alpha))
        for _, r in rows_in(verdict.effects, key).iterrows():
            lines.append(prefix + _effect(r, units, margin, alpha))
    return lines
