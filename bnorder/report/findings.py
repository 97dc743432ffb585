"""Findings in words, generated from the numbers of :mod:`bnorder.analysis`, one point of a
sweep at a time: each contender against the baseline (difference, equivalence, or what it
would take to resolve), spreads, whether effects hold across archs, and the probes.

Every sentence quotes the interval at the level its decision was made at, so a sentence never
contradicts its own numbers: "not resolved" always comes with an interval that contains 0 and
a detectable difference larger than the one observed.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from bnorder.analysis.difference import difference
from bnorder.analysis.multiplicity import holm
from bnorder.report.wording import Units, level_text, p_text, runs_text, where

__all__ = [
    "comparison_findings",
    "generalisation_findings",
    "probe_findings",
    "stability_findings",
]

PROBES = {  # column at the last epoch -> how to say it
    "norm_in_skew_mean": "norm-input skewness",
    "norm_in_zero_frac_mean": "fraction of norm inputs exactly zero",
    "act_dead_frac_mean": "dead-channel fraction",
    "grad_norm_mean": "per-block gradient norm",
}
_TEST_NAMES = {"welch": "Welch", "permutation": "exact permutation", "mann-whitney": "Mann-Whitney"}


def _n(r: pd.Series) -> str:
    return f"n={int(r.n)} vs {int(r.n_base)}"


def _evidence(r: pd.Series, units: Units, sequential: bool = False) -> str:
    """``+1.8 points, 98.3% CI [-7.1, +10.7], Welch p=0.40 after Holm; n=3 vs 3``; under a
    group-sequential design the raw p against the look's nominal level."""
    test = _TEST_NAMES.get(r.test, r.test)
    ci = "" if math.isnan(r.ci_low) else f", {level_text(r.level)} CI "
    ci += "" if math.isnan(r.ci_low) else units.interval(r.ci_low, r.ci_high)
    p = (
        f"{p_text(r.p)} against the look's level {r.level:.2g}"
        if sequential
        else f"{p_text(r.p_holm)} after Holm"
    )
    text = f"{units.diff(r['diff'])}{ci}; {test} {p}; {_n(r)}"
    return f"{text}; {r.note}" if r.note else text


def _more_seeds(r: pd.Series) -> str:
    """``needs about 12 more seeds per ordering`` (beyond the runs it has)."""
    if math.isnan(r.runs_needed) or math.isinf(r.runs_needed):
        return f"needs {runs_text(r.runs_needed)} per ordering"
    return f"needs about {max(1, int(r.runs_needed) - int(min(r.n, r.n_base)))} more seeds"


def _unresolved(r: pd.Series, units: Units, targeted: bool) -> str:
    """What the runs could detect, and how many runs would detect the difference in view."""
    out = []
    if not math.isnan(r.min_detectable_diff):
        detectable = units.size(r.min_detectable_diff)
        out.append(f"these runs detect (80% power) only differences of {detectable} or more")
    what = "the target" if targeted else "the observed"
    if r.target_diff > 0 and not math.isnan(r.target_diff):
        out.append(
            f"{what} {units.size(r.target_diff)} needs {runs_text(r.runs_needed)} per ordering"
        )
    else:
        out.append("no difference observed to plan for (set --target-diff)")
    return "; ".join(out)


def comparison_findings(
    table: pd.DataFrame, keys: list[str], units: Units, *, targeted: bool = False
) -> list[str]:
    """One sentence per row of :func:`~bnorder.analysis.compare`'s table, by its verdict."""
    margin = table.attrs.get("margin", math.nan)
    rule = table.attrs.get("rule")
    seq = rule is not None
    alpha = f"alpha={table.attrs.get('alpha', 0.05):g}"
    decided = f"at the group-sequential boundary ({alpha} over the design)" if seq else ""
    lines = []
    for _, r in table.iterrows():
        head = f"{where(r, keys)}: {r.ordering}"
        if r.verdict in ("better", "worse"):
            lines.append(
                f"{head} is {r.verdict} than {r.baseline} ({_evidence(r, units, seq)}) — "
                f"significant {decided or f'at {alpha} after Holm'}."
            )
        elif r.verdict == "equivalent":
            real = ""
            if r.significant:
                test = _TEST_NAMES.get(r.test, r.test)
                p = p_text(r.p) if seq else p_text(r.p_holm)
                real = f"; a real difference ({test} {p}), inside the margin"
            tost = f"{p_text(r.tost_p)} {decided}" if seq else f"{p_text(r.tost_p_holm)} after Holm"
            lines.append(
                f"{head} and {r.baseline} are equivalent within ±{units.size(margin)} "
                f"({units.diff(r['diff'])}, TOST {tost}{real}; {_n(r)})."
            )
        elif r.verdict == "inconclusive" and seq:
            at_max = min(r.n, r.n_base) >= rule.max_n
            stop = f"stopped at the maximum of {rule.max_n} seeds" if at_max else "still open"
            goal = (
                f"to show equivalence within ±{units.size(margin)} if the true difference is "
                f"the observed {units.diff(r['diff'])}"
                if abs(r.target_diff) < margin
                else f"to detect the observed {units.size(r.target_diff)}"
            )
            lines.append(
                f"{head} vs {r.baseline}: not resolved, {stop} "
                f"({_evidence(r, units, seq)}); {_more_seeds(r)} {goal}."
            )
        elif r.verdict == "inconclusive":
            lines.append(
                f"{head} vs {r.baseline}: not resolved ({_evidence(r, units)}); "
                f"{_unresolved(r, units, targeted)}."
            )
        else:
            lines.append(f"{head} vs {r.baseline}: not tested ({r.note}).")
    return lines


