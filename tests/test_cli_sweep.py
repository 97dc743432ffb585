"""``bnorder sweep`` through the real CLI: dry runs of every shipped file, bad files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from bnorder.sweep.plan import make_plan
from bnorder.sweep.spec import load_sweep

SWEEPS = sorted((Path(__file__).parents[1] / "sweeps").glob("*.yaml"))


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.stem)
def test_dry_run_prints_the_plan_and_starts_nothing(
    cli: Callable, path: Path, tmp_path: Path
) -> None:
    code, out, err = cli("sweep", str(path), "--dry-run", "--out", str(tmp_path / "out"))
    assert code == 0, err
    plan = make_plan(load_sweep(path)[0])
    for phase in plan.phases:
        low, high = plan.trial_range(phase)
        count = f"{low}" if low == high else f"{low} to {high}"  # adaptive seeds: a range
        assert f"phase {phase}: {count} trials" in out
    for arm in plan.arms:
        assert arm.arm_id in out
    assert "resources per trial" in out
    assert not (tmp_path / "out").exists()


def test_bad_sweep_file_is_one_line_exit_2(
    cli: Callable, sweep_file: Callable, tmp_path: Path
) -> None:
    path = sweep_file(
        "name: x\nmode: grid\ndatasets: [synthetic]\narchs: [cnn]\norderings: [conv-rleu]\n"
    )
    code, _, err = cli("sweep", str(path), "--out", str(tmp_path / "out"))
    assert code == 2
    assert err.count("\n") == 1
    assert "orderings[0]: unknown op 'rleu'" in err
    assert "did you mean 'relu'?" in err
    assert not (tmp_path / "out").exists()


def test_missing_dataset_fails_before_ray(
    cli: Callable, sweep_file: Callable, tmp_path: Path
) -> None:
    path = sweep_file(
        "name: x\nmode: grid\ndatasets: [cifar10]\narchs: [cnn]\norderings: [case1]\n"
    )
    code, _, err = cli(
        "sweep", str(path), "--out", str(tmp_path / "out"), "--data-root", str(tmp_path / "d")
    )
    assert code == 1  # a runtime failure: the file is right, the data root lacks the dataset
    assert err.count("\n") == 1
    assert "dataset 'cifar10' not found" in err
    assert "Traceback" not in err


def test_bad_storage_is_one_line_before_the_plan(cli: Callable, tmp_path: Path) -> None:
    smoke = Path(__file__).parents[1] / "sweeps" / "smoke.yaml"
    for extra in ([], ["--dry-run"]):
        code, out, err = cli(
            "sweep", str(smoke), "--out", str(tmp_path / "out"), "--storage", "http://h/x", *extra
        )
        assert code == 2
        assert out == ""  # not even the plan
        assert err.count("\n") == 1
        assert "--storage: is not a storage Ray can write to: 'http://h/x'" in err
        assert not (tmp_path / "out").exists()
