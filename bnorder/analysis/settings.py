"""Verdicts across settings: does an ordering beat the baseline over a sweep's points (dataset
× arch × depth × lr ...), not one cell at a time?

Three views, each valid at the n it is computed on (:mod:`bnorder.analysis.validity`):

- **Rankings** (Demšar 2006): each point ranks the orderings by mean score; the permutation
  Friedman test asks whether the rankings agree more than chance, Nemenyi's post-hoc test
  which pairs differ, drawn as a critical-difference diagram (:mod:`~bnorder.analysis.ranks`).
- **The average effect** over the points against the baseline, with its interval, Holm's
  correction across contenders, an equivalence test within ``±margin`` (TOST) and the runs per
  point that would detect it (:mod:`~bnorder.analysis.average`).
- **rliable aggregates** (Agarwal et al. 2021): IQM of all runs and the probability of
  improvement, with stratified-bootstrap intervals where they keep their coverage
  (:mod:`~bnorder.analysis.aggregate`).

Points are the sweep's own grid, so "in general" means "over these settings"; rows of
different phases (a fixed-lr grid and a tuned evaluation) are never pooled.

Example:
    >>> verdict = across_settings(scored(bnorder.load("results/lr_grid").trials))  # doctest: +SKIP
    >>> verdict.effects[["ordering", "diff", "ci_low", "ci_high", "verdict"]]  # doctest: +SKIP
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bnorder.analysis.aggregate import iqm_interval, poi_interval
from bnorder.analysis.average import average_difference
from bnorder.analysis.comparisons import DEFAULT_MARGIN, decide, pooled_sd
from bnorder.analysis.difference import Difference
from bnorder.analysis.equivalence import tost_t
from bnorder.analysis.frames import (
    canonical,
    check_metric,
    direction,
    groups,
    orderings,
    point_columns,
    table,
    values,
)
from bnorder.analysis.ranks import critical_difference, friedman, mean_ranks, nemenyi
from bnorder.analysis.stats import sample
from bnorder.analysis.validity import AGGREGATE_MIN, friedman_min_p, why_not

__all__ = ["AcrossSettings", "across_settings", "context_columns", "rows_in"]

FRIEDMAN = ["points", "dropped_points", "orderings", "statistic", "p", "exact", "min_p"]
FRIEDMAN += ["critical_difference", "note"]
ORDERINGS = ["points", "runs", "mean_rank", "mean", "iqm", "iqm_ci_low", "iqm_ci_high", "note"]
EFFECTS = ["baseline", "points", "runs", "diff", "test", "p", "p_holm", "level", "ci_low"]
EFFECTS += ["ci_high", "significant", "tost_p", "tost_p_holm", "equivalent", "verdict", "poi"]
EFFECTS += ["poi_ci_low", "poi_ci_high", "target_diff", "runs_needed", "note"]

Cells = dict[tuple[Any, ...], dict[str, np.ndarray]]  # point -> ordering -> runs


@dataclass(frozen=True)
class AcrossSettings:
    """The tables of :func:`across_settings`, one block per context (phase).

    Attributes:
        friedman: per context: ``points`` with every ordering (``dropped_points`` lack one),
            ``orderings``, Friedman ``statistic`` and permutation ``p`` (``exact`` when every
            arrangement was listed), ``min_p`` (the smallest p these points can give),
            Nemenyi's ``critical_difference`` of mean ranks, and a ``note``.
        orderings: per context and ordering over the complete points: ``mean_rank`` (1 =
            best), ``mean`` (of the points' means), ``iqm`` of all runs with its interval.
        effects: per context and contender: the average over points of its difference from
            the baseline (``diff``, its ``test``, ``p``, ``p_holm`` across the table,
            ``level`` and the interval at ``1 - level``), ``significant``, TOST within
            ``±margin`` (``tost_p``, ``tost_p_holm``, ``equivalent``), ``verdict``, the
            probability of improvement ``poi`` (P(a contender run is *better*), averaged over
            points) with its interval, and ``runs_needed`` per point to detect ``target_diff``
            with 80% power at ``level``.
        posthoc: context key -> Nemenyi p-values between orderings, where Friedman rejected.
    """

    friedman: pd.DataFrame
    orderings: pd.DataFrame
    effects: pd.DataFrame
    posthoc: dict[tuple[Any, ...], pd.DataFrame]

    @property
    def context(self) -> list[str]:
        """The columns that split the verdict into blocks (``phase``, or none)."""
        return [c for c in ("phase",) if c in self.friedman.columns]

    def blocks(self) -> list[tuple[dict[str, Any], pd.Series]]:
        """``(context key, its Friedman row)`` per block, in order."""
        return [({c: row[c] for c in self.context}, row) for _, row in self.friedman.iterrows()]


def rows_in(frame: pd.DataFrame, key: dict[str, Any]) -> pd.DataFrame:
    """The rows of ``frame`` in one block (``key`` from :meth:`AcrossSettings.blocks`)."""
    mask = pd.Series(True, index=frame.index)
    for column, value in key.items():
        mask &= frame[column] == value
    return frame[mask]


def context_columns(df: pd.DataFrame) -> list[str]:
    """The columns never pooled across points: ``phase`` when rows of several are present."""
    return [c for c in point_columns(df) if c == "phase"]


def _cells(g: pd.DataFrame, metric: str, context: list[str]) -> Cells:
    blocks = [c for c in point_columns(g) if c not in context]
    cells: Cells = {}
    for key, rows in groups(g, blocks):
        runs = {o: sample(values(rows, o, metric)) for o in orderings(rows)}
        cells[tuple(key.values())] = {o: x for o, x in runs.items() if x.size}
    return cells


def _fewest_points(k: int, alpha: float) -> int:
    t = 2
    while friedman_min_p(t, k) >= alpha and t < 1000:
        t += 1
    return t


def _friedman_row(matrix: np.ndarray, dropped: int, alpha: float, seed: int) -> dict[str, Any]:
    t, k = matrix.shape
    row = {"points": t, "dropped_points": dropped, "orderings": k, "statistic": math.nan}
    row |= {"p": math.nan, "exact": False, "min_p": friedman_min_p(t, k)}
    row["critical_difference"] = critical_difference(t, k, alpha) if k >= 2 else math.nan
    if k < 2:
        return row | {"note": "one ordering: nothing to rank"}
    if t < 2:
        need = why_not("ranking orderings across points", ">= 2 points with every ordering", f"{t}")
        return row | {"note": need}
    res = friedman(matrix, seed=seed)
    row |= {"statistic": res.statistic, "p": res.p, "exact": res.exact, "note": ""}
    if row["min_p"] >= alpha:
        need = f">= {_fewest_points(k, alpha)} points for p < {alpha:g} to be possible"
        row["note"] = why_not("the Friedman test", need, f"{t}, smallest p {row['min_p']:.3g}")
    return row


def _ordering_rows(
    cells: Cells,
    complete: list[tuple[Any, ...]],
    names: list[str],
    ranks: np.ndarray,
    level: float,
) -> list[dict[str, Any]]:
    rows = []
    for o, rank in zip(names, ranks, strict=True):
        strata = [cells[p][o] for p in complete]
        runs = min((s.size for s in strata), default=0)
        finite = all(np.all(np.isfinite(s)) for s in strata)
        est, low, high = iqm_interval(strata, level=level) if strata and finite else (math.nan,) * 3
        mean = float(np.mean([s.mean() for s in strata])) if strata and finite else math.nan
        note = _aggregate_note(len(strata), runs) if strata and math.isnan(low) else ""
        rows.append(
            {"ordering": o, "points": len(strata), "runs": runs, "mean_rank": rank}
            | {"mean": mean, "iqm": est, "iqm_ci_low": low, "iqm_ci_high": high, "note": note}
        )
    return rows


def _aggregate_note(points: int, runs: int) -> str:
    need = " or ".join(f">= {p} points with >= {r} runs" for p, r in AGGREGATE_MIN)
    return why_not("a bootstrap interval", need, f"{points} with >= {runs}")


def _effect_row(
    cells: Cells, base: str, o: str, *, higher: bool, level: float, margin: float
) -> tuple[dict[str, Any], Difference, list[float]]:
    """One contender's average effect over the points both it and the baseline ran, and the
    pooled SD at each of those points (for planning runs)."""
    pairs = [(runs[base], runs[o]) for runs in cells.values() if base in runs and o in runs]
    d = average_difference(pairs)
    good = [(a, b) if higher else (-a, -b) for a, b in pairs]
    finite = all(np.all(np.isfinite(np.r_[a, b])) for a, b in pairs)
    poi, low, high = math.nan, math.nan, math.nan
    if good and finite:
        poi, low, high = poi_interval(*zip(*good, strict=True), level=level)
    runs = min((min(a.size, b.size) for a, b in pairs), default=0)
    notes = [d.note, _aggregate_note(len(good), runs) if good and math.isnan(low) else ""]
    row = {"ordering": o, "baseline": base, "points": len(pairs), "runs": runs, "diff": d.diff}
    row |= {"test": d.test, "p": d.p, "tost_p": tost_t(d.diff, d.se, d.df, margin)}
    row |= {"poi": poi, "poi_ci_low": low, "poi_ci_high": high}
    row |= {"note": "; ".join(n for n in notes if n)}
    return row, d, [pooled_sd(a, b) for a, b in pairs]


def across_settings(
    df: pd.DataFrame,
    baseline: str = "conv-bn-relu",
    metric: str = "score",
    alpha: float = 0.05,
    margin: float = DEFAULT_MARGIN,
    target_diff: float | None = None,
    seed: int = 0,
) -> AcrossSettings:
    """Rankings, average effects and aggregates of the orderings over a sweep's points.

    Args:
        df: scored rows (:func:`~bnorder.analysis.frames.scored`).
        baseline: the ordering every other is compared with (aliases accepted).
        metric: the column compared; its direction decides ranks and "better".
        alpha: family-wise error rate (Holm over the effects table; Friedman's level).
        margin: equivalence margin in the metric's units.
        target_diff: the difference ``runs_needed`` plans for; default the observed one.
        seed: seeds permutation tests and bootstraps.

    Returns:
        :class:`AcrossSettings`.

    Raises:
        ConfigError: an unknown baseline or a missing column.
    """
    check_metric(df, metric)
    base, higher = canonical(baseline), direction(df, metric) == "higher"
    context = context_columns(df)
    fried, ords, effects, tests, pooled, posthoc = [], [], [], [], [], {}
    for key, g in groups(df, context):
        cells = _cells(g, metric, context)
        names = orderings(g)
        complete = [p for p, runs in cells.items() if all(o in runs for o in names)]
        sign = 1.0 if higher else -1.0
        matrix = np.array([[sign * cells[p][o].mean() for o in names] for p in complete]).reshape(
            len(complete), len(names)
        )
        row = _friedman_row(matrix, len(cells) - len(complete), alpha, seed)
        fried.append({**key, **row})
        ranks = mean_ranks(matrix) if complete else np.full(len(names), math.nan)
        ords += [{**key, **r} for r in _ordering_rows(cells, complete, names, ranks, 1 - alpha)]
        if row["p"] < alpha:
            posthoc[tuple(key.values())] = nemenyi(matrix, names)
        if base in names:
            for o in names:
                if o != base:
                    r, d, sds = _effect_row(
                        cells, base, o, higher=higher, level=1 - alpha, margin=margin
                    )
                    effects.append({**key, **r})
                    tests.append(d)
                    pooled.append(sds)
    if effects:
        decide(effects, tests, pooled, alpha=alpha, higher=higher, target=target_diff)
    attrs = {
        "baseline": base,
        "direction": "higher" if higher else "lower",
        "alpha": alpha,
        "margin": margin,
    }
    return AcrossSettings(
        table(fried, [*context, *FRIEDMAN], df, **attrs),
        table(ords, [*context, "ordering", *ORDERINGS], df, **attrs),
        table(effects, [*context, "ordering", *EFFECTS], df, **attrs),
        posthoc,
    )
