"""Sweeps of many trivial trials: bnorder's driver against bare Ray Tune, side by side, per N.

Each trial reports EPOCHS epochs at once, a small checkpoint with each (no training, no torch):
what is left is the driver's own work. bnorder's path is the real ``run_sweep`` (grid phase,
ResultsRecorder writing Parquet parts, compaction every 64 trials and at the end, checkpoints
emptied, progress lines and ETA) with only the trainable swapped for the instant one; bare Ray
Tune runs the same instant trainable in a plain Tuner, at the same concurrency. Trials ask for
``cpu: 1/8``, so 8 per core run at once.

Every (path, N) runs in a fresh process with its own local Ray, the two paths taking turns, and
``--repeats`` times over: a second sweep in one process ran ~1.5x slower than the first, and on
a shared machine two runs minutes apart differed ~2x, so one pair proves nothing. Per N and
path: the median wall seconds per trial (and the spread), the driver process's CPU time per
trial (what its own work costs, less swayed by the trials' processes sharing the machine than
the wall time), the driver's peak RSS, Ray's experiment snapshots
(``TuneController.save_to_dir``, timed by a wrapper), and for bnorder ``bnorder.load`` and
bytes on disk per trial (results folder and Ray storage apart). Then the ratios of medians
(wall and driver CPU), the driver CPU per trial added from the smallest N (one-off costs such
as Ray's callback telemetry cancel), and the driver's memory growth per 1,000 trials: the slope
of its peak RSS between the smallest and each larger N (fresh processes: imports and one-off
allocations cancel). Targets: overhead <= 1.1x bare Ray Tune at 1,000 trials; growth <= 50 MB
per 1,000.

    uv run python benchmarks/sweep_scale.py               # N = 100, 1,000; 3 repeats
    uv run python benchmarks/sweep_scale.py --full        # and 5,000
    uv run python benchmarks/sweep_scale.py --quick       # N = 100, once
    uv run python benchmarks/sweep_scale.py --n 1000 --only bnorder   # one run, this process
    uv run python benchmarks/sweep_scale.py --n 1000 --only bnorder --profile driver.prof
    uv run python benchmarks/sweep_scale.py --n 1000 --only bnorder --held   # who holds memory

Ray's trial workers run at nice 15; time it on an otherwise quiet machine.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import gc
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import bnorder.tune.trainable
from bnorder.results import load
from bnorder.sweep.plan import make_plan
from bnorder.sweep.spec import load_sweep
from bnorder.tune.runner import init_ray, run_sweep  # configures Ray: import ray only after it

EPOCHS = 3  # a few reports per trial: the recorder writes epoch parts on each
CPU = 0.125  # 1/k, as Ray packs it; 8 trials per core
CHECKPOINT_BYTES = 4096  # a stand-in state file: the bytes are not the point, the files are


def instant_trial(config: dict) -> None:
    """bnorder's trainable protocol (metrics the recorder reads, a checkpoint per epoch)
    without training: an epoch is a report."""
    from ray import tune

    trial = config.get("point", config)["trial"]
    for epoch in range(1, trial["epochs"] + 1):
        acc = 0.5 + 0.1 * epoch
        metrics = {
            "epoch": epoch, "train_loss": 1.0 / epoch, "train_acc": acc, "val_loss": 1.0 / epoch,
            "val_acc": acc, "test_loss": 1.0 / epoch, "test_acc": acc, "lr_end": 0.1,
            "train_seconds": 0.0, "eval_seconds": 0.0, "images_per_s": 0.0,
            "status": "ok", "n_params": 10, "device_name": "cpu", "data_source": "instant",
            "wall_seconds": 0.0, "gpu_peak_mib": None, "restarts": 0,
        }  # fmt: skip
        with tempfile.TemporaryDirectory(prefix="bnorder-ckpt-") as folder:
            Path(folder, "state.pt").write_bytes(b"\0" * CHECKPOINT_BYTES)
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))


# ------------------------------------------------------------------------- measuring the driver
def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class PeakRss:
    """The driver's RSS sampled every 0.1 s while the block runs: before and peak, in MB."""

    def __enter__(self) -> PeakRss:
        self.before = self.peak = rss_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.1):
            self.peak = max(self.peak, rss_mb())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mb())


