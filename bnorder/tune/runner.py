"""Run a planned sweep on Ray Tune, phase by phase: grid, or tune then evaluate.

Local by default (Ray starts itself on this machine), or on a running cluster with ``address``.
``resume=True`` restores each phase's experiment: finished trials are not re-run, unfinished
ones continue from their last checkpoint, and results rows are never duplicated.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bnorder.config import TrialConfig
from bnorder.errors import ConfigError
from bnorder.results.store import check_writable, epoch_parts_every_s, load, write_text
from bnorder.sweep.plan import SweepPlan
from bnorder.tune.driver_lock import hold
from bnorder.tune.storage import RayStorage, open_storage
from bnorder.tune.testpoints import reached

__all__ = ["PhaseOutcome", "init_ray", "prepare_output", "run_sweep"]

SWEEP_FILE = "sweep.yaml"
OPTUNA_FILE = "optuna.db"
STORAGE_FILE = "ray_storage.txt"  # where the Ray experiments live; a resume must find them again
# pyarrow filesystems Ray can write experiment state and checkpoints to, besides local paths
REMOTE_STORAGE = ("s3://", "gs://", "gcs://", "hdfs://", "abfs://", "abfss://")


@dataclass(frozen=True)
class PhaseOutcome:
    phase: str
    trials: int
    errors: int
    seconds: float
    unfinished: int = 0  # trials Ray left pending or running: the phase was interrupted


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
    write_text(stored, text)


def check_storage(storage: str) -> str:
    """``storage`` if Ray can write there (a path, or a scheme in REMOTE_STORAGE), and holds
    no credentials (they would be printed, and stored in the results folder for --resume)."""
    if "://" in storage:
        from urllib.parse import urlsplit

        parts = urlsplit(storage)
        if parts.username or parts.password:
            shown = f"{parts.scheme}://***@{parts.hostname}{parts.path}"
            raise ConfigError(
                "--storage",
                shown,
                "must not hold credentials:",
                hint="give them in the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY), "
                "an instance profile or workload identity",
            )
    if "://" in storage and not storage.startswith(REMOTE_STORAGE):
        raise ConfigError(
            "--storage",
            storage,
            "is not a storage Ray can write to:",
            choices=("a local or NFS path", *(f"{s}..." for s in REMOTE_STORAGE)),
        )
    return storage


def resolve_storage(
    out: Path, spec_storage: str | None, override: str | None, *, resume: bool
) -> str:
    """The Ray storage path of this sweep: ``--storage``, else the sweep file's ``storage``,
    else ``<out>/ray``. It is recorded in ``out`` so ``--resume`` finds the experiments again.

    Raises:
        ConfigError: an unsupported URL scheme, or a resume pointed at other storage.
    """
    stored = out / STORAGE_FILE
    if resume and stored.exists():
        before = stored.read_text().strip()
        if override and override.rstrip("/") != before:
            raise ConfigError(
                "--storage",
                override,
                f"differs from the storage this sweep started with ({before}):",
                hint="leave --storage out to resume from there",
            )
        return before
    storage = check_storage((override or spec_storage or str(out / "ray")).rstrip("/"))
    if "://" not in storage:
        storage = str(Path(storage).resolve())
    return storage


def init_ray(address: str | None, num_cpus: int | None = None) -> None:
    """Connect to ``address``, or start a local Ray (no dashboard) unless one is running.

    A local Ray is private to this machine: every Ray port is bound to 127.0.0.1, not all
    interfaces, and Ray (since 2.59) turns token authentication on for new local instances
    unless ``RAY_AUTH_MODE=disabled``. On a cluster the nodes' settings rule (cluster/README.md).
    """
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # bnorder prints its own progress
    if address is None:
        _loopback_only()
    import ray

    quiet_ray()
    if ray.is_initialized():
        return
    if address:
        ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
        return
    ray.init(
        # a new instance of our own: without "local", Ray joins any instance it finds on the
        # machine (another user's `ray start`, or one a killed driver left behind for a moment)
        # and then fails, num_cpus being only for a new one
        address="local",
        num_cpus=num_cpus or os.cpu_count(),
        include_dashboard=False,
        log_to_driver=False,
        logging_level=logging.WARNING,
    )


def quiet_ray() -> None:
    """Keep Ray's and Tune's INFO lines ("Started a local Ray instance", "Wrote the latest
    version of all result files") out of the progress display; warnings and errors still show.
    The notice that token authentication is on is dropped too: it is on by design (a local
    Ray is private to this machine) and needs no action."""
    logging.getLogger("ray").setLevel(logging.WARNING)
    logging.getLogger("ray.tune").setLevel(logging.WARNING)
    logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(
        logging.ERROR
    )


def _loopback_only() -> None:
    # Ray treats Linux as a possible cluster node and binds its GCS, raylet and workers to the
    # machine's IP on all interfaces; with "clusters off" (its macOS/Windows default) a local
    # Ray uses 127.0.0.1 throughout. The flag is read when ray is first imported, so a process
    # that imported ray already (tests) gets the module constant set as well.
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    if "ray" in sys.modules:
        from ray._private import ray_constants

        ray_constants.ENABLE_RAY_CLUSTER = os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] != "0"


@dataclass(frozen=True)
class _Sweep:
    """One run of a sweep: what every phase needs to know."""

    plan: SweepPlan
    text: str
    out: Path
    resume: bool
    data_root: str | None
    storage: RayStorage

    def meta(self, phase: str, arm_id: str) -> dict[str, Any]:
        """Bookkeeping that travels with each trial's config (to the trainable and back)."""
        res = self.plan.spec.resources
        return {
            "sweep": self.plan.spec.name,
            "phase": phase,
            "arm_id": arm_id,
            "out": str(self.out.resolve()),
            "cpu": res.cpu,
            "gpu": res.gpu,
            "data_root": self.data_root,
        }

    def run_phase(
        self,
        phase: str,
        planned: dict[str, int],
        param_space: dict[str, Any],
        epochs: dict[str, float],
        most: dict[str, int] | None = None,
        **tune_config: Any,
    ) -> PhaseOutcome:
        """Run one phase of ``planned`` trials per arm (adaptive seeds: up to ``most``), of
        ``epochs`` epochs each; restored from its experiment on ``--resume``."""
        from ray import tune

        from bnorder.tune.recorder import ResultsRecorder
        from bnorder.tune.snapshot import SnapshotKeeper, repair_snapshot
        from bnorder.tune.trackers import tracker_callbacks
        from bnorder.tune.trainable import run_trial

        spec = self.plan.spec
        started = time.monotonic()
        resources = {"cpu": spec.resources.cpu, "gpu": spec.resources.gpu}
        trainable = tune.with_resources(run_trial, resources)
        name = f"{spec.name}-{phase}"
        path, filesystem = self.storage.experiment(name), self.storage.filesystem
        local = filesystem is None
        total, most_total = sum(planned.values()), sum((most or planned).values())
        count = f"{total} to {most_total}" if most_total != total else f"{total}"
        print(f"[{spec.name} {phase}] {count} trials over {len(planned)} arms", flush=True)
        if self.resume and local and (repaired := repair_snapshot(Path(path))):
            print(f"[{spec.name} {phase}] {repaired}", flush=True)
        if self.resume and tune.Tuner.can_restore(path, storage_filesystem=filesystem):
            print(f"[{spec.name} {phase}] resuming {self.storage.show(name)}", flush=True)
            # the experiment brings back its own recorder, which re-reads its counts in setup()
            tuner = tune.Tuner.restore(
                path,
                trainable=trainable,
                resume_errored=False,
                storage_filesystem=filesystem,
                # given again so Ray can resolve each grid trial's meta (tune.sample_from)
                param_space=param_space,
            )
        else:
            # after the recorder, which hands them each outcome once its rows are written
            trackers = tracker_callbacks(spec.trackers, out=self.out, sweep=spec.name, phase=phase)
            recorder = ResultsRecorder(
                out=self.out,
                sweep=spec.name,
                sweep_hash=sweep_hash(self.text),
                phase=phase,
                planned=planned,
                epochs=epochs,
                most=most,
                keep_weights=spec.keep_weights,
                listeners=[t.trial_finished for t in trackers],
            )
            tuner = tune.Tuner(
                trainable,
                param_space=param_space,
                tune_config=tune.TuneConfig(
                    max_concurrent_trials=spec.max_concurrent or 0,
                    reuse_actors=True,
                    trial_dirname_creator=trial_dirname,
                    **tune_config,
                ),
                run_config=tune.RunConfig(
                    name=name,
                    storage_path=self.storage.path,
                    storage_filesystem=filesystem,
                    verbose=0,
                    # a local or NFS path: Ray's snapshot kept whole across a kill (snapshot.py)
                    callbacks=[recorder, *trackers, *([SnapshotKeeper()] if local else [])],
                    failure_config=tune.FailureConfig(max_failures=spec.max_failures),
                    # Ray deletes no checkpoint; the recorder empties a trial's older ones as
                    # each new one comes, and its last once its row is written (checkpoints.py).
                    # Ray's num_to_keep removes the folder its last snapshot names before the
                    # next snapshot is stored (an object store: a second or more), and a driver
                    # killed then could not restore the trial ("does not exist on storage").
                    checkpoint_config=tune.CheckpointConfig(num_to_keep=None),
                ),
            )
        grid = tuner.fit()
        unfinished = len(grid) - grid.num_terminated - grid.num_errors
        return PhaseOutcome(
            phase, len(grid), len(grid.errors), time.monotonic() - started, unfinished
        )

    def grid_phase(self, phase: str, trials: list[tuple[str, TrialConfig]]) -> PhaseOutcome:
        """Exactly these (arm, config) trials, as one grid_search axis; with ``fuse: K``, seed
        replicates of a point go together, up to K per Ray trial (``members``). With adaptive
        seeds, ``trials`` are every seed a point may get and a searcher issues them.

        Ray's own grid generator issues them: a restored experiment re-creates the trials it
        had not snapshotted under the same Ray IDs, so a trial that finished after the last
        snapshot is found recorded and never runs twice. The config layout is the searchers'
        (``trial`` or ``members``, and ``meta``), the bookkeeping looked up per trial."""
        from ray import tune

        from bnorder.sweep.plan import fused_groups

        if self.plan.adaptive(phase) is not None:
            return self.adaptive_phase(phase, trials)

        groups = fused_groups(trials, self.plan.spec.fuse)
        key = "trial" if all(len(cfgs) == 1 for _, cfgs in groups) else "members"
        cells = GridCells.of([(cfgs, self.meta(phase, arm)) for arm, cfgs in groups], key)
        planned = dict(Counter(arm for arm, _ in trials))
        return self.run_phase(
            phase,
            planned,
            {
                "cell": tune.grid_search(list(cells.configs)),
                key: tune.sample_from(cells.config),
                "meta": tune.sample_from(cells.meta),
            },
            epochs=mean_epochs(trials),
        )

    def adaptive_phase(self, phase: str, trials: list[tuple[str, TrialConfig]]) -> PhaseOutcome:
        """Seeds in batches, where the stopping rule says the answer is still open."""
        from bnorder.sweep.replication import Replication, adaptive_rule, units_of
        from bnorder.tune.seed_searcher import SeedSearcher

        spec, plan = self.plan.spec, self.plan
        units = units_of(trials, phase, tuple(k for k in spec.grid if k != "depth"))
        seeds = list(dict.fromkeys(cfg.seed for _, cfg in trials))  # in the plan's order
        rule = adaptive_rule(plan, phase, units)
        state = Replication.start(units, seeds, rule.rule, rule.baseline)
        print(f"[{spec.name} {phase}] adaptive seeds: {rule.rule.describe()}", flush=True)
        searcher = SeedSearcher(
            state=state,
            metas={u.arm_id: self.meta(phase, u.arm_id) for u in units},
            out=self.out,
            sweep=spec.name,
            phase=phase,
            fuse=spec.fuse,
        )
        planned = dict(Counter(u.arm_id for u in units for _ in range(rule.rule.min_n)))
        return self.run_phase(
            phase,
            planned,
            {},
            epochs=mean_epochs(trials),
            most=dict(Counter(u.arm_id for u in units for _ in range(rule.rule.max_n))),
            search_alg=searcher,
            # one more than it can issue: the last suggest logs the final decisions
            num_samples=len(units) * rule.rule.max_n + 1,
        )


def run_sweep(
    plan: SweepPlan,
    text: str,
    *,
    out: Path,
    address: str | None = None,
    resume: bool = False,
    data_root: str | None = None,
    storage: str | None = None,
    src: str = "sweep",
) -> list[PhaseOutcome]:
    """Run every phase of ``plan``; results land in ``out`` as they finish.

    Raises:
        ConfigError: ``out`` holds another sweep, the file changed since a resumed run began,
            or ``storage`` (default: the file's, else ``<out>/ray``) is not usable.
        DataError: (local runs) a dataset is missing, checked before anything is written.
        TrackerError: a tracker's server does not answer (a tracker's missing package or
            unusable options are ConfigErrors), checked before anything is written.
    """
    from bnorder.data import load_dataset
    from bnorder.tune.trackers import check_trackers

    if address is None:
        for dataset in plan.spec.datasets:
            load_dataset(dataset, data_root)  # fail in one line now, not once per trial
    # an object store is listed once here: unreachable or missing, it fails before any write
    ray_storage = open_storage(resolve_storage(out, plan.spec.storage, storage, resume=resume))
    check_trackers(plan.spec.trackers, out)  # before anything is written or started
    epoch_parts_every_s()  # a bad $BNORDER_EPOCH_PARTS_S, likewise (the recorders read it)
    with hold(out):  # one driver per results folder: a second one stops here, writing nothing
        reached("locked")
        return _run_held(plan, text, out, address, resume, data_root, ray_storage, src)


def _run_held(
    plan: SweepPlan,
    text: str,
    out: Path,
    address: str | None,
    resume: bool,
    data_root: str | None,
    ray_storage: RayStorage,
    src: str,
) -> list[PhaseOutcome]:
    """:func:`run_sweep`'s work, once this driver holds ``out``."""
    prepare_output(out, text, resume=resume, src=src)
    write_text(out / STORAGE_FILE, ray_storage.uri + "\n")  # as given: query string and all
    init_ray(address)
    run = _Sweep(plan, text, out, resume, data_root, ray_storage)
    if plan.spec.mode == "grid":
        return [run.grid_phase("grid", [(arm.arm_id, cfg) for arm, cfg in plan.grid_trials])]

    from bnorder.tune.searcher import ArmPruningScheduler, ArmSearcher

    t = plan.tune
    searcher = ArmSearcher(
        arms={a.arm_id: (a.base.model_dump(), run.meta("tune", a.arm_id)) for a in plan.arms},
        space=t.space,
        trials_per_arm=t.trials_per_arm,
        storage=f"sqlite:///{(out / OPTUNA_FILE).resolve()}",
        sweep=plan.spec.name,
        metric=t.metric,
        sampler_seed=t.sampler_seed,
        pruning=t.pruning,
        out=out,
    )
    tuned = run.run_phase(
        "tune",
        planned={a.arm_id: t.trials_per_arm for a in plan.arms},
        param_space={},
        epochs={a.arm_id: float(a.base.epochs) for a in plan.arms},
        search_alg=searcher,
        # with or without pruning: it tells the searcher which trials Ray restored
        scheduler=ArmPruningScheduler(searcher),
        # the searcher says when it is done; room for trials asked but lost in a driver kill
        num_samples=2 * plan.trial_count("tune"),
    )
    # every study trial told from its row; when the phase ran to its end, none left RUNNING
    searcher.sync(final=tuned.unfinished == 0)
    if tuned.unfinished:  # Ctrl-C: Ray saved the experiment and returned; evaluate later
        raise KeyboardInterrupt
    reached("boundary")
    best: list[tuple[str, TrialConfig]] = []
    for arm in plan.arms:
        params = searcher.best_params(arm.arm_id)
        if params is None:
            print(f"[{plan.spec.name} evaluate] {arm.arm_id}: no complete tuning trial; skipped")
            continue
        best += [(arm.arm_id, arm.base.replace(**params, seed=s)) for s in plan.eval_seeds]
    return [tuned, run.grid_phase("evaluate", best)]


@dataclass(frozen=True)
class GridCells:
    """A grid phase's trials by ``cell`` (:func:`~bnorder.tune.trainable.cell_of`).

    Ray's grid axis holds only the cells, short strings; each trial's config and ``meta`` are
    looked up from its cell (``tune.sample_from``) when Ray creates it. Ray deep-copies the
    unresolved spec, the whole grid axis with it, for every trial it generates: with the
    configs themselves on the axis that was O(N) configs per trial, O(N²) over the grid (54 s
    of a 1,000-trial sweep, benchmarks/sweep_scale.py); with cells it is ~0.6 ms per trial at
    5,000. Shared, not copied, by that deep copy."""

    configs: dict[str, Any]  # cell -> TrialConfig fields, or a fused array's list of them
    metas: dict[str, dict[str, Any]]

    @classmethod
    def of(cls, trials: list[tuple[list[TrialConfig], dict[str, Any]]], key: str) -> GridCells:
        """``(configs, meta)`` per Ray trial; ``key`` ``trial`` (one config each) or
        ``members`` (a fused array's list)."""
        from bnorder.tune.trainable import cell_of

        cells = [cell_of(cfgs) for cfgs, _ in trials]
        # the same cell twice: a hash collision, or a grid over what no hash holds (probes)
        twice = {c for c, n in Counter(cells).items() if n > 1}
        cells = [f"{c}-{i}" if c in twice else c for i, c in enumerate(cells)]
        dumped = [
            cfgs[0].model_dump() if key == "trial" else [c.model_dump() for c in cfgs]
            for cfgs, _ in trials
        ]
        return cls(
            dict(zip(cells, dumped, strict=True)),
            dict(zip(cells, (meta for _, meta in trials), strict=True)),
        )

    def __deepcopy__(self, memo: dict[int, Any]) -> GridCells:
        return self

    # Ray passes the trial's config, its grid axis resolved (a function of Ray's older ``spec``
    # form is deprecated, with a warning per trial)
    def config(self, config: dict[str, Any]) -> Any:
        return self.configs[config["cell"]]

    def meta(self, config: dict[str, Any]) -> dict[str, Any]:
        return self.metas[config["cell"]]


def trial_dirname(trial: Any) -> str:
    """``<cell>-<ray id>``, e.g. ``cnn-d4-conv-bn-relu-s3-1a2b3c4d-<ray id>``: what a trial folder
    holds, readable in TensorBoard's run list (Ray's default spells out the whole config). Every
    phase's config has a ``cell``, resolved when Ray names the folder (the config looked up from
    it is not yet)."""
    from bnorder.tune.trainable import unwrap

    return f"{unwrap(trial.config)['cell']}-{trial.trial_id}"


def mean_epochs(trials: list[tuple[str, TrialConfig]]) -> dict[str, float]:
    """Epochs per trial of each arm (the ETA's unit of work)."""
    per_arm: dict[str, list[int]] = {}
    for arm, cfg in trials:
        per_arm.setdefault(arm, []).append(cfg.epochs)
    return {arm: sum(e) / len(e) for arm, e in per_arm.items()}


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
