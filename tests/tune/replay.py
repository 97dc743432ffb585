"""Replays the adaptive-seeds rule on finished rows: what the seeds of each arm should be."""

from __future__ import annotations

import pandas as pd

from bnorder.analysis.frames import scored
from bnorder.config import TrialConfig
from bnorder.sweep.plan import SweepPlan
from bnorder.sweep.replication import Replication, adaptive_rule, unit_key, units_of


def replay(plan: SweepPlan, phase: str, trials: pd.DataFrame) -> dict[str, list[int]]:
    """The seeds the stopping rule gives each unit when fed the recorded scores in the order
    it asks for them. A seed it asks for that has no row fails the test."""
    rows = scored(trials[trials.phase == phase])
    score = {(unit_key(r.arm_id, r.group_hash), int(r.seed)): r.score for r in rows.itertuples()}
    pairs = list(zip(trials.arm_id, trials.group_hash, strict=True))
    done = trials[trials.phase == phase]
    units = units_of(
        [(arm, cfg) for arm, cfg in _configs(plan, phase, done) if (arm, cfg.group_hash) in pairs],
        phase,
    )
    design = adaptive_rule(plan, phase, units)
    seeds = plan.spec.seed_list if phase == "grid" else plan.eval_seeds
    state = Replication.start(units, seeds, design.rule, design.baseline)
    while not state.finished:
        batch = state.next_batch(1)
        if batch is None:
            assert state.settle(), "the rule stalled"
            continue
        unit, new = batch
        for s in new:
            assert (unit.key, s) in score, f"the rule asks for {unit.arm_id} seed {s}: no row"
            state.record(unit.key, s, score[(unit.key, s)])
    return {state.units[k].arm_id: sorted(v) for k, v in state.issued.items()}


def _configs(plan: SweepPlan, phase: str, done: pd.DataFrame):
    if phase == "grid":
        return [(a.arm_id, c) for a, c in plan.grid_trials]
    fields = list(TrialConfig.model_fields)
    firsts = done.sort_values("seed").groupby("arm_id", sort=False).head(1)
    return [
        (r["arm_id"], TrialConfig(**{k: r[k] for k in fields if k in r and pd.notna(r[k])}))
        for _, r in firsts.iterrows()
    ]
