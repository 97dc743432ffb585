"""PlanSearcher after a driver restart, without Ray: a trial issued after Ray's last snapshot
that wrote its row before the driver died is not issued again; one that did not is."""

from __future__ import annotations

from pathlib import Path

from bnorder.config import TrialConfig
from bnorder.results.store import write_result
from bnorder.train import TrialResult
from bnorder.tune.plan_searcher import PlanSearcher


def test_a_restore_skips_trials_recorded_after_the_snapshot(tmp_path: Path) -> None:
    meta = {"out": str(tmp_path), "sweep": "s", "phase": "evaluate", "arm_id": "a"}
    base = TrialConfig(dataset="synthetic", arch="mlp", depth=1, width=4)
    cfgs = [base.replace(seed=s) for s in range(4)]
    searcher = PlanSearcher([{"trial": c.model_dump(), "meta": meta} for c in cfgs])
    assert searcher.suggest("r0")["trial"]["seed"] == 0
    searcher.save(str(tmp_path / "snapshot.pkl"))  # Ray's last snapshot: r0 issued
    assert searcher.suggest("r1")["trial"]["seed"] == 1  # issued, run, recorded; then killed
    assert searcher.suggest("r2")["trial"]["seed"] == 2  # issued, killed before its row
    epoch = {"epoch": 1, "train_loss": 1.0, "val_acc": 0.5}
    write_result(
        tmp_path,
        TrialResult(
            config=cfgs[1], trial_id="s-r1", status="ok", epochs=[epoch], n_params=1,
            wall_seconds=1.0, device_name="cpu", data_source="made up",
            extra={"sweep": "s", "phase": "evaluate", "arm_id": "a"},
        ),
    )  # fmt: skip

    restored = PlanSearcher([{"trial": c.model_dump(), "meta": meta} for c in cfgs])
    restored.restore(str(tmp_path / "snapshot.pkl"))
    assert [restored.suggest(f"n{k}")["trial"]["seed"] for k in range(2)] == [2, 3]
    assert restored.suggest("n2") == PlanSearcher.FINISHED
