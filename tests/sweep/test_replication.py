"""Adaptive seeds without Ray: the sweep-file key, the plan's trial range, and the decision
state that gives seeds only to comparisons still open (and rebuilds itself from rows)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from bnorder.errors import ConfigError
from bnorder.sweep.plan import make_plan
from bnorder.sweep.replication import (
    Replication,
    adaptive_rule,
    baseline_of,
    units_of,
)
from bnorder.sweep.spec import AdaptiveSeeds, load_sweep

GRID = """
name: ad
mode: grid
datasets: [synthetic]
archs: [mlp]
orderings: [case1, case2, case3]
fixed: {depth: 1, width: 4, epochs: 1}
grid: {lr: [0.01, 0.1]}
seeds: {min: 3, max: 9, step: 2, until: verdict}
"""


def test_adaptive_seeds_plan_a_range_of_trials(sweep_file: Callable[..., Path]) -> None:
    spec, _ = load_sweep(sweep_file(GRID))
    plan = make_plan(spec)
    assert spec.adaptive == AdaptiveSeeds(min=3, max=9, step=2)
    assert plan.trial_range("grid") == (2 * 3 * 3, 2 * 3 * 9)
    design = adaptive_rule(plan, "grid")
    assert design.baseline == "conv-bn-relu"
    # two settings (lr) x two contenders: alpha is split four ways
    assert design.rule.comparisons == 4
    assert design.rule.looks == (3, 5, 7, 9)


def test_precision_rule_and_tuned_eval_seeds(sweep_file: Callable[..., Path]) -> None:
    text = GRID.replace("until: verdict", "until: {ci_halfwidth: 0.01}, baseline: case2")
    plan = make_plan(load_sweep(sweep_file(text))[0])
    design = adaptive_rule(plan, "grid")
    assert design.rule.until == "precision"
    assert design.rule.halfwidth == 0.01
    assert design.baseline == "conv-relu-bn"
    tuned = """
    name: tz
    mode: tuned
    datasets: [synthetic]
    archs: [mlp]
    orderings: [case1, case2]
    fixed: {depth: 1, width: 4, epochs: 1}
    tune:
      trials_per_arm: 2
      eval_seeds: {min: 2, max: 6, step: 2}
      tune_seed: 1
      space: {lr: {log_uniform: [0.001, 0.1]}}
    """
    plan = make_plan(load_sweep(sweep_file(tuned, "tuned.yaml"))[0])
    assert plan.trial_range("evaluate") == (4, 12)
    assert plan.eval_seeds == [0, 2, 3, 4, 5, 6]  # fresh: never the tuning seed
    assert adaptive_rule(plan, "evaluate").rule.comparisons == 1


@pytest.mark.parametrize(
    ("seeds", "match"),
    [
        ("{min: 1, max: 5}", r"seeds.min.*greater than or equal to 2"),
        ("{min: 4, max: 3}", r"max.*must be at least min \(4\)"),
        ("{min: 2, max: 4, until: {width: 1}}", r"seeds.until: unknown key .width.*ci_halfwidth"),
        ("{min: 2, max: 4, baseline: conv-gn-relu}", r"seeds.baseline.*not one of"),
        ("{min: 2, max: 4, alpha: 0.7}", r"seeds.alpha"),
    ],
)
def test_bad_adaptive_seeds_name_the_key(
    sweep_file: Callable[..., Path], seeds: str, match: str
) -> None:
    with pytest.raises(ConfigError, match=match):
        load_sweep(sweep_file(GRID.replace("{min: 3, max: 9, step: 2, until: verdict}", seeds)))


def test_adaptive_seeds_in_a_tuned_sweep_point_to_eval_seeds(
    sweep_file: Callable[..., Path],
) -> None:
    text = GRID.replace("mode: grid", "mode: tuned").replace("grid: {lr: [0.01, 0.1]}", "")
    text += "tune: {trials_per_arm: 2, space: {lr: {log_uniform: [0.001, 0.1]}}}\n"
    with pytest.raises(ConfigError, match=r"seeds.*tune.eval_seeds"):
        load_sweep(sweep_file(text))


# ---------------------------------------------------------------- the decision state
def _state(sweep_file: Callable[..., Path], seeds: str = "{min: 3, max: 9, step: 2}"):
    text = GRID.replace("{min: 3, max: 9, step: 2, until: verdict}", seeds)
    plan = make_plan(load_sweep(sweep_file(text))[0])
    trials = [(a.arm_id, c) for a, c in plan.grid_trials]
    units = units_of(trials, "grid")
    design = adaptive_rule(plan, "grid", units)
    return Replication.start(units, plan.spec.seed_list, design.rule, design.baseline)


def _score(unit_key: str, ordering: str, lr: float, seed: int) -> float:
    """case2 at lr 0.1 is clearly better; everything else is the baseline's noisy twin."""
    rng = np.random.default_rng([seed, int(lr * 100), len(ordering)])
    shift = 0.05 if (ordering == "conv-relu-bn" and lr == 0.1) else 0.0
    return 0.80 + shift + rng.normal(0, 0.01)


