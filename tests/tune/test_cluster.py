"""Multi-node sweeps on a real Ray cluster on this machine: a head with no CPUs and two worker
nodes with one (fake) GPU each, started with ``ray start`` as on real machines, each node on its
own loopback address (127.0.0.2, 127.0.0.3) so the ``node_ip`` column tells them apart. The
sweep driver is the real ``bnorder sweep --address``. Token auth is on everywhere, with a token
made for this test; ``RAY_AUTH_MODE`` is set explicitly for every process (NOTES.md)."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from replay import replay
from s3_server import S3Server

from bnorder.results import load, recorded_ids
from bnorder.sweep.plan import make_plan
from bnorder.sweep.spec import load_sweep

pytestmark = pytest.mark.slow

WORKER_IPS = ("127.0.0.2", "127.0.0.3")
KEEPER = Path(__file__).with_name("cluster_keeper.py")


class LocalCluster:
    """The cluster kept by ``cluster_keeper.py`` in its own process; nodes added and killed by
    command, so this test process never joins the cluster itself."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.keeper = subprocess.Popen(
            [sys.executable, str(KEEPER), *WORKER_IPS],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.address = self._reply()

    def _reply(self) -> str:
        line = self.keeper.stdout.readline().strip()
        assert line, "the cluster keeper died"
        return line

    def _command(self, text: str) -> None:
        self.keeper.stdin.write(text + "\n")
        self.keeper.stdin.flush()
        assert self._reply() == f"ok {text}"

    def kill(self, ip: str) -> None:
        """The node dies at once (SIGKILL, no graceful shutdown), trials and all."""
        self._command(f"kill {ip}")

    def add_worker(self, ip: str) -> None:
        self._command(f"add {ip}")

    def stop(self) -> None:
        with contextlib.suppress(AssertionError, BrokenPipeError):  # already gone
            self._command("quit")
        try:
            self.keeper.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.keeper.kill()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    fault = tmp_path_factory.mktemp("fault")
    env = {
        **os.environ,  # with AWS_* (conftest.py): the nodes' trials reach the S3 bucket with them
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": secrets.token_hex(32),  # this cluster's own token, every process
        "RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0",
        # trials of the arm named here raise a simulated CUDA OOM on every attempt
        "BNORDER_FAULT": f"{fault}:1000",
        "BNORDER_FAULT_ONLY": "conv-bn-tanh",
    }
    for inherited in ("RAY_ADDRESS", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"):
        env.pop(inherited, None)
    c = LocalCluster(env)
    c.fault_dir = fault  # type: ignore[attr-defined]
    try:
        yield c
    finally:
        c.stop()


SWEEP = """
name: {name}
mode: grid
datasets: [synthetic]
archs: [cnn]
orderings: {orderings}
fixed: {{depth: {depth}, width: {width}, epochs: {epochs}, device: cpu}}
seeds: {seeds}
resources: {resources}
max_failures: {max_failures}
fuse: {fuse}
"""


def _sweep_file(folder: Path, **kw: object) -> Path:
    values = {
        "depth": 1,
        "width": 8,
        "epochs": 2,
        "seeds": 2,
        "max_failures": 2,
        "resources": "{cpu: 1, gpu: 0.5}",
        "fuse": 1,
        **kw,
    }
    path = folder / f"{values['name']}.yaml"
    path.write_text(SWEEP.format(**values))
    return path


def _driver(
    c: LocalCluster, path: Path, out: Path, *extra: str, storage: str | None = None
) -> subprocess.Popen:
    """The sweep's driver; Ray's storage is ``storage``, else a folder all nodes here share."""
    storage = storage or str(out.parent / "storage")
    where = ["--out", str(out), "--address", c.address, "--storage", storage]
    return subprocess.Popen(
        [sys.executable, "-m", "bnorder", "sweep", str(path), *where, *extra],
        # the driver is on the head's machine: loopback addresses, as the keeper's nodes
        # epoch rows written as reported: node-loss kills wait for every trial's first epoch
        env={**c.env, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "BNORDER_EPOCH_PARTS_S": "0"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # killing the driver must not take the cluster with it
    )


def _finish(proc: subprocess.Popen, timeout: float = 400) -> str:
    output, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, output
    return output


def _wait(cond: Callable[[], bool], proc: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert proc.poll() is None, f"sweep ended too early:\n{proc.stdout.read()}"
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.3)


def _epoch_parts(out: Path) -> dict[str, int]:
    """Epochs recorded so far, per trial part file."""
    folder = out / "epochs.parquet"
    if not folder.exists():
        return {}
    import pyarrow.parquet as pq

    found: dict[str, int] = {}
    for part in folder.glob("part-*.parquet"):
        try:
            found[part.stem] = pq.read_metadata(part).num_rows
        except Exception:  # being replaced this instant
            continue
    return found


def _assert_each_config_once(path: Path, out: Path) -> None:
    plan = make_plan(load_sweep(path)[0])
    trials = load(out).trials
    assert len(trials) == plan.trial_count("grid")
    assert trials.config_hash.is_unique
    planned = {cfg.config_hash for _, cfg in plan.grid_trials}
    assert set(trials.config_hash) == planned
    epochs = load(out).epochs
    assert not epochs.duplicated(["trial_id", "epoch"]).any()


def test_trials_spread_over_both_nodes_and_share_their_gpus(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    path = _sweep_file(tmp_path, name="spread", orderings="[case1, case2]", seeds=4)
    out = tmp_path / "out"
    output = _finish(_driver(cluster, path, out))
    assert "8 trials" in output
    _assert_each_config_once(path, out)
    trials = load(out).trials
    print(trials[["arm_id", "seed", "node_ip", "gpu_ids", "trials_per_gpu", "status"]].to_string())
    assert set(trials.status) == {"ok"}
    assert set(trials.node_ip) == set(WORKER_IPS)  # never the CPU-less head
    assert trials.node_id.nunique() == 2
    assert set(trials.gpu_fraction) == {0.5}
    assert set(trials.trials_per_gpu) == {2}
    assert set(trials.gpu_ids) == {"0"}  # each node's one GPU, as Ray assigned it
    assert (out / "ray_storage.txt").read_text().strip() == str(tmp_path / "storage")


def test_failing_trial_is_retried_then_recorded_and_the_sweep_finishes(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    path = _sweep_file(
        tmp_path, name="oom", orderings="[case1, conv-bn-tanh]", seeds=1, max_failures=1
    )
    out = tmp_path / "out"
    output = _finish(_driver(cluster, path, out))
    assert "1 failed" in output
    trials = load(out).trials.set_index("ordering")
    assert trials.loc["conv-bn-relu", "status"] == "ok"
    failed = trials.loc["conv-bn-tanh"]
    assert failed.status == "failed"
    assert "CUDA out of memory (simulated by BNORDER_FAULT)" in failed.error
    attempts = list(cluster.fault_dir.iterdir())  # type: ignore[attr-defined]
    assert len(attempts) == 2  # the first try and max_failures=1 retry, no more


def test_driver_killed_then_resume_completes_without_duplicates(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    path = _sweep_file(tmp_path, name="driverloss", orderings="[case1, case2, case3]", epochs=3)
    out = tmp_path / "out"
    proc = _driver(cluster, path, out)
    _wait(lambda: len(recorded_ids(out)) >= 1, proc)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = len(recorded_ids(out))
    assert done_before < 6

    output = _finish(_driver(cluster, path, out, "--resume"))
    assert "resuming" in output
    _assert_each_config_once(path, out)
    assert set(load(out).trials.status) == {"ok"}


@pytest.mark.parametrize(
    ("fuse", "resources", "bucket"),
    [
        (1, "{cpu: 1, gpu: 0.5}", True),  # four trials, two per node; checkpoints in S3
        (2, "{cpu: 2, gpu: 1}", False),  # two fused arrays of two seeds, one per node
    ],
)
def test_worker_node_killed_mid_sweep_its_trials_resume_on_the_other(
    cluster: LocalCluster, s3: S3Server, tmp_path: Path, fuse: int, resources: str, bucket: bool
) -> None:
    path = _sweep_file(
        tmp_path,
        name="nodeloss",
        orderings="[case1, case2]",
        depth=2,
        width=16,
        epochs=6,
        fuse=fuse,
        resources=resources,
    )
    out = tmp_path / "out"
    storage = s3.uri(f"nodeloss-{fuse}") if bucket else None
    proc = _driver(cluster, path, out, storage=storage)
    # Killed once all four trials (fused: members) have a checkpoint and none has finished:
    # they run at once then, two per node (fused: one array per node), so the victim has some.
    _wait(
        lambda: sum(n >= 1 for n in _epoch_parts(out).values()) >= 4 and not recorded_ids(out),
        proc,
    )
    victim = WORKER_IPS[0]
    cluster.kill(victim)
    try:
        _finish(proc)
    finally:
        cluster.add_worker(victim)  # whole again for what comes next
    _assert_each_config_once(path, out)
    trials = load(out).trials
    print(trials[["arm_id", "seed", "node_ip", "restarts", "epochs_done", "status"]].to_string())
    assert set(trials.status) == {"ok"}
    assert (trials.epochs_done == 6).all()
    assert set(trials.execution) == {"single" if fuse == 1 else f"fused {fuse}"}
    moved = trials[trials.restarts > 0]
    assert len(moved) >= 1  # the killed node's trials came back from a checkpoint...
    assert set(moved.node_ip) == {WORKER_IPS[1]}  # ...on the surviving node
    epochs = load(out).epochs
    assert (
        epochs.groupby("trial_id").epoch.apply(sorted).map(lambda e: e == [1, 2, 3, 4, 5, 6]).all()
    )
    if bucket:  # the moved trials came back from their checkpoints there, since emptied
        objects = s3.listing(f"nodeloss-{fuse}")
        assert any(o.endswith("/tuner.pkl") for o in objects)
        assert not [o for o in objects if "/checkpoint_" in o]
        assert not (out.parent / "storage").exists()


def test_adaptive_seed_batches_join_the_running_experiment_on_both_nodes(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    path = _sweep_file(
        tmp_path,
        name="adaptive",
        orderings="[case1, case2]",
        seeds="{min: 2, max: 4, step: 2, until: verdict, margin: 0.5}",
        fuse=2,
        resources="{cpu: 1, gpu: 1}",  # one trial per node: the two of a batch use both
        depth=2,
        width=16,
        epochs=4,  # long enough for the two trials of a batch to overlap
    )
    out = tmp_path / "out"
    output = _finish(_driver(cluster, path, out))
    trials = load(out).trials
    assert trials.config_hash.is_unique
    got = {arm: sorted(g.seed) for arm, g in trials.groupby("arm_id")}
    assert got == replay(make_plan(load_sweep(path)[0]), "grid", trials)
    # one Ray experiment: the second batch went to the running one (no second 'trials over')
    assert output.count("trials over") == 1
    assert set(trials.node_ip) == set(WORKER_IPS)
    assert set(trials.execution) == {"fused 2"}
