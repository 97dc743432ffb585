"""Keeping each arm's Optuna study equal to the results rows, whenever a driver dies.

A tuning trial's outcome is its ``trials.parquet`` row; its study is told from that row, after
the row is written and never before. The rows and the studies are written as things happen,
while Ray's experiment snapshot (the Ray trials and the searcher's pickled state) lags them by
seconds, so after a restart the searcher re-derives its state from the two of them:

- a RUNNING study trial with a row is told from the row (the driver died in between);
- a RUNNING study trial that no restored Ray trial will run (asked after Ray's last snapshot)
  is an orphan, handed out again with the same number and parameters to a new Ray trial;
- telling is idempotent: a trial told the same before is left alone; one told otherwise is
  reported on stderr and left as it is.

A pruning decision is stored on the study trial before Ray acts on it, so a trial that runs
again after a restart stops at the same epoch, with the same rows.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from bnorder.results.store import read_trials

__all__ = ["PRUNED_AT", "frozen", "outcome", "recorded_rows", "tell_once"]

PRUNED_AT = "bnorder:pruned_at"  # system attr: the epoch the arm's pruner stopped the trial at


def outcome(row: dict[str, Any], objective: str) -> tuple[TrialState, float | None]:
    """The study state and value of a results row: ok/diverged -> COMPLETE with the objective
    (FAIL when it is not finite), pruned -> PRUNED (Optuna takes its last intermediate value,
    the row's final validation accuracy), failed -> FAIL."""
    if row["status"] == "failed":
        return TrialState.FAIL, None
    if row["status"] == "pruned":
        return TrialState.PRUNED, None
    value = row.get(objective)
    if value is None or not math.isfinite(value):
        return TrialState.FAIL, None
    return TrialState.COMPLETE, float(value)


def frozen(study: optuna.Study, number: int) -> FrozenTrial:
    """The stored trial ``number`` of ``study``, as it is now."""
    storage = study._storage
    return storage.get_trial(
        storage.get_trial_id_from_study_id_trial_number(study._study_id, number)
    )


def tell_once(study: optuna.Study, number: int, state: TrialState, value: float | None) -> None:
    """Tell trial ``number`` its outcome unless it was told already (then compare, warn)."""
    before = frozen(study, number)
    if before.state.is_finished():
        same = before.state == state and (state != TrialState.COMPLETE or before.value == value)
        if not same:
            print(
                f"bnorder: warning: {study.study_name} trial {number} was told "
                f"{before.state.name} {before.value}, its row says {state.name} {value}; "
                "left as told",
                file=sys.stderr,
            )
        return
    study.tell(number, value if state == TrialState.COMPLETE else None, state=state)


def recorded_rows(out: Path, trial_ids: Iterable[str | None]) -> dict[str, dict[str, Any]]:
    """The results rows written so far for these trial IDs, by trial ID."""
    ids = [tid for tid in trial_ids if tid]
    if not ids:
        return {}
    rows = read_trials(out, ids)
    return {row["trial_id"]: row for row in rows.to_dict("records")}
