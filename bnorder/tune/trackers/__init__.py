"""Experiment trackers: every trial of a sweep also logged to MLflow, W&B or TensorBoard.

Each tracker is one of Ray's logger callbacks extended by bnorder (one tracker run per results
row, its outcome as the row says, failures that never stop a sweep); see ``common.Tracked``.
Importing this package imports no tracker library: each is imported when a sweep uses it.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from bnorder.sweep.trackers import Trackers

__all__ = ["check_trackers", "tracker_callbacks"]

# name -> (module, class): the trackers a sweep file names (bnorder.sweep.trackers)
_TRACKERS = {
    "mlflow": ("bnorder.tune.trackers.mlflow_tracker", "MlflowTracker"),
    "wandb": ("bnorder.tune.trackers.wandb_tracker", "WandbTracker"),
    "tensorboard": ("bnorder.tune.trackers.tensorboard_tracker", "TensorboardTracker"),
}


def _module(name: str) -> Any:
    return importlib.import_module(_TRACKERS[name][0])


def check_trackers(trackers: Trackers, out: Path) -> None:
    """Before anything starts: every package installed (all of them first, as that check
    creates nothing), then every tracker reachable.

    Raises:
        ConfigError: a tracker's package is missing, or its options are unusable (exit code 2).
        TrackerError: a tracking server does not answer (exit code 1).
    """
    from bnorder.tune.trackers.common import require

    for name in trackers.names:
        require(*_module(name).REQUIRES, tracker=name)
    for name in trackers.names:
        _module(name).check(getattr(trackers, name), out)


def tracker_callbacks(trackers: Trackers, *, out: Path, sweep: str, phase: str) -> list[Any]:
    """One Ray callback per tracker for a phase; they go after the results recorder, which
    hands them each trial's outcome (``ResultsRecorder(listeners=[t.trial_finished, ...])``)."""
    return [
        getattr(_module(name), _TRACKERS[name][1])(
            getattr(trackers, name), out=out, sweep=sweep, phase=phase
        )
        for name in trackers.names
    ]
