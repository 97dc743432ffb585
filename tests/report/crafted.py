"""Results in the real schema with chosen scores: each run is a ``TrialResult`` written by
``write_result``, as a sweep writes it, so ``bnorder report`` reads exactly what it would read
after training, with the scores a test needs (ties, 2 runs, infinite losses ...)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from bnorder import TrialConfig, write_result
from bnorder.train import TrialResult

EPOCH = {
    "epoch": 1,
    "train_loss": 1.0,
    "train_acc": 0.6,
    "val_loss": 1.0,
    "lr_end": 0.001,
    "train_seconds": 1.0,
    "eval_seconds": 0.1,
    "images_per_s": 1000.0,
}


def run(
    ordering: str,
    seed: int,
    acc: float,
    *,
    loss: float | None = None,
    phase: str = "grid",
    status: str = "ok",
    **config: Any,
) -> TrialResult:
    """One finished run whose test accuracy (at the best-validation epoch) is ``acc``."""
    cfg = TrialConfig(
        **{"dataset": "synthetic", "arch": "cnn", "depth": 2, "width": 8, "epochs": 1}
        | config
        | {"ordering": ordering, "seed": seed, "device": "cpu"}
    )
    test_loss = 2.0 - acc if loss is None else loss
    epoch = EPOCH | {"val_acc": acc, "test_acc": acc, "test_loss": test_loss}
    arm = f"{cfg.dataset}/{cfg.arch}/d{cfg.depth}/lr={cfg.lr:g}/{cfg.ordering}"
    return TrialResult(
        config=cfg,
        trial_id=f"{phase}-{arm.replace('/', '_')}-{seed}",
        status=status,  # type: ignore[arg-type]
        epochs=[epoch],
        n_params=100,
        wall_seconds=1.0,
        device_name="cpu",
        data_source="synthetic",
        extra={"sweep": "crafted", "phase": phase, "arm_id": arm},
    )


def write(out: Path, runs: Iterable[TrialResult]) -> Path:
    for r in runs:
        write_result(out, r)
    return out