SNAPSHOTS: list[float] = []  # seconds of each TuneController.save_to_dir


def time_snapshots() -> None:
    from ray.tune.execution.tune_controller import TuneController

    save = TuneController.save_to_dir

    def timed(self: TuneController) -> None:
        started = time.perf_counter()
        save(self)
        SNAPSHOTS.append(time.perf_counter() - started)

    TuneController.save_to_dir = timed


@dataclass
class Run:
    path: str
    n: int
    wall_s: float
    rss: PeakRss
    snapshots: list[float]
    extra: dict[str, float] = field(default_factory=dict)


def measured(path: str, n: int, fn: Callable[[], None]) -> Run:
    SNAPSHOTS.clear()
    with PeakRss() as rss:
        started, cpu = time.perf_counter(), time.process_time()
        fn()
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    return Run(path, n, wall, rss, list(SNAPSHOTS), {"driver_cpu_s": cpu})


def tree_bytes(folder: Path) -> int:
    return sum(
        os.lstat(os.path.join(root, name)).st_size
        for root, _, names in os.walk(folder)
        for name in names
    )


# ------------------------------------------------------------------------- the two paths
def run_bare(n: int, folder: Path) -> Run:
    from ray import tune

    def fit() -> None:
        tuner = tune.Tuner(
            tune.with_resources(instant_trial, {"cpu": CPU}),
            param_space={
                "trial": tune.grid_search([{"epochs": EPOCHS, "seed": s} for s in range(n)])
            },
            tune_config=tune.TuneConfig(max_concurrent_trials=concurrency(), reuse_actors=True),
            run_config=tune.RunConfig(name="bare", storage_path=str(folder), verbose=0),
        )
        grid = tuner.fit()
        if len(grid) != n or grid.errors:
            raise RuntimeError(f"bare Ray Tune: {len(grid.errors)} of {len(grid)} trials failed")

    run = measured("bare Ray Tune", n, fit)
    run.extra["ray_bytes"] = tree_bytes(folder)
    return run


def run_bnorder(n: int, folder: Path, profile: str | None = None) -> Run:
    path = folder / "scale.yaml"
    path.write_text(
        textwrap.dedent(f"""
        name: scale
        mode: grid
        datasets: [synthetic]
        archs: [mlp]
        orderings: [case1]
        fixed: {{depth: 1, width: 4, epochs: {EPOCHS}, device: cpu}}
        seeds: {n}
        resources: {{cpu: {CPU}}}
        max_concurrent: {concurrency()}
    """)
    )
    spec, text = load_sweep(path)
    out = folder / "out"
    real = bnorder.tune.trainable.run_trial
    bnorder.tune.trainable.run_trial = instant_trial  # the runner looks it up per phase
    profiler = cProfile.Profile() if profile else None
    try:
        if profiler:
            profiler.enable()
        run = measured("bnorder sweep", n, lambda: _sweep(spec, text, out, path, n))
    finally:
        if profiler:
            profiler.disable()
            profiler.dump_stats(profile)
        bnorder.tune.trainable.run_trial = real
    started = time.perf_counter()
    for _ in range(3):
        load(out)
    run.extra["load_s"] = (time.perf_counter() - started) / 3
    run.extra["ray_bytes"] = tree_bytes(out / "ray")
    run.extra["results_bytes"] = tree_bytes(out) - run.extra["ray_bytes"]
    return run


def _sweep(spec: object, text: str, out: Path, path: Path, n: int) -> None:
    # a progress line per finished trial is written (its cost counts), not shown
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        (outcome,) = run_sweep(make_plan(spec), text, out=out, src=str(path))
    if outcome.trials != n or outcome.errors:
        raise RuntimeError(f"bnorder: {outcome.errors} of {outcome.trials} trials failed")


def concurrency() -> int:
    return round((os.cpu_count() or 1) / CPU)


