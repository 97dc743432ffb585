"""Sweeps on a real local Ray with real Optuna, on the synthetic dataset."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import optuna
import pandas as pd
import pytest
import torch

from bnorder.config import TrialConfig
from bnorder.errors import ConfigError
from bnorder.results import load
from bnorder.sweep.plan import make_plan
from bnorder.sweep.spec import load_sweep
from bnorder.train import train_trial
from bnorder.tune.checkpoints import load_model, weights_file
from bnorder.tune.runner import OPTUNA_FILE, run_sweep

pytestmark = pytest.mark.usefixtures("ray_session")

GRID = """
name: g
mode: grid
datasets: [synthetic]
archs: [cnn, mlp]
orderings: [case1, case2]
fixed: {depth: 1, width: 4, epochs: 2, device: cpu, probes: true}
grid: {lr: [0.01]}
seeds: 2
max_concurrent: 2
"""

TUNED = """
name: tz
mode: tuned
datasets: [synthetic]
archs: [mlp]
orderings: [case1, case2]
fixed: {depth: 1, width: 8, epochs: 3, device: cpu}
tune:
  trials_per_arm: 4
  eval_seeds: 2
  space:
    lr: {log_uniform: [0.0001, 0.3]}
    batch_size: {choice: [64, 256]}
  pruning: {min_epochs: 1, reduction_factor: 2}
max_concurrent: 2
keep_weights: arm_best
"""


def checkpoint_files(out: Path) -> list[Path]:
    """What is left in Ray's checkpoint folders (emptied, not removed: see checkpoints.py)."""
    return [f for folder in out.rglob("checkpoint_*") for f in folder.rglob("*")]


def _run(path: Path, out: Path, **kwargs: object) -> tuple[object, pd.DataFrame, pd.DataFrame]:
    spec, text = load_sweep(path)
    plan = make_plan(spec, str(path))
    run_sweep(plan, text, out=out, src=str(path), **kwargs)
    res = load(out)
    return plan, res.trials, res.epochs


def test_grid_sweep_rows_equal_the_plan(sweep_file: Callable[..., Path], tmp_path: Path) -> None:
    plan, trials, epochs = _run(sweep_file(GRID), tmp_path / "out")
    assert len(trials) == plan.trial_count("grid") == 8
    assert not checkpoint_files(tmp_path / "out")  # emptied once rows are written
    assert trials.config_hash.is_unique
    assert set(trials.status) == {"ok"}
    assert set(trials.phase) == {"grid"}
    assert trials.groupby("arm_id").size().to_dict() == {a.arm_id: 2 for a in plan.arms}
    assert len(epochs) == 8 * 2
    assert not epochs.duplicated(["trial_id", "epoch"]).any()
    assert trials.node_ip.notna().all()
    assert (trials.sweep == "g").all()
    assert (tmp_path / "out" / "sweep.yaml").read_text() == sweep_file(GRID).read_text()
    assert epochs.act_dead_frac_mean.notna().all()  # probes went through Ray


