"""What every tracker shares: one tracker run per results row, bnorder's names and tags, the
outcome as written to ``trials.parquet``, and hooks that never let a tracker stop a sweep.

Ray calls a run's callbacks in list order and does not shield one from another: an exception in
``on_trial_result`` aborts the whole experiment (``TuneError``), and one in
``on_trial_complete`` turns the finished trial into an errored one, so the results recorder
rewrites its row as ``failed``. Trackers therefore sit after the recorder and catch everything.
"""

from __future__ import annotations

import importlib
import math
import re
import sys
from dataclasses import dataclass
from typing import Any, ClassVar

from bnorder.config import TrialConfig
from bnorder.errors import BnorderError, ConfigError
from bnorder.results.schema import EPOCH_SCHEMA
from bnorder.results.store import epoch_rows_of
from bnorder.train import TrialResult
from bnorder.tune.trainable import is_fused, member_configs, member_ids, unwrap

__all__ = [
    "EPOCH_METRICS",
    "Member",
    "Tracked",
    "TrackerError",
    "brief",
    "epoch_reports",
    "members_of",
    "outcome",
    "require",
]

# the per-epoch columns of epochs.parquet: a tracker logs what the Parquet holds, by its names
EPOCH_METRICS = tuple(n for n in EPOCH_SCHEMA.names if n not in ("trial_id", "epoch"))


class TrackerError(BnorderError):
    """A tracker configured right that cannot be reached (a tracking server that is down)."""

    exit_code: ClassVar[int] = 1  # the command was right; the server was not there


def require(module: str, what: str, *, tracker: str) -> Any:
    """Import a tracker's package, or say which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(
            "trackers",
            tracker,
            f"tracker {{value}} needs {what}, which is not installed",
            hint=f"pip install 'bnorder[{tracker}]' (in a checkout: uv sync --extra {tracker})",
        ) from None


def brief(exc: BaseException) -> str:
    """An exception as a short clause: ``Connection refused``, not a urllib3 traceback."""
    text = " ".join(str(exc).split())
    if m := re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", text):
        return m.group(1).strip()
    return (text.split(". ")[0] or type(exc).__name__)[:200]


@dataclass(frozen=True)
class Member:
    """One trained model of a Ray trial (a fused array has K of them): one tracker run, named
    and tagged before it has an outcome."""

    trial_id: str  # the results trial_id: one tracker run per row of trials.parquet
    ray_trial_id: str
    config: dict[str, Any]  # its TrialConfig fields, flat
    meta: dict[str, Any]  # the sweep's bookkeeping (sweep, phase, arm_id, ...)
    execution: str  # single | fused K, as in its row

    @property
    def name(self) -> str:
        return f"{self.meta['arm_id']} seed {self.config['seed']}"

    @property
    def tags(self) -> dict[str, str]:
        cfg = TrialConfig(**self.config)
        tags = {
            "sweep": self.meta["sweep"],
            "phase": self.meta["phase"],
            "arm_id": self.meta["arm_id"],
            "seed": str(cfg.seed),
            "execution": self.execution,
            "trial_id": self.trial_id,
            "ray_trial_id": self.ray_trial_id,
            "config_hash": cfg.config_hash,
            "group_hash": cfg.group_hash,
            "status": "running",
        }
        for key in ("study", "optuna_trial"):  # a tuning trial's Optuna study and number
            if self.meta.get(key) is not None:
                tags[key] = str(self.meta[key])
        return tags

    @property
    def params(self) -> dict[str, str]:
        return {k: str(v) for k, v in self.config.items()}


def members_of(trial: Any) -> list[Member]:
    config = unwrap(trial.config)
    meta = config["meta"]
    ids = member_ids(meta["sweep"], trial.trial_id, config)
    execution = f"fused {len(ids)}" if is_fused(config) else "single"
    return [
        Member(tid, trial.trial_id, fields, meta, execution)
        for tid, fields in zip(ids, member_configs(config), strict=True)
    ]


def _scalars(values: dict[str, Any], keys: tuple[str, ...]) -> dict[str, float]:
    """Finite numbers of ``keys``; a probe's per-block list becomes ``<stat>/block<k>``."""
    out: dict[str, float] = {}
    for key in keys:
        value = values.get(key)
        items = (
            [(f"{key}/block{k}", v) for k, v in enumerate(value)]
            if isinstance(value, list | tuple)
            else [(key, value)]
        )
        for name, v in items:
            if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v):
                out[name] = float(v)
    return out


