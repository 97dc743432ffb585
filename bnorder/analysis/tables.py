"""Per-ordering tables: tidy pandas in, tidy pandas out, one row per group and ordering.

Every table takes the rows of :func:`~bnorder.analysis.frames.scored` (or any frame with
``ordering`` and the metric column), groups them by ``by`` (default
:func:`~bnorder.analysis.frames.point_columns`: dataset, arch and whatever else varies) and
never pools different experimental points. Quantities not valid at the runs there are come
out as NaN, with a ``note`` saying why. Comparisons with the baseline live in
:mod:`bnorder.analysis.comparisons`, verdicts across points in :mod:`bnorder.analysis.settings`.

Example:
    >>> from bnorder.analysis import scored, summary
    >>> rows = scored(bnorder.load("results/quickstart").trials)  # doctest: +SKIP
    >>> summary(rows)[["arch", "ordering", "n", "mean", "t_ci_low", "t_ci_high"]]  # doctest: +SKIP
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from bnorder.analysis import stats
from bnorder.analysis.frames import (
    By,
    check_metric,
    finite,
    groups,
    orderings,
    point_columns,
    resolve_by,
    scored,
    table,
    values,
)
from bnorder.analysis.multiplicity import holm
from bnorder.analysis.validity import MIN_RUNS_SPREAD_TEST, why_not

__all__ = ["brown_forsythe", "seed_table", "stability", "summary"]


SUMMARY = ["n", "mean", "std", "sem", "median", "iqm", "t_ci_low", "t_ci_high", "min", "max"]
SUMMARY += ["n_diverged", "note"]
STABILITY = ["n", "std", "std_ci_low", "std_ci_high", "brown_forsythe_p"]
STABILITY += ["brown_forsythe_p_holm", "note"]


def _describe(x: np.ndarray, level: float) -> dict[str, Any]:
    """n, location, spread and a t interval of the mean of one ordering's runs."""
    x = stats.sample(x)
    n, some, finite = x.size, x.size > 0, bool(np.all(np.isfinite(x)))
    sd = float(stats.std(x)) if n >= 2 else np.nan
    t_low, t_high = stats.t_ci(x, level=level)
    note = "" if finite else f"{int(np.sum(~np.isfinite(x)))} infinite: mean and sd undefined"
    return {
        "n": n,
        "mean": float(x.mean()) if some and finite else np.nan,
        "std": sd,
        "sem": sd / np.sqrt(n) if n >= 2 else np.nan,
        "median": float(np.median(x)) if some else np.nan,
        "iqm": float(stats.iqm(x)) if finite else np.nan,
        "t_ci_low": t_low,
        "t_ci_high": t_high,
        "min": float(x.min()) if some else np.nan,
        "max": float(x.max()) if some else np.nan,
        "note": note,
    }


def summary(
    df: pd.DataFrame, by: By = None, metric: str = "score", level: float = 0.95
) -> pd.DataFrame:
    """Per group and ordering: how many runs, their centre and spread, a CI of the mean.

    Args:
        df: scored rows (:func:`scored`).
        by: grouping columns; default :func:`point_columns`.
        metric: the column summarised.
        level: the confidence level of the t interval.

    Returns:
        One row per group and ordering: ``by`` columns, ``ordering``, ``n`` (runs with a
        score), ``mean``, ``std`` (sample SD, ddof 1), ``sem``, ``median``, ``iqm``,
        ``t_ci_low``/``t_ci_high`` (Student's t interval of the mean at ``level``: exact for
        normal runs at any n, where a percentile bootstrap covers 47% at n = 2), ``min``,
        ``max``, ``n_diverged`` (diverged runs, counted in ``n`` with their score) and
        ``note`` (infinite values: mean-based columns are NaN).

    Raises:
        ConfigError: a ``by`` or ``metric`` column is missing.
    """
    check_metric(df, metric)
    cols, rows = resolve_by(df, by), []
    for key, g in groups(df, cols):
        for o in orderings(g):
            runs = g[g["ordering"] == o]
            diverged = int((runs["status"] == "diverged").sum()) if "status" in runs else 0
            described = _describe(values(g, o, metric), level)
            rows.append({**key, "ordering": o, **described, "n_diverged": diverged})
    return table(rows, [*cols, "ordering", *SUMMARY], df, level=level)


