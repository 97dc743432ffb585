"""Tables of results: tidy pandas in, tidy pandas out, one row per group and ordering.

Every table takes the rows of :func:`scored` (or any frame with ``ordering`` and the metric
column), groups them by ``by`` (default :func:`point_columns`: dataset, arch and whatever else
varies) and never pools different experimental points. Quantities that need more runs than
there are come out as NaN. The tables across archs/datasets and protocols live in
:mod:`bnorder.analysis.robustness` and are re-exported here.

Example:
    >>> from bnorder.analysis import compare, scored
    >>> rows = scored(bnorder.load("results/quickstart").trials)  # doctest: +SKIP
    >>> compare(rows, baseline="case1")[["arch", "ordering", "diff"]]  # doctest: +SKIP
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
    canonical,
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
from bnorder.analysis.robustness import Generalisation, generalisation, tuned_vs_fixed

__all__ = [
    "Generalisation",
    "compare",
    "generalisation",
    "point_columns",
    "scored",
    "seed_table",
    "stability",
    "summary",
    "tuned_vs_fixed",
]


SUMMARY = ["n", "mean", "std", "sem", "median", "iqm", "ci_low", "ci_high", "t_ci_low", "t_ci_high"]
SUMMARY += ["min", "max", "n_diverged"]
COMPARE = ["baseline", "n_base", "n", "mean_base", "mean", "diff", "diff_ci_low", "diff_ci_high"]
COMPARE += ["welch_ci_low", "welch_ci_high", "welch_p", "welch_p_holm", "mannwhitney_p"]
COMPARE += ["mannwhitney_p_holm", "cohens_d", "cliffs_delta", "prob_improvement", "sd_base", "sd"]
COMPARE += ["significant", "min_detectable_diff"]
STABILITY = ["n", "std", "std_ci_low", "std_ci_high", "std_chi2_low", "std_chi2_high"]
STABILITY += ["brown_forsythe_p"]


def _describe(x: np.ndarray) -> dict[str, float]:
    """n, location, spread and a bootstrap CI of the mean of one ordering's runs."""
    x = finite(x)
    n, some = x.size, x.size > 0
    sd = float(stats.std(x)) if n >= 2 else np.nan
    low, high = stats.bootstrap_ci(x)
    t_low, t_high = stats.t_ci(x)
    return {
        "n": n,
        "mean": float(x.mean()) if some else np.nan,
        "std": sd,
        "sem": sd / np.sqrt(n) if n >= 2 else np.nan,
        "median": float(np.median(x)) if some else np.nan,
        "iqm": float(stats.iqm(x)),
        "ci_low": low,
        "ci_high": high,
        "t_ci_low": t_low,
        "t_ci_high": t_high,
        "min": float(x.min()) if some else np.nan,
        "max": float(x.max()) if some else np.nan,
    }


def summary(df: pd.DataFrame, by: By = None, metric: str = "score") -> pd.DataFrame:
    """Per group and ordering: how many runs, their centre and spread, a CI of the mean.

    Args:
        df: scored rows (:func:`scored`).
        by: grouping columns; default :func:`point_columns`.
        metric: the column summarised.

    Returns:
        One row per group and ordering: ``by`` columns, ``ordering``, ``n`` (runs with a
        score), ``mean``, ``std`` (ddof 1), ``sem``, ``median``, ``iqm``, ``ci_low``/``ci_high``
        (95% percentile bootstrap of the mean, seeded), ``t_ci_low``/``t_ci_high`` (Student's
        t interval: with under ~10 runs the bootstrap one is too narrow, prefer this),
        ``min``, ``max`` and ``n_diverged`` (diverged runs, counted in ``n`` with their score).

    Raises:
        ConfigError: a ``by`` or ``metric`` column is missing.
    """
    check_metric(df, metric)
    cols, rows = resolve_by(df, by), []
    for key, g in groups(df, cols):
        for o in orderings(g):
            runs = g[g["ordering"] == o]
            diverged = int((runs["status"] == "diverged").sum()) if "status" in runs else 0
            rows.append(
                {**key, "ordering": o, **_describe(values(g, o, metric)), "n_diverged": diverged}
            )
    return table(rows, [*cols, "ordering", *SUMMARY], df)


def _comparison(a: np.ndarray, b: np.ndarray, alpha: float) -> dict[str, Any]:
    """Every statistic of one contender (b) against the baseline (a)."""
    a, b = finite(a), finite(b)
    low, high = stats.diff_ci(a, b, level=1 - alpha)
    w_low, w_high = stats.welch_ci(a, b, level=1 - alpha)
    mean_a = float(a.mean()) if a.size else np.nan
    mean_b = float(b.mean()) if b.size else np.nan
    return {
        "n_base": a.size,
        "n": b.size,
        "mean_base": mean_a,
        "mean": mean_b,
        "diff": mean_b - mean_a,
        "diff_ci_low": low,
        "diff_ci_high": high,
        "welch_ci_low": w_low,
        "welch_ci_high": w_high,
        "welch_p": stats.welch(a, b),
        "mannwhitney_p": stats.mannwhitney(a, b),
        "cohens_d": stats.cohens_d(a, b),
        "cliffs_delta": stats.cliffs_delta(a, b),
        "prob_improvement": stats.prob_improvement(a, b),
        "sd_base": float(stats.std(a)),
        "sd": float(stats.std(b)),
    }


