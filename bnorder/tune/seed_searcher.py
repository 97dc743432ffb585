"""Adaptive seeds inside one Ray Tune experiment: a searcher that issues seed batches.

New seeds join the running experiment as new trials (on a cluster they go wherever Ray has
room), instead of a second experiment per batch. Decisions come from the results rows the
recorder wrote, scored exactly as the report scores them, so the sweep stops on the numbers
the report shows. Ray calls ``on_trial_complete`` on the searcher *before* the recorder writes
the row, so finished trials are read on the next ``suggest``.

After a driver restart the searcher comes back from Ray's last experiment snapshot, which may
predate trials that finished (or were issued) later. Its first ``suggest`` therefore re-reads
this phase's rows: seeds with a row are recorded, never issued again, and the decisions are
recomputed from them (they depend on the rows alone).
"""

from __future__ import annotations

import math
import pickle
from pathlib import Path
from typing import Any

from ray.tune.search import Searcher

from bnorder.analysis.frames import scored
from bnorder.results.store import TRIALS, load, read_trials
from bnorder.sweep.replication import Replication, unit_key
from bnorder.tune.trainable import cell_of, member_ids

__all__ = ["SeedSearcher"]


class SeedSearcher(Searcher):
    """Suggests ``{"trial" | "members": ..., "meta": ...}`` configs, a batch of seeds each.

    Args:
        state: the phase's decision state (:class:`~bnorder.sweep.replication.Replication`).
        metas: arm ID -> the bookkeeping every trial of that arm carries.
        out: the results folder the recorder writes to.
        sweep: the sweep's name (trial IDs and rows).
        phase: ``grid`` or ``evaluate``.
        fuse: seeds per Ray trial at most (a fused seed array when more than one).
    """

    def __init__(
        self,
        *,
        state: Replication,
        metas: dict[str, dict[str, Any]],
        out: Path,
        sweep: str,
        phase: str,
        fuse: int = 1,
    ) -> None:
        # no metric for Ray to insist on: a restored trial whose rows exist returns at once,
        # reporting none (as ArmSearcher)
        super().__init__(metric=None, mode="max")
        self.state, self.metas, self.out = state, metas, out
        self.sweep, self.phase, self.fuse = sweep, phase, fuse
        self.live: dict[str, tuple[str, list[int], list[str]]] = {}  # ray id -> unit, seeds, ids
        self.ended: list[str] = []  # ray ids whose rows are read on the next suggest
        self.synced = True

    # ---------------------------------------------------------------- Ray's Searcher API
    def set_search_properties(
        self, metric: str | None, mode: str | None, config: dict, **spec: Any
    ) -> bool:
        return True

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        if not self.synced:
            self._sync()
        self._absorb()
        for line in self.state.settle():
            print(f"[{self.sweep} {self.phase}] {line}", flush=True)
        batch = self.state.next_batch(self.fuse)
        if batch is None:
            return Searcher.FINISHED if self.state.finished else None
        unit, seeds = batch
        members = [unit.template.replace(seed=s) for s in seeds]
        cfgs = [m.model_dump() for m in members]
        config = {
            "cell": cell_of(members),
            **({"trial": cfgs[0]} if len(cfgs) == 1 else {"members": cfgs}),
            "meta": self.metas[unit.arm_id],
        }
        self.live[trial_id] = (unit.key, seeds, member_ids(self.sweep, trial_id, config))
        return config

    def on_trial_complete(
        self, trial_id: str, result: dict | None = None, error: bool = False
    ) -> None:
        if trial_id in self.live:
            self.ended.append(trial_id)

    # ---------------------------------------------------------------- results
    def _absorb(self) -> None:
        """Record the scores of trials that ended (their rows are written by now)."""
        if not self.ended:
            return
        ended, self.ended = self.ended, []
        ids = [tid for ray_id in ended for tid in self.live[ray_id][2]]
        score = _scores(read_trials(self.out, ids))
        for ray_id in ended:
            key, seeds, tids = self.live.pop(ray_id)
            for seed, tid in zip(seeds, tids, strict=True):
                # no row: the trial never reported (it failed before its first epoch)
                self.state.record(key, seed, score.get(tid, math.nan))

    def _sync(self) -> None:
        """After a restore: every seed with a row in this phase counts, issued or not."""
        self.synced = True
        if not (self.out / TRIALS).exists():
            return
        rows = load(self.out).trials
        rows = rows[(rows.sweep == self.sweep) & (rows.phase == self.phase)]
        score = _scores(rows)
        for row in rows.itertuples():
            key = unit_key(row.arm_id, row.group_hash)
            if key in self.state.units:
                self.state.record(key, int(row.seed), score.get(row.trial_id, math.nan))

    # ---------------------------------------------------------------- saved with the experiment
    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as fh:
            pickle.dump(self.__dict__, fh)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as fh:
            self.__dict__.update(pickle.load(fh))
        self.synced = False

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.synced = False


def _scores(rows: Any) -> dict[str, float]:
    """trial_id -> the report's score; failed and pruned runs are left out (NaN)."""
    kept = scored(rows)
    return dict(zip(kept["trial_id"], kept["score"].astype(float), strict=True))
