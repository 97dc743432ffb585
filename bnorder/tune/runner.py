"""Run a planned sweep on Ray Tune, phase by phase: grid, or tune then evaluate.

Local by default (Ray starts itself on this machine), or on a running cluster with ``address``.
``resume=True`` restores each phase's experiment: finished trials are not re-run, unfinished
ones continue from their last checkpoint, and results rows are never duplicated.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bnorder.errors import ConfigError
from bnorder.results.store import check_writable, load
from bnorder.sweep.plan import SweepPlan

__all__ = ["PhaseOutcome", "init_ray", "prepare_output", "run_sweep"]

SWEEP_FILE = "sweep.yaml"
OPTUNA_FILE = "optuna.db"


@dataclass(frozen=True)
class PhaseOutcome:
    phase: str
    trials: int
    errors: int
    seconds: float


def sweep_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def prepare_output(out: Path, text: str, *, resume: bool, src: str) -> None:
    """Refuse to mix two sweeps in one folder; store the sweep file once, atomically."""
    stored = out / SWEEP_FILE
    if stored.exists():
        if not resume:
            raise ConfigError(
                "--out",
                str(out),
                "already holds a sweep's results:",
                hint="pass --resume to continue it, or choose another --out",
            )
        if stored.read_text() != text:
            raise ConfigError(
                "--resume",
                src,
                "the sweep file changed since the sweep started:",
                hint=f"restore it (a copy is in {stored}) or use another --out",
            )
        return
    check_writable(out, field="--out")
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f".{SWEEP_FILE}.tmp"
    tmp.write_text(text)
    os.replace(tmp, stored)


def init_ray(address: str | None, num_cpus: int | None = None) -> None:
    """Connect to ``address``, or start a local Ray (no dashboard) unless one is running."""
    import ray

    # Checkpoints are kept to one per trial, which forces an experiment snapshot at every epoch:
    # intended (resume stays in step with the checkpoints), so Ray's warning about it is noise.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # bnorder prints its own progress
    if ray.is_initialized():
        return
    if address:
        ray.init(address=address, log_to_driver=False)
        return
    ray.init(num_cpus=num_cpus or os.cpu_count(), include_dashboard=False, log_to_driver=False)


def _storage(plan: SweepPlan, out: Path) -> str:
    return plan.spec.storage or str((out / "ray").resolve())


def _meta(
    plan: SweepPlan, phase: str, arm_id: str, out: Path, data_root: str | None
) -> dict[str, Any]:
    res = plan.spec.resources
    return {
        "sweep": plan.spec.name,
        "phase": phase,
        "arm_id": arm_id,
        "out": str(out.resolve()),
        "cpu": res.cpu,
        "gpu": res.gpu,
        "data_root": data_root,
    }


def _run_phase(
    plan: SweepPlan,
    phase: str,
    out: Path,
    text: str,
    *,
    resume: bool,
    tune_config: Any,
    param_space: dict[str, Any],
    planned: dict[str, int],
) -> PhaseOutcome:
    from ray import tune

    from bnorder.tune.recorder import ResultsRecorder
    from bnorder.tune.trainable import run_trial

    spec = plan.spec
    started = time.monotonic()
    trainable = tune.with_resources(
        run_trial, {"cpu": spec.resources.cpu, "gpu": spec.resources.gpu}
    )
    recorder = ResultsRecorder(
        out=out, sweep=spec.name, sweep_hash=sweep_hash(text), phase=phase, planned=planned
    )
    name = f"{spec.name}-{phase}"
    path = f"{_storage(plan, out).rstrip('/')}/{name}"
    print(
        f"[{spec.name} {phase}] {sum(planned.values())} trials over {len(planned)} arms", flush=True
    )
    if resume and tune.Tuner.can_restore(path):
        print(f"[{spec.name} {phase}] resuming {path}", flush=True)
        # the experiment brings back its own recorder, which re-reads its counts in setup()
        tuner = tune.Tuner.restore(
            path, trainable=trainable, resume_errored=False, restart_errored=False
        )
    else:
        tuner = tune.Tuner(
            trainable,
            param_space=param_space,
            tune_config=tune_config,
            run_config=tune.RunConfig(
                name=name,
                storage_path=_storage(plan, out),
                verbose=0,
                callbacks=[recorder],
                failure_config=tune.FailureConfig(max_failures=spec.max_failures),
                checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            ),
        )
    grid = tuner.fit()
    recorder.print_table()
    return PhaseOutcome(phase, len(grid), len(grid.errors), time.monotonic() - started)


def run_sweep(
    plan: SweepPlan,
    text: str,
    *,
    out: Path,
    address: str | None = None,
    resume: bool = False,
    data_root: str | None = None,
    src: str = "sweep",
) -> list[PhaseOutcome]:
    """Run every phase of ``plan``; results land in ``out`` as they finish.

    Raises:
        ConfigError: ``out`` holds another sweep, or the file changed since a resumed run began.
        DataError: (local runs) a dataset is missing, checked before Ray starts.
    """
    from ray import tune

    from bnorder.data import load_dataset

    if address is None:
        for dataset in plan.spec.datasets:
            load_dataset(dataset, data_root)  # fail in one line now, not once per trial
    prepare_output(out, text, resume=resume, src=src)
    init_ray(address)
    spec = plan.spec
    max_concurrent = spec.max_concurrent or 0
    outcomes = []
    if spec.mode == "grid":
        points = [
            {"trial": cfg.model_dump(), "meta": _meta(plan, "grid", arm.arm_id, out, data_root)}
            for arm, cfg in plan.grid_trials
        ]
        planned = _count([arm.arm_id for arm, _ in plan.grid_trials])
        outcomes.append(
            _run_phase(
                plan,
                "grid",
                out,
                text,
                resume=resume,
                planned=planned,
                param_space={"point": tune.grid_search(points)},
                tune_config=tune.TuneConfig(
                    max_concurrent_trials=max_concurrent, reuse_actors=True
                ),
            )
        )
        return outcomes

    from bnorder.tune.searcher import ArmPruningScheduler, ArmSearcher

    t = plan.tune
    storage = f"sqlite:///{(out / OPTUNA_FILE).resolve()}"
    searcher = ArmSearcher(
        arms={
            a.arm_id: (a.base.model_dump(), _meta(plan, "tune", a.arm_id, out, data_root))
            for a in plan.arms
        },
        space=t.space,
        trials_per_arm=t.trials_per_arm,
        storage=storage,
        sweep=spec.name,
        metric=t.metric,
        sampler_seed=t.sampler_seed,
        pruning=t.pruning,
    )
    outcomes.append(
        _run_phase(
            plan,
            "tune",
            out,
            text,
            resume=resume,
            planned={a.arm_id: t.trials_per_arm for a in plan.arms},
            param_space={},
            tune_config=tune.TuneConfig(
                search_alg=searcher,
                scheduler=ArmPruningScheduler(searcher) if t.pruning else None,
                num_samples=plan.trial_count("tune"),
                max_concurrent_trials=max_concurrent,
                reuse_actors=True,
            ),
        )
    )

    points = []
    for arm in plan.arms:
        params = searcher.best_params(arm.arm_id)
        if params is None:
            print(
                f"[{spec.name} evaluate] {arm.arm_id}: no complete tuning trial; not evaluated",
                flush=True,
            )
            continue
        for seed in plan.eval_seeds:
            cfg = arm.base.replace(**params, seed=seed)
            points.append(
                {
                    "trial": cfg.model_dump(),
                    "meta": _meta(plan, "evaluate", arm.arm_id, out, data_root),
                }
            )
    planned = _count([p["meta"]["arm_id"] for p in points])
    outcomes.append(
        _run_phase(
            plan,
            "evaluate",
            out,
            text,
            resume=resume,
            planned=planned,
            param_space={"point": tune.grid_search(points)},
            tune_config=tune.TuneConfig(max_concurrent_trials=max_concurrent, reuse_actors=True),
        )
    )
    return outcomes


def _count(arms: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for arm in arms:
        counts[arm] = counts.get(arm, 0) + 1
    return counts


def summarise(out: Path) -> list[str]:
    """Per phase and arm: trials, mean validation and test accuracy (test at the best-val epoch)."""
    trials = load(out).trials
    lines = []
    for (phase, arm), group in trials.groupby(["phase", "arm_id"], sort=False):
        ok = group[group.status == "ok"]
        test = ok.test_acc_at_best_val.fillna(ok.final_test_acc)
        lines.append(
            f"  {phase:<8} {arm:<48} n={len(group):<3} ok={len(ok):<3} "
            f"val {ok.best_val_acc.mean():.4f}  test {test.mean():.4f} ± {test.std(ddof=1):.4f}"
        )
    return lines