def _adjust(out: pd.DataFrame, alpha: float) -> pd.DataFrame:
    """Holm across the whole table, significance, and the detectable difference at alpha/m."""
    if out.empty:
        return out
    for test in ("welch_p", "mannwhitney_p"):
        out.insert(out.columns.get_loc(test) + 1, f"{test}_holm", stats.holm(out[test]))
    out["significant"] = out["welch_p_holm"] < alpha  # NaN compares False: not shown
    level = alpha / max(1, int(out["welch_p"].notna().sum()))
    out["min_detectable_diff"] = [
        stats.min_detectable_difference(r.sd_base, r.sd, r.n_base, r.n, alpha=level)
        for r in out.itertuples()
    ]
    return out


def compare(
    df: pd.DataFrame,
    baseline: str = "conv-bn-relu",
    by: By = None,
    metric: str = "score",
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Each ordering against the baseline, within each group, corrected for multiplicity.

    Args:
        df: scored rows (:func:`scored`).
        baseline: the reference ordering, any spelling or alias (``"case1"``).
        by: grouping columns; default :func:`point_columns`.
        metric: the column compared.
        alpha: family-wise error rate; also sets the diff CI's level (``1 - alpha``).

    Returns:
        One row per group and contender: ``ordering``, ``baseline``, ``n_base``, ``n``,
        ``mean_base``, ``mean``, ``diff`` (contender minus baseline) with its percentile
        bootstrap CI (``diff_ci_low``/``diff_ci_high``) and Welch's t CI (``welch_ci_low``/
        ``welch_ci_high``; it agrees with ``welch_p``, while the bootstrap one is too narrow
        with under ~10 runs per group), both at level ``1 - alpha`` and not adjusted for
        multiplicity, ``welch_p`` and ``mannwhitney_p`` each followed by its Holm adjustment
        across every row of the table (``*_holm``), ``cohens_d``, ``cliffs_delta``,
        ``prob_improvement`` (all signed so that positive favours the contender), ``sd_base``,
        ``sd``, ``significant`` (``welch_p_holm < alpha``) and ``min_detectable_diff``: the
        true difference Welch's test would catch with 80% power at ``alpha / m`` (Holm's
        strictest step over m tests) given these SDs and n. An observed diff below it is one
        this experiment could easily miss. ``.attrs["missing"]`` lists the groups (dicts of
        ``by`` values) without baseline runs, which were skipped.

    Raises:
        ConfigError: an unknown baseline ordering, or a missing column.
    """
    check_metric(df, metric)
    base = canonical(baseline)
    cols, rows, missing = resolve_by(df, by), [], []
    for key, g in groups(df, cols):
        if base not in set(g["ordering"]):
            missing.append(key)
            continue
        a = values(g, base, metric)
        for o in orderings(g):
            if o != base:
                stat = _comparison(a, values(g, o, metric), alpha)
                rows.append({**key, "ordering": o, "baseline": base, **stat})
    adjusted = _adjust(pd.DataFrame(rows), alpha).to_dict("records")
    return table(adjusted, [*cols, "ordering", *COMPARE], df, baseline=base, missing=missing)


def _brown_forsythe(samples: list[np.ndarray]) -> float:
    """p-value of Levene's test around the median; NaN if undefined (n < 2, no spread)."""
    if len(samples) < 2 or any(s.size < 2 for s in samples):
        return np.nan
    if all(np.all(s == s[0]) for s in samples):
        return np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(sps.levene(*samples, center="median").pvalue)


def stability(df: pd.DataFrame, by: By = None, metric: str = "score") -> pd.DataFrame:
    """Run-to-run spread per ordering, and whether it differs between orderings.

    Args:
        df: scored rows (:func:`scored`).
        by: grouping columns; default :func:`point_columns`.
        metric: the column whose spread is measured.

    Returns:
        One row per group and ordering: ``n``, ``std`` (ddof 1) with its 95% percentile
        bootstrap CI (``std_ci_low``/``std_ci_high``; with few runs the bootstrap cannot see
        spread the sample lacks, so it is too narrow) and its chi-square CI
        (``std_chi2_low``/``std_chi2_high``, assumes normal runs, honest about small n), and
        per group ``brown_forsythe_p``: the Brown-Forsythe test (Levene around the median) of
        equal spread across the group's orderings, NaN when any ordering has fewer than 2 runs.
    """
    check_metric(df, metric)
    cols, rows = resolve_by(df, by), []
    for key, g in groups(df, cols):
        samples = {o: finite(values(g, o, metric)) for o in orderings(g)}
        p = _brown_forsythe(list(samples.values()))
        for o, x in samples.items():
            low, high = stats.bootstrap_ci(x, stats.std)
            chi_low, chi_high = stats.std_ci(x)
            rows.append(
                {**key, "ordering": o, "n": x.size, "std": float(stats.std(x))}
                | {"std_ci_low": low, "std_ci_high": high}
                | {"std_chi2_low": chi_low, "std_chi2_high": chi_high, "brown_forsythe_p": p}
            )
    return table(rows, [*cols, "ordering", *STABILITY], df)


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
    return table(rows, [*by, "ordering", *runs, "Mean (%)", "Std (%)"], df)
