"""MLflow: one experiment per sweep (its name, or ``trackers.mlflow.experiment``), one run per
results row. Needs the MLflow client (``bnorder[mlflow]``)."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ray.air.integrations.mlflow import MLflowLoggerCallback

from bnorder.errors import ConfigError
from bnorder.sweep.trackers import MlflowOptions
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

__all__ = ["REQUIRES", "MlflowTracker", "check", "tracking_uri"]

REQUIRES = ("mlflow", "the MLflow client (mlflow-skinny)")  # checked before check()

# MLflow retries a failed request 7 times over about 4 minutes by default, and the Tune loop
# waits for each request: a dead server would hold the sweep for minutes before the tracker
# gives up. Set these variables yourself to wait longer.
HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
}


def tracking_uri(options: MlflowOptions, out: Path) -> str:
    """The file's or flag's URI, else ``$MLFLOW_TRACKING_URI``, else SQLite in ``out``."""
    uri = options.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    return uri or f"sqlite:///{(out / 'mlflow.db').resolve()}"


@contextlib.contextmanager
def _env(**values: str) -> Iterator[None]:
    before = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def check(options: MlflowOptions, out: Path) -> None:
    """The URI is one MLflow can use, and a server there answers.

    Raises:
        ConfigError: a URI MLflow cannot use (exit code 2).
        TrackerError: a tracking server that does not answer (exit code 1).
    """
    uri = tracking_uri(options, out)
    if uri.startswith("sqlite:"):
        return  # a local file, created when the sweep starts (the client would create it now)
    from mlflow import MlflowClient

    try:
        client = MlflowClient(tracking_uri=uri)
    except Exception as exc:
        raise ConfigError(
            "trackers.mlflow.tracking_uri",
            uri,
            f"is not a tracking URI MLflow can use ({brief(exc)}):",
            hint="e.g. http://HOST:5000 or sqlite:///PATH (set it there or with --tracker-uri)",
        ) from None
    with _env(MLFLOW_HTTP_REQUEST_MAX_RETRIES="0", MLFLOW_HTTP_REQUEST_TIMEOUT="10"):
        try:
            client.search_experiments(max_results=1)
        except Exception as exc:
            raise TrackerError(
                f"mlflow tracker: {uri} does not answer ({brief(exc)}); start the tracking "
                "server, or fix trackers.mlflow.tracking_uri / --tracker-uri"
            ) from None


class MlflowTracker(Tracked, MLflowLoggerCallback):
    """Ray's :class:`~ray.air.integrations.mlflow.MLflowLoggerCallback`, which sets the tracking
    URI and gets or creates the experiment, with what bnorder adds:

    - one run per results row: each member of a fused array is a run of its own, named
      ``<arm_id> seed <seed>`` and tagged sweep, phase, arm_id, seed, execution (``single`` or
      ``fused K``), trial_id, ray_trial_id, config_hash, group_hash (and Optuna's study);
    - params: the member's TrialConfig fields, flat (Ray would log its nested trial config);
    - per-epoch metrics: the columns of ``epochs.parquet`` (a probe's per-block values as
      ``<stat>/block<k>``) at step = epoch, one request per epoch (Ray sends one per metric);
    - the outcome once the recorder has written the row: the ``status`` tag (ok, pruned,
      diverged, failed) and best_val_acc, test_acc_at_best_val, n_params, wall_seconds and the
      other summary figures as metrics; a failed trial's run ends FAILED;
    - a resumed sweep continues a trial's run (found by its trial_id tag);
    - a failure warns once and turns the tracker off; the sweep and its rows go on (Tracked).
    """

    tracker = "mlflow"

    def __init__(self, options: MlflowOptions, *, out: Path, sweep: str, phase: str) -> None:
        super().__init__(tracking_uri(options, out), experiment_name=options.experiment or sweep)
        self.init_tracked(sweep=sweep, phase=phase)
        self.runs: dict[str, str] = {}  # results trial_id -> MLflow run id
        self._client: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_client": None}  # a live HTTP session stays in this process

    def setup(self, *args: Any, **kwargs: Any) -> None:
        for key, value in HTTP_DEFAULTS.items():
            os.environ.setdefault(key, value)
        self.runs.clear()
        super().setup(*args, **kwargs)

    @property
    def client(self) -> Any:
        if self._client is None:
            from mlflow import MlflowClient

            self._client = MlflowClient(tracking_uri=self.tracking_uri)
        return self._client

    # ---------------------------------------------------------------- runs
    def _open(self, member: Member) -> str:
        from mlflow.entities import Param, RunTag

        experiment = self.mlflow_util.experiment_id
        found = self.client.search_runs(
            [experiment], filter_string=f"tags.trial_id = '{member.trial_id}'", max_results=1
        )
        if found:  # a resumed sweep: the trial's run from before
            run_id = found[0].info.run_id
        else:
            run_id = self.client.create_run(experiment, run_name=member.name).info.run_id
        self.client.log_batch(
            run_id,
            params=[Param(k, v) for k, v in member.params.items()],
            tags=[RunTag(k, v) for k, v in member.tags.items()],
        )
        return run_id

    def _run(self, trial: Any, trial_id: str) -> str:
        if trial_id not in self.runs:
            member = next(m for m in members_of(trial) if m.trial_id == trial_id)
            self.runs[trial_id] = self._open(member)
        return self.runs[trial_id]

    # ---------------------------------------------------------------- Ray's logger hooks
    def log_trial_start(self, trial: Any) -> None:
        for member in members_of(trial):
            self._run(trial, member.trial_id)

    def log_trial_result(self, iteration: int, trial: Any, result: dict) -> None:
        from mlflow.entities import Metric

        stamp = int(time.time() * 1000)
        for tid, epoch, metrics in epoch_reports(trial, result):
            batch = [Metric(k, v, stamp, epoch) for k, v in metrics.items()]
            self.client.log_batch(self._run(trial, tid), metrics=batch)

    def log_outcome(self, trial: Any, results: list[TrialResult]) -> None:
        from mlflow.entities import Metric, RunTag

        stamp = int(time.time() * 1000)
        for result in results:
            metrics, tags = outcome(result)
            self.client.log_batch(
                self._run(trial, result.trial_id),
                metrics=[Metric(k, v, stamp, len(result.epochs)) for k, v in metrics.items()],
                tags=[RunTag(k, v) for k, v in tags.items()],
            )

    def log_trial_end(self, trial: Any, failed: bool = False) -> None:
        for member in members_of(trial):
            run_id = self.runs.pop(member.trial_id, None)
            if run_id is not None:
                self.client.set_terminated(run_id, "FAILED" if failed else "FINISHED")
