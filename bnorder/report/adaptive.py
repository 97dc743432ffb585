"""Sweeps with adaptive seeds: the stopping rule they ran under, read back from the sweep file
stored with the results, and the seeds each arm reached.

A group-sequential rule changes how the comparisons are decided (each at its look's nominal
level, see :func:`bnorder.analysis.compare`); a precision rule does not. Either way the report
states the rule and the n of every arm, so a reader sees why arms differ in runs.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from bnorder.sweep.replication import AdaptiveRule
from bnorder.tune.runner import SWEEP_FILE

__all__ = ["Design", "design_of", "runs_per_arm"]


@dataclass(frozen=True)
class Design:
    """The adaptive rule of the analysed phase, or None with a ``note`` saying why not."""

    rule: AdaptiveRule | None
    phase: str | None
    note: str


def design_of(results: list[str | Path]) -> Design:
    """The adaptive-seeds design of one results directory (``<dir>/sweep.yaml``).

    Results of several directories, or of a sweep with fixed seeds, are analysed as fixed-n
    (``rule`` None); the note says so when one of them was adaptive.
    """
    from bnorder.sweep.plan import make_plan
    from bnorder.sweep.spec import load_sweep

    dirs = [Path(m) for p in results for m in sorted(glob.glob(str(Path(p).expanduser())))]
    found = []
    for folder in dirs:
        if (folder / SWEEP_FILE).exists():
            spec, _ = load_sweep(folder / SWEEP_FILE)
            plan = make_plan(spec, str(folder / SWEEP_FILE))
            phase = "grid" if spec.mode == "grid" else "evaluate"
            if plan.adaptive(phase) is not None:
                from bnorder.sweep.replication import adaptive_rule

                found.append((folder, phase, adaptive_rule(plan, phase)))
    if not found:
        return Design(None, None, "")
    if len(dirs) > 1:
        names = ", ".join(str(f) for f, _, _ in found)
        return Design(
            None,
            None,
            f"Seeds were adaptive in {names}; loaded with other results, every comparison is "
            "analysed as fixed-n (Holm).",
        )
    _, phase, rule = found[0]
    return Design(rule, phase, f"Seeds per ordering were adaptive: {rule.rule.describe()}.")


def runs_per_arm(scored: pd.DataFrame, phase: str) -> pd.DataFrame:
    """Scored runs of each arm in ``phase``, with the seeds they used."""
    rows = scored[scored["phase"] == phase] if "phase" in scored.columns else scored
    table = rows.groupby("arm_id", sort=False).agg(n=("seed", "size"), seeds=("seed", _span))
    return table.reset_index()


def _span(seeds: pd.Series) -> str:
    s = sorted(int(x) for x in seeds)
    return f"{s[0]}–{s[-1]}" if s == list(range(s[0], s[-1] + 1)) and len(s) > 2 else str(s)