def test_existing_results_need_resume(sweep_file: Callable[..., Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    path = sweep_file(
        GRID.replace("seeds: 2", "seeds: 1").replace("archs: [cnn, mlp]", "archs: [mlp]")
    )
    _run(path, out)
    with pytest.raises(
        ConfigError, match=r"--out: already holds a sweep's results: .*pass --resume"
    ):
        _run(path, out)
    # resuming a finished sweep re-runs nothing and duplicates nothing
    _, trials, _ = _run(path, out, resume=True)
    assert len(trials) == 2
    changed = sweep_file(path.read_text().replace("epochs: 2", "epochs: 3"), "changed.yaml")
    with pytest.raises(
        ConfigError, match=r"--resume: the sweep file changed since the sweep started"
    ):
        _run(changed, out, resume=True)


@pytest.mark.skipif(torch.backends.mps.is_available(), reason="needs a machine without MPS")
def test_failing_trials_are_retried_then_recorded(
    sweep_file: Callable[..., Path], tmp_path: Path
) -> None:
    # an MPS trial raises on this machine, in the trainable (a cuda one with no GPU granted is
    # refused when the sweep file loads, before anything runs)
    text = GRID.replace("device: cpu, ", "").replace("archs: [cnn, mlp]", "archs: [mlp]")
    text = text.replace("grid: {lr: [0.01]}", "grid: {device: [cpu, mps]}").replace(
        "seeds: 2", "seeds: 1"
    )
    plan, trials, _ = _run(sweep_file(text + "max_failures: 1\n"), tmp_path / "out")
    assert len(trials) == plan.trial_count("grid") == 4
    failed = trials[trials.device == "mps"]
    assert set(failed.status) == {"failed"}
    assert failed.error.str.contains("device").all()
    assert set(trials[trials.device == "cpu"].status) == {"ok"}


def test_tuned_sweep_equal_budgets_validation_selection(
    sweep_file: Callable[..., Path], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    plan, trials, _ = _run(sweep_file(TUNED), out)
    tune_rows = trials[trials.phase == "tune"]
    evaluate = trials[trials.phase == "evaluate"]
    # the same number of tuning trials for every arm
    assert tune_rows.groupby("arm_id").size().to_dict() == {a.arm_id: 4 for a in plan.arms}
    # the evaluate phase: K fresh seeds per arm
    assert evaluate.groupby("arm_id").size().to_dict() == {a.arm_id: 2 for a in plan.arms}
    assert set(evaluate.seed) == set(plan.eval_seeds) == {1, 2}
    # one persisted study per arm, whose trial states match the rows (stopped early = PRUNED)
    storage = f"sqlite:///{out / OPTUNA_FILE}"
    for arm in plan.arms:
        study = optuna.load_study(study_name=f"tz/{arm.arm_id}", storage=storage)
        assert len(study.trials) == 4
        # named for optuna-dashboard, and each trial links back to its Parquet row
        assert study.metric_names == ["best_val_acc"]
        assert study.user_attrs["arm_id"] == arm.arm_id
        assert study.user_attrs["ordering"] == arm.base.ordering
        rows = tune_rows[tune_rows.arm_id == arm.arm_id].set_index("optuna_trial")
        for t in study.trials:
            row = rows.loc[t.number]
            assert t.user_attrs == {
                "trial_id": row.trial_id,
                "ray_trial_id": row.ray_trial_id,
                "arm_id": arm.arm_id,
                "phase": "tune",
            }
        for t in study.trials:
            status = rows.loc[t.number, "status"]
            expected = {"ok": "COMPLETE", "pruned": "PRUNED", "failed": "FAIL"}[status]
            assert t.state.name == expected, (t.number, status)
        # selection used validation only: the evaluated config is the best *validation* trial
        complete = rows[rows.status == "ok"]
        best = complete.loc[complete.best_val_acc.idxmax()]
        picked = evaluate[evaluate.arm_id == arm.arm_id]
        assert set(picked.lr) == {best.lr}
        assert set(picked.batch_size) == {best.batch_size}
    assert (tune_rows.status == "pruned").any()  # pruning happened, and was told as such
    _ray_view_matches(out / "ray", "tz", trials)
    # keep_weights: arm_best: per arm and phase, the final weights of its best complete trial
    assert not checkpoint_files(out)
    for (phase, arm_id), rows in trials[trials.status == "ok"].groupby(["phase", "arm_id"]):
        _, record = load_model(weights_file(out, f"{phase}/{arm_id}"))
        assert record["trial_id"] == rows.loc[rows.best_val_acc.idxmax(), "trial_id"]
    assert len(list((out / "weights").iterdir())) == 2 * len(plan.arms)


def _ray_view_matches(storage: Path, sweep: str, trials: pd.DataFrame) -> None:
    """Ray's own results (what ResultGrid, TensorBoard and ExperimentAnalysis users rank on)
    agree with the Parquet rows: status, best validation accuracy, test accuracy at it, config,
    and every phase has the same config layout."""
    from ray import tune

    from bnorder.tune.trainable import run_trial

    for phase, rows in trials.groupby("phase"):
        grid = tune.Tuner.restore(str(storage / f"{sweep}-{phase}"), trainable=run_trial)
        ray_rows = grid.get_results().get_dataframe().set_index("trial_id")
        assert not [c for c in ray_rows.columns if c.startswith("config/point")]
        rows = rows.set_index("ray_trial_id")
        assert sorted(ray_rows.index) == sorted(rows.index)
        for ray_id, row in rows.iterrows():
            ray_row = ray_rows.loc[ray_id]
            assert ray_row["status"] == row.status, (phase, ray_id)
            assert ray_row["config/trial/lr"] == row.lr
            assert ray_row["config/meta/arm_id"] == row.arm_id
            assert ray_row["config/cell"].endswith(row.config_hash[:8])  # lone trials
            for metric in ("best_val_acc", "test_acc_at_best_val"):
                assert ray_row[metric] == pytest.approx(row[metric], nan_ok=True), metric
        # Ray's record of checkpoints matches storage: the newest, emptied (checkpoints.py)
        for result in grid.get_results():
            assert len(result.best_checkpoints) <= 1
            assert result.metrics_dataframe is not None


def test_shipped_smoke_sweep_end_to_end(tmp_path: Path) -> None:
    path = Path(__file__).parents[2] / "sweeps" / "smoke.yaml"
    plan, trials, epochs = _run(path, tmp_path / "out")
    assert len(trials) == plan.trial_count("grid")
    assert set(trials.status) == {"ok"}
    assert len(epochs) == len(trials) * 2


def test_fused_grid_sweep_records_each_member_once(
    sweep_file: Callable[..., Path], tmp_path: Path
) -> None:
    """``fuse: 2`` with 3 seeds: per arm one fused Ray trial of 2 members and one lone trial;
    every member gets its own row, epochs and execution mode, equal to a lone trial's."""
    text = GRID.replace("seeds: 2", "seeds: 3").replace("name: g", "name: fz") + "fuse: 2\n"
    text += "keep_weights: trial\n"
    plan, trials, epochs = _run(sweep_file(text), tmp_path / "out")
    assert len(trials) == plan.trial_count("grid") == 12
    assert trials.config_hash.is_unique
    assert set(trials.status) == {"ok"}
    per_arm = trials.groupby("arm_id").execution.apply(sorted).tolist()
    assert per_arm == [["fused 2", "fused 2", "single"]] * 4
    assert trials.groupby("arm_id").ray_trial_id.nunique().eq(2).all()  # 2 Ray trials per arm
    assert len(epochs) == 12 * 2
    assert not epochs.duplicated(["trial_id", "epoch"]).any()
    assert epochs.act_dead_frac_mean.notna().all()  # probes per member
    # a fused member's metrics are its own: seeds 0 and 1 of an arm differ
    fused = trials[trials.execution == "fused 2"].sort_values(["arm_id", "seed"])
    assert fused.groupby("arm_id").final_train_loss.nunique().eq(2).all()
    # keep_weights: trial: every member's final weights, and no checkpoint left behind
    assert not checkpoint_files(tmp_path / "out")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the trials ran (cpu: 1): the same kernels, the same bits
    try:
        for row in trials.itertuples():
            model, record = load_model(weights_file(tmp_path / "out", row.trial_id))
            assert record["trial_id"] == row.trial_id
            assert record["config"]["seed"] == row.seed
            if row.execution == "single":  # exactly the weights a lone run ends with
                states: list[dict] = []
                train_trial(TrialConfig(**record["config"]), lambda ep, s=states: s.append(ep))
                final = states[-1].state()["model"]
                for name, tensor in model.state_dict().items():
                    assert torch.equal(tensor, final[name]), name
    finally:
        torch.set_num_threads(threads)
    pair = [load_model(weights_file(tmp_path / "out", t))[0] for t in fused.trial_id[:2]]
    assert not all(
        torch.equal(a, b)
        for a, b in zip(pair[0].state_dict().values(), pair[1].state_dict().values(), strict=True)
    )  # a fused member's weights are its own


def test_diverged_trials_are_results_alone_or_fused(
    sweep_file: Callable[..., Path], tmp_path: Path
) -> None:
    """An absurd lr makes every trial diverge in its first epoch: recorded as ``diverged`` with
    that one epoch, whether it trained alone or as a member of a fused array."""
    text = """
    name: boom
    mode: grid
    datasets: [synthetic]
    archs: [mlp]
    orderings: [conv-relu]    # no norm: nothing rescues the weights
    fixed: {depth: 1, width: 8, epochs: 3, device: cpu, optimizer: sgd, lr: 1.0e+8}
    seeds: 3
    fuse: 2
    """
    _, trials, epochs = _run(sweep_file(text), tmp_path / "out")
    assert len(trials) == 3
    assert sorted(trials.execution) == ["fused 2", "fused 2", "single"]
    assert set(trials.status) == {"diverged"}
    assert (trials.epochs_done == 1).all()
    assert len(epochs) == 3
