"""Ray's experiment snapshot kept whole (snapshot.py): a state file cut short by a kill is put
back from the kept copy before a restore; with no copy, the resume stops with one line rather
than letting Ray start the phase over. The kill itself: test_resume.py."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from bnorder.errors import BnorderError
from bnorder.tune.snapshot import KEPT, keep_snapshot, repair_snapshot, unreadable_state

SESSION = "2026-11-29_17-31-34"
LATER = "2026-11-29_17-40-02"


def _ray_state(folder: Path, session: str = SESSION, trials: int = 2) -> dict[str, bytes]:
    """The files Ray's save_to_dir writes: its experiment state (JSON) and a searcher's
    state (a pickle, named .json by BasicVariantGenerator)."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        f"experiment_state-{session}.json": json.dumps(
            {"trial_data": [[f"t{k}", {}] for k in range(trials)], "runner_data": {}}
        ).encode(),
        f"basic-variant-state-{session}.json": pickle.dumps({"_uuid_prefix": "ab12c_"}),
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return files


def test_a_state_cut_short_is_put_back_from_the_kept_copy(tmp_path: Path) -> None:
    staging, experiment = tmp_path / "staging", tmp_path / "exp"
    files = _ray_state(staging)
    _ray_state(experiment)
    (experiment / "tuner.pkl").write_bytes(b"left alone")
    keep_snapshot(staging, experiment)
    assert sorted(p.name for p in (experiment / KEPT).iterdir()) == sorted(files)

    assert repair_snapshot(experiment) is None  # Ray's own loads: nothing done
    state = experiment / f"experiment_state-{SESSION}.json"
    state.write_bytes(b"")  # the kill came as Ray's copy had opened it
    assert unreadable_state(experiment) == [state.name]
    assert "restored the kept snapshot" in repair_snapshot(experiment)
    assert {p.name: p.read_bytes() for p in experiment.glob("*-*.json")} == files
    assert (experiment / "tuner.pkl").read_bytes() == b"left alone"


def test_a_later_session_cut_short_gives_way_to_the_kept_snapshot(tmp_path: Path) -> None:
    """A resumed driver killed during its first copy: its files are the newest Ray would read;
    the kept snapshot (the earlier session's) replaces them all."""
    staging, experiment = tmp_path / "staging", tmp_path / "exp"
    files = _ray_state(staging)
    _ray_state(experiment)
    keep_snapshot(staging, experiment)
    later = _ray_state(experiment, LATER)
    (experiment / next(n for n in later if n.startswith("basic"))).write_bytes(b"\x80\x05")
    repair_snapshot(experiment)
    assert sorted(p.name for p in experiment.glob("*-*.json")) == sorted(files)
    assert unreadable_state(experiment) == []


def test_the_copy_set_aside_serves_when_the_kept_one_is_missing(tmp_path: Path) -> None:
    staging, experiment = tmp_path / "staging", tmp_path / "exp"
    _ray_state(staging)
    _ray_state(experiment, trials=0)  # no trial: Ray's restore would fail on it
    keep_snapshot(staging, experiment)
    (experiment / KEPT).rename(experiment / f"{KEPT}.old")  # killed between the two renames
    assert repair_snapshot(experiment) is not None
    assert unreadable_state(experiment) == []


def test_unreadable_without_a_kept_copy_stops_the_resume(tmp_path: Path) -> None:
    experiment = tmp_path / "exp"
    _ray_state(experiment)
    (experiment / f"experiment_state-{SESSION}.json").write_text('{"trial_data": [["t0", ')
    with pytest.raises(BnorderError, match=r"unreadable \(experiment_state-.*new --out"):
        repair_snapshot(experiment)
    assert unreadable_state(tmp_path / "none") == []  # no experiment yet: nothing to repair


def test_a_lagging_copy_gives_way_but_a_later_drivers_state_stays(tmp_path: Path) -> None:
    """Ray's copy of an older snapshot (one trial, the kept one has two) is replaced; a later
    driver's state that it had no time to keep is Ray's to read."""
    staging, experiment = tmp_path / "staging", tmp_path / "exp"
    files = _ray_state(staging, trials=2)
    _ray_state(experiment, trials=1)
    keep_snapshot(staging, experiment)
    assert repair_snapshot(experiment) == "restored the kept snapshot (Ray's copy lagged)"
    assert {p.name: p.read_bytes() for p in experiment.glob("*-*.json")} == files

    later = _ray_state(experiment, LATER, trials=3)
    assert repair_snapshot(experiment) is None
    assert set(later) <= {p.name for p in experiment.glob("*-*.json")}
