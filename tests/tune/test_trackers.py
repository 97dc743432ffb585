"""Experiment trackers against the real things: a local MLflow tracking server (started from its
own environment, as full mlflow pins pyarrow below bnorder's), W&B in offline mode, TensorBoard
event files. What each tracker holds is compared, run by run, with the Parquet rows."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from bnorder.config import TrialConfig
from bnorder.errors import ConfigError
from bnorder.results import load
from bnorder.sweep.plan import make_plan
from bnorder.sweep.spec import load_sweep
from bnorder.sweep.trackers import with_tracker_flags
from bnorder.tune.runner import run_sweep
from bnorder.tune.trackers import check_trackers
from bnorder.tune.trackers.common import TrackerError

pytestmark = pytest.mark.usefixtures("ray_session")

MLFLOW_SERVER = "mlflow==3.17.2"  # .ci/run puts the same into uv's cache before the tests
# one fused Ray trial of 2 members and one lone trial: 3 rows, with probes
SWEEP = """
name: {name}
mode: grid
datasets: [synthetic]
archs: [mlp]
orderings: [case2]
fixed: {{depth: 1, width: 4, epochs: 2, device: cpu, probes: true}}
seeds: 3
fuse: 2
max_concurrent: 2
trackers: {trackers}
"""


def _missing(what: str) -> None:
    """Fail in CI, whose .ci/run installs everything these tests need; skip elsewhere."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{what} (CI must have it)")
    pytest.skip(what)


