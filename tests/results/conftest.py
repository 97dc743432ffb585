"""Results made up without training: the real schema in milliseconds."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest

from bnorder.config import TrialConfig
from bnorder.probes import PROBE_STATS
from bnorder.train import TrialResult


def made_up(i: int, *, epochs: int = 2, acc: float = 0.5) -> TrialResult:
    """Trial ``t<i>``: ``epochs`` epochs of metrics (probes on, 2 blocks), final val ``acc``."""
    cfg = TrialConfig(dataset="synthetic", arch="mlp", depth=2, width=4, epochs=epochs, seed=i)
    rows = [
        {
            "epoch": e,
            **dict.fromkeys(("train_loss", "val_loss", "test_loss"), 1.0 / e),
            **dict.fromkeys(("train_acc", "val_acc", "test_acc"), acc * e / epochs),
            **dict.fromkeys(("lr_end", "train_seconds", "eval_seconds", "images_per_s"), 1.0),
            "compile_seconds": math.nan,
            **{s: [0.1 * e, 0.2] for s in PROBE_STATS},
        }
        for e in range(1, epochs + 1)
    ]
    return TrialResult(
        config=cfg.replace(probes=True), trial_id=f"t{i:04d}", status="ok", epochs=rows,
        n_params=10, wall_seconds=1.0, device_name="cpu", data_source="made up",
    )  # fmt: skip


@pytest.fixture(scope="session")
def make_result() -> Callable[..., TrialResult]:
    """``make_result(i, epochs=2, acc=0.5)``: a trial's result with the real schema, untrained."""
    return made_up