# ------------------------------------------------------------------------- report
def row(run: Run) -> str:
    snaps = run.snapshots
    mean, most = (sum(snaps) / len(snaps), max(snaps)) if snaps else (0.0, 0.0)
    snap = f"{len(snaps):>4} x {mean * 1000:>6.1f} ms mean {most * 1000:>6.1f} ms max"
    results = run.extra.get("results_bytes", float("nan") * run.n)
    load_s = run.extra.get("load_s", float("nan"))
    return (
        f"{run.n:>6}  {run.path:<14} {run.wall_s:>8.1f} {run.wall_s / run.n * 1000:>8.1f}"
        f" {run.extra['driver_cpu_s'] / run.n * 1000:>8.1f}  {run.rss.peak:>7.0f}  {snap}"
        f"  {run.extra['ray_bytes'] / run.n / 1024:>7.1f}  {results / run.n / 1024:>7.2f}"
        f"  {load_s:>6.3f}"
    )


HEADER = (
    f"{'N':>6}  {'path':<14} {'wall s':>8} {'ms/trial':>8} {'cpu ms':>8}  {'peak MB':>7}"
    f"  {'experiment snapshots':<37}  {'ray KB':>7}  {'res KB':>7}  {'load s':>6}"
)


HELD: list[tracemalloc.Snapshot] = []  # --held: Python memory when the last trial has ended


def trace_held() -> None:
    """Snapshot the driver's Python allocations as Ray's controller cleans up, once every trial
    has ended: what the sweep still holds, which is what grows with its trials."""
    from ray.tune.execution.tune_controller import TuneController

    cleanup = TuneController.cleanup

    def traced(self: TuneController) -> None:
        gc.collect()
        HELD.append(tracemalloc.take_snapshot())
        cleanup(self)

    TuneController.cleanup = traced
    tracemalloc.start(8)


def held_by(snapshot: tracemalloc.Snapshot) -> dict[str, float]:
    """MB held, by whose code allocated it: the innermost frame of bnorder or Ray (imports
    apart: modules loaded during the run, e.g. by Ray's callback telemetry)."""
    owners: dict[str, float] = {}
    for stat in snapshot.statistics("traceback"):
        names = [f.filename for f in reversed(stat.traceback)]  # innermost first
        owner = "other"
        for name in names:
            if "importlib" in name:
                owner = "imports"
                break
            if "/bnorder/" in name or "/ray/" in name:
                owner = "bnorder" if "/bnorder/" in name else "ray"
                break
        owners[owner] = owners.get(owner, 0.0) + stat.size / 2**20
    return owners


def one_run(path: str, n: int, profile: str | None, held: bool = False) -> Run:
    """``path`` at ``n`` trials in this process, after Ray's worker processes are started."""
    init_ray(None)
    # the runner's grid meta (tune.sample_from taking the spec) warns once per trial
    logging.getLogger("ray.tune.search.sample").setLevel(logging.ERROR)
    time_snapshots()
    with tempfile.TemporaryDirectory(prefix="bnorder-sweep-scale-") as tmp:
        run_bare(2 * concurrency(), Path(tmp))  # Ray's worker processes started, not timed
    if held:
        trace_held()
    with tempfile.TemporaryDirectory(prefix="bnorder-sweep-scale-") as tmp:
        if path == "bare":
            return run_bare(n, Path(tmp) / "bare")
        return run_bnorder(n, Path(tmp), profile)


