"""The process that holds one W&B run (W&B expects one run per process). Kept apart from the
tracker so that Ray's worker imports only this, not bnorder's training core."""

from __future__ import annotations

import os
from typing import Any

from ray.air.integrations.wandb import _QueueItem, _WandbLoggingActor

__all__ = ["WandbRunActor"]


class WandbRunActor(_WandbLoggingActor):
    """Ray's W&B logging actor with bnorder's queue items: ``{"step": epoch, "metrics": {...}}``
    logs an epoch; ``{"summary": {...}, "tags": [...], "exit_code": 0}`` writes the outcome into
    the run's summary and tags (Ray's actor only logs results); checkpoints are not uploaded;
    the run is written out before the actor ends (see run())."""

    def run(self) -> None:
        os.environ["WANDB_START_METHOD"] = "thread"  # already a process of its own
        run = self._wandb.init(*self.args, **self.kwargs)
        exit_code = 0
        while True:
            kind, item = self.queue.get()
            if kind == _QueueItem.END:
                break
            if kind == _QueueItem.RESULT:
                exit_code = self._handle(run, item, exit_code)
        run.finish(exit_code=exit_code)
        # finish() returns before W&B's service has written the run, and Ray kills the actor as
        # soon as run() returns: without this, the last runs of a sweep can lose their records
        self._wandb.teardown(exit_code=exit_code)

    @staticmethod
    def _handle(run: Any, item: dict[str, Any], exit_code: int) -> int:
        if "summary" in item:
            run.summary.update(item["summary"])
            run.tags = tuple(dict.fromkeys((*run.tags, *item["tags"])))
            return item["exit_code"]
        run.log(item["metrics"], step=item["step"])
        return exit_code
