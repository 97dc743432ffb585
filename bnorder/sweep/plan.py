"""From a validated :class:`SweepSpec` to the exact trials each phase will run.

- grid: every dataset × arch × ordering × grid point × seed, one :class:`TrialConfig` each.
- tuned: every dataset × arch × ordering × grid point is an *arm* with its own Optuna study and
  ``trials_per_arm`` tuning trials; then an evaluate phase retrains each arm's best config with
  ``eval_seeds`` fresh seeds.

The dry run prints exactly this plan; the row counts of a finished sweep equal it.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from bnorder.config import TrialConfig
from bnorder.errors import ConfigError
from bnorder.models import get_arch
from bnorder.sweep.spec import AdaptiveSeeds, SweepSpec, TuneSpec

__all__ = ["Arm", "SweepPlan", "fused_groups", "make_plan"]


@dataclass(frozen=True)
class Arm:
    """One contender: its ID (``fashion_mnist/cnn/d4/conv-relu-bn``) and its base config."""

    arm_id: str
    base: TrialConfig


@dataclass(frozen=True)
class SweepPlan:
    spec: SweepSpec
    arms: tuple[Arm, ...]
    grid_trials: tuple[tuple[Arm, TrialConfig], ...]  # grid mode only; adaptive: up to max

    @property
    def phases(self) -> tuple[str, ...]:
        return ("grid",) if self.spec.mode == "grid" else ("tune", "evaluate")

    def trial_count(self, phase: str) -> int:
        """Trials the phase runs; with adaptive seeds, the most it can run."""
        if phase == "grid":
            return len(self.grid_trials)
        tune = self.tune
        return len(self.arms) * (tune.trials_per_arm if phase == "tune" else tune.eval_count)

    def adaptive(self, phase: str) -> AdaptiveSeeds | None:
        """The phase's adaptive seeds (grid: ``seeds``; evaluate: ``tune.eval_seeds``)."""
        if phase == "grid":
            return self.spec.adaptive
        return self.tune.adaptive if phase == "evaluate" else None

    def trial_range(self, phase: str) -> tuple[int, int]:
        """The fewest and the most trials the phase runs (equal unless seeds are adaptive)."""
        most = self.trial_count(phase)
        rule = self.adaptive(phase)
        return (most // rule.max * rule.min, most) if rule else (most, most)

    @property
    def tune(self) -> TuneSpec:
        if self.spec.tune is None:
            raise ValueError(f"sweep {self.spec.name!r} is not a tuned sweep")
        return self.spec.tune

    @property
    def eval_seeds(self) -> list[int]:
        """Fresh seeds for the evaluate phase: never the tuning seed."""
        tune = self.tune
        return [s for s in range(tune.eval_count + 1) if s != tune.tune_seed][: tune.eval_count]


def fused_groups(
    trials: list[tuple[str, TrialConfig]], k: int
) -> list[tuple[str, list[TrialConfig]]]:
    """``(arm, config)`` trials as Ray trials of up to ``k`` configs that differ only in seeds
    (see :func:`bnorder.train_fused.check_fusable`), in plan order; ``k = 1``: one each."""
    from bnorder.train_fused import FUSABLE_SEEDS

    groups: dict[tuple[str, str], list[TrialConfig]] = {}
    for arm, cfg in trials:
        key = (arm, cfg.model_dump_json(exclude=set(FUSABLE_SEEDS)))
        groups.setdefault(key, []).append(cfg)
    return [
        (arm, cfgs[i : i + k]) for (arm, _), cfgs in groups.items() for i in range(0, len(cfgs), k)
    ]


def arm_id(cfg: TrialConfig, varying: list[str]) -> str:
    """``dataset/arch/d<depth>/<ordering>``, plus the other grid axes (``lr=0.01``) in tuned mode,
    where every grid point is an arm of its own."""
    parts = [cfg.dataset, cfg.arch, f"d{cfg.depth}"]
    parts += [f"{k}={getattr(cfg, k)}" for k in varying if k != "depth"]
    return "/".join([*parts, cfg.ordering])


def _build(values: dict[str, Any], where: str) -> TrialConfig:
    fixed = get_arch(values["arch"]).fixed
    values = {k: v for k, v in values.items() if k not in fixed}  # mlp_seed has its own depth/width
    try:
        return TrialConfig(**values)
    except ConfigError as exc:
        raise exc.at(f"{where} {exc.field}") from None


def make_plan(spec: SweepSpec, src: str = "sweep") -> SweepPlan:
    """Expand the spec; combinations that collapse (mlp_seed has no depth axis) appear once.

    Raises:
        ConfigError: a combination of valid values that is invalid together (e.g. GroupNorm
            groups that do not divide a grid width), naming the combination.
    """
    axes = list(spec.grid)
    points = [
        dict(zip(axes, combo, strict=True)) for combo in itertools.product(*spec.grid.values())
    ]
    tune_seed = [spec.tune.tune_seed] if spec.tune else spec.seed_list
    arms: dict[str, Arm] = {}
    trials: dict[str, tuple[Arm, TrialConfig]] = {}
    for dataset, arch, ordering, point in itertools.product(
        spec.datasets, spec.archs, spec.orderings, points
    ):
        where = (
            f"{src}: {dataset}/{arch}/{ordering}"
            + "".join(f" {k}={v}" for k, v in point.items())
            + ":"
        )
        values = {**spec.fixed, **point, "dataset": dataset, "arch": arch, "ordering": ordering}
        base = _build({**values, "seed": tune_seed[0]}, where)
        name = arm_id(base, axes if spec.mode == "tuned" else ["depth"])
        arm = arms.setdefault(name, Arm(name, base))
        if spec.mode == "grid":
            for seed in spec.seed_list:
                cfg = base.replace(seed=seed)
                trials.setdefault(cfg.model_dump_json(), (arm, cfg))
    return SweepPlan(spec=spec, arms=tuple(arms.values()), grid_trials=tuple(trials.values()))
