"""A fixed grid's trials, issued in plan order by a searcher.

Ray's ``grid_search`` would nest every config under the axis' key (``config/point/trial/lr``)
while the searchers of tuned and adaptive phases give ``config/trial/lr``; issuing the grid
through a searcher gives every phase one layout in Ray's results, TensorBoard and
``ExperimentAnalysis``. Its state is one counter, saved in the same experiment snapshot as the
trials it created, so a restored experiment never issues a trial twice. Trials issued after that
snapshot are lost to Ray when the driver dies; those that wrote their rows before it died are
not issued again, the others are.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

from ray.tune.search import Searcher

from bnorder.config import TrialConfig
from bnorder.results.store import TRIALS, load
from bnorder.tune.trainable import member_configs

__all__ = ["PlanSearcher"]


class PlanSearcher(Searcher):
    """Suggests ``configs`` one by one (``{"trial" | "members": ..., "meta": ...}``)."""

    def __init__(self, configs: list[dict[str, Any]]) -> None:
        super().__init__()  # no metric: nothing is searched, and a restored trial whose row
        # exists returns without reporting one
        self.configs = configs
        self.issued = 0
        self.synced = True  # False after a restore: first drop what was recorded since

    def set_search_properties(
        self, metric: str | None, mode: str | None, config: dict, **spec: Any
    ) -> bool:
        return True

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        if not self.synced:
            self._drop_recorded()
        if self.issued >= len(self.configs):
            return Searcher.FINISHED
        self.issued += 1
        return self.configs[self.issued - 1]

    def on_trial_complete(
        self, trial_id: str, result: dict | None = None, error: bool = False
    ) -> None:
        pass

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as fh:
            pickle.dump(self.__dict__, fh)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as fh:
            self.__dict__.update(pickle.load(fh))
        self.synced = False

    def _drop_recorded(self) -> None:
        """Not yet issued as far as the snapshot knows, but with rows: issued, run and recorded
        after it. Those are not issued again (every member of a fused array recorded)."""
        self.synced = True
        pending = self.configs[self.issued :]
        if not pending:
            return
        meta = pending[0]["meta"]
        out = Path(meta["out"])
        if not (out / TRIALS).exists():
            return
        rows = load(out).trials
        done = set(rows.config_hash[(rows.sweep == meta["sweep"]) & (rows.phase == meta["phase"])])
        self.configs = self.configs[: self.issued] + [
            c
            for c in pending
            if not all(TrialConfig(**m).config_hash in done for m in member_configs(c))
        ]
