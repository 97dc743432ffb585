"""What a (possibly unfinished) sweep has produced: trials per phase, arm and status, which
arms are short of trials, and why trials failed. Read it before trusting a comparison: an arm
with fewer runs than the others has a wider interval, and failures may not be random."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:  # the plan is only read, never built here
    from bnorder.sweep.plan import SweepPlan

__all__ = ["Coverage", "coverage"]

STATUSES = ("ok", "diverged", "pruned", "failed")
LONE = "train"  # the phase label of rows without one: a lone `bnorder train` run
_FAILED_COLUMNS = ("trial_id", "phase", "arm_id", "ordering", "seed", "epochs_done", "error")

Planned = Mapping[tuple[str, str], int]


@dataclass(frozen=True)
class Coverage:
    """The two tables of :func:`coverage`.

    Attributes:
        counts: one row per ``phase`` and ``arm_id``: a count per status (``ok``,
            ``diverged``, ``pruned``, ``failed``, and any other found), ``total`` rows,
            ``finished`` (not failed), ``expected`` (the plan's count, else the most any arm
            of the phase finished) and ``short`` (expected minus finished, at least 0).
        failed: the failed trials with their phase, arm, seed and error text.
    """

    counts: pd.DataFrame
    failed: pd.DataFrame

    @property
    def short(self) -> pd.DataFrame:
        """The arms with fewer finished trials than expected."""
        return self.counts[self.counts["short"] > 0]

    @property
    def complete(self) -> bool:
        """True when no arm is short of trials."""
        return bool(self.short.empty)


def _planned(plan: SweepPlan | Planned) -> dict[tuple[str, str], int]:
    """Trials per (phase, arm ID) that ``plan`` runs (adaptive seeds: at least ``min``)."""
    if isinstance(plan, Mapping):
        return dict(plan)
    counts: Counter[tuple[str, str]] = Counter()
    for phase in plan.phases:
        rule = plan.adaptive(phase)
        if phase == "grid":
            first = set(plan.spec.seed_list[: rule.min] if rule else plan.spec.seed_list)
            counts.update(("grid", arm.arm_id) for arm, c in plan.grid_trials if c.seed in first)
        else:
            n = plan.tune.trials_per_arm if phase == "tune" else plan.tune.eval_count
            counts.update({(phase, arm.arm_id): rule.min if rule else n for arm in plan.arms})
    return dict(counts)


def _labelled(trials: pd.DataFrame) -> pd.DataFrame:
    """Trials with a phase and an arm ID on every row (lone runs get ``train`` and an ID built
    the way sweeps build theirs)."""
    t = trials.copy()
    phase = t["phase"] if "phase" in t.columns else pd.Series(None, index=t.index, dtype=object)
    t["phase"] = phase.astype(object).where(phase.notna(), LONE)
    built = (
        t["dataset"].astype(str)
        + "/"
        + t["arch"].astype(str)
        + "/d"
        + t["depth"].astype(str)
        + "/"
        + t["ordering"].astype(str)
    )
    arm = t["arm_id"] if "arm_id" in t.columns else pd.Series(None, index=t.index, dtype=object)
    t["arm_id"] = arm.astype(object).where(arm.notna(), built)
    return t


def coverage(trials: pd.DataFrame, planned: SweepPlan | Planned | None = None) -> Coverage:
    """Count what a sweep has produced so far, and what is missing.

    Args:
        trials: raw trials (``bnorder.load(...).trials``), every phase and status; needs
            ``status``, and ``dataset``/``arch``/``depth``/``ordering`` where ``arm_id`` is null.
        planned: what should be there: a :class:`~bnorder.sweep.plan.SweepPlan` (from
            ``make_plan(load_sweep(file)[0])``) or a mapping ``{(phase, arm_id): trials}``.
            Without it an arm is expected to match the best-covered arm of its phase, and
            arms with no rows at all go unnoticed.

    Returns:
        :class:`Coverage` with its ``counts`` and ``failed`` tables; ``.short`` lists the arms
        short of trials and ``.complete`` says whether there are none.

    Example:
        >>> cov = coverage(bnorder.load("results/quickstart").trials)  # doctest: +SKIP
        >>> cov.complete  # doctest: +SKIP
        True
    """
    t = _labelled(trials)
    counts = t.groupby(["phase", "arm_id", "status"], sort=False).size().unstack(fill_value=0)
    extra = [s for s in counts.columns if s not in STATUSES]
    plan = _planned(planned) if planned is not None else {}
    index = list(dict.fromkeys([*counts.index, *plan]))
    counts = counts.reindex(
        index=pd.MultiIndex.from_tuples(index, names=["phase", "arm_id"]) if index else None,
        columns=[*STATUSES, *extra],
        fill_value=0,
    )
    counts["total"] = counts.sum(axis=1)
    counts["finished"] = counts["total"] - counts["failed"]
    most = counts.groupby(level="phase")["finished"].transform("max")
    planned_n = pd.Series([plan.get(k) for k in counts.index], index=counts.index, dtype=float)
    counts["expected"] = planned_n.fillna(most).astype(int)
    counts["short"] = (counts["expected"] - counts["finished"]).clip(lower=0)
    counts.columns.name = None
    failed_cols = [c for c in _FAILED_COLUMNS if c in t.columns]
    failed = t.loc[t["status"] == "failed", failed_cols].reset_index(drop=True)
    return Coverage(counts.reset_index(), failed)
