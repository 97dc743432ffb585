"""ArmSearcher after a driver restart, without Ray: the studies are told from the results rows,
trials asked but never run are handed out again, tells are idempotent, prune decisions stick."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from bnorder.sweep.spec import Distribution, PruningSpec
from bnorder.tune import searcher as searcher_module
from bnorder.tune.searcher import ArmSearcher
from bnorder.tune.study_sync import PRUNED_AT, outcome, tell_once

ARMS = ("conv-bn-relu", "conv-relu-bn")


@pytest.fixture
def rows(monkeypatch: pytest.MonkeyPatch) -> dict[str, dict[str, Any]]:
    """The results rows the searcher sees, by trial_id (the recorder's part, faked)."""
    written: dict[str, dict[str, Any]] = {}
    monkeypatch.setattr(
        searcher_module,
        "recorded_rows",
        lambda out, ids: {tid: written[tid] for tid in ids if tid in written},
    )
    return written


def _searcher(tmp_path: Path, pruning: PruningSpec | None = None) -> ArmSearcher:
    base = {"dataset": "synthetic", "arch": "mlp", "depth": 1, "width": 4, "epochs": 3}
    return ArmSearcher(
        arms={
            f"synthetic/mlp/{o}": (
                {**base, "ordering": o},
                {"phase": "tune", "arm_id": f"synthetic/mlp/{o}"},
            )
            for o in ARMS
        },
        space={"lr": Distribution(log_uniform=(1e-4, 1e-1))},
        trials_per_arm=2,
        storage=f"sqlite:///{tmp_path / 'optuna.db'}",
        sweep="s",
        metric="best_val_acc",
        sampler_seed=0,
        pruning=pruning,
        out=tmp_path,
    )


def _restart(snapshot: bytes) -> ArmSearcher:
    """The searcher as Ray brings it back from an experiment snapshot."""
    return pickle.loads(snapshot)


def _row(status: str, best: float = 0.7, final: float = 0.6) -> dict[str, Any]:
    return {"status": status, "best_val_acc": best, "final_val_acc": final}


def _study(tmp_path: Path, ordering: str) -> optuna.Study:
    return optuna.load_study(
        study_name=f"s/synthetic/mlp/{ordering}", storage=f"sqlite:///{tmp_path / 'optuna.db'}"
    )


@pytest.mark.parametrize(
    ("row", "state", "value"),
    [
        (_row("ok"), TrialState.COMPLETE, 0.7),
        (_row("diverged"), TrialState.COMPLETE, 0.7),
        (_row("diverged", best=float("nan")), TrialState.FAIL, None),
        (_row("pruned"), TrialState.PRUNED, None),
        (_row("failed"), TrialState.FAIL, None),
    ],
)
def test_outcome_of_a_row(row: dict[str, Any], state: TrialState, value: float | None) -> None:
    assert outcome(row, "best_val_acc") == (state, value)


def test_tell_once_is_idempotent_and_warns_on_a_different_outcome(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'o.db'}", direction="maximize")
    study.ask()
    tell_once(study, 0, TrialState.COMPLETE, 0.5)
    tell_once(study, 0, TrialState.COMPLETE, 0.5)  # Optuna itself would raise here
    assert capsys.readouterr().err == ""
    tell_once(study, 0, TrialState.PRUNED, None)
    assert "was told COMPLETE 0.5, its row says PRUNED" in capsys.readouterr().err
    assert (study.trials[0].state, study.trials[0].value) == (TrialState.COMPLETE, 0.5)


def test_trials_are_told_from_their_rows_after_they_end(
    tmp_path: Path, rows: dict[str, dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    searcher = _searcher(tmp_path)
    searcher.suggest("r0")
    searcher.suggest("r1")
    searcher.on_trial_complete("r0")
    searcher.on_trial_complete("r1")
    assert {t.state for t in _study(tmp_path, ARMS[0]).trials} == {TrialState.RUNNING}
    rows["s-r0"] = _row("ok")  # the recorder writes r0's row; r1 ended without one
    searcher.suggest("r2")
    assert _study(tmp_path, ARMS[0]).trials[0].value == 0.7
    assert _study(tmp_path, ARMS[1]).trials[0].state == TrialState.FAIL
    assert "ended without a results row" in capsys.readouterr().err


def test_a_restart_tells_recorded_trials_and_hands_out_orphans_again(
    tmp_path: Path, rows: dict[str, dict[str, Any]]
) -> None:
    searcher = _searcher(tmp_path)
    first = searcher.suggest("r0")  # arm 0, trial 0
    snapshot = pickle.dumps(searcher)  # Ray's last snapshot: it knows r0 only
    second = searcher.suggest("r1")  # arm 1, trial 0: asked, then the driver died
    third = searcher.suggest("r2")  # arm 0, trial 1
    rows["s-r0"] = _row("ok")  # r0 finished and was recorded before the kill

    restored = _restart(snapshot)
    restored.trial_added("r0", first, "RUNNING")  # Ray restores r0 (it will end at once)
    again = [restored.suggest(f"n{k}") for k in range(3)]
    assert restored.suggest("n3") == restored.FINISHED  # 2 + 2 trials: the budget, exactly

    assert _study(tmp_path, ARMS[0]).trials[0].value == 0.7  # told from its row
    # the orphans again, same Optuna trial and parameters, then arm 1's new trial 1
    assert [c["meta"]["optuna_trial"] for c in again] == [0, 1, 1]
    assert again[0]["trial"] == second["trial"]
    assert again[1]["trial"] == third["trial"]
    assert [c["meta"]["study"].rsplit("/", 1)[1] for c in again] == [ARMS[1], ARMS[0], ARMS[1]]
    study = _study(tmp_path, ARMS[1])
    assert study.trials[0].user_attrs["ray_trial_id"] == "n0"  # its row will be n0's
    assert len(study.trials) == 2


def test_a_restored_running_trial_is_no_orphan(
    tmp_path: Path, rows: dict[str, dict[str, Any]]
) -> None:
    searcher = _searcher(tmp_path)
    config = searcher.suggest("r0")
    restored = _restart(pickle.dumps(searcher))
    restored.live.clear()  # whatever the snapshot says, Ray's restored trials decide
    restored.trial_added("r0", config, "PENDING")
    assert restored.suggest("n0")["meta"]["study"].endswith(ARMS[1])  # a new trial, not r0's
    restored.on_trial_result("r0", {"val_acc": 0.5, "epoch": 1})  # continues, same trial
    assert _study(tmp_path, ARMS[0]).trials[0].intermediate_values == {1: 0.5}


def test_a_final_sync_fails_what_never_got_a_row(
    tmp_path: Path, rows: dict[str, dict[str, Any]]
) -> None:
    searcher = _searcher(tmp_path)
    searcher.suggest("r0")
    searcher.suggest("r1")
    rows["s-r1"] = _row("pruned")
    searcher.sync(final=True)
    assert _study(tmp_path, ARMS[0]).trials[0].state == TrialState.FAIL
    assert _study(tmp_path, ARMS[1]).trials[0].state == TrialState.PRUNED


def test_a_prune_decision_sticks_across_a_restart(
    tmp_path: Path, rows: dict[str, dict[str, Any]]
) -> None:
    searcher = _searcher(tmp_path, PruningSpec(min_epochs=1, reduction_factor=2))
    searcher.suggest("r0")
    trial = searcher._trial("r0")
    for epoch in (1, 2):
        searcher.on_trial_result("r0", {"val_acc": 0.1 * epoch, "epoch": epoch})
    trial.storage.set_trial_system_attr(trial._trial_id, PRUNED_AT, 2)  # decided, then killed
    restored = _restart(pickle.dumps(searcher))
    # replayed from its epoch-1 checkpoint: continues through epoch 1, stops at 2 again
    assert not restored.should_prune("r0", {"val_acc": 0.1, "epoch": 1})
    assert restored.should_prune("r0", {"val_acc": 0.2, "epoch": 2})


def test_a_restarted_searcher_suggests_what_an_uninterrupted_one_would(
    tmp_path: Path, rows: dict[str, dict[str, Any]]
) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    uninterrupted, killed = _searcher(tmp_path / "a"), _searcher(tmp_path / "b")
    expected = [uninterrupted.suggest(f"r{k}")["trial"] for k in range(4)]
    first = [killed.suggest(f"r{k}") for k in range(2)]
    restored = _restart(pickle.dumps(killed))
    for k, config in enumerate(first):
        restored.trial_added(f"r{k}", config, "RUNNING")
    again = [restored.suggest(f"n{k}")["trial"] for k in range(2)]
    assert [c["trial"] for c in first] + again == expected
    assert len({c["lr"] for c in expected}) == 4  # and no point twice