def epoch_reports(trial: Any, result: dict[str, Any]) -> list[tuple[str, int, dict[str, float]]]:
    """``(trial_id, epoch, metrics)`` of each member that reported in this Ray result."""
    config = unwrap(trial.config)
    ids = member_ids(config["meta"]["sweep"], trial.trial_id, config)
    # a fused array reports each live member under "members"; a lone trial reports itself
    reports = result.get("members") or [{**result, "trial_id": ids[0]}]
    # as the rows of epochs.parquet: probe lists with their block means (<stat>_mean)
    rows = [epoch_rows_of(r["trial_id"], [r])[0] for r in reports]
    return [(r["trial_id"], int(r["epoch"]), _scalars(r, EPOCH_METRICS)) for r in rows]


OUTCOME_METRICS = (
    "epochs_done",
    "final_train_loss",
    "final_train_acc",
    "final_val_acc",
    "final_test_loss",
    "final_test_acc",
    "best_val_acc",
    "best_val_epoch",
    "test_acc_at_best_val",
    "n_params",
    "wall_seconds",
    "gpu_peak_mib",
)


def outcome(result: TrialResult) -> tuple[dict[str, float], dict[str, str]]:
    """A finished trial's figures and labels, the very ones of its ``trials.parquet`` row."""
    values = {
        **result.summary(),
        "n_params": result.n_params,
        "wall_seconds": result.wall_seconds,
        "gpu_peak_mib": result.gpu_peak_mib,
    }
    tags = {"status": result.status, "execution": result.execution}
    if result.error:
        tags["error"] = result.error[:500]
    return _scalars(values, OUTCOME_METRICS), tags


class Tracked:
    """Mixin for Ray logger callbacks: every hook guarded, the recorder's outcome received.

    A failure (a tracking server that died, a full disk) is reported once on stderr and turns
    the tracker off for the rest of the phase; the results recorder, first in the callback list,
    has written its rows by then and goes on writing them.
    """

    tracker: ClassVar[str] = ""  # its name in messages

    def init_tracked(self, *, sweep: str, phase: str) -> None:
        self.sweep, self.phase = sweep, phase
        self.failure: str | None = None

    def safely(self, what: str, fn: Any, *args: Any, cleanup: bool = False, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)``, or nothing once the tracker has failed (unless ``cleanup``:
        closing what it opened still runs); an exception is reported and turns it off."""
        if self.failure is not None and not cleanup:
            return None
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            if self.failure is None:  # reported once
                self.failure = brief(exc)
                self.warn(f"failed {what} ({self.failure}); it logs nothing more in this phase")
            return None

    def warn(self, text: str) -> None:
        print(
            f"[{self.sweep} {self.phase}] warning: the {self.tracker} tracker {text}"
            " (results are written as always)",
            file=sys.stderr,
            flush=True,
        )

    def trial_finished(self, trial: Any, results: list[TrialResult]) -> None:
        """Called by the results recorder once it has written the trial's rows."""
        self.safely("logging an outcome", self.log_outcome, trial, results)

    def log_outcome(self, trial: Any, results: list[TrialResult]) -> None:
        raise NotImplementedError

    # ---------------------------------------------------------------- Ray's hooks, guarded
    def setup(self, *args: Any, **kwargs: Any) -> None:
        self.safely("to start", super().setup, *args, **kwargs)  # type: ignore[misc]

    def on_trial_start(self, *args: Any, **kwargs: Any) -> None:
        self.safely("at a trial's start", super().on_trial_start, *args, **kwargs)  # type: ignore[misc]

    def on_trial_result(self, *args: Any, **kwargs: Any) -> None:
        self.safely("logging an epoch", super().on_trial_result, *args, **kwargs)  # type: ignore[misc]

    def on_trial_complete(self, *args: Any, **kwargs: Any) -> None:
        self.safely("ending a run", super().on_trial_complete, *args, **kwargs)  # type: ignore[misc]

    def on_trial_error(self, *args: Any, **kwargs: Any) -> None:
        self.safely("ending a run", super().on_trial_error, *args, **kwargs)  # type: ignore[misc]

    def on_trial_save(self, *args: Any, **kwargs: Any) -> None:
        self.safely("at a checkpoint", super().on_trial_save, *args, **kwargs)  # type: ignore[misc]

    def on_trial_restore(self, *args: Any, **kwargs: Any) -> None:
        self.safely("at a restore", super().on_trial_restore, *args, **kwargs)  # type: ignore[misc]

    def on_experiment_end(self, *args: Any, **kwargs: Any) -> None:
        self.safely(
            "at the end",
            super().on_experiment_end,  # type: ignore[misc]
            *args,
            cleanup=True,
            **kwargs,
        )
