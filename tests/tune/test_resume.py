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


@pytest.mark.slow
def test_sigkill_then_resume(sweep_file: Callable[..., Path], tmp_path: Path) -> None:
    """Killed (driver and its Ray) just after the second trial's row is written and its
    checkpoint folders emptied, before Ray's experiment snapshot says it ended: the resumed
    driver finds it recorded and neither reruns it nor marks it failed."""
    path, out = sweep_file(SWEEP), tmp_path / "out"
    env = {**os.environ, "BNORDER_FAULT": f"{tmp_path / 'fault'}:1"}
    proc = _sweep(path, out, env={**env, "BNORDER_KILL_AT": "emptied:2"})
    output, _ = proc.communicate(timeout=600)
    assert proc.returncode == -signal.SIGKILL, output
    assert "[testpoints] killed at emptied" in output
    killed_at = _parts(out)
    assert 2 <= killed_at < 6

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