def _drive(state: Replication, k: int = 1) -> list[tuple[str, list[int]]]:
    """Run the state to the end as a sweep would: issue a batch, finish it, decide."""
    issued, settled = [], False
    while not state.finished:
        batch = state.next_batch(k)
        if batch is None:
            assert not settled, "stuck: nothing to issue, yet not finished"
            state.settle()
            settled = True
            continue
        settled = False
        unit, seeds = batch
        issued.append((unit.key, seeds))
        for s in seeds:
            t = unit.template
            state.record(unit.key, s, _score(unit.key, t.ordering, t.lr, s))
    return issued


def test_seeds_go_only_where_the_answer_is_open(sweep_file: Callable[..., Path]) -> None:
    state = _state(sweep_file)
    issued = _drive(state)
    n = {
        state.units[k].arm_id + f" lr={state.units[k].template.lr}": len(v)
        for k, v in state.issued.items()
    }
    # the clear difference is settled early and its contender stops...
    assert n["synthetic/mlp/d1/conv-relu-bn lr=0.1"] < 9
    # ...while the two twins of the baseline run to the maximum, baseline included
    assert n["synthetic/mlp/d1/conv-lrelu-bn lr=0.1"] == 9
    assert n["synthetic/mlp/d1/conv-bn-relu lr=0.1"] == 9
    assert all(v in (3, 5, 7, 9) for v in n.values())
    # seeds in order, each once
    for seeds in state.issued.values():
        assert seeds == list(range(len(seeds)))
    assert sum(len(s) for _, s in issued) == sum(n.values())
    verdicts = {
        state.units[k].template.ordering: c.verdict
        for k, c in state.calls.items()
        if state.units[k].template.lr == 0.1
    }
    assert verdicts["conv-relu-bn"] == "better"


def test_fused_batches_never_exceed_k_or_the_target(sweep_file: Callable[..., Path]) -> None:
    state = _state(sweep_file)
    batches = _drive(state, k=4)
    assert all(1 <= len(seeds) <= 4 for _, seeds in batches)
    assert all(len(s) in (3, 5, 7, 9) for s in state.issued.values())


def test_a_restart_rebuilds_the_same_decisions_from_rows(sweep_file: Callable[..., Path]) -> None:
    done = _state(sweep_file)
    _drive(done)
    # a driver killed mid-sweep: rows exist for some seeds; the new state is fed them in any
    # order (as read from disk), then continues
    rows = [(k, s) for k, seeds in done.issued.items() for s in seeds[:5]]
    again = _state(sweep_file)
    for key, seed in reversed(rows):
        t = again.units[key].template
        again.record(key, seed, _score(key, t.ordering, t.lr, seed))
    _drive(again)
    assert again.issued.keys() == done.issued.keys()
    assert {k: sorted(v) for k, v in again.issued.items()} == done.issued
    assert again.calls == done.calls


def test_precision_rule_stops_on_width_not_on_the_difference(
    sweep_file: Callable[..., Path],
) -> None:
    wide = _state(sweep_file, "{min: 3, max: 9, step: 2, until: {ci_halfwidth: 0.99}}")
    _drive(wide)
    assert {len(s) for s in wide.issued.values()} == {3}  # any interval is that narrow
    tight = _state(sweep_file, "{min: 3, max: 9, step: 2, until: {ci_halfwidth: 0.0001}}")
    _drive(tight)
    assert {len(s) for s in tight.issued.values()} == {9}
    assert {c.reason for c in tight.calls.values()} == {"max"}


def test_baseline_default_and_override() -> None:
    spec = AdaptiveSeeds(min=2, max=4)
    assert baseline_of(spec, ["case2", "case1"]) == "conv-bn-relu"
    assert baseline_of(spec, ["case2", "case3"]) == "conv-relu-bn"
    assert baseline_of(AdaptiveSeeds(min=2, max=4, baseline="case3"), ["case1"]) == (
        "conv-lrelu-bn"
    )
