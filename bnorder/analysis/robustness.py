"""Does an ordering effect hold up beyond one setting? Across archs (or datasets): same sign,
same ranking? Across protocols: does per-ordering tuning change the ranking a fixed lr gave?

Rankings here are by mean score: with a handful of runs a rank swap can be noise, so read
them next to :func:`bnorder.analysis.compare`, which says which differences are resolved.
"""

from __future__ import annotations

import itertools
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

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

__all__ = ["Generalisation", "generalisation", "tuned_vs_fixed"]


@dataclass(frozen=True)
class Generalisation:
    """The two tables of :func:`generalisation`.

    Attributes:
        effects: one row per context, ``across`` value and ordering: ``n``, ``mean``,
            ``effect`` (mean minus the baseline's mean there), ``rank`` (1 = highest mean) and
            ``same_sign``: whether the ordering's effect has one sign in every ``across``
            value where both it and the baseline ran (NA with fewer than 2 such values, and
            for the baseline itself).
        agreement: one row per context and pair of ``across`` values (``<across>_a``,
            ``<across>_b``): ``n_orderings`` in both, Kendall's ``kendall_tau`` of their
            mean scores and its ``kendall_p`` (with 3 orderings the smallest possible p is
            0.33: agreement of 3 ranks is weak evidence by itself).
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


def _same_sign(effects: list[float]) -> Any:
    """One nonzero sign in every value where it is defined; NA with fewer than 2 values."""
    signs = np.sign([e for e in effects if not np.isnan(e)])
    if signs.size < 2:
        return pd.NA
    return bool(signs[0] != 0 and np.all(signs == signs[0]))


def _effect_rows(
    key: dict[str, object], means: dict[object, pd.DataFrame], across: str, base: str
) -> list[dict[str, Any]]:
    """Rows of ``effects`` for one context: ``means`` maps each ``across`` value to _means."""
    rows = []
    for v, m in means.items():
        base_mean = m["mean"].get(base, np.nan)
        for o, r in m.iterrows():
            stat = {"n": int(r["n"]), "mean": r["mean"], "effect": r["mean"] - base_mean}
            rows.append({**key, across: v, "ordering": o, **stat, "rank": r["rank"]})
    by_ordering: dict[object, list[float]] = {}
    for row in rows:
        by_ordering.setdefault(row["ordering"], []).append(row["effect"])
    for row in rows:
        same = _same_sign(by_ordering[row["ordering"]])
        row["same_sign"] = pd.NA if row["ordering"] == base else same
    return rows


def _agreement_rows(
    key: dict[str, object], means: dict[object, pd.DataFrame], across: str
) -> list[dict[str, Any]]:
    """Rows of ``agreement`` for one context: Kendall's tau for each pair of values."""
    rows = []
    for (va, ma), (vb, mb) in itertools.combinations(means.items(), 2):
        both = ma["mean"].dropna().index.intersection(mb["mean"].dropna().index)
        tau = p = np.nan
        if len(both) >= 2:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # constant ranks: NaN
                res = sps.kendalltau(ma.loc[both, "mean"], mb.loc[both, "mean"])
            tau, p = float(res.statistic), float(res.pvalue)
        rows.append(
            {**key, f"{across}_a": va, f"{across}_b": vb, "n_orderings": len(both)}
            | {"kendall_tau": tau, "kendall_p": p}
        )
    return rows


def generalisation(
    df: pd.DataFrame,
    across: str = "arch",
    metric: str = "score",
    baseline: str = "conv-bn-relu",
) -> Generalisation:
    """Whether the orderings' effects keep their sign and rank across archs (or datasets).

    Args:
        df: scored rows (:func:`bnorder.analysis.scored`).
        across: the column whose values should agree, e.g. ``"arch"`` or ``"dataset"``.
        metric: the column compared.
        baseline: the reference ordering of ``effect`` (aliases accepted).

    Returns:
        :class:`Generalisation`: ``effects`` and pairwise ``agreement`` tables, within each
        context (the other :func:`point_columns`, e.g. dataset when ``across="arch"``).

    Raises:
        ConfigError: an unknown baseline or a missing column.
    """
    check_metric(df, metric)
    require(df, [across], "across")
    base = canonical(baseline)
    context = [c for c in point_columns(df) if c != across]
    effects, agreement = [], []
    for key, g in groups(df, context):
        means = {k[across]: _means(h, metric) for k, h in groups(g, [across])}
        effects += _effect_rows(key, means, across, base)
        agreement += _agreement_rows(key, means, across)
    effect_cols = [*context, across, "ordering", "n", "mean", "effect", "rank", "same_sign"]
    pair_cols = [*context, f"{across}_a", f"{across}_b", "n_orderings", "kendall_tau", "kendall_p"]
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