def stability_findings(table: pd.DataFrame, keys: list[str], units: Units) -> list[str]:
    """Does the run-to-run spread differ between orderings (Brown–Forsythe, Holm over groups)?"""
    alpha = table.attrs.get("alpha", 0.05)
    level = level_text(1 - table.attrs.get("level", 0.95))
    lines = []
    for _, rows in table.groupby(keys, sort=False, dropna=False):
        first = rows.iloc[0]
        spreads = ", ".join(
            f"{o} {units.size(s)} ({level} CI {units.span(lo, hi)})"
            if not math.isnan(s)
            else f"{o} –"
            for o, s, lo, hi in zip(
                rows.ordering, rows["std"], rows.std_ci_low, rows.std_ci_high, strict=True
            )
        )
        p = first.brown_forsythe_p_holm
        if math.isnan(p):
            verdict = f"spreads not compared: {first.note}"
        elif p < alpha:
            verdict = f"run-to-run spread differs between orderings (Brown–Forsythe {p_text(p)})"
        else:
            verdict = f"no evidence that spreads differ (Brown–Forsythe {p_text(p)})"
        lines.append(f"{where(first, keys)}: {verdict}; sd: {spreads}.")
    return lines


def generalisation_findings(
    effects: pd.DataFrame, agreement: pd.DataFrame, across: str
) -> list[str]:
    """Does each ordering's effect hold across archs (or datasets), as far as runs resolve?"""
    lines = []
    context = [
        c
        for c in effects.columns
        if c not in {across, "ordering", "n", "n_base", "diff", "verdict", "consistency"}
    ]
    for _, rows in effects.groupby([*context, "ordering"], sort=False, dropna=False):
        first = rows.iloc[0]
        base = effects.attrs.get("baseline", "the baseline")
        prefix = f"{where(first, context)}: " if context else ""
        detail = ", ".join(f"{a}: {v}" for a, v in zip(rows[across], rows.verdict, strict=True))
        if first.consistency == "reverses":
            text = f"{first.ordering} vs {base} reverses across {across}s ({detail})"
        elif first.consistency == "unresolved":
            text = f"{first.ordering} vs {base} is not resolved across {across}s ({detail})"
        else:
            text = f"{first.ordering} is {first.consistency} vs {base} ({detail})"
        lines.append(prefix + text + ".")
    for _, r in agreement[agreement.kendall_p.notna()].iterrows():
        lines.append(
            f"Rank agreement of the orderings between {r[f'{across}_a']} and {r[f'{across}_b']}: "
            f"Kendall tau {r.kendall_tau:+.2f} over {int(r.n_orderings)} orderings "
            f"({p_text(r.kendall_p)})."
        )
    return lines


def probe_findings(curves: pd.DataFrame, baseline: str, keys: list[str], alpha: float) -> list[str]:
    """Probe differences vs the baseline at the last epoch, tested across trials (Welch, or the
    exact permutation test where a probe does not vary; Holm over every probe comparison);
    only significant differences become sentences."""
    if not any(c in curves and curves[c].notna().any() for c in PROBES):
        return []
    last = curves[curves.epoch == curves.groupby("trial_id").epoch.transform("max")]
    tests = []
    for group, rows in last.groupby(keys, sort=False):
        base = rows[rows.ordering == baseline]
        for ordering, other in rows[rows.ordering != baseline].groupby("ordering", sort=False):
            for column, label in PROBES.items():
                a, b = base[column].dropna().to_numpy(), other[column].dropna().to_numpy()
                if len(a) >= 2 and len(b) >= 2:
                    d = difference(a, b)
                    tests.append((group, ordering, label, a.mean(), b.mean(), d.test, d.p))
    if not tests:
        return []
    adjusted = holm(np.array([t[-1] for t in tests]))
    lines = []
    for (group, ordering, label, ma, mb, test, _), p in zip(tests, adjusted, strict=True):
        if not p < alpha:
            continue
        place = ", ".join(map(str, group if isinstance(group, tuple) else (group,)))
        ratio = f" ({mb / ma:.1f}x)" if min(ma, mb) > 1e-3 else ""  # no ratios of ~0
        lines.append(
            f"{place}: {label} is {mb:.3g} for {ordering} vs {ma:.3g} for {baseline}{ratio} "
            f"at the last epoch ({_TEST_NAMES.get(test, test)} {p_text(p)} after Holm)."
        )
    return lines
