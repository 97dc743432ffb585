"""Adaptive seeds: which points get more seeds, decided from the runs already finished.

A *unit* is one ordering at one point (an arm's config without its seed); a *setting* is the
point, with all its orderings. Every unit starts with ``min`` seeds. When every seed issued to
a setting's units has a result, each contender is compared with the baseline by the
:class:`~bnorder.analysis.sequential.StoppingRule`; the units of comparisons still open get
``step`` more seeds (never past ``max``), the others stop. Knows nothing of Ray: the searcher
(``bnorder/tune/seed_searcher.py``) feeds it results and asks it for the next batch.

The state is a function of the results alone (which seeds finished, with which score), so a
driver that restarts rebuilds it from the rows on disk and makes the same decisions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bnorder.analysis.sequential import Call, StoppingRule
from bnorder.config import NON_RESULT_FIELDS, SEED_FIELDS, TrialConfig
from bnorder.ordering import parse_ordering
from bnorder.sweep.spec import AdaptiveSeeds

if TYPE_CHECKING:
    from bnorder.sweep.plan import SweepPlan

__all__ = [
    "AdaptiveRule",
    "Replication",
    "Unit",
    "adaptive_rule",
    "baseline_of",
    "comparisons_of",
    "stopping_rule",
    "unit_key",
    "units_of",
]

DEFAULT_BASELINE = "conv-bn-relu"


@dataclass(frozen=True)
class Unit:
    """One ordering at one point: what receives seeds."""

    key: str  # arm_id + group hash: rows of the results map back to it
    arm_id: str
    setting: str  # the point without the ordering: units of one setting are compared
    template: TrialConfig  # its config at seed 0
    label: str  # the setting for people: fashion_mnist/cnn/d4 lr=0.01


def unit_key(arm_id: str, group_hash: str) -> str:
    """A unit's key, from an arm ID and a config's (or a results row's) ``group_hash``."""
    return f"{arm_id}#{group_hash}"


def units_of(
    trials: list[tuple[str, TrialConfig]], phase: str, axes: tuple[str, ...] = ()
) -> list[Unit]:
    """The units of a phase's ``(arm_id, config)`` trials, in order of first appearance.

    A grid setting is the config without ordering and seeds; an evaluate setting is the arm ID
    without its ordering (each ordering's tuned hyperparameters differ, yet it is one point).
    ``axes``: the grid's fields, named in labels where the arm ID does not name them.
    """
    out: dict[str, Unit] = {}
    for arm, cfg in trials:
        key = unit_key(arm, cfg.group_hash)
        if key in out:
            continue
        if phase == "evaluate":
            setting = arm.rsplit("/", 1)[0]
        else:
            exclude = {"ordering", *SEED_FIELDS, *NON_RESULT_FIELDS}
            setting = cfg.model_dump_json(exclude=exclude)
        label = arm.rsplit("/", 1)[0]
        label += "".join(f" {k}={getattr(cfg, k)}" for k in axes if f"/{k}=" not in arm)
        out[key] = Unit(key, arm, setting, cfg.replace(seed=0), label)
    return list(out.values())


def baseline_of(spec: AdaptiveSeeds, orderings: list[str]) -> str:
    """The canonical baseline: the spec's, else conv-bn-relu if compared, else the first."""
    listed = [parse_ordering(o).canonical for o in orderings]
    if spec.baseline is not None:
        return parse_ordering(spec.baseline).canonical
    return DEFAULT_BASELINE if DEFAULT_BASELINE in listed else listed[0]


def stopping_rule(spec: AdaptiveSeeds, comparisons: int) -> StoppingRule:
    """The rule of an adaptive ``seeds`` entry for a family of ``comparisons``."""
    precision = spec.until if spec.until != "verdict" else None
    return StoppingRule(
        min_n=spec.min,
        max_n=spec.max,
        step=spec.step,
        until="verdict" if precision is None else "precision",
        halfwidth=None if precision is None else precision.ci_halfwidth,
        alpha=spec.alpha,
        margin=spec.margin,
        comparisons=max(1, comparisons),
    )


def comparisons_of(units: list[Unit], baseline: str) -> int:
    """Contender-vs-baseline comparisons in the family (settings that include the baseline)."""
    by_setting: dict[str, set[str]] = {}
    for u in units:
        by_setting.setdefault(u.setting, set()).add(u.template.ordering)
    return sum(len(o) - 1 for o in by_setting.values() if baseline in o)


@dataclass(frozen=True)
class AdaptiveRule:
    """A phase's stopping rule and the ordering its comparisons are against."""

    rule: StoppingRule
    baseline: str


def adaptive_rule(plan: SweepPlan, phase: str, units: list[Unit] | None = None) -> AdaptiveRule:
    """The stopping rule of an adaptive phase, its family being every comparison the phase
    can make (the report rebuilds the same rule from the stored sweep file)."""
    spec = plan.adaptive(phase)
    if spec is None:
        raise ValueError(f"phase {phase!r} of sweep {plan.spec.name!r} has fixed seeds")
    if units is None:
        if phase == "grid":
            trials = [(a.arm_id, c) for a, c in plan.grid_trials]
        else:
            trials = [(a.arm_id, a.base) for a in plan.arms]
        units = units_of(trials, phase)
    baseline = baseline_of(spec, plan.spec.orderings)
    return AdaptiveRule(stopping_rule(spec, comparisons_of(units, baseline)), baseline)


@dataclass
class Replication:
    """The decision state of one phase's adaptive seeds (see the module doc)."""

    units: dict[str, Unit]
    seeds: list[int]  # the seeds a unit gets, in order (len = max)
    rule: StoppingRule
    baseline: str
    higher: bool = True  # a higher score is better
    target: dict[str, int] = field(default_factory=dict)  # seeds each unit should reach
    issued: dict[str, list[int]] = field(default_factory=dict)
    scores: dict[str, dict[int, float]] = field(default_factory=dict)  # NaN: failed run
    calls: dict[str, Call] = field(default_factory=dict)  # latest call per contender unit
    closed: set[str] = field(default_factory=set)  # settings with no more seeds to come
    settings: dict[str, list[str]] = field(default_factory=dict)  # setting -> unit keys
    dirty: set[str] = field(default_factory=set)  # settings with results not yet decided on

    @classmethod
    def start(
        cls,
        units: list[Unit],
        seeds: list[int],
        rule: StoppingRule,
        baseline: str,
        higher: bool = True,
    ) -> Replication:
        state = cls({u.key: u for u in units}, seeds, rule, baseline, higher)
        for u in units:
            state.target[u.key] = min(rule.min_n, len(seeds))
            state.issued[u.key], state.scores[u.key] = [], {}
            state.settings.setdefault(u.setting, []).append(u.key)
        return state

    # ---------------------------------------------------------------- issuing
    def next_batch(self, k: int) -> tuple[Unit, list[int]] | None:
        """Up to ``k`` seeds for the unit still owed some that has the fewest so far (the first
        such in plan order), or None. Units take turns: every arm has a run early, so partial
        results cover them all and the ETA times each kind of model from the start."""
        owed = [key for key in self.units if self.target[key] > len(self.issued[key])]
        if not owed:
            return None
        key = min(owed, key=lambda u: len(self.issued[u]))
        want = self.target[key] - len(self.issued[key])
        fresh = [s for s in self.seeds if s not in self.issued[key]][: min(k, want)]
        self.issued[key] += fresh
        return self.units[key], fresh

    def record(self, key: str, seed: int, score: float) -> None:
        """A finished seed's score (NaN for a failed run); seeds found on disk count as issued."""
        if seed not in self.issued[key]:
            self.issued[key].append(seed)
            self.target[key] = max(self.target[key], len(self.issued[key]))
        self.scores[key][seed] = score
        self.dirty.add(self.units[key].setting)

    # ---------------------------------------------------------------- deciding
    def settle(self) -> list[str]:
        """Decide every setting whose batch is complete; returns one line per decision."""
        lines = []
        for setting in [s for s in self.settings if s in self.dirty]:
            if setting not in self.closed and self._complete(setting):
                self.dirty.discard(setting)
                lines.append(self._decide(setting))
        return lines

    @property
    def finished(self) -> bool:
        return len(self.closed) == len(self.settings)

    def _members(self, setting: str) -> list[Unit]:
        return [self.units[key] for key in self.settings[setting]]

    def _complete(self, setting: str) -> bool:
        return all(
            len(self.issued[u.key]) >= self.target[u.key]
            and all(s in self.scores[u.key] for s in self.issued[u.key])
            for u in self._members(setting)
        )

    def runs(self, key: str) -> list[float]:
        """The unit's scores in seed order (failed runs left out)."""
        return [v for _, v in sorted(self.scores[key].items()) if not math.isnan(v)]

    def _decide(self, setting: str) -> str:
        members = self._members(setting)
        base = next((u for u in members if u.template.ordering == self.baseline), None)
        more: set[str] = set()
        parts = []
        for u in members:
            if base is None or u is base:
                continue
            call = self.rule.call(self.runs(base.key), self.runs(u.key), higher=self.higher)
            self.calls[u.key] = call
            parts.append(f"{u.template.ordering} n={call.n}: {call.reason}")
            if not call.done:
                more |= {u.key, base.key}
        grown = False
        for key in more:
            new = min(self.target[key] + self.rule.step, self.rule.max_n, len(self.seeds))
            grown |= new > self.target[key]
            self.target[key] = new
        if not grown:
            self.closed.add(setting)
        label = members[0].label
        verdicts = "; ".join(parts) or "no baseline to compare with"
        return f"{label}: {verdicts} -> {'more seeds' if grown else 'done'}"
