"""Per-trial overhead of bnorder's sweep path against a bare Ray Tune loop, in the same run.

Both run the same N trivial trials (a 1-block MLP of width 4, 1 epoch on the synthetic data) on
one local Ray: the bare loop calls ``train_trial`` in a plain function trainable and reports
once; bnorder's path is ``run_sweep`` (checkpoint every epoch, Parquet rows written by the
driver, progress). Target: bnorder <= 1.25x bare Ray Tune per trial.

    uv run python benchmarks/sweep_overhead.py --trials 16
"""

from __future__ import annotations

import argparse
import tempfile
import textwrap
import time
from pathlib import Path

from bnorder import TrialConfig, train_trial
from bnorder.sweep.plan import make_plan
from bnorder.sweep.spec import load_sweep
from bnorder.tune.runner import init_ray, run_sweep  # configures Ray: import ray only after it

TRIAL = {
    "dataset": "synthetic",
    "arch": "mlp",
    "depth": 1,
    "width": 4,
    "epochs": 1,
    "device": "cpu",
}


def bare_trial(config: dict) -> None:
    from ray import tune

    result = train_trial(TrialConfig(**config))
    tune.report({"test_acc": result.epochs[-1]["test_acc"]})


def run_bare(n: int, concurrency: int, storage: Path) -> float:
    from ray import tune

    started = time.perf_counter()
    tuner = tune.Tuner(
        tune.with_resources(bare_trial, {"cpu": 1}),
        param_space={**TRIAL, "seed": tune.grid_search(list(range(n)))},
        tune_config=tune.TuneConfig(max_concurrent_trials=concurrency, reuse_actors=True),
        run_config=tune.RunConfig(name="bare", storage_path=str(storage), verbose=0),
    )
    grid = tuner.fit()
    if len(grid) != n or grid.errors:
        raise RuntimeError(f"bare Ray Tune run: {len(grid.errors)} of {len(grid)} trials failed")
    return time.perf_counter() - started


def run_bnorder(n: int, concurrency: int, folder: Path) -> float:
    path = folder / "overhead.yaml"
    fixed = ", ".join(f"{k}: {v}" for k, v in TRIAL.items() if k not in ("dataset", "arch"))
    path.write_text(
        textwrap.dedent(f"""
        name: overhead
        mode: grid
        datasets: [synthetic]
        archs: [mlp]
        orderings: [case1]
        fixed: {{{fixed}}}
        seeds: {n}
        max_concurrent: {concurrency}
    """)
    )
    spec, text = load_sweep(path)
    started = time.perf_counter()
    run_sweep(make_plan(spec), text, out=folder / "out", src=str(path))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=16, help="trials per path (default 16)")
    parser.add_argument("--concurrency", type=int, default=2, help="trials at once (default 2)")
    parser.add_argument("--repeats", type=int, default=2, help="runs per path; the best counts")
    args = parser.parse_args()
    init_ray(None)
    bare, ours = [], []
    for _ in range(args.repeats):  # interleaved, so drift in machine load hits both alike
        with tempfile.TemporaryDirectory() as tmp:
            bare.append(run_bare(args.trials, args.concurrency, Path(tmp)))
        with tempfile.TemporaryDirectory() as tmp:
            ours.append(run_bnorder(args.trials, args.concurrency, Path(tmp)))
    b, o = min(bare) / args.trials, min(ours) / args.trials
    print(f"\n{args.trials} trivial trials, {args.concurrency} at a time, best of {args.repeats}")
    print(f"{'path':<16} {'wall s':>8} {'s/trial':>8}")
    print(f"{'bare Ray Tune':<16} {min(bare):>8.2f} {b:>8.3f}")
    print(f"{'bnorder sweep':<16} {min(ours):>8.2f} {o:>8.3f}")
    print(f"ratio bnorder / bare Ray Tune: {o / b:.2f}x (target <= 1.25x)")


if __name__ == "__main__":
    main()
