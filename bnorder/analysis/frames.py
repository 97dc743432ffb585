"""The rows to analyse and how they group: which trials count as results, which score they
get, and which config columns make up an experimental *point* (everything but the ordering
and the seeds). Shared by every table in :mod:`bnorder.analysis.tables`."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from bnorder.config import NON_RESULT_FIELDS, SEED_FIELDS, TrialConfig
from bnorder.errors import ConfigError
from bnorder.ordering import parse_ordering

# The other helpers here are shared by this package's table modules, not public API.
__all__ = ["RESULT_PHASES", "RESULT_STATUSES", "direction", "point_columns", "scored"]

# Tune-phase rows are the search, not results: their scores are selected on, so biased upward.
RESULT_PHASES = ("grid", "evaluate")
# A diverged run is a real outcome of its ordering; failed (an exception) and pruned (stopped by
# the tuner) runs say nothing about how well the ordering trains.
RESULT_STATUSES = ("ok", "diverged")
SELECTED, FINAL = "test_acc_at_best_val", "final_test_acc"
_NOT_POINT = {"ordering", *SEED_FIELDS, *NON_RESULT_FIELDS}
ALWAYS_BY = ("dataset", "arch")

By = str | Sequence[str] | None
Direction = Literal["higher", "lower"]


def require(df: pd.DataFrame, columns: Sequence[str], field: str) -> None:
    """Raise a ConfigError naming ``field`` for the first of ``columns`` missing in ``df``."""
    for col in columns:
        if col not in df.columns:
            raise ConfigError(field, col, "no such column", choices=list(map(str, df.columns)))


def scored(trials: pd.DataFrame, metric: str | None = None) -> pd.DataFrame:
    """The trials that are results, with a ``score`` column to analyse.

    Kept: phases ``grid`` and ``evaluate``, and rows without a phase (a lone ``bnorder train``);
    statuses ``ok`` and ``diverged``. Dropped: tune-phase rows (tuning, not results) and
    failed or pruned trials. A frame without ``phase`` / ``status`` columns is kept whole.

    Args:
        trials: ``bnorder.load(...).trials`` or any frame with those columns.
        metric: the column to score. Default: ``test_acc_at_best_val`` (model selection on
            validation) where it is not null, else ``final_test_acc`` (runs with no validation
            split, such as the seed replication).

    Returns:
        A copy with ``score``; ``.attrs["metric"]`` names the metric used (both names joined
        by `` / `` if the default had to mix them) and a ``score_metric`` column says it per row.

    Raises:
        ConfigError: ``metric`` is not a column.

    Example:
        >>> df = scored(bnorder.load("results/quickstart").trials)  # doctest: +SKIP
        >>> df.attrs["metric"]  # doctest: +SKIP
        'test_acc_at_best_val'
    """
    keep = pd.Series(True, index=trials.index)
    if "phase" in trials.columns:
        keep &= trials["phase"].isna() | trials["phase"].isin(RESULT_PHASES)
    if "status" in trials.columns:
        keep &= trials["status"].isin(RESULT_STATUSES)
    df = trials.loc[keep].copy()
    if metric is not None:
        require(df, [metric], "metric")
        df["score"] = df[metric].astype(float)
        df["score_metric"] = metric
    else:
        require(df, [FINAL], "metric")
        selected = df[SELECTED] if SELECTED in df.columns else pd.Series(np.nan, index=df.index)
        use_selected = selected.notna()
        df["score"] = selected.where(use_selected, df[FINAL]).astype(float)
        df["score_metric"] = np.where(use_selected, SELECTED, FINAL)
    used = list(dict.fromkeys(df["score_metric"])) or [metric or SELECTED]
    df.attrs["metric"] = " / ".join(used)
    return df


def _direction(column: str) -> Direction:
    name = column.strip().lower()
    if name.endswith(("loss", "seconds", "_mib")):
        return "lower"
    if "acc" in name or name.endswith("_per_s"):
        return "higher"
    raise ConfigError(
        "metric",
        column,
        "cannot tell whether higher or lower is better for",
        hint="score a column whose name ends in _acc (higher is better) or _loss (lower is)",
    )


def direction(df: pd.DataFrame, metric: str = "score") -> Direction:
    """Whether a higher or a lower ``metric`` is better: accuracies up, losses (and seconds)
    down. For ``score`` the metric :func:`scored` chose (``df.attrs["metric"]``).

    Raises:
        ConfigError: a column of unknown direction, or a score mixing directions.

    Example:
        >>> direction(pd.DataFrame(), "final_test_loss")
        'lower'
    """
    name = (df.attrs.get("metric") or SELECTED) if metric == "score" else metric
    found = {_direction(part) for part in str(name).split(" / ")}
    if len(found) > 1:
        raise ConfigError("metric", name, "mixes higher- and lower-is-better columns:")
    return found.pop()


def _arm_axes(arm_id: str) -> set[str]:
    """Config fields named in an arm ID (``cifar10/cnn/d8/lr=0.01/conv-bn-relu``)."""
    named = {part.split("=", 1)[0] for part in arm_id.split("/")[3:-1] if "=" in part}
    return {"dataset", "arch", "depth"} | named


def keyed(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with the per-arm tuned hyperparameters of evaluate rows blanked (NA).

    In a tuned sweep each arm's evaluate rows use its own best lr, weight decay, ...: those
    columns vary with the ordering but are the outcome of tuning, not a point of the design.
    Only the fields named in the arm ID (dataset, arch, depth, grid axes) define the point.
    """
    if "phase" not in df.columns or "arm_id" not in df.columns:
        return df
    evaluate = df["phase"] == "evaluate"
    if not evaluate.any():
        return df
    out = df.copy()
    config = [c for c in TrialConfig.model_fields if c in out.columns and c not in _NOT_POINT]
    for arm in out.loc[evaluate, "arm_id"].dropna().unique():
        tuned = [c for c in config if c not in _arm_axes(arm)]
        rows = evaluate & (out["arm_id"] == arm)
        out[tuned] = out[tuned].astype(object)
        out.loc[rows, tuned] = None
    return out


