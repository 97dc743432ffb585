"""Does an ordering effect hold up beyond one setting? Across archs (or datasets): same sign,
same ranking? Across protocols: does per-ordering tuning change the ranking a fixed lr gave?

Claims rest on what the runs resolve: an effect "reverses" only where it is significantly
better in one arch and significantly worse in another, and rank agreement is only tested where
the orderings are numerous enough for it to mean anything.
"""

from __future__ import annotations

import itertools
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from bnorder.analysis.comparisons import DEFAULT_MARGIN, compare
from bnorder.analysis.frames import (
    By,
    canonical,
    check_metric,
    finite,
    groups,
    orderings,
    point_columns,
    require,
    resolve_by,
    table,
    values,
)
from bnorder.analysis.validity import kendall_min_p, why_not

__all__ = ["Generalisation", "generalisation", "tuned_vs_fixed"]


@dataclass(frozen=True)
class Generalisation:
    """The two tables of :func:`generalisation`.

    Attributes:
        effects: one row per context, ``across`` value and contender: ``n``, ``n_base``,
            ``diff`` from the baseline there, its ``verdict`` there (from
            :func:`~bnorder.analysis.comparisons.compare`, Holm over the whole table), and per
            context and contender ``consistency``: ``"<verdict> in every <across>"`` when one
            resolved verdict holds everywhere, ``"reverses"`` when it is significantly better
            in one and significantly worse in another, else ``"unresolved"`` (a sign change of
            differences nobody resolved is noise, not a reversal).
        agreement: one row per context and pair of ``across`` values: ``n_orderings`` in
            both, Kendall's ``kendall_tau`` of their mean scores and ``kendall_p``, NaN (with
            a ``note``) where so few orderings can never agree significantly (2/n! is the
            smallest p: 5 orderings are needed at alpha = 0.05).
    """

    effects: pd.DataFrame
    agreement: pd.DataFrame


