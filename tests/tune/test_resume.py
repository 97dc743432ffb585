"""The real ``bnorder sweep`` in a subprocess: killed with SIGKILL mid-run (driver and its local
Ray), then ``--resume`` completes the sweep with every (config, seed) exactly once; a simulated
out-of-memory error on the first attempt is retried and recovers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from replay import replay

from bnorder.results import load, recorded_ids
from bnorder.sweep.plan import make_plan
from bnorder.sweep.spec import load_sweep

SWEEP = """
name: killme
mode: grid
datasets: [synthetic]
archs: [cnn]
orderings: [case1, case2, case3]
fixed: {depth: 1, width: 8, epochs: 4, device: cpu}
seeds: 2
max_concurrent: 1
max_failures: 2
"""


def _sweep(path: Path, out: Path, *extra: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "bnorder", "sweep", str(path), "--out", str(out), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,  # its own process group: the kill takes Ray's processes too
    )


def _parts(out: Path) -> int:
    """Trials recorded so far (part files, or compacted ones)."""
    return len(recorded_ids(out))


def _holding(out: Path) -> dict[str, list[str]]:
    """Per Ray trial folder, its checkpoint folders that still hold a state file."""
    held: dict[str, list[str]] = {}
    for state in (out / "ray").rglob("checkpoint_*/state.pt"):
        held.setdefault(state.parent.parent.name, []).append(state.parent.name)
    return held


@pytest.mark.slow
@pytest.mark.parametrize(
    ("point", "cut"),
    [("emptied:2", False), ("superseded:2", False), ("superseded:2", True)],
    ids=["emptied", "superseded", "superseded-state-cut"],
)
def test_sigkill_then_resume(
    sweep_file: Callable[..., Path], tmp_path: Path, point: str, cut: bool
) -> None:
    """Killed (driver and its Ray) at two instants Ray's experiment snapshot has not caught up
    with. ``emptied:2``: the second trial's row is written and its checkpoint folders emptied,
    while the snapshot says it runs; the resumed driver finds it recorded and neither reruns it
    nor marks it failed. ``superseded:2``: a running trial's third checkpoint is stored and its
    older ones emptied, while the snapshot (taken every step here) names the second; the
    resumed trial goes on from the third, not from scratch and not failed. ``cut``: as well,
    the kill came while Ray copied its experiment state into the folder, which it leaves empty
    (seen in CI); Ray would start the phase over, and the kept snapshot is put back instead."""
    path, out = sweep_file(SWEEP), tmp_path / "out"
    env = {**os.environ, "BNORDER_FAULT": f"{tmp_path / 'fault'}:1"}
    killed = {**env, "BNORDER_KILL_AT": point, "TUNE_GLOBAL_CHECKPOINT_S": "0"}
    proc = _sweep(path, out, env=killed)
    output, _ = proc.communicate(timeout=600)
    assert proc.returncode == -signal.SIGKILL, output
    assert f"[testpoints] killed at {point.split(':')[0]}" in output
    killed_at = _parts(out)
    assert killed_at < 6
    held = _holding(out)
    # one checkpoint per running trial, none for a recorded one
    assert all(len(folders) == 1 for folders in held.values()), held
    if point.startswith("emptied"):
        assert killed_at >= 2
    else:
        ((folder, checkpoints),) = held.items()
        assert checkpoints == ["checkpoint_000002"]  # Ray counts from 0: the third
        interrupted = f"killme-{folder.rsplit('-', 1)[1]}"
    if cut:
        (state,) = (out / "ray" / "killme-grid").glob("experiment_state-*.json")
        state.write_bytes(b"")

    resumed = _sweep(path, out, "--resume", env=env)
    output, _ = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, output
    assert "resuming" in output

    plan = make_plan(load_sweep(path)[0])
    res = load(out)
    trials, epochs = res.trials, res.epochs
    assert len(trials) == plan.trial_count("grid") == 6
    assert trials.config_hash.is_unique  # each (config, seed) exactly once
    assert trials.trial_id.is_unique
    assert set(trials.status) == {"ok"}
    assert (trials.epochs_done == 4).all()
    assert len(epochs) == 6 * 4
    assert not epochs.duplicated(["trial_id", "epoch"]).any()
    # the simulated OOM hit exactly one attempt, which Ray retried
    assert len(list((tmp_path / "fault").iterdir())) == 1
    if point.startswith("superseded"):  # went on from its third checkpoint
        assert trials.set_index("trial_id").restarts[interrupted] == 1
    assert not _holding(out)  # every trial recorded: no checkpoint holds a state
    if cut:
        assert "restored the kept snapshot (experiment_state-" in output


ADAPTIVE = """
name: killada
mode: grid
datasets: [synthetic]
archs: [mlp]
orderings: [case1, case2, conv-relu]
fixed: {depth: 1, width: 8, epochs: 3, device: cpu, subset: 1024}
seeds: {min: 2, max: 6, step: 2, until: verdict, margin: 0.001}
max_concurrent: 1
"""


@pytest.mark.slow
@pytest.mark.parametrize("kill_after", [1, 7])  # inside the first batch; after a decision
def test_adaptive_sweep_killed_then_resumed(
    sweep_file: Callable[..., Path], tmp_path: Path, kill_after: int
) -> None:
    """No seed lost or run twice, and the decisions after the resume are the rule's on the
    rows: the same as if the driver had never died."""
    path, out = sweep_file(ADAPTIVE), tmp_path / "out"
    proc = _sweep(path, out, env=dict(os.environ))
    deadline = time.monotonic() + 300
    while _parts(out) < kill_after and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, f"sweep ended before it could be killed:\n{proc.stdout.read()}"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = _parts(out)

    resumed = _sweep(path, out, "--resume", env=dict(os.environ))
    output, _ = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, output
    assert "resuming" in output
    trials = load(out).trials
    assert len(trials) > killed_at
    assert trials.config_hash.is_unique  # no seed twice
    assert trials.trial_id.is_unique
    plan = make_plan(load_sweep(path)[0])
    got = {arm: sorted(g.seed) for arm, g in trials.groupby("arm_id")}
    assert got == replay(plan, "grid", trials)  # no seed lost, none extra
