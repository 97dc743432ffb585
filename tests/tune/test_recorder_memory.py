"""The recorder holds a trial's epochs only while it runs: a long sweep's driver does not keep
every epoch it has written (without Ray: a stand-in trial fed through the callback hooks)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from bnorder.config import TrialConfig
from bnorder.results import load
from bnorder.tune.recorder import ResultsRecorder

ARM = "synthetic/mlp/d1/case1"


def _trial(k: int, out: Path) -> SimpleNamespace:
    cfg = TrialConfig(dataset="synthetic", arch="mlp", depth=1, width=4, epochs=2, seed=k)
    meta = {"sweep": "mem", "phase": "grid", "arm_id": ARM, "out": str(out), "cpu": 1, "gpu": 0}
    return SimpleNamespace(
        trial_id=f"t{k:03d}",
        config={"trial": cfg.model_dump(), "meta": meta},
        last_result={},
        checkpoint=None,
        path=None,
    )


def test_finished_trials_epochs_leave_the_driver(tmp_path: Path) -> None:
    rec = ResultsRecorder(
        out=tmp_path, sweep="mem", sweep_hash="0" * 16, phase="grid", planned={ARM: 5}
    )
    rec.setup()
    for k in range(5):
        trial = _trial(k, tmp_path)
        rec.on_trial_start(0, [], trial)
        for epoch in (1, 2):
            metrics = {"epoch": epoch, "train_loss": 1.0 / epoch, "val_acc": 0.5, "test_acc": 0.5}
            trial.last_result = {**metrics, "wall_seconds": 1.0}
            rec.on_trial_result(0, [], trial, dict(metrics))
        rec.on_trial_complete(0, [], trial)
        assert not rec.epochs  # written, then let go
    rows = load(tmp_path)
    assert len(rows.trials) == 5
    assert (rows.trials.status == "ok").all()
    assert len(rows.epochs) == 10
