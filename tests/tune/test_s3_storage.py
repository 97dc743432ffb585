"""``--storage s3://...`` for real: sweeps keep Ray's experiment state and checkpoints in a bucket
of moto's S3 server on 127.0.0.1 (conftest.py), reached through pyarrow's S3 filesystem with
``endpoint_override``, as MinIO, Ceph or R2 would be. The multi-node case (a lost node's trial
resumed elsewhere from its checkpoint in the bucket) is in test_cluster.py."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from s3_server import BUCKET, S3Server, free_port

from bnorder.errors import ConfigError
from bnorder.results import load
from bnorder.sweep.plan import make_plan
from bnorder.sweep.spec import load_sweep
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
"""


def _run(path: Path, out: Path, storage: str) -> object:
    spec, text = load_sweep(path)
    plan = make_plan(spec, str(path))
    run_sweep(plan, text, out=out, storage=storage, src=str(path))
    return plan


def _checkpoints(objects: list[str]) -> list[str]:
    return [o for o in objects if "/checkpoint_" in o]


@pytest.mark.usefixtures("ray_session")
def test_grid_sweep_keeps_ray_state_and_checkpoints_in_the_bucket(
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
    assert _checkpoints(objects)


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
