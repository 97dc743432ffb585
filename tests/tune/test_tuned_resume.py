"""A tuned sweep whose driver is killed again and again, each time at another instant, then
resumed: it ends as if it had never died. Every arm has exactly ``trials_per_arm`` told trials,
each equal to its one results row; no trial ran twice. Kills at named instants come from
``BNORDER_KILL_AT`` (bnorder.tune.testpoints); one comes from outside, SIGKILL to the process
group, as ``kill -9`` would. The last driver also shows that a second driver on the folder it
holds stops with one line naming it (exit 2), and that it finishes regardless."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import optuna
import pandas as pd
import pytest
from test_resume import _sweep
from test_tune_runner import TUNED as TUNED_TZ

from bnorder.results import load
from bnorder.sweep.plan import make_plan
from bnorder.sweep.spec import load_sweep
from bnorder.tune.driver_lock import LOCK_FILE
from bnorder.tune.runner import OPTUNA_FILE

# the tuned sweep of test_tune_runner (2 arms x 4 trials, pruning, 2 at a time), its own name
TUNED = TUNED_TZ.replace("name: tz", "name: tk").replace("keep_weights: arm_best\n", "")

STATE = {"ok": "COMPLETE", "diverged": "COMPLETE", "pruned": "PRUNED", "failed": "FAIL"}


def _killed_at(path: Path, out: Path, point: str, *extra: str) -> str:
    """Run the driver until it kills itself (and its Ray) at ``point``; its output."""
    env = {**os.environ, "BNORDER_KILL_AT": point}
    proc = _sweep(path, out, *extra, env=env)
    output, _ = proc.communicate(timeout=600)
    _log(out, point, output)
    assert proc.returncode == -signal.SIGKILL, f"never reached {point}:\n{output}"
    assert (out / LOCK_FILE).exists()  # a SIGKILLed driver leaves its lock behind
    return output


@pytest.mark.slow
def test_tuned_sweep_killed_at_every_instant_resumes_exactly(
    sweep_file: Callable[..., Path], tmp_path: Path
) -> None:
    path, out = sweep_file(TUNED), tmp_path / "out"
    # mid-tuning: an Optuna trial asked, Ray's trial not yet made (two others running)
    _killed_at(path, out, "asked:3")
    # a pruning decision stored, Ray not yet told; then tuning done, evaluate not yet begun
    for point in ("pruned:1", "boundary"):
        output = _killed_at(path, out, point, "--resume")
        assert "took over the lock of a driver that died" in output

    # mid-evaluate, from outside: SIGKILL to the driver's process group
    proc = _sweep(path, out, "--resume", env=dict(os.environ))
    while _rows(out, "evaluate") < 1 and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, f"sweep ended before it could be killed:\n{proc.stdout.read()}"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()

    # the last driver: a second one on the folder it holds is refused; it finishes
    go = tmp_path / "go"
    env = {**os.environ, "BNORDER_PAUSE_AT": f"locked:{go}"}
    last = _sweep(path, out, "--resume", env=env)
    try:
        while _holder_pid(out) != last.pid:
            assert last.poll() is None, last.communicate()[0]
            time.sleep(0.1)
        second = subprocess.run(
            [sys.executable, "-m", "bnorder", "sweep", str(path), "--out", str(out), "--resume"],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert second.returncode == 2, second.stdout + second.stderr
        assert second.stderr.count("\n") == 1, second.stderr
        assert f"pid {last.pid} on host {socket.gethostname()}" in second.stderr
    finally:
        go.touch()
    output, _ = last.communicate(timeout=600)
    _log(out, "last", output)
    assert last.returncode == 0, output
    assert "took over the lock of a driver that died" in output
    assert not (out / LOCK_FILE).exists()
    _check_exact(path, out)


def _log(out: Path, name: str, output: str) -> None:
    """Each driver's output, kept beside the results for a failure's post-mortem."""
    (out.parent / f"driver-{name.replace(':', '-')}.log").write_text(output)


def _rows(out: Path, phase: str) -> int:
    trials = load(out).trials
    return int((trials.phase == phase).sum())


def _holder_pid(out: Path) -> int | None:
    import json

    try:
        return json.loads((out / LOCK_FILE).read_text())["pid"]
    except (OSError, ValueError):
        return None


def _check_exact(path: Path, out: Path) -> None:
    plan = make_plan(load_sweep(path)[0])
    res = load(out)
    trials = res.trials
    assert trials.trial_id.is_unique
    tune = trials[trials.phase == "tune"]
    for arm in plan.arms:
        study = optuna.load_study(
            study_name=f"tk/{arm.arm_id}", storage=f"sqlite:///{out / OPTUNA_FILE}"
        )
        rows = tune[tune.arm_id == arm.arm_id]
        # exactly trials_per_arm told trials, no RUNNING leftovers, one row each
        assert sorted(t.number for t in study.trials) == [0, 1, 2, 3]
        assert sorted(rows.optuna_trial) == [0, 1, 2, 3]
        for t in study.trials:
            row = rows[rows.trial_id == t.user_attrs["trial_id"]].iloc[0]
            assert row.optuna_trial == t.number
            assert row.ray_trial_id == t.user_attrs["ray_trial_id"]
            assert t.state.name == STATE[row.status], (t.number, row.status, t.state)
            if t.state.name == "COMPLETE":
                assert t.value == row.best_val_acc
            if t.state.name == "PRUNED":
                assert t.value == row.final_val_acc
                assert row.epochs_done == t.system_attrs["bnorder:pruned_at"]
        # each recorded trial's epochs once, all of them
        epochs = res.epochs[res.epochs.trial_id.isin(rows.trial_id)]
        assert not epochs.duplicated(["trial_id", "epoch"]).any()
        assert epochs.groupby("trial_id").size().to_dict() == dict(
            zip(rows.trial_id, rows.epochs_done, strict=True)
        )
    assert (tune.status == "pruned").any()
    evaluate = trials[trials.phase == "evaluate"]
    assert evaluate.groupby("arm_id").size().to_dict() == {a.arm_id: 2 for a in plan.arms}
    assert evaluate.config_hash.is_unique
    assert pd.Series(evaluate.seed).isin(plan.eval_seeds).all()
