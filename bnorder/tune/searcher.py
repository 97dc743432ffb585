"""Fair tuning: one Optuna study per arm, the same number of trials for each, in one Ray Tune
experiment.

Ray's ``OptunaSearch`` would tell trials stopped early to Optuna as COMPLETE with their partial
score, and cannot give each arm its own budget; this searcher uses Optuna's ask/tell directly:
suggestions go round-robin to the arm with the fewest trials so far, stopped trials are told as
PRUNED, and pruning decisions come from each arm's own study (the same rule for every arm).

A driver may die at any instant; the searcher's state then comes back from Ray's experiment
snapshot, which lags the studies and the results rows by seconds. So each trial is told from its
row (after the row is written), and after a restart the searcher re-derives what it knows from
the studies, the rows and the trials Ray restored (:mod:`bnorder.tune.study_sync`): every arm
still ends with exactly ``trials_per_arm`` told trials, each equal to its row.
"""

from __future__ import annotations

import math
import pickle
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState
from ray.tune.schedulers import FIFOScheduler, TrialScheduler
from ray.tune.search import Searcher

from bnorder.config import TrialConfig
from bnorder.sweep.spec import Distribution, PruningSpec
from bnorder.tune.study_sync import PRUNED_AT, frozen, outcome, recorded_rows, tell_once
from bnorder.tune.testpoints import reached
from bnorder.tune.trainable import cell_of, trial_id_for, unwrap

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
        sampler_seed: TPE's seed; each suggestion's is drawn from it, the arm's index and the
            trial's number, so a restarted driver suggests what an uninterrupted one would.
        pruning: successive halving inside each study, or None.
        out: the results folder, whose rows the studies are told from.
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
        out: Path,
    ) -> None:
        # no metric for Ray to insist on: a trial recorded before a restart ends at once and
        # reports none (its study is told from its row)
        super().__init__(metric=None, mode="max")
        self.arms = arms
        self.space = {k: to_optuna(v) for k, v in space.items()}
        self.trials_per_arm = trials_per_arm
        self.storage, self.sweep, self.objective = storage, sweep, metric
        self.sampler_seed, self.pruning, self.out = sampler_seed, pruning, Path(out)
        self.asked: dict[str, int] = dict.fromkeys(arms, 0)  # handed to Ray trials
        self.live: dict[str, tuple[str, int]] = {}  # ray trial id -> (arm, optuna trial number)
        self.ended: dict[str, tuple[str, int]] = {}  # ended, told on the next suggest
        self.orphans: dict[str, list[int]] = {a: [] for a in arms}  # asked; no Ray trial runs
        self.max_concurrent = 0  # 0: no limit
        self.synced = False  # first re-derive the state from the studies and rows
        self._studies: dict[str, optuna.Study] = {}
        self._trials: dict[str, optuna.Trial] = {}

    # ---------------------------------------------------------------- studies
    def study_name(self, arm: str) -> str:
        return f"{self.sweep}/{arm}"

    def sampler(self, arm: str, number: int) -> optuna.samplers.TPESampler:
        """TPE for trial ``number`` of ``arm``. TPE keeps nothing but its random state (the
        history is in the storage), and that state is seeded per trial: one seeded per arm
        would start over after a driver restart and suggest the first points again."""
        seed = np.random.SeedSequence([self.sampler_seed, list(self.arms).index(arm), number])
        return optuna.samplers.TPESampler(
            seed=int(seed.generate_state(1)[0]),
            n_startup_trials=max(1, min(10, self.trials_per_arm // 2)),  # TPE on small budgets
            constant_liar=True,  # concurrent trials: do not suggest the same point twice
        )

    def study(self, arm: str) -> optuna.Study:
        if arm not in self._studies:
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
                sampler=self.sampler(arm, 0),
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
            self._trials[trial_id] = optuna.Trial(study, frozen(study, number)._trial_id)
        return self._trials[trial_id]

    # ---------------------------------------------------------------- Ray's Searcher API
    def set_search_properties(
        self, metric: str | None, mode: str | None, config: dict, **spec: Any
    ) -> bool:
        return True

    def set_max_concurrency(self, max_concurrent: int) -> bool:
        """Limit concurrency here, counting the trials Ray really has (restored ones included),
        rather than in Ray's ConcurrencyLimiter, whose list comes from a lagging snapshot."""
        self.max_concurrent = max_concurrent
        return True

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        self._sync_once()
        self._tell_ended()
        open_arms = [a for a in self.arms if self.asked[a] < self.trials_per_arm]
        if not open_arms:
            return Searcher.FINISHED
        if self.max_concurrent and len(self.live) >= self.max_concurrent:
            return None
        arm = min(open_arms, key=lambda a: self.asked[a])  # round-robin, in arm order
        study = self.study(arm)
        if self.orphans[arm]:  # asked before a restart, never run: the same trial again
            trial = optuna.Trial(study, frozen(study, self.orphans[arm].pop(0))._trial_id)
        else:
            study.sampler = self.sampler(arm, len(study.get_trials(deepcopy=False)))
            trial = study.ask(self.space)
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
        reached("asked")
        fields = {**base, **trial.params}
        return {
            "cell": cell_of([TrialConfig(**fields)]),
            "trial": fields,
            "meta": {**meta, "study": self.study_name(arm), "optuna_trial": trial.number},
        }

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        self._sync_once()
        self._report(trial_id, result)

    def should_prune(self, trial_id: str, result: dict[str, Any]) -> bool:
        """The arm's pruner's decision on this epoch, stored before Ray acts on it: a trial that
        runs again after a restart stops at the same epoch."""
        self._sync_once()
        trial = self._report(trial_id, result)
        if trial is None or self.pruning is None or "epoch" not in result:
            return False
        epoch = int(result["epoch"])
        stored = trial.storage.get_trial(trial._trial_id)
        if PRUNED_AT in stored.system_attrs:
            return epoch >= stored.system_attrs[PRUNED_AT]
        if result.get("done") or epoch >= self.arms[self.live[trial_id][0]][0]["epochs"]:
            return False  # nothing left to stop
        if stored.last_step is not None and epoch < stored.last_step:
            return False  # epochs replayed from a checkpoint were decided before the restart
        if not trial.should_prune():
            return False
        trial.storage.set_trial_system_attr(trial._trial_id, PRUNED_AT, epoch)
        reached("pruned")
        return True

    def on_trial_complete(
        self, trial_id: str, result: dict | None = None, error: bool = False
    ) -> None:
        """Told on the next suggest (or :meth:`sync`), from the row Ray's callbacks write next."""
        self._sync_once()
        if trial_id in self.live:
            self.ended[trial_id] = self.live.pop(trial_id)
            self._trials.pop(trial_id, None)

    def trial_added(self, trial_id: str, config: dict[str, Any], status: str) -> None:
        """Ray has this trial: a new one, or one restored from its experiment (which runs again
        unless it had ended). Called by :class:`ArmPruningScheduler`."""
        meta = unwrap(config).get("meta", {})
        if meta.get("arm_id") not in self.arms or meta.get("optuna_trial") is None:
            return
        if status in ("TERMINATED", "ERROR"):
            self.live.pop(trial_id, None)
        else:
            self.live[trial_id] = (meta["arm_id"], int(meta["optuna_trial"]))

    # ---------------------------------------------------------------- studies <-> rows
    def _report(self, trial_id: str, result: dict[str, Any]) -> optuna.Trial | None:
        """Tell the arm's study this epoch's validation accuracy (once per epoch); the trial,
        or None when it is not running (unknown, or already told)."""
        if trial_id not in self.live:
            return None
        trial = self._trial(trial_id)
        stored = trial.storage.get_trial(trial._trial_id)
        if stored.state.is_finished():
            return None
        if "val_acc" in result and "epoch" in result:
            value, epoch = float(result["val_acc"]), int(result["epoch"])
            if epoch not in stored.intermediate_values and math.isfinite(value):
                trial.report(value, epoch)
        return trial

    def _tell_ended(self) -> None:
        """Tell the studies how the ended trials went: their rows are written by now."""
        if not self.ended:
            return
        ended, self.ended = self.ended, {}
        rows = recorded_rows(self.out, (trial_id_for(self.sweep, r) for r in ended))
        for ray_id, (arm, number) in ended.items():
            row = rows.get(trial_id_for(self.sweep, ray_id))
            if row is None:
                print(
                    f"bnorder: warning: tuning trial {ray_id} ended without a results row; "
                    "told as failed",
                    file=sys.stderr,
                )
                state, value = TrialState.FAIL, None
            else:
                reached("recorded")
                state, value = outcome(row, self.objective)
            tell_once(self.study(arm), number, state, value)

    def _sync_once(self) -> None:
        if not self.synced:
            self.sync()

    def sync(self, *, final: bool = False) -> None:
        """Re-derive the state from the studies and rows (:mod:`bnorder.tune.study_sync`): tell
        every RUNNING trial that has a row; one without a row that no Ray trial runs becomes an
        orphan, handed out again. With ``final`` (the phase is over: no Ray trial runs again),
        such a trial is told FAIL instead, so every arm ends with all its trials told."""
        self.synced = True
        self.ended.clear()  # their rows say it all
        for arm in self.arms:
            study = self.study(arm)
            trials = study.get_trials(deepcopy=False)
            running = [t for t in trials if t.state == TrialState.RUNNING]
            rows = recorded_rows(self.out, (t.user_attrs.get("trial_id") for t in running))
            live = {number for a, number in self.live.values() if a == arm}
            self.orphans[arm] = []
            for t in running:
                row = rows.get(t.user_attrs.get("trial_id"))
                if row is not None:
                    tell_once(study, t.number, *outcome(row, self.objective))
                elif final:
                    print(
                        f"bnorder: warning: {study.study_name} trial {t.number} never ran to "
                        "a results row; told as failed",
                        file=sys.stderr,
                    )
                    tell_once(study, t.number, TrialState.FAIL, None)
                elif t.number not in live:
                    self.orphans[arm].append(t.number)
            self.asked[arm] = len(trials) - len(self.orphans[arm])

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
        self.synced = False  # a snapshot lags the studies and rows: re-derive on first use

    def best_params(self, arm: str) -> dict[str, Any] | None:
        """The arm's best complete trial's parameters (validation metric), or None."""
        done = [t for t in self.study(arm).trials if t.state == optuna.trial.TrialState.COMPLETE]
        return max(done, key=lambda t: t.value).params if done else None


class ArmPruningScheduler(FIFOScheduler):
    """Stops a trial when its own arm's study says so: the same pruning rule for every arm.
    Also tells the searcher every trial Ray adds, restored ones included (with or without
    pruning): after a restart, the searcher learns from this which trials will run again."""

    def __init__(self, searcher: ArmSearcher) -> None:
        super().__init__()
        self.searcher = searcher

    def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
        self.searcher.trial_added(trial.trial_id, trial.config, trial.status)

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        if self.searcher.should_prune(trial.trial_id, result):
            return TrialScheduler.STOP
        return TrialScheduler.CONTINUE
