"""Figures of the verdict across a sweep's points: the critical-difference diagram of mean
ranks (Demšar 2006, drawn by ``scikit-posthocs``), performance profiles and the aggregate
intervals of rliable (Agarwal et al. 2021). One colour per ordering, as in every figure."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import scikit_posthocs as sp
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from bnorder.analysis.aggregate import score_distribution
from bnorder.analysis.frames import point_columns
from bnorder.analysis.settings import AcrossSettings, rows_in
from bnorder.report import style
from bnorder.report.style import ordering_colors, sort_orderings

__all__ = ["aggregate_intervals", "cd_diagram", "performance_profiles"]


def cd_diagram(verdict: AcrossSettings) -> Figure | None:
    """Mean rank of each ordering over the points (1 = best); a bar joins orderings that
    Nemenyi's test does not resolve apart (all of them when Friedman did not reject).

    Returns:
        One panel per context (phase) with at least 2 points and 2 orderings, or None.
    """
    alpha = verdict.friedman.attrs.get("alpha", 0.05)
    drawable = [(k, row) for k, row in verdict.blocks() if row.points >= 2 and row.orderings >= 2]
    if not drawable:
        return None
    fig = Figure(figsize=(8.5, 1.9 * len(drawable) + 0.4), layout="constrained")
    axes = fig.subplots(len(drawable), 1, squeeze=False).ravel()
    for ax, (key, row) in zip(axes, drawable, strict=True):
        ranks = rows_in(verdict.orderings, key).set_index("ordering")["mean_rank"]
        names = list(ranks.index)
        sig = verdict.posthoc.get(tuple(key.values()))
        if sig is None:  # Friedman did not reject: no pair is resolved
            sig = pd.DataFrame(1.0, index=names, columns=names)
        sp.critical_difference_diagram(
            ranks, sig, ax=ax, alpha=alpha, color_palette=ordering_colors(names)
        )
        verdict_text = "rankings differ" if row.p < alpha else "no pair resolved"
        where = f"{' · '.join(map(str, key.values()))}: " if key else ""
        ax.set_title(
            f"{where}mean rank over {int(row.points)} points (1 = best); Friedman p={row.p:.2g}: "
            f"{verdict_text}; bars join orderings Nemenyi cannot tell apart",
            fontsize=9,
        )
    return fig


def performance_profiles(
    scored: pd.DataFrame, verdict: AcrossSettings, *, metric: str = "score"
) -> Figure | None:
    """For each threshold, the fraction of runs scoring better than it, every point weighted
    equally (rliable's score distribution); one panel per context with 2 or more points."""
    higher = verdict.friedman.attrs.get("direction", "higher") == "higher"
    panels = [(k, rows_in(scored, k)) for k, r in verdict.blocks() if r.points >= 2]
    if not panels:
        return None
    fig, axes = style.grid(len(panels), ncols=2)
    blocks = [c for c in point_columns(scored) if c not in verdict.context]
    for ax, (key, rows) in zip(axes.ravel(), panels, strict=False):
        values = rows[metric].to_numpy(dtype=float)
        values = values[np.isfinite(values)]
        taus = np.linspace(values.min(), values.max(), 200)
        for o in sort_orderings(rows["ordering"]):
            mine = rows[rows["ordering"] == o]
            strata = [
                g[metric].to_numpy(dtype=float) for _, g in mine.groupby(blocks, dropna=False)
            ]
            strata = [s[np.isfinite(s)] for s in strata if np.isfinite(s).any()]
            sign = 1.0 if higher else -1.0
            dist = score_distribution([sign * s for s in strata], sign * taus)
            ax.plot(taus, dist, color=ordering_colors([o])[o], lw=1.8, label=o)
        better = ">" if higher else "<"
        ax.set(xlabel=style.metric_label(scored.attrs.get("metric", metric)))
        ax.set(ylabel=f"fraction of runs with score {better} τ", ylim=(-0.02, 1.02))
        ax.set_title(" · ".join(map(str, key.values())) or "all points", fontsize=10)
        ax.grid(alpha=0.3)
    style.legend(fig, sort_orderings(scored["ordering"]))
    style.suptitle(fig, "Performance profiles")
    return fig


def aggregate_intervals(verdict: AcrossSettings) -> Figure | None:
    """IQM per ordering and probability of improvement over the baseline, with their
    stratified-bootstrap intervals; None unless some interval could be computed."""
    ords, eff = verdict.orderings, verdict.effects
    if ords["iqm_ci_low"].isna().all() and eff["poi_ci_low"].isna().all():
        return None
    fig = Figure(figsize=(9.0, 0.5 * max(len(ords), 2) + 1.6), layout="constrained")
    left, right = fig.subplots(1, 2)
    for ax, frame, col, label in (
        (left, ords, "iqm", "IQM of all runs"),
        (right, eff, "poi", f"P(run beats {eff.attrs.get('baseline', 'baseline')})"),
    ):
        names = [str(o) for o in frame["ordering"]]
        colors = ordering_colors(names)
        y = np.arange(len(frame))
        for i, (_, r) in enumerate(frame.iterrows()):
            low, high = r[f"{col}_ci_low"], r[f"{col}_ci_high"]
            if not math.isnan(low):
                ax.plot([low, high], [i, i], color=colors[str(r.ordering)], lw=6, alpha=0.5)
            ax.plot([r[col]], [i], "o", color=colors[str(r.ordering)])
        ax.set_yticks(y, names)
        ax.xaxis.set_major_locator(MaxNLocator(5))
        ax.set_xlabel(label)
        ax.grid(axis="x", alpha=0.3)
    right.axvline(0.5, color="0.5", ls=":", lw=1)
    level = 100 * (1 - verdict.effects.attrs.get("alpha", 0.05))
    style.suptitle(fig, f"Aggregates over points, with {level:g}% stratified-bootstrap intervals")
    return fig
