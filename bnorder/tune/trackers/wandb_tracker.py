"""Weights & Biases: one group per sweep, one run per results row, each run held by a Ray actor
of its own (as Ray's integration does). Needs ``bnorder[wandb]``."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ray.air.integrations.wandb import WandbLoggerCallback, _QueueItem

from bnorder.errors import ConfigError
from bnorder.sweep.trackers import WandbOptions
from bnorder.train import TrialResult
from bnorder.tune.trackers.common import (
    Member,
    Tracked,
    TrackerError,
    brief,
    epoch_reports,
    members_of,
    outcome,
)
from bnorder.tune.trackers.wandb_actor import WandbRunActor

__all__ = ["REQUIRES", "WandbTracker", "check", "mode_of"]

REQUIRES = ("wandb", "the wandb package")  # checked before check()

# the actor's own process is what W&B would sample and capture; neither says anything of training
_SETTINGS = {"console": "off", "x_disable_stats": True, "silent": True}


def mode_of(options: WandbOptions) -> str:
    return options.mode or os.environ.get("WANDB_MODE") or "online"


def check(options: WandbOptions, out: Path) -> None:
    """Online, W&B accepts your API key (offline and disabled need nothing).

    Raises:
        ConfigError: online mode without an API key (exit code 2).
        TrackerError: W&B could not be reached to verify the key (exit code 1).
    """
    if mode_of(options) != "online":
        return
    import wandb

    try:
        ok = wandb.login(prompt=False, verify=True, timeout=20)
    except Exception as exc:
        raise TrackerError(
            f"wandb tracker: cannot log in ({brief(exc)}); check WANDB_API_KEY and the network, "
            "or use trackers.wandb.mode: offline"
        ) from None
    if not ok:
        raise ConfigError(
            "trackers.wandb.mode",
            "online",
            "{value} needs a W&B API key",
            hint="set WANDB_API_KEY or run `wandb login`, or use mode: offline",
        )


@dataclass(frozen=True)
class _RunKey:
    """Ray's callback keeps an actor per key: ours is a member, not a Ray trial."""

    trial_id: str
    local_path: str  # the actor's working folder


class WandbTracker(Tracked, WandbLoggerCallback):
    """Ray's :class:`~ray.air.integrations.wandb.WandbLoggerCallback`, which runs each W&B run in
    an actor and waits for uploads at the end, with what bnorder adds:

    - one run per results row (each member of a fused array too), id = its trial_id (so a
      resumed sweep continues it), named ``<arm_id> seed <seed>``, grouped by sweep, job type
      = phase, tagged phase and execution (``single`` or ``fused K``);
    - config: the member's TrialConfig fields plus sweep, phase, arm_id, seed, execution,
      trial_id, ray_trial_id, config_hash, group_hash;
    - per-epoch metrics: the columns of ``epochs.parquet`` (per-block probes as
      ``<stat>/block<k>``) at step = epoch;
    - the outcome once the recorder has written the row: summary status, best_val_acc,
      test_acc_at_best_val, n_params, wall_seconds, ... and a status tag; failed runs exit 1;
    - mode (online, offline, disabled), project, entity and dir resolved on the driver and
      passed to each run (Ray's workers do not see variables set after Ray started);
    - a failure warns once and turns the tracker off; the sweep and its rows go on (Tracked).
    """

    tracker = "wandb"
    _logger_actor_cls = WandbRunActor

    def __init__(self, options: WandbOptions, *, out: Path, sweep: str, phase: str) -> None:
        self.mode = mode_of(options)
        self.dir = Path(options.dir or os.environ.get("WANDB_DIR") or out).resolve()
        super().__init__(
            project=options.project or os.environ.get("WANDB_PROJECT") or sweep,
            group=options.group or sweep,
            entity=options.entity or os.environ.get("WANDB_ENTITY"),
            mode=self.mode,
            dir=str(self.dir),
            job_type=phase,
            resume="allow",
            settings=_SETTINGS,
        )
        self.init_tracked(sweep=sweep, phase=phase)

    def setup(self, *args: Any, **kwargs: Any) -> None:
        self.safely("to start", self.dir.mkdir, parents=True, exist_ok=True)
        if self.mode == "online":  # Ray's setup finds the API key (offline needs none)
            super().setup(*args, **kwargs)

    # ---------------------------------------------------------------- runs
    def _key(self, trial_id: str) -> _RunKey:
        return _RunKey(trial_id, str(self.dir))

    def _open(self, member: Member) -> None:
        key = self._key(member.trial_id)
        if key in self._trial_queues:
            return
        config = {**{k: v for k, v in member.tags.items() if k != "status"}, **member.config}
        self._start_logging_actor(
            key,
            [],
            id=member.trial_id,
            name=member.name,
            tags=[member.meta["phase"], member.execution],
            config=config,
            project=self.project,
            group=self.group,
            **self.kwargs,
        )

    def _send(self, trial: Any, trial_id: str, item: dict[str, Any]) -> None:
        key = self._key(trial_id)
        if key not in self._trial_queues:
            self._open(next(m for m in members_of(trial) if m.trial_id == trial_id))
        self._trial_queues[key].put((_QueueItem.RESULT, item))

    # ---------------------------------------------------------------- Ray's logger hooks
    def log_trial_start(self, trial: Any) -> None:
        for member in members_of(trial):
            self._open(member)

    def log_trial_result(self, iteration: int, trial: Any, result: dict) -> None:
        for tid, epoch, metrics in epoch_reports(trial, result):
            self._send(trial, tid, {"step": epoch, "metrics": metrics})

    def log_outcome(self, trial: Any, results: list[TrialResult]) -> None:
        for result in results:
            metrics, tags = outcome(result)
            item = {
                "summary": {**metrics, **tags},
                "tags": [tags["status"]],
                "exit_code": int(result.status == "failed"),
            }
            self._send(trial, result.trial_id, item)

    def log_trial_save(self, trial: Any) -> None:
        pass  # checkpoints stay in Ray's storage

    def log_trial_end(self, trial: Any, failed: bool = False) -> None:
        for member in members_of(trial):
            if self._key(member.trial_id) in self._trial_queues:
                self._signal_logging_actor_stop(self._key(member.trial_id))
        self._cleanup_logging_actors()

    def _cleanup_logging_actor(self, key: Any) -> None:
        """Ray's, after saying why a run's actor failed (Ray drops its error)."""
        import ray

        try:
            ray.get(self._trial_logging_futures[key], timeout=0)
        except ray.exceptions.GetTimeoutError:
            pass  # still uploading at the end: Ray stops it
        except Exception as exc:
            self.warn(f"lost run {key.trial_id} ({brief(exc)})")
        super()._cleanup_logging_actor(key)
