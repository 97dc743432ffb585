"""Findings in words, generated from the numbers: what is significant at the chosen level, what
is not (and whether n could have detected it), and what the probes say where they differ."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from bnorder.analysis.stats import holm, welch

__all__ = ["comparison_findings", "generalisation_findings", "probe_findings", "stability_findings"]

PROBES = {  # column at the last epoch -> how to say it
    "norm_in_skew_mean": "norm-input skewness",
    "norm_in_zero_frac_mean": "fraction of norm inputs exactly zero",
    "act_dead_frac_mean": "dead-channel fraction",
    "grad_norm_mean": "per-block gradient norm",
}


def _where(row: pd.Series, keys: list[str]) -> str:
    return ", ".join(f"{row[k]}" if k in ("dataset", "arch") else f"{k}={row[k]}" for k in keys)


def _span(n: pd.Series) -> str:
    lo, hi = int(n.min()), int(n.max())
    return str(lo) if lo == hi else f"{lo}–{hi}"


def _pct(x: float) -> str:
    return f"{100 * x:+.1f} points"


def comparison_findings(table: pd.DataFrame, keys: list[str], alpha: float) -> list[str]:
    """One sentence per comparison in ``compare()``'s table."""
    lines = []
    for _, r in table.iterrows():
        where = _where(r, keys)
        ci = f"95% CI [{_pct(r.welch_ci_low)}, {_pct(r.welch_ci_high)}]"
        n = f"n={int(r.n)} vs {int(r.n_base)}"
        if r.significant:
            better = "better" if r["diff"] > 0 else "worse"
            lines.append(
                f"{where}: {r.ordering} is {better} than {r.baseline} by {_pct(r['diff'])} ({ci}; "
                f"Welch p={r.welch_p_holm:.3g} after Holm; Cliff's delta {r.cliffs_delta:+.2f}; "
                f"{n}) — significant at alpha={alpha}."
            )
            continue
        detect = r.min_detectable_diff
        if math.isnan(detect):
            power = "too few runs to estimate what could be detected"
        elif abs(r["diff"]) < detect:
            power = (
                f"with this spread, {n} can only detect differences of about {100 * detect:.1f} "
                f"points or more, larger than the {abs(100 * r['diff']):.1f} observed"
            )
        else:
            power = f"differences of {100 * detect:.1f} points were detectable with {n}"
        lines.append(
            f"{where}: no detectable difference between {r.ordering} and {r.baseline} "
            f"({_pct(r['diff'])}, {ci}, Welch p={r.welch_p_holm:.3g} after Holm; {n}); {power}."
        )
    return lines


def stability_findings(table: pd.DataFrame, keys: list[str], alpha: float) -> list[str]:
    """Is the run-to-run spread different between orderings (Brown–Forsythe per group)?"""
    lines = []
    for _, rows in table.groupby(keys, sort=False):
        where = _where(rows.iloc[0], keys)
        p = rows.brown_forsythe_p.iloc[0]
        spreads = ", ".join(
            f"{o} {100 * s:.2f}" for o, s in zip(rows.ordering, rows["std"], strict=True)
        )
        if math.isnan(p):
            lines.append(f"{where}: spread not testable (an ordering has < 2 runs); sd: {spreads}.")
        elif p < alpha:
            lines.append(
                f"{where}: run-to-run spread differs between orderings (Brown–Forsythe "
                f"p={p:.3g}); sd in points: {spreads}."
            )
        else:
            lines.append(
                f"{where}: no evidence that any ordering is more stable (Brown–Forsythe p={p:.3g}, "
                f"n={_span(rows.n)} per ordering); sd in points: {spreads}."
            )
    return lines


def generalisation_findings(
    effects: pd.DataFrame, agreement: pd.DataFrame, across: str
) -> list[str]:
    """Does each ordering's effect keep its sign across archs (or datasets)?"""
    lines = []
    for ordering, rows in effects[effects.effect.ne(0) | effects.same_sign.notna()].groupby(
        "ordering", sort=False
    ):
        if rows.same_sign.isna().all():
            continue
        parts = ", ".join(f"{a} {_pct(e)}" for a, e in zip(rows[across], rows.effect, strict=True))
        verdict = "keeps its sign" if bool(rows.same_sign.iloc[0]) else "changes sign"
        lines.append(f"{ordering} vs the baseline {verdict} across {across}s ({parts}).")
    for _, r in agreement.iterrows():
        lines.append(
            f"Rank agreement of the orderings between {r[f'{across}_a']} and {r[f'{across}_b']}: "
            f"Kendall tau {r.kendall_tau:+.2f} over {int(r.n_orderings)} orderings "
            f"(p={r.kendall_p:.3g})."
        )
    return lines


def probe_findings(curves: pd.DataFrame, baseline: str, keys: list[str], alpha: float) -> list[str]:
    """Probe differences vs the baseline at the last epoch, tested across trials (Welch, Holm over
    every probe comparison made); only significant differences become sentences."""
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
                    tests.append((group, ordering, label, a.mean(), b.mean(), welch(a, b)))
    if not tests:
        return []
    adjusted = holm(np.array([t[-1] for t in tests]))
    lines = []
    for (group, ordering, label, ma, mb, _), p in zip(tests, adjusted, strict=True):
        if not p < alpha:
            continue
        where = ", ".join(map(str, group if isinstance(group, tuple) else (group,)))
        ratio = f" ({mb / ma:.1f}x)" if min(ma, mb) > 1e-3 else ""  # no ratios of ~0
        lines.append(
            f"{where}: {label} is {mb:.3g} for {ordering} vs {ma:.3g} for {baseline}{ratio} "
            f"at the last epoch (Welch p={p:.3g} after Holm)."
        )
    return lines
