"""Parquet results: the declared schema, atomic appends that never lose rows, plain-pandas reads."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from bnorder.config import TrialConfig
from bnorder.errors import ConfigError
from bnorder.probes import PROBE_STATS
from bnorder.results import EPOCH_SCHEMA, TRIAL_SCHEMA, check_writable, load, write_result
from bnorder.train import TrialResult, train_trial


@pytest.fixture(scope="module")
def results() -> list[TrialResult]:
    base = TrialConfig(dataset="synthetic", arch="mlp", depth=2, width=8, epochs=2, device="cpu")
    return [
        train_trial(base.replace(probes=True)),
        train_trial(base.replace(ordering="case2", seed=1)),
        train_trial(base.replace(ordering="conv-relu", optimizer="sgd", lr=1e10)),  # diverges
    ]


def test_round_trip_with_plain_pandas(tmp_path: Path, results: list[TrialResult]) -> None:
    for r in results:
        write_result(tmp_path, r)
    trials = pd.read_parquet(tmp_path / "trials.parquet")
    epochs = pd.read_parquet(tmp_path / "epochs.parquet")
    assert len(trials) == 3
    assert len(epochs) == sum(len(r.epochs) for r in results)
    assert set(trials.trial_id) == {r.trial_id for r in results}
    assert set(epochs.trial_id) <= set(trials.trial_id)
    assert list(trials.columns) == TRIAL_SCHEMA.names
    assert list(epochs.columns) == EPOCH_SCHEMA.names
    row = trials.set_index("trial_id").loc[results[1].trial_id]
    assert row.ordering == "conv-relu-bn"
    assert row.seed == 1
    assert row.status == "ok"
    assert row.config_hash == results[1].config.config_hash
    assert row.final_test_acc == results[1].epochs[-1]["test_acc"]
    assert row.torch_version
    assert sorted(trials.status) == ["diverged", "ok", "ok"]


def test_schema_is_the_declared_one(tmp_path: Path, results: list[TrialResult]) -> None:
    write_result(tmp_path, results[0])
    part = next((tmp_path / "trials.parquet").glob("*.parquet"))
    assert pq.read_schema(part).remove_metadata() == TRIAL_SCHEMA
    part = next((tmp_path / "epochs.parquet").glob("*.parquet"))
    assert pq.read_schema(part).remove_metadata() == EPOCH_SCHEMA


def test_probe_columns_have_block_lists_and_means(
    tmp_path: Path, results: list[TrialResult]
) -> None:
    write_result(tmp_path, results[0])
    epochs = load(tmp_path).epochs
    for stat in PROBE_STATS:
        values = list(epochs[stat].iloc[0])
        assert len(values) == 2
        finite = [v for v in values if not math.isnan(v)]
        assert epochs[f"{stat}_mean"].iloc[0] == pytest.approx(sum(finite) / len(finite))


def test_appending_never_loses_rows(tmp_path: Path, results: list[TrialResult]) -> None:
    write_result(tmp_path, results[0])
    first = load(tmp_path).trials
    write_result(tmp_path, results[1])
    both = load(tmp_path).trials
    assert len(both) == 2
    kept = both.set_index("trial_id").loc[results[0].trial_id]
    assert kept.final_test_acc == first.final_test_acc.iloc[0]


def test_no_partial_files_left(tmp_path: Path, results: list[TrialResult]) -> None:
    write_result(tmp_path, results[0])
    names = [p.name for p in tmp_path.rglob("*") if p.is_file()]
    names.remove(".bnorder.lock")  # the folder's writers' lock (empty), not a partial file
    assert all(n.startswith("part-") and n.endswith(".parquet") for n in names)


def test_load_many_and_globs(tmp_path: Path, results: list[TrialResult]) -> None:
    write_result(tmp_path / "a", results[0])
    write_result(tmp_path / "b", results[1])
    assert len(load(tmp_path / "a", tmp_path / "b").trials) == 2
    assert len(load(str(tmp_path / "*")).trials) == 2
    curves = load(tmp_path / "a").curves()
    assert {"ordering", "arch", "epoch", "test_acc"} <= set(curves.columns)


def test_load_nothing_is_a_clear_error(tmp_path: Path) -> None:
    # a ConfigError: a usage error (exit code 2 in the CLI), unlike a failed write (1)
    with pytest.raises(ConfigError, match=r"no results found at .*trials.parquet"):
        load(tmp_path / "missing")


def test_check_writable_creates_nothing(tmp_path: Path) -> None:
    out = tmp_path / "new" / "deeper"
    assert check_writable(out) == out
    assert not (tmp_path / "new").exists()
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(ConfigError, match=r"^out: output location is not a directory"):
        check_writable(tmp_path / "file.txt" / "out")


def test_schema_rejects_undeclared_columns(tmp_path: Path, results: list[TrialResult]) -> None:
    r = results[0]
    odd = TrialResult(**{**r.__dict__, "extra": {"not_declared": 1}})
    with pytest.raises(ValueError, match="not in the declared schema"):
        write_result(tmp_path, odd)
    assert not any(tmp_path.iterdir())  # nothing half-written
