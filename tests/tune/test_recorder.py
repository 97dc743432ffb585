"""The recorder without Ray: stand-in trials fed through the callback hooks. It holds a trial's
epochs only while it runs (a long sweep's driver does not keep every epoch it has written), and
a resumed trial's rows are its checkpoint's history, whichever checkpoint it resumed from."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from bnorder.config import TrialConfig
from bnorder.results import load
from bnorder.tune.recorder import ResultsRecorder
from bnorder.tune.trainable import EARLIER_EPOCHS

ARM = "synthetic/mlp/d1/case1"


def _trial(k: int, out: Path, epochs: int = 2) -> SimpleNamespace:
    cfg = TrialConfig(dataset="synthetic", arch="mlp", depth=1, width=4, epochs=epochs, seed=k)
    meta = {"sweep": "mem", "phase": "grid", "arm_id": ARM, "out": str(out), "cpu": 1, "gpu": 0}
    return SimpleNamespace(
        trial_id=f"t{k:03d}",
        config={"trial": cfg.model_dump(), "meta": meta},
        last_result={},
        checkpoint=None,
        path=None,
    )


def _recorder(out: Path) -> ResultsRecorder:
    rec = ResultsRecorder(out=out, sweep="mem", sweep_hash="0" * 16, phase="grid", planned={ARM: 5})
    rec.setup()
    return rec


def _metrics(epoch: int) -> dict[str, float]:
    return {"epoch": epoch, "train_loss": 1.0 / epoch, "val_acc": 0.1 * epoch, "test_acc": 0.5}


def test_finished_trials_epochs_leave_the_driver(tmp_path: Path) -> None:
    rec = _recorder(tmp_path)
    for k in range(5):
        trial = _trial(k, tmp_path)
        rec.on_trial_start(0, [], trial)
        for epoch in (1, 2):
            metrics = _metrics(epoch)
            trial.last_result = {**metrics, "wall_seconds": 1.0}
            rec.on_trial_result(0, [], trial, dict(metrics))
        rec.on_trial_complete(0, [], trial)
        assert not rec.epochs  # written, then let go
    rows = load(tmp_path)
    assert len(rows.trials) == 5
    assert (rows.trials.status == "ok").all()
    assert len(rows.epochs) == 10


def test_a_resumed_trial_hands_over_the_epochs_its_checkpoint_holds(tmp_path: Path) -> None:
    """Killed after the trial stored its third checkpoint, before the driver heard of epoch 3;
    resumed from that checkpoint (the snapshot named the first, since emptied), the trial's
    first report is epoch 4. Its rows are 1-4: epoch 3 comes from the checkpoint's history."""
    trial = _trial(0, tmp_path, epochs=4)
    killed = _recorder(tmp_path)
    killed.on_trial_start(0, [], trial)
    for epoch in (1, 2):
        killed.on_trial_result(0, [], trial, _metrics(epoch))

    resumed = _recorder(tmp_path)  # a new driver: what it knows is on disk
    resumed.on_trial_start(0, [], trial)
    history = [_metrics(e) for e in (1, 2, 3)]
    result = {**_metrics(4), EARLIER_EPOCHS: {"mem-t000": history}}
    trial.last_result = {**_metrics(4), "wall_seconds": 1.0}
    resumed.on_trial_result(0, [], trial, result)
    assert EARLIER_EPOCHS not in result  # Ray's loggers and the experiment state never see it
    resumed.on_trial_complete(0, [], trial)

    rows = load(tmp_path)
    assert list(rows.epochs.epoch) == [1, 2, 3, 4]
    assert rows.epochs.val_acc.tolist() == [0.1 * e for e in (1, 2, 3, 4)]
    assert rows.trials.status.tolist() == ["ok"]  # not "pruned" for an epoch short
