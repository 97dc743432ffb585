"""Adaptive seeds on a real local Ray: seed batches join the running experiment through the
searcher, fused or not, in grid and evaluate phases, and the seeds each arm got are exactly the
ones the stopping rule asks for when it is replayed on the finished rows."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from replay import replay

from bnorder.results import load
from bnorder.sweep.plan import SweepPlan, make_plan
from bnorder.sweep.spec import load_sweep
from bnorder.tune.runner import run_sweep

pytestmark = pytest.mark.usefixtures("ray_session")

GRID = """
name: ada
mode: grid
datasets: [synthetic]
archs: [mlp]
orderings: [case1, case2, conv-relu]
fixed: {depth: 1, width: 4, epochs: 1, device: cpu, subset: 512}
seeds: {min: 2, max: 6, step: 2, until: verdict, margin: 0.05}
fuse: 2
max_concurrent: 2
"""

TUNED = """
name: adt
mode: tuned
datasets: [synthetic]
archs: [mlp]
orderings: [case1, case2]
fixed: {depth: 1, width: 4, epochs: 1, device: cpu, subset: 512}
tune:
  trials_per_arm: 2
  eval_seeds: {min: 2, max: 4, step: 2, until: {ci_halfwidth: 0.001}}
  space: {lr: {log_uniform: [0.001, 0.1]}}
max_concurrent: 2
"""


def _run(path: Path, out: Path) -> tuple[SweepPlan, pd.DataFrame]:
    spec, text = load_sweep(path)
    plan = make_plan(spec, str(path))
    run_sweep(plan, text, out=out, src=str(path))
    return plan, load(out).trials


def test_grid_seeds_follow_the_rule(sweep_file: Callable[..., Path], tmp_path: Path) -> None:
    plan, trials = _run(sweep_file(GRID), tmp_path / "out")
    assert trials.config_hash.is_unique
    assert trials.trial_id.is_unique
    got = {arm: sorted(g.seed) for arm, g in trials.groupby("arm_id")}
    assert got == replay(plan, "grid", trials)
    assert all(len(s) in (2, 4, 6) for s in got.values())
    low, high = plan.trial_range("grid")
    assert low <= len(trials) <= high
    assert set(trials.execution) <= {"fused 2", "single"}
    assert "fused 2" in set(trials.execution)  # new seeds train as fused arrays


def test_tuned_eval_seeds_follow_the_rule(sweep_file: Callable[..., Path], tmp_path: Path) -> None:
    plan, trials = _run(sweep_file(TUNED), tmp_path / "out")
    evaluate = trials[trials.phase == "evaluate"]
    assert evaluate.config_hash.is_unique
    assert set(evaluate.seed) <= set(plan.eval_seeds)
    got = {arm: sorted(g.seed) for arm, g in evaluate.groupby("arm_id")}
    assert got == replay(plan, "evaluate", trials)
    # a 0.1-point half-width is out of reach of 4 runs: every arm goes to the maximum
    assert {len(s) for s in got.values()} == {4}