def _means(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Per ordering (index, in order of appearance): ``n``, ``mean`` and ``rank`` (1 = best)."""
    n, mean = {}, {}
    for o in orderings(df):
        x = finite(values(df, o, metric))
        n[o], mean[o] = x.size, float(x.mean()) if x.size else np.nan
    out = pd.DataFrame({"n": pd.Series(n, dtype=int), "mean": pd.Series(mean, dtype=float)})
    out["rank"] = out["mean"].rank(ascending=False, method="min")
    return out


def _consistency(verdicts: list[str], across: str) -> str:
    resolved = set(verdicts)
    if len(resolved) == 1 and resolved <= {"better", "worse", "equivalent"} and len(verdicts) > 1:
        return f"{verdicts[0]} in every {across}"
    if {"better", "worse"} <= resolved:
        return "reverses"
    return "unresolved"


def _agreement_rows(
    key: dict[str, object], means: dict[object, pd.DataFrame], across: str, alpha: float
) -> list[dict[str, Any]]:
    """Rows of ``agreement`` for one context: Kendall's tau for each pair of values."""
    rows = []
    for (va, ma), (vb, mb) in itertools.combinations(means.items(), 2):
        both = ma["mean"].dropna().index.intersection(mb["mean"].dropna().index)
        tau = p = np.nan
        note = ""
        if kendall_min_p(len(both)) >= alpha:
            need = f">= {_fewest_orderings(alpha)} orderings for p < {alpha:g} to be possible"
            note = why_not("rank agreement", need, f"{len(both)}")
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # constant ranks: NaN
                res = sps.kendalltau(ma.loc[both, "mean"], mb.loc[both, "mean"])
            tau, p = float(res.statistic), float(res.pvalue)
        rows.append(
            {**key, f"{across}_a": va, f"{across}_b": vb, "n_orderings": len(both)}
            | {"kendall_tau": tau, "kendall_p": p, "note": note}
        )
    return rows


def _fewest_orderings(alpha: float) -> int:
    n = 2
    while kendall_min_p(n) >= alpha:
        n += 1
    return n


def generalisation(
    df: pd.DataFrame,
    across: str = "arch",
    metric: str = "score",
    baseline: str = "conv-bn-relu",
    alpha: float = 0.05,
    margin: float = DEFAULT_MARGIN,
) -> Generalisation:
    """Whether each ordering's effect holds up across archs (or datasets), judged by what the
    runs resolve, not by the sign of noisy differences.

    Args:
        df: scored rows (:func:`bnorder.analysis.scored`).
        across: the column whose values should agree, e.g. ``"arch"`` or ``"dataset"``.
        metric: the column compared.
        baseline: the reference ordering (aliases accepted).
        alpha: family-wise error rate of the comparisons (Holm over the table).
        margin: equivalence margin of the comparisons.

    Returns:
        :class:`Generalisation`: ``effects`` and pairwise ``agreement`` tables, within each
        context (the other :func:`point_columns`, e.g. dataset when ``across="arch"``: a
        verdict never pools datasets).

    Raises:
        ConfigError: an unknown baseline or a missing column.
    """
    check_metric(df, metric)
    require(df, [across], "across")
    base = canonical(baseline)
    context = [c for c in point_columns(df) if c != across]
    cmp = compare(df, base, by=[*context, across], metric=metric, alpha=alpha, margin=margin)
    effects = []
    for key, rows in groups(cmp, [*context, "ordering"]) if len(cmp) else []:
        pattern = _consistency(list(rows["verdict"]), across)
        for _, r in rows.iterrows():
            effects.append(
                {**key, across: r[across], "n": r["n"], "n_base": r["n_base"]}
                | {"diff": r["diff"], "verdict": r["verdict"], "consistency": pattern}
            )
    agreement = []
    for key, g in groups(df, context):
        means = {k[across]: _means(h, metric) for k, h in groups(g, [across])}
        agreement += _agreement_rows(key, means, across, alpha)
    effect_cols = [*context, "ordering", across, "n", "n_base", "diff", "verdict", "consistency"]
    pair_cols = [*context, f"{across}_a", f"{across}_b", "n_orderings", "kendall_tau"]
    pair_cols += ["kendall_p", "note"]
    return Generalisation(
        table(effects, effect_cols, df, baseline=base),
        table(agreement, pair_cols, df, baseline=base),
    )


def _key(values: dict[str, object]) -> tuple[object, ...]:
    """A dict key that matches across frames: nulls folded to None."""
    return tuple(None if pd.isna(v) else v for v in values.values())


def _top(m: pd.DataFrame | None) -> object:
    if m is None or m["mean"].isna().all():
        return None
    return m["mean"].idxmax()


def tuned_vs_fixed(
    fixed: pd.DataFrame,
    tuned: pd.DataFrame,
    metric: str = "score",
    by: By = None,
) -> pd.DataFrame:
    """The ranking of orderings under a fixed lr next to the ranking after per-ordering tuning.

    Args:
        fixed: scored rows of a grid sweep (one ranking per fixed lr / grid setting).
        tuned: scored evaluate rows of a tuned sweep (each arm at its own best config).
        metric: the column ranked.
        by: the context both share; default :func:`point_columns` of ``tuned``.

    Returns:
        One row per context, fixed setting (``lr`` and any other grid axis of ``fixed``) and
        ordering: ``n_fixed``, ``mean_fixed``, ``rank_fixed``, ``n_tuned``, ``mean_tuned``,
        ``rank_tuned`` (1 = best; NaN where the ordering is absent), ``top_fixed``,
        ``top_tuned`` and ``top_changes``. ``.attrs["unmatched"]`` lists tuned contexts with
        no fixed rows.

    Raises:
        ConfigError: a missing column.
    """
    check_metric(fixed, metric)
    check_metric(tuned, metric)
    cols = resolve_by(tuned, by)
    require(fixed, cols, "by")
    settings = [c for c in dict.fromkeys(["lr", *point_columns(fixed)]) if c in fixed.columns]
    settings = [c for c in settings if c not in cols and c != "phase"]
    ranked = {_key(key): _means(g, metric) for key, g in groups(tuned, cols)}
    rows, seen = [], set()
    for key, g in groups(fixed, cols + settings):
        context = _key({c: key[c] for c in cols})
        seen.add(context)
        f, t = _means(g, metric), ranked.get(context)
        top_f, top_t = _top(f), _top(t)
        changes = pd.NA if top_f is None or top_t is None else top_f != top_t
        empty = pd.DataFrame(columns=["n", "mean", "rank"])
        t = empty if t is None else t
        for o in dict.fromkeys([*f.index, *t.index]):
            rows.append(
                {**key, "ordering": o}
                | _side(f, o, "fixed")
                | _side(t, o, "tuned")
                | {"top_fixed": top_f, "top_tuned": top_t, "top_changes": changes}
            )
    unmatched = [dict(zip(cols, k, strict=True)) for k in ranked if k not in seen]
    sides = [f"{s}_{name}" for name in ("fixed", "tuned") for s in ("n", "mean", "rank")]
    columns = [*cols, *settings, "ordering", *sides, "top_fixed", "top_tuned", "top_changes"]
    return table(rows, columns, tuned, unmatched=unmatched)


def _side(m: pd.DataFrame, ordering: object, name: str) -> dict[str, Any]:
    if ordering not in m.index:
        return {f"n_{name}": 0, f"mean_{name}": np.nan, f"rank_{name}": np.nan}
    r = m.loc[ordering]
    return {f"n_{name}": int(r["n"]), f"mean_{name}": r["mean"], f"rank_{name}": r["rank"]}