def in_child(path: str, n: int) -> Run:
    """One run in a fresh process (its own local Ray), read back from its JSON line."""
    cmd = [sys.executable, __file__, "--n", str(n), "--only", path, "--json"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
    fields = json.loads(proc.stdout.strip().splitlines()[-1])
    rss = PeakRss.__new__(PeakRss)
    rss.before, rss.peak = fields.pop("rss_before"), fields.pop("rss_peak")
    return Run(rss=rss, **fields)


def median_run(runs: list[Run]) -> Run:
    """The run of median wall time (its other figures with it)."""
    return sorted(runs, key=lambda r: r.wall_s)[len(runs) // 2]


def cpu_ratio(ours: list[Run], bare: list[Run]) -> float:
    def median(runs: list[Run]) -> float:
        return statistics.median(r.extra["driver_cpu_s"] / r.n for r in runs)

    return median(ours) / median(bare)


def spread(runs: list[Run]) -> str:
    per = sorted(r.wall_s / r.n * 1000 for r in runs)
    return f"{len(runs)} runs: " + " ".join(f"{v:.0f}" for v in per) + " ms/trial"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="N = 100 only, once")
    p.add_argument("--full", action="store_true", help="N = 100, 1,000 and 5,000")
    p.add_argument("--n", type=int, nargs="*", help="trial counts (default 100 1000)")
    p.add_argument("--repeats", type=int, help="runs per path and N (default 3; --quick 1)")
    p.add_argument("--only", choices=("bare", "bnorder"), help="one run of one path, here")
    p.add_argument("--json", action="store_true", help="with --only: the run as a JSON line")
    p.add_argument("--profile", help="with --only bnorder: cProfile the driver into this file")
    p.add_argument(
        "--held",
        action="store_true",
        help="with --only: Python memory the driver holds once every trial has ended, by owner"
        " (tracemalloc: slower, so its other figures are not comparable)",
    )
    args = p.parse_args()
    sizes = args.n or ([100] if args.quick else [100, 1000, 5000] if args.full else [100, 1000])
    if args.only:
        for n in sizes:
            run = one_run(args.only, n, args.profile, held=args.held)
            if HELD:
                owners = held_by(HELD[-1])
                print(
                    f"{args.only} N={n}: Python memory held once every trial has ended,"
                    f" {sum(owners.values()):.1f} MB: "
                    + ", ".join(  # what was imported is there once, whatever N
                        f"{k} {v:.1f} MB"
                        + ("" if k == "imports" else f" ({v / n * 1000:.1f} per 1,000 trials)")
                        for k, v in sorted(owners.items(), key=lambda kv: -kv[1])
                    ),
                    flush=True,
                )
            if args.json:
                fields = {**run.__dict__, "rss_before": run.rss.before, "rss_peak": run.rss.peak}
                del fields["rss"]
                print(json.dumps(fields), flush=True)
            else:
                print(HEADER, row(run), sep="\n", flush=True)
        return
    repeats = args.repeats or (1 if args.quick else 3)
    print(
        f"trivial trials ({EPOCHS} instant epochs, a checkpoint each), cpu {CPU} per trial,"
        f" {concurrency()} at once, on {os.cpu_count()} CPUs; each run a fresh process, bare"
        f" and bnorder taking turns, {repeats} each; rows: the median run; KB: on disk per trial",
        flush=True,
    )
    print(HEADER, flush=True)
    medians: dict[int, tuple[Run, Run]] = {}
    cpu_s: dict[int, dict[str, float]] = {}  # N -> path -> median driver CPU seconds
    for n in sizes:
        runs: dict[str, list[Run]] = {"bare": [], "bnorder": []}
        for _ in range(repeats):
            for path in runs:
                runs[path].append(in_child(path, n))
        bare, ours = median_run(runs["bare"]), median_run(runs["bnorder"])
        medians[n] = bare, ours
        print(row(bare), row(ours), sep="\n")
        print(f"{'':>6}  bare Ray Tune {spread(runs['bare'])}; bnorder {spread(runs['bnorder'])}")
        print(
            f"{'':>6}  bnorder / bare Ray Tune per trial: {ours.wall_s / bare.wall_s:.2f}x wall,"
            f" {cpu_ratio(runs['bnorder'], runs['bare']):.2f}x driver CPU (medians)"
        )
        cpu_s[n] = {
            path: statistics.median(r.extra["driver_cpu_s"] for r in rs)
            for path, rs in runs.items()
        }
        if n != sizes[0]:  # fresh processes: imports and one-off allocations cancel
            first = cpu_s[sizes[0]]
            marginal = {
                path: (cpu_s[n][path] - first[path]) / (n - sizes[0]) * 1000 for path in runs
            }
            print(
                f"{'':>6}  driver CPU per added trial from N={sizes[0]} (one-off costs cancel):"
                f" bare {marginal['bare']:.1f}, bnorder {marginal['bnorder']:.1f} ms,"
                f" {marginal['bnorder'] / marginal['bare']:.2f}x (target <= 1.1)"
            )
            small = medians[sizes[0]]
            growth = [
                (now.rss.peak - then.rss.peak) / (n - sizes[0]) * 1000
                for then, now in zip(small, (bare, ours), strict=True)
            ]
            print(
                f"{'':>6}  driver peak RSS from N={sizes[0]}: bare {growth[0]:+.1f},"
                f" bnorder {growth[1]:+.1f} MB per 1,000 trials (target <= 50)"
            )
        sys.stdout.flush()


if __name__ == "__main__":
    main()