def brown_forsythe(samples: dict[str, np.ndarray]) -> tuple[float, str]:
    """Brown-Forsythe p-value of equal spread across orderings, or NaN and why not."""
    fewest = min((x.size for x in samples.values()), default=0)
    if len(samples) < 2:
        return np.nan, "one ordering: nothing to compare"
    if not all(np.all(np.isfinite(x)) for x in samples.values()):
        return np.nan, "infinite values: spreads undefined"
    if fewest < MIN_RUNS_SPREAD_TEST:
        need = f">= {MIN_RUNS_SPREAD_TEST} runs per ordering"
        return np.nan, why_not("the Brown-Forsythe test", need, f"{fewest}")
    if not any(stats.varies(x) for x in samples.values()):
        return np.nan, "no ordering's runs vary"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(sps.levene(*samples.values(), center="median").pvalue), ""


def stability(
    df: pd.DataFrame, by: By = None, metric: str = "score", level: float = 0.95
) -> pd.DataFrame:
    """Run-to-run spread per ordering, and whether it differs between orderings.

    Args:
        df: scored rows (:func:`scored`).
        by: grouping columns; default :func:`point_columns`.
        metric: the column whose spread is measured.
        level: the confidence level of the SD's interval.

    Returns:
        One row per group and ordering: ``n``, ``std`` (ddof 1) with its chi-square interval
        at ``level`` (``std_ci_low``/``std_ci_high``: exact for normal runs at any n; with 3
        runs its top is 6x the SD), and per group ``brown_forsythe_p`` (Levene around the
        median: equal spread across the group's orderings) with its Holm adjustment across
        groups (``brown_forsythe_p_holm``). The test needs
        :data:`~bnorder.analysis.validity.MIN_RUNS_SPREAD_TEST` runs per ordering (at 2 it
        always answers p = 0, at 3 it can never reject); below that it is NaN and ``note``
        says why.
    """
    check_metric(df, metric)
    cols, blocks = resolve_by(df, by), []
    for key, g in groups(df, cols):
        samples = {o: stats.sample(values(g, o, metric)) for o in orderings(g)}
        blocks.append((key, samples, *brown_forsythe(samples)))
    adjusted = holm([p for _, _, p, _ in blocks])
    rows = []
    for (key, samples, p, note), p_holm in zip(blocks, adjusted, strict=True):
        for o, x in samples.items():
            low, high = stats.std_ci(x, level=level)
            rows.append(
                {**key, "ordering": o, "n": x.size, "std": float(stats.std(x))}
                | {"std_ci_low": low, "std_ci_high": high, "brown_forsythe_p": p}
                | {"brown_forsythe_p_holm": p_holm, "note": note}
            )
    return table(rows, [*cols, "ordering", *STABILITY], df, level=level)


def seed_table(
    trials: pd.DataFrame,
    by: Sequence[str] = ("dataset", "arch"),
    metric: str = "final_test_acc",
    ddof: int = 0,
) -> pd.DataFrame:
    """The seed notebook's results table: every run's accuracy, then mean and std, in percent.

    The notebook scored each run by its last epoch's test accuracy (``final_test_acc``, the
    default here) and printed ``np.std``, i.e. ddof 0; ``ddof=1`` gives the sample SD instead.

    Args:
        trials: trials (filtered as :func:`scored` does) or scored rows.
        by: the columns naming a table block; any other :func:`point_columns` that varies
            (an lr grid, say) is added, so runs of different settings never share a row.
        metric: the accuracy column (a fraction in [0, 1]).
        ddof: delta degrees of freedom of ``Std (%)``; 0 matches the seed notebook.

    Returns:
        One row per ``by`` and ordering: ``Run 1`` … ``Run K`` (percent, by increasing seed;
        NaN where an ordering has fewer runs), ``Mean (%)`` and ``Std (%)`` (NaN for one run).

    Raises:
        ConfigError: a ``by`` or ``metric`` column is missing.
    """
    df = scored(trials, metric=metric)
    by = resolve_by(df, [*by, *(c for c in point_columns(df) if c not in by)])
    rows = []
    for key, g in groups(df, by):
        for o in orderings(g):
            x = finite(values(g, o, "score")) * 100
            runs = {f"Run {i}": v for i, v in enumerate(x, start=1)}
            mean = float(x.mean()) if x.size else np.nan
            std = float(np.std(x, ddof=ddof)) if x.size >= 2 else np.nan
            rows.append({**key, "ordering": o, **runs, "Mean (%)": mean, "Std (%)": std})
    k = max((sum(c.startswith("Run ") for c in r) for r in rows), default=0)
    runs = [f"Run {i}" for i in range(1, k + 1)]
    return table(rows, [*by, "ordering", *runs, "Mean (%)", "Std (%)"], df, ddof=ddof)
