"""The recorder without Ray: stand-in trials fed through the callback hooks. It holds a trial's
epochs only while it runs (a long sweep's driver does not keep every epoch it has written), a
resumed trial's rows are its checkpoint's history, whichever checkpoint it resumed from, and a
running trial's rows are rewritten at most every BNORDER_EPOCH_PARTS_S."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from bnorder.config import TrialConfig
from bnorder.errors import ConfigError
from bnorder.results import load
from bnorder.results.store import EPOCH_PARTS_ENV, epoch_parts_every_s, read_epochs
from bnorder.sweep.plan import make_plan
from bnorder.sweep.spec import load_sweep
from bnorder.tune.recorder import ResultsRecorder
from bnorder.tune.runner import run_sweep
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


def test_running_trials_rows_are_rewritten_at_most_every_period(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The live view lags by at most the period; whatever was held back lands with the row."""
    now = [0.0]
    monkeypatch.setattr("bnorder.tune.recorder.time", SimpleNamespace(monotonic=lambda: now[0]))
    monkeypatch.setenv(EPOCH_PARTS_ENV, "5")
    rec, trial = _recorder(tmp_path), _trial(0, tmp_path, epochs=4)
    rec.on_trial_start(0, [], trial)
    on_disk = []
    for epoch, at in [(1, 1.0), (2, 6.0), (3, 7.0), (4, 8.0)]:
        now[0] = at
        rec.on_trial_result(0, [], trial, _metrics(epoch))
        on_disk.append(len(read_epochs(tmp_path, "mem-t000")))
    assert on_disk == [0, 2, 2, 2]  # a period after the start, then not before 11 s
    trial.last_result = {**_metrics(4), "wall_seconds": 1.0}
    rec.on_trial_complete(0, [], trial)
    assert load(tmp_path).epochs.epoch.tolist() == [1, 2, 3, 4]

    monkeypatch.setenv(EPOCH_PARTS_ENV, "0")  # tests that act on a trial's progress
    rec, trial = _recorder(tmp_path), _trial(1, tmp_path, epochs=2)
    rec.on_trial_start(0, [], trial)
    for epoch in (1, 2):
        rec.on_trial_result(0, [], trial, _metrics(epoch))
        assert len(read_epochs(tmp_path, "mem-t001")) == epoch


@pytest.mark.parametrize("value", ["soon", "-1", "inf", "nan"])
def test_a_bad_period_names_the_variable(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(EPOCH_PARTS_ENV, value)
    with pytest.raises(ConfigError, match=rf"^{EPOCH_PARTS_ENV}: must be a number of seconds"):
        epoch_parts_every_s()


def test_a_bad_period_stops_a_sweep_before_anything_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(EPOCH_PARTS_ENV, "soon")
    spec, text = load_sweep(Path("sweeps/smoke.yaml"))
    with pytest.raises(ConfigError, match=EPOCH_PARTS_ENV):
        run_sweep(make_plan(spec), text, out=tmp_path / "out")
    assert not (tmp_path / "out").exists()  # no sweep.yaml that a rerun would refuse
