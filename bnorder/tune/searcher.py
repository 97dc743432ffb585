"""Fair tuning: one Optuna study per arm, the same number of trials for each, in one Ray Tune
experiment.

Ray's ``OptunaSearch`` would tell trials stopped early to Optuna as COMPLETE with their partial
score, and cannot give each arm its own budget; this searcher uses Optuna's ask/tell directly:
suggestions go round-robin to the arm with the fewest trials so far, stopped trials are told as
PRUNED, and pruning decisions come from each arm's own study (the same rule for every arm).
"""

from __future__ import annotations

import math
import pickle
import warnings
from typing import Any

import optuna
from ray.tune.schedulers import FIFOScheduler, TrialScheduler
from ray.tune.search import Searcher

from bnorder.sweep.spec import Distribution, PruningSpec
from bnorder.tune.trainable import trial_id_for

__all__ = ["ArmPruningScheduler", "ArmSearcher", "to_optuna"]

optuna.logging.set_verbosity(optuna.logging.WARNING)


def to_optuna(dist: Distribution) -> optuna.distributions.BaseDistribution:
    if dist.log_uniform is not None:
        return optuna.distributions.FloatDistribution(*dist.log_uniform, log=True)
    if dist.uniform is not None:
        return optuna.distributions.FloatDistribution(*dist.uniform)
    if dist.int is not None:
        return optuna.distributions.IntDistribution(*dist.int)
    return optuna.distributions.CategoricalDistribution(dist.choice)