def point_columns(df: pd.DataFrame) -> list[str]:
    """The columns that identify an experimental point: the default ``by`` of every table.

    ``dataset`` and ``arch`` always, then every other ``TrialConfig`` field that varies in
    ``df`` (in the config's order), except the ordering (what is compared), the seeds (what is
    replicated) and fields that do not change results (device, probes, probe_size). The
    hyperparameters a tuned sweep chose per arm do not count as varying (see :func:`keyed`).
    ``phase`` is added when rows of several phases are present, so a fixed-lr grid and a tuned
    evaluation are never pooled; ``execution`` likewise (single vs fused trials: equivalent by
    test, yet an analysis must choose to pool them).

    Args:
        df: trials or scored rows.

    Returns:
        Column names, e.g. ``["dataset", "arch", "lr"]``.
    """
    k = keyed(df)
    phase = ["phase"] if "phase" in k.columns and k["phase"].nunique(dropna=False) > 1 else []
    config = [c for c in TrialConfig.model_fields if c in k.columns and c not in _NOT_POINT]
    # within a phase: a column set for grid rows and blanked for evaluate rows only repeats phase
    within = k.groupby(phase, dropna=False) if phase else [(None, k)]
    varying = {c for _, rows in within for c in config if rows[c].nunique(dropna=False) > 1}
    mixed = [c for c in ("execution",) if c in k.columns and k[c].nunique(dropna=False) > 1]
    return [
        *ALWAYS_BY,
        *(c for c in config if c in varying and c not in ALWAYS_BY),
        *mixed,
        *phase,
    ]


def resolve_by(df: pd.DataFrame, by: By) -> list[str]:
    """``by`` as a list of existing columns; None means :func:`point_columns`."""
    cols = point_columns(df) if by is None else [by] if isinstance(by, str) else list(by)
    require(df, cols, "by")
    return cols


def groups(df: pd.DataFrame, by: list[str]) -> Iterator[tuple[dict[str, object], pd.DataFrame]]:
    """``(key, rows)`` per group of ``by`` in order of appearance, null keys kept as groups.
    Rows are taken by position, so a frame concatenated without ``ignore_index`` (repeated
    index labels) never lends one group another's rows."""
    if not by:
        yield {}, df
        return
    grouped = keyed(df).groupby(by, dropna=False, sort=False)
    for key, positions in grouped.indices.items():
        yield dict(zip(by, _tuple(key), strict=True)), df.iloc[positions]


def _tuple(key: object) -> tuple[object, ...]:
    return key if isinstance(key, tuple) else (key,)


def orderings(df: pd.DataFrame) -> list[str]:
    """The orderings present, in order of first appearance."""
    return list(pd.unique(df["ordering"]))


def values(df: pd.DataFrame, ordering: str, metric: str) -> np.ndarray:
    """The ``metric`` values of one ordering's runs, ordered by seed where there is one."""
    rows = df[df["ordering"] == ordering]
    if "seed" in rows.columns:
        rows = rows.sort_values("seed", kind="stable")
    return rows[metric].to_numpy(dtype=float)


def canonical(ordering: str, field: str = "baseline") -> str:
    """An ordering or alias (``case1``) in canonical form, as stored in results."""
    return parse_ordering(ordering, field=field).canonical


def check_metric(df: pd.DataFrame, metric: str) -> None:
    """Fail with a helpful error unless ``ordering`` and ``metric`` are columns of ``df``."""
    if metric == "score" and "score" not in df.columns:
        raise ConfigError(
            "metric",
            metric,
            "no such column",
            hint="pass the rows of bnorder.analysis.scored(trials), or name a metric column",
        )
    require(df, ["ordering", metric], "metric")


def table(
    rows: list[dict[str, Any]], columns: Sequence[str], df: pd.DataFrame, **attrs: Any
) -> pd.DataFrame:
    """A result table from row dicts with exactly ``columns`` (also when there are no rows, so
    callers can select columns of an empty result), carrying ``df``'s metric and ``attrs``."""
    produced = set().union(*rows) if rows else set(columns)
    if produced != set(columns):  # a bug here, not a user error
        raise RuntimeError(f"table columns {sorted(produced ^ set(columns))} out of step")
    out = pd.DataFrame(rows, columns=list(columns))
    out.attrs = {"metric": df.attrs.get("metric"), **attrs}
    return out


def finite(x: np.ndarray) -> np.ndarray:
    """``x`` without NaN."""
    return x[~np.isnan(x)]