def _import(module: str) -> Any:
    try:
        return __import__(module, fromlist=["_"])
    except ImportError:
        _missing(f"{module} is not installed (uv sync installs the dev group)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    """A real MLflow tracking server on a free loopback port, SQLite-backed, in a session of its
    own (so that killing it ends its workers too)."""

    url: str
    proc: subprocess.Popen
    log: Path

    @classmethod
    def start(cls, folder: Path) -> Server:
        uv = os.environ.get("UV") or shutil.which("uv")
        if uv is None:
            _missing("uv is needed to run the MLflow server (uv tool run)")
        folder.mkdir(parents=True, exist_ok=True)
        port, log = _free_port(), folder / "server.log"
        cmd = [uv, "tool", "run", "--from", MLFLOW_SERVER, "mlflow", "server", "--workers", "1"]
        cmd += ["--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}", "--port", str(port)]
        cmd += ["--default-artifact-root", str(folder / "artifacts"), "--host", "127.0.0.1"]
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}  # no job workers
        with log.open("w") as sink:
            proc = subprocess.Popen(cmd, stdout=sink, stderr=sink, env=env, start_new_session=True)
        return cls(f"http://127.0.0.1:{port}", proc, log)

    def wait_until_up(self) -> None:
        deadline = time.monotonic() + 180
        while not self.answers():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                _missing(f"the MLflow server did not start: {self.log.read_text()[-800:]}")
            time.sleep(0.3)

    def answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Server]]:
    """Two servers, booted side by side (a boot is one busy core for ~10 s): one for the
    tracked sweep, one for a test to kill."""
    _import("mlflow")
    folder = tmp_path_factory.mktemp("servers")
    started = [Server.start(folder / name) for name in ("kept", "doomed")]
    try:
        for server in started:
            server.wait_until_up()
        yield started[0], started[1]
    finally:
        for server in started:
            server.kill()


@pytest.fixture(scope="module")
def tracked(
    tmp_path_factory: pytest.TempPathFactory, servers: tuple[Server, Server]
) -> Iterator[dict[str, Any]]:
    """One sweep logged to all three trackers at once (W&B offline), and its Parquet."""
    _import("wandb")
    _import("tensorboard")
    folder, server = tmp_path_factory.mktemp("tracked"), servers[0]
    with pytest.MonkeyPatch.context() as mp:
        for key in ("WANDB_API_KEY", "WANDB_PROJECT", "WANDB_ENTITY", "MLFLOW_TRACKING_URI"):
            mp.delenv(key, raising=False)
        mp.setenv("WANDB_MODE", "offline")  # no network: runs stay on disk
        mp.setenv("WANDB_DIR", str(folder / "wandb-dir"))
        mp.setenv("WANDB_SILENT", "true")
        trackers = f"{{mlflow: {{tracking_uri: '{server.url}'}}, wandb: {{}}, tensorboard: {{}}}}"
        path = folder / "sweep.yaml"
        path.write_text(SWEEP.format(name="tr", trackers=trackers))
        out = folder / "out"
        _run(path, out)
        results = load(out)
        yield {
            "server": server,
            "out": out,
            "wandb_dir": folder / "wandb-dir",
            "trials": results.trials.set_index("trial_id"),
            "epochs": results.epochs,
        }


def _run(path: Path, out: Path) -> None:
    spec, text = load_sweep(path)
    run_sweep(make_plan(spec, str(path)), text, out=out, src=str(path))


def _params(row: pd.Series) -> dict[str, str]:
    return {k: str(None if pd.isna(row[k]) else row[k]) for k in TrialConfig.model_fields}


def _same_curve(
    got: list[tuple[int, float]], epochs: pd.DataFrame, trial_id: str, column: str
) -> None:
    """``(epoch, value)`` pairs as logged equal the column of ``epochs.parquet``."""
    rows = epochs[epochs.trial_id == trial_id].sort_values("epoch")
    assert [s for s, _ in sorted(got)] == rows.epoch.tolist(), column
    assert [v for _, v in sorted(got)] == pytest.approx(rows[column].tolist(), rel=1e-6), column


def test_the_sweep_ran_fused_and_single(tracked: dict[str, Any]) -> None:
    trials = tracked["trials"]
    assert len(trials) == 3
    assert sorted(trials.execution) == ["fused 2", "fused 2", "single"]
    assert set(trials.status) == {"ok"}


# ---------------------------------------------------------------- MLflow
def test_mlflow_runs_match_the_parquet_rows(tracked: dict[str, Any]) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracked["server"].url)
    experiment = client.get_experiment_by_name("tr")  # one experiment per sweep, by its name
    runs = {r.data.tags["trial_id"]: r for r in client.search_runs([experiment.experiment_id])}
    trials, epochs = tracked["trials"], tracked["epochs"]
    assert set(runs) == set(trials.index)  # one run per row, fused members included
    for tid, row in trials.iterrows():
        run = runs[tid]
        assert run.info.status == "FINISHED"
        assert run.info.run_name == f"{row.arm_id} seed {row.seed}"
        assert run.data.params == _params(row)
        tags = run.data.tags
        assert tags["status"] == row.status
        assert (tags["sweep"], tags["phase"], tags["arm_id"]) == (row.sweep, row.phase, row.arm_id)
        assert (tags["seed"], tags["execution"]) == (str(row.seed), row.execution)
        assert (tags["ray_trial_id"], tags["config_hash"]) == (row.ray_trial_id, row.config_hash)
        metrics = run.data.metrics
        for key in ("best_val_acc", "test_acc_at_best_val", "n_params", "wall_seconds"):
            assert metrics[key] == pytest.approx(float(row[key]), rel=1e-9), key
        for column in ("val_acc", "train_loss", "act_dead_frac_mean"):
            history = client.get_metric_history(run.info.run_id, column)
            _same_curve([(m.step, m.value) for m in history], epochs, tid, column)
        assert "act_dead_frac/block0" in metrics  # a probe's per-block values


def test_unreachable_mlflow_fails_before_any_trial(
    sweep_file: Callable[..., Path], tmp_path: Path, cli: Callable[..., tuple[int, str, str]]
) -> None:
    _import("mlflow")
    url = f"http://127.0.0.1:{_free_port()}"  # nothing listens there
    path = sweep_file(SWEEP.format(name="down", trackers=f"{{mlflow: {{tracking_uri: '{url}'}}}}"))
    out = tmp_path / "out"
    started = time.monotonic()
    with pytest.raises(TrackerError, match=rf"mlflow tracker: {url} does not answer"):
        _run(path, out)
    assert time.monotonic() - started < 15  # no minutes of retries
    assert not out.exists()  # nothing written, nothing started
    code, _, stderr = cli("sweep", str(path), "--out", str(out))
    assert code == 1, stderr  # the command was right; the server was not there
    assert stderr.count("\n") == 1
    assert "Connection refused" in stderr
    assert not out.exists()


def test_bad_tracker_config_is_a_usage_error(
    sweep_file: Callable[..., Path],
    tmp_path: Path,
    cli: Callable[..., tuple[int, str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spec, _ = load_sweep(
        sweep_file(SWEEP.format(name="bad", trackers="{mlflow: {tracking_uri: 'htp://x'}}"))
    )
    with pytest.raises(ConfigError, match=r"trackers.mlflow.tracking_uri: is not a tracking URI"):
        check_trackers(spec.trackers, tmp_path)
    monkeypatch.setitem(__import__("sys").modules, "wandb", None)  # as if not installed
    spec, _ = load_sweep(sweep_file(SWEEP.format(name="nowb", trackers="[wandb]")))
    with pytest.raises(
        ConfigError, match=r"tracker 'wandb' needs .*pip install 'bnorder\[wandb\]'"
    ):
        check_trackers(spec.trackers, tmp_path)
    code, _, stderr = cli("sweep", "sweeps/smoke.yaml", "--tracker-uri", "http://x", "--dry-run")
    assert code == 2
    assert stderr.strip().endswith("add --tracker mlflow")


def test_a_server_that_dies_mid_sweep_loses_no_row(
    sweep_file: Callable[..., Path],
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    servers: tuple[Server, Server],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out, server = tmp_path / "out", servers[1]
    path = sweep_file(SWEEP.format(name="dies", trackers="[mlflow]"))
    monkeypatch.setenv("BNORDER_EPOCH_PARTS_S", "0")  # the first epoch on disk as reported

    def kill_after_first_epoch() -> None:
        deadline = time.monotonic() + 300
        while not list((out / "epochs.parquet").glob("part-*")):
            if time.monotonic() > deadline:
                return
            time.sleep(0.05)
        server.kill()

    killer = threading.Thread(target=kill_after_first_epoch)
    killer.start()
    spec, text = load_sweep(path)
    spec = spec.model_copy(update={"trackers": with_tracker_flags(spec.trackers, None, server.url)})
    run_sweep(make_plan(spec), text, out=out, src=str(path))
    killer.join()
    assert not server.answers()  # it died during the sweep
    trials = load(out).trials
    assert len(trials) == 3
    assert set(trials.status) == {"ok"}
    warnings = [ln for ln in capfd.readouterr().err.splitlines() if "mlflow tracker" in ln]
    assert len(warnings) == 1, warnings  # once, then the tracker is off for the phase
    assert "results are written as always" in warnings[0]


# ---------------------------------------------------------------- W&B (offline)
def _wandb_records(path: Path) -> Iterator[Any]:
    """The records of a ``.wandb`` file: W&B's protobuf records in LevelDB log framing
    (wandb 0.31 ships no Python reader; its Go core writes them)."""
    from wandb.proto import wandb_internal_pb2 as pb

    data, pos, block, buf = path.read_bytes(), 7, 32768, b""
    assert data[:4] == b":W&B"
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a header is padding
            pos += block - pos % block
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        chunk, pos = data[pos + 7 : pos + 7 + length], pos + 7 + length
        buf = chunk if kind in (1, 2) else buf + chunk  # full/first start, middle/last add
        if kind in (1, 4) and buf:
            record = pb.Record()
            record.ParseFromString(buf)
            yield record


def _key(item: Any) -> str:
    return item.key or "/".join(item.nested_key)


def _wandb_run(path: Path) -> dict[str, Any]:
    run: dict[str, Any] = {"summary": {}, "history": []}
    for record in _wandb_records(path):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            r = record.run
            run |= {"id": r.run_id, "name": r.display_name, "group": r.run_group}
            run |= {"job_type": r.job_type, "project": r.project, "tags": list(r.tags)}
            run["config"] = {_key(i): json.loads(i.value_json) for i in r.config.update}
        elif kind == "summary":
            run["summary"] |= {_key(i): json.loads(i.value_json) for i in record.summary.update}
        elif kind == "history":
            run["history"].append({_key(i): json.loads(i.value_json) for i in record.history.item})
    return run


def test_wandb_offline_runs_match_the_parquet_rows(tracked: dict[str, Any]) -> None:
    files = sorted(tracked["wandb_dir"].glob("wandb/offline-run-*/run-*.wandb"))
    runs = {r["id"]: r for r in map(_wandb_run, files)}
    trials, epochs = tracked["trials"], tracked["epochs"]
    assert set(runs) == set(trials.index)  # run id = trial_id, one per row
    for tid, row in trials.iterrows():
        run = runs[tid]
        assert (run["group"], run["project"], run["job_type"]) == ("tr", "tr", "grid")
        assert run["name"] == f"{row.arm_id} seed {row.seed}"
        assert set(run["tags"]) == {"grid", row.execution, row.status}
        config = {k: v for k, v in run["config"].items() if k != "_wandb"}
        assert {k: config[k] for k in TrialConfig.model_fields} == {
            k: None if pd.isna(row[k]) else row[k] for k in TrialConfig.model_fields
        }
        assert (config["arm_id"], config["execution"]) == (row.arm_id, row.execution)
        summary = run["summary"]
        assert summary["status"] == row.status
        for key in ("best_val_acc", "test_acc_at_best_val", "n_params", "wall_seconds"):
            assert summary[key] == pytest.approx(float(row[key]), rel=1e-9), key
        history = [(h["_step"], h["val_acc"]) for h in run["history"]]
        _same_curve(history, epochs, tid, "val_acc")


# ---------------------------------------------------------------- TensorBoard
def test_tensorboard_runs_match_the_parquet_rows(tracked: dict[str, Any]) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    trials, epochs = tracked["trials"], tracked["epochs"]
    logdir = tracked["out"] / "tensorboard"
    for tid, row in trials.iterrows():
        acc = EventAccumulator(str(logdir / row.phase / row.arm_id / tid))
        acc.Reload()
        for column in ("val_acc", "train_loss", "act_dead_frac_mean"):
            _same_curve([(e.step, e.value) for e in acc.Scalars(column)], epochs, tid, column)
        for key in ("best_val_acc", "test_acc_at_best_val", "n_params"):
            (last,) = acc.Scalars(f"outcome/{key}")
            assert last.value == pytest.approx(float(row[key]), rel=1e-6), key
        content = acc.PluginTagToContent("hparams")
        start = plugin_data_pb2.HParamsPluginData.FromString(
            content["_hparams_/session_start_info"]
        ).session_start_info
        hparams = {k: v.string_value or v.number_value for k, v in start.hparams.items()}
        assert hparams["status"] == row.status
        assert hparams["ordering"] == row.ordering
        assert hparams["lr"] == pytest.approx(row.lr)
        assert hparams["execution"] == row.execution
    # Ray's own per-trial event files are replaced by these
    assert not list((tracked["out"] / "ray").rglob("events.out.tfevents.*"))