class ArmSearcher(Searcher):
    """Suggests ``{"trial": config, "meta": ...}`` dicts for the arms' tuning trials.

    Args:
        arms: arm_id -> base trial config (a dict of TrialConfig fields) and meta fields.
        space: field -> distribution, the same for every arm.
        trials_per_arm: the budget of every arm.
        storage: an Optuna storage URL (sqlite file next to the results).
        sweep: the sweep's name; study names are ``<sweep>/<arm_id>``.
        metric: the validation metric maximised (``best_val_acc`` or ``final_val_acc``).
        sampler_seed: TPE's seed; each arm's sampler is seeded from it and the arm's index.
        pruning: successive halving inside each study, or None.
    """

    def __init__(
        self,
        *,
        arms: dict[str, tuple[dict[str, Any], dict[str, Any]]],
        space: dict[str, Distribution],
        trials_per_arm: int,
        storage: str,
        sweep: str,
        metric: str,
        sampler_seed: int,
        pruning: PruningSpec | None,
    ) -> None:
        super().__init__(metric="val_acc", mode="max")
        self.arms = arms
        self.space = {k: to_optuna(v) for k, v in space.items()}
        self.trials_per_arm = trials_per_arm
        self.storage, self.sweep, self.objective = storage, sweep, metric
        self.sampler_seed, self.pruning = sampler_seed, pruning
        self.asked: dict[str, int] = dict.fromkeys(arms, 0)
        self.live: dict[str, tuple[str, int]] = {}  # ray trial id -> (arm, optuna trial number)
        self.best: dict[str, float] = {}  # ray trial id -> best val acc so far
        self.last: dict[str, float] = {}  # ray trial id -> latest val acc
        self._studies: dict[str, optuna.Study] = {}
        self._trials: dict[str, optuna.Trial] = {}

    # ---------------------------------------------------------------- studies
    def study_name(self, arm: str) -> str:
        return f"{self.sweep}/{arm}"

    def study(self, arm: str) -> optuna.Study:
        if arm not in self._studies:
            index = list(self.arms).index(arm)
            sampler = optuna.samplers.TPESampler(
                seed=self.sampler_seed * 1000 + index,
                n_startup_trials=max(
                    1, min(10, self.trials_per_arm // 2)
                ),  # TPE kicks in on small budgets
                constant_liar=True,  # concurrent trials: do not suggest the same point twice
            )
            pruner: optuna.pruners.BasePruner = optuna.pruners.NopPruner()
            if self.pruning is not None:
                pruner = optuna.pruners.SuccessiveHalvingPruner(
                    min_resource=self.pruning.min_epochs,
                    reduction_factor=self.pruning.reduction_factor,
                )
            self._studies[arm] = optuna.create_study(
                study_name=self.study_name(arm),
                storage=self.storage,
                direction="maximize",
                sampler=sampler,
                pruner=pruner,
                load_if_exists=True,
            )
            self._label(self._studies[arm], arm)
        return self._studies[arm]

    def _label(self, study: optuna.Study, arm: str) -> None:
        """What optuna-dashboard and ``optuna.load_study`` users see: the objective's name (not
        "Objective 0") and the arm the study tunes."""
        if study.metric_names != [self.objective]:
            with warnings.catch_warnings():  # experimental since Optuna 3.2, stable in use
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                study.set_metric_names([self.objective])
        base = self.arms[arm][0]
        labels = {
            "sweep": self.sweep,
            "arm_id": arm,
            **{k: base[k] for k in ("dataset", "arch", "ordering", "depth", "width")},
        }
        if any(study.user_attrs.get(k) != v for k, v in labels.items()):
            for key, value in labels.items():
                study.set_user_attr(key, value)

    def _trial(self, trial_id: str) -> optuna.Trial:
        if trial_id not in self._trials:  # after a restore: rebuild from the storage
            arm, number = self.live[trial_id]
            study = self.study(arm)
            frozen = study._storage.get_trial(
                study._storage.get_trial_id_from_study_id_trial_number(study._study_id, number)
            )
            self._trials[trial_id] = optuna.Trial(study, frozen._trial_id)
        return self._trials[trial_id]

    # ---------------------------------------------------------------- Ray's Searcher API
    def set_search_properties(
        self, metric: str | None, mode: str | None, config: dict, **spec: Any
    ) -> bool:
        return True

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        open_arms = [a for a in self.arms if self.asked[a] < self.trials_per_arm]
        if not open_arms:
            return Searcher.FINISHED
        arm = min(open_arms, key=lambda a: self.asked[a])  # round-robin, in arm order
        trial = self.study(arm).ask(self.space)
        self.asked[arm] += 1
        self.live[trial_id] = (arm, trial.number)
        self._trials[trial_id] = trial
        base, meta = self.arms[arm]
        # links back to the results: the Parquet row's trial_id and Ray's own id
        for key, value in (
            ("trial_id", trial_id_for(self.sweep, trial_id)),
            ("ray_trial_id", trial_id),
            ("arm_id", arm),
            ("phase", meta["phase"]),
        ):
            trial.set_user_attr(key, value)
        return {
            "trial": {**base, **trial.params},
            "meta": {**meta, "study": self.study_name(arm), "optuna_trial": trial.number},
        }

    def report(self, trial_id: str, result: dict[str, Any]) -> None:
        """Tell the arm's study this epoch's validation accuracy (once per epoch)."""
        if trial_id not in self.live or "val_acc" not in result:
            return
        value, epoch = float(result["val_acc"]), int(result["epoch"])
        self.last[trial_id] = value
        if not math.isnan(value):
            self.best[trial_id] = max(value, self.best.get(trial_id, -math.inf))
        trial = self._trial(trial_id)
        if epoch not in trial.storage.get_trial(
            trial._trial_id
        ).intermediate_values and math.isfinite(value):
            trial.report(value, epoch)

    def should_prune(self, trial_id: str, result: dict[str, Any]) -> bool:
        self.report(trial_id, result)
        return trial_id in self.live and self._trial(trial_id).should_prune()

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        self.report(trial_id, result)

    def on_trial_complete(
        self, trial_id: str, result: dict | None = None, error: bool = False
    ) -> None:
        if trial_id not in self.live:
            return
        arm, number = self.live.pop(trial_id)
        self._trials.pop(trial_id, None)
        study = self.study(arm)
        epochs = self.arms[arm][0]["epochs"]
        value = (
            self.best.get(trial_id) if self.objective == "best_val_acc" else self.last.get(trial_id)
        )
        if error or value is None or math.isnan(value):
            study.tell(number, state=optuna.trial.TrialState.FAIL)
        elif (
            result is not None
            and result.get("status") in ("ok", "pruned")  # the recorder marks pruned ones
            and int(result.get("epoch", 0)) < epochs
        ):
            study.tell(number, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(number, value)

    # ---------------------------------------------------------------- saved with the experiment
    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as fh:
            pickle.dump(self.__getstate__(), fh)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as fh:
            self.__setstate__(pickle.load(fh))

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in ("_studies", "_trials")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._studies, self._trials = {}, {}

    def best_params(self, arm: str) -> dict[str, Any] | None:
        """The arm's best complete trial's parameters (validation metric), or None."""
        done = [t for t in self.study(arm).trials if t.state == optuna.trial.TrialState.COMPLETE]
        return max(done, key=lambda t: t.value).params if done else None


class ArmPruningScheduler(FIFOScheduler):
    """Stops a trial when its own arm's study says so: the same pruning rule for every arm."""

    def __init__(self, searcher: ArmSearcher) -> None:
        super().__init__()
        self.searcher = searcher

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        if self.searcher.should_prune(trial.trial_id, result):
            return TrialScheduler.STOP
        return TrialScheduler.CONTINUE
