"""TensorBoard: one run folder per results row under ``OUT/tensorboard`` (or
``trackers.tensorboard.logdir``), with the hparams table. Written with tensorboardX, which
comes with Ray Tune; ``bnorder[tensorboard]`` adds the viewer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ray.tune.logger import TBXLoggerCallback

from bnorder.sweep.trackers import TensorboardOptions
from bnorder.train import TrialResult
from bnorder.tune.trackers.common import Member, Tracked, epoch_reports, members_of, outcome

__all__ = ["REQUIRES", "TensorboardTracker", "check", "logdir_of", "run_dir"]

REQUIRES = ("tensorboardX", "tensorboardX (it comes with ray[tune])")  # checked before check()


def logdir_of(options: TensorboardOptions, out: Path) -> Path:
    return Path(options.logdir or out / "tensorboard").resolve()


def run_dir(logdir: Path, member: Member) -> Path:
    """``<logdir>/<phase>/<arm_id>/<trial_id>``: TensorBoard's run name filters by phase,
    dataset, arch, depth or ordering, and ends in the row's trial_id."""
    return logdir / member.meta["phase"] / member.meta["arm_id"] / member.trial_id


def check(options: TensorboardOptions, out: Path) -> None:
    """Nothing to reach: the event files are local."""


class TensorboardTracker(Tracked, TBXLoggerCallback):
    """Ray's :class:`~ray.tune.logger.TBXLoggerCallback`: with it in a run's callbacks, Ray does
    not add its own, so each trial's events are written once, by bnorder, as:

    - one run folder per results row (each member of a fused array too), see :func:`run_dir`;
    - scalars: the columns of ``epochs.parquet`` by their names (per-block probes as
      ``<stat>/block<k>``) at step = epoch (Ray writes ``ray/tune/<key>`` per Ray iteration);
    - once the recorder has written the row: its outcome as ``outcome/<name>`` scalars
      (best_val_acc, test_acc_at_best_val, n_params, wall_seconds, ...) and an hparams session
      whose hyperparameters are the TrialConfig fields plus sweep, phase, arm_id, execution and
      status, and whose metrics are the ``outcome/*`` scalars: TensorBoard's HPARAMS tab lists
      every trial (Ray's has Ray's nested config and the last reported values only);
    - a failure warns once and turns the tracker off; the sweep and its rows go on (Tracked).
    """

    tracker = "tensorboard"

    def __init__(self, options: TensorboardOptions, *, out: Path, sweep: str, phase: str) -> None:
        super().__init__()
        self.logdir = logdir_of(options, out)
        self.writers: dict[str, Any] = {}  # results trial_id -> SummaryWriter
        self.init_tracked(sweep=sweep, phase=phase)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "writers": {}, "_trial_writer": {}, "_trial_result": {}}

    def _writer(self, trial: Any, trial_id: str) -> Any:
        if trial_id not in self.writers:
            member = next(m for m in members_of(trial) if m.trial_id == trial_id)
            folder = run_dir(self.logdir, member)
            self.writers[trial_id] = self._summary_writer_cls(str(folder), flush_secs=30)
        return self.writers[trial_id]

    # ---------------------------------------------------------------- Ray's logger hooks
    def log_trial_start(self, trial: Any) -> None:
        pass  # folders appear with the first epoch, or the outcome of a trial that had none

    def log_trial_result(self, iteration: int, trial: Any, result: dict) -> None:
        for tid, epoch, metrics in epoch_reports(trial, result):
            writer = self._writer(trial, tid)
            for key, value in metrics.items():
                writer.add_scalar(key, value, global_step=epoch)
            writer.flush()

    def log_outcome(self, trial: Any, results: list[TrialResult]) -> None:
        from tensorboardX.summary import hparams

        members = {m.trial_id: m for m in members_of(trial)}
        for result in results:
            writer = self._writer(trial, result.trial_id)
            metrics, tags = outcome(result)
            scalars = {f"outcome/{k}": v for k, v in metrics.items()}
            for key, value in scalars.items():
                writer.add_scalar(key, value, global_step=len(result.epochs))
            member = members[result.trial_id]
            params = {
                **{k: "none" if v is None else v for k, v in member.config.items()},
                **{k: member.meta[k] for k in ("sweep", "phase", "arm_id")},
                "execution": result.execution,
                "status": tags["status"],
            }
            for summary in hparams(hparam_dict=params, metric_dict=scalars):
                writer.file_writer.add_summary(summary)
            writer.flush()

    def log_trial_end(self, trial: Any, failed: bool = False) -> None:
        for member in members_of(trial):
            writer = self.writers.pop(member.trial_id, None)
            if writer is not None:
                writer.close()

    def on_experiment_end(self, *args: Any, **kwargs: Any) -> None:
        self.safely("at the end", self._close_all, cleanup=True)

    def _close_all(self) -> None:
        writers, self.writers = self.writers, {}
        for writer in writers.values():
            writer.close()
