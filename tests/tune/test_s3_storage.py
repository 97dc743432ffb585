"""``--storage s3://...`` for real: sweeps keep Ray's experiment state and checkpoints in a bucket
of moto's S3 server on 127.0.0.1 (conftest.py), reached through pyarrow's S3 filesystem with
``endpoint_override``, as MinIO, Ceph or R2 would be. The multi-node case (a lost node's trial
resumed elsewhere from its checkpoint in the bucket) is in test_cluster.py."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from s3_server import BUCKET, S3Server, free_port

from bnorder.errors import ConfigError
from bnorder.results import load
from bnorder.sweep.plan import make_plan
from bnorder.sweep.spec import load_sweep
from bnorder.tune.checkpoints import WEIGHTS
from bnorder.tune.runner import STORAGE_FILE, run_sweep
from bnorder.tune.storage import open_storage

GRID = """
name: s3grid
mode: grid
datasets: [synthetic]
archs: [mlp]
orderings: [case1, case2]
fixed: {depth: 1, width: 4, epochs: 2, device: cpu}
seeds: 2
max_concurrent: 2
keep_weights: trial
"""


def _run(path: Path, out: Path, storage: str) -> object:
    spec, text = load_sweep(path)
    plan = make_plan(spec, str(path))
    run_sweep(plan, text, out=out, storage=storage, src=str(path))
    return plan


def _checkpoints(objects: list[str]) -> list[str]:
    return [o for o in objects if "/checkpoint_" in o]


@pytest.mark.usefixtures("ray_session")
def test_grid_sweep_keeps_ray_state_in_the_bucket_and_deletes_finished_checkpoints(
    s3: S3Server, sweep_file: Callable[..., Path], tmp_path: Path
) -> None:
    path, out, storage = sweep_file(GRID), tmp_path / "out", s3.uri("grid")
    plan = _run(path, out, storage)
    trials = load(out).trials
    assert len(trials) == plan.trial_count("grid") == 4
    assert trials.config_hash.is_unique
    assert set(trials.status) == {"ok"}
    assert (trials.epochs_done == 2).all()
    assert len(load(out).epochs) == 4 * 2
    assert (out / STORAGE_FILE).read_text() == storage + "\n"  # as given, query string and all
    assert not (out / "ray").exists()  # nothing of Ray's under --out

    experiment = f"{BUCKET}/grid/s3grid-grid/"
    objects = s3.listing("grid")
    assert f"{experiment}tuner.pkl" in objects
    assert any(o.startswith(f"{experiment}experiment_state-") for o in objects)
    inside = [o.removeprefix(experiment) for o in objects]
    folders = {o.split("/")[0] for o in inside if "/" in o}
    assert len(folders) == 4  # one per trial: params, progress, results
    assert all(f"{experiment}{f}/result.json" in objects for f in folders)
    assert _checkpoints(objects) == []  # deleted from the bucket once the rows were written...
    assert len(list((out / WEIGHTS).glob("*.pt"))) == 4  # ...after the final weights came back


@pytest.mark.parametrize(
    ("where", "problem"),
    [
        # a store that does not answer: refused at once, listed with short timeouts
        ("s3://{bucket}/x?endpoint_override=127.0.0.1:{down}&scheme=http", "cannot be listed:"),
        (
            "s3://no-such-bucket/x?endpoint_override={endpoint}&scheme=http",
            "names a bucket that does not exist (no-such-bucket):",
        ),
        (
            "s3://no-such-bucket?endpoint_override={endpoint}&scheme=http",
            "names a bucket that does not exist (no-such-bucket):",
        ),
        ("s3://{bucket}/x?endpoint_override={endpoint}&schema=http", "cannot be opened:"),
    ],
    ids=["store-down", "no-bucket", "no-bucket-root", "unknown-option"],
)
def test_unusable_object_storage_is_one_line_before_anything_is_written(
    s3: S3Server, sweep_file: Callable[..., Path], tmp_path: Path, where: str, problem: str
) -> None:
    uri = where.format(bucket=BUCKET, endpoint=s3.endpoint, down=free_port())
    out = tmp_path / "out"
    with pytest.raises(ConfigError) as info:
        _run(sweep_file(GRID), out, uri)
    message = str(info.value)
    assert message.startswith(f"--storage: {problem} {uri!r}")
    assert "\n" not in message
    assert not out.exists()
    assert not s3.listing("x")


def test_missing_bucket_through_the_cli_exits_2(
    s3: S3Server, sweep_file: Callable[..., Path], tmp_path: Path, cli: Callable[..., tuple]
) -> None:
    uri, out = s3.uri("x", bucket="no-such-bucket"), tmp_path / "out"
    code, _, err = cli("sweep", str(sweep_file(GRID)), "--out", str(out), "--storage", uri)
    assert code == 2, err
    assert err == (
        f"bnorder sweep: error: --storage: names a bucket that does not exist (no-such-bucket):"
        f" {uri!r}; create it first; bnorder never creates buckets\n"
    )
    assert not out.exists()


def test_a_new_prefix_in_an_existing_bucket_is_fine(s3: S3Server) -> None:
    storage = open_storage(s3.uri("fresh/ray/"))
    assert storage.path == f"{BUCKET}/fresh/ray"
    assert storage.show("exp") == f"s3://{BUCKET}/fresh/ray/exp"
    assert open_storage("/mnt/nfs/ray").filesystem is None


KILLED = """
name: s3kill
mode: grid
datasets: [synthetic]
archs: [cnn]
orderings: [case1, case2, case3]
fixed: {depth: 1, width: 8, epochs: 10, device: cpu}  # 10: time to kill a trial mid-way
seeds: 1
max_concurrent: 1
"""


def _sweep(path: Path, out: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "bnorder", "sweep", str(path), "--out", str(out), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # Ray snapshots the experiment at every step, not every 10 s: the state in the bucket
        # then names a checkpoint of a trial killed a few epochs in, whatever this machine's speed;
        # epoch rows are written as reported, for the kill to count a running trial's epochs
        env={**os.environ, "TUNE_GLOBAL_CHECKPOINT_S": "0", "BNORDER_EPOCH_PARTS_S": "0"},
        start_new_session=True,  # its own process group: the kill takes Ray's processes too
    )


def _running_epochs(out: Path) -> tuple[int, dict[str, int]]:
    """Trials recorded, and epochs reported by each trial not recorded yet."""
    try:
        res = load(out)
    except Exception:  # nothing written yet, or a file being replaced this instant
        return 0, {}
    recorded = set(res.trials.trial_id)
    running = res.epochs[~res.epochs.trial_id.isin(recorded)]
    return len(recorded), running.groupby("trial_id").size().to_dict()


@pytest.mark.slow
def test_driver_killed_then_resumed_from_the_bucket(
    s3: S3Server, sweep_file: Callable[..., Path], tmp_path: Path
) -> None:
    path, out, storage = sweep_file(KILLED), tmp_path / "out", s3.uri("killed")
    proc = _sweep(path, out, "--storage", storage)
    # killed once a trial is recorded and the next has reported 3 epochs
    deadline = time.monotonic() + 300
    while proc.poll() is None and time.monotonic() < deadline:
        recorded, running = _running_epochs(out)
        if recorded >= 1 and any(n >= 3 for n in running.values()):
            break
        time.sleep(0.3)
    assert proc.poll() is None, f"sweep ended before it could be killed:\n{proc.stdout.read()}"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    recorded, running = _running_epochs(out)
    interrupted = {tid for tid, n in running.items() if n >= 3}
    assert recorded < 3
    assert interrupted
    assert _checkpoints(s3.listing("killed"))  # the interrupted trial's, in the bucket

    resumed = _sweep(path, out, "--resume")  # the storage comes from ray_storage.txt
    output, _ = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, output
    assert f"resuming s3://{BUCKET}/killed/s3kill-grid" in output
    res = load(out)
    trials = res.trials.set_index("trial_id")
    assert len(trials) == 3
    assert trials.index.is_unique
    assert trials.config_hash.is_unique  # each (config, seed) exactly once
    assert set(trials.status) == {"ok"}, trials[["status", "error", "restarts"]].to_string()
    assert (trials.epochs_done == 10).all()
    assert len(res.epochs) == 3 * 10
    assert not res.epochs.duplicated(["trial_id", "epoch"]).any()
    # the interrupted trial went on from its checkpoint in the bucket, not from scratch
    assert (trials.loc[sorted(interrupted), "restarts"] >= 1).all()
    assert _checkpoints(s3.listing("killed")) == []
