"""Wall time of the seed replication workload as a real sweep, Ray start-up included.

``sweeps/seed_replication.yaml`` (2 archs x 3 orderings x 5 seeds x 10 epochs: 30 trials) on
``cifar_shaped`` data (random uint8 of CIFAR-10's shape and size: CIFAR-10 itself cannot be
downloaded everywhere, and throughput does not depend on the pixels), through
``bnorder sweep``'s own path: plan, local Ray, trainable, Parquet rows. Target (issue 6): at
most 3 minutes on one H100. Prints the wall time, trials, images trained and, on a GPU, the
achieved model FLOP utilisation of the CNN trials.

    uv run python benchmarks/seed_replication_wall.py                   # GPU: the whole workload
    uv run python benchmarks/seed_replication_wall.py --quick --fuse 1  # CPU: tiny, for a check
    uv run python benchmarks/seed_replication_wall.py --fixed precision=bf16 --fixed compile=true
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import yaml

from bnorder.sweep.plan import make_plan
from bnorder.sweep.spec import load_sweep
from bnorder.tune.runner import init_ray, run_sweep  # configures Ray: import ray only after it

SWEEP = Path(__file__).resolve().parent.parent / "sweeps" / "seed_replication.yaml"
QUICK = {"depth": 2, "width": 8, "epochs": 1, "subset": 1024, "test_subset": 256}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny trials (CPU check of the path)")
    p.add_argument("--fuse", type=int, default=None, help="override the sweep's fuse")
    p.add_argument("--gpu", type=float, default=None, help="GPU share per Ray trial (0 on CPU)")
    p.add_argument("--cpu", type=float, default=None, help="CPUs per Ray trial")
    p.add_argument("--fixed", action="append", default=[], help="extra fixed field, k=v")
    args = p.parse_args()

    import torch

    gpu = torch.cuda.is_available()
    sweep = yaml.safe_load(SWEEP.read_text())
    sweep["datasets"] = ["cifar_shaped"]
    sweep["name"] = "seed_replication_wall"
    if args.quick:
        sweep["fixed"].update(QUICK)
        sweep["seeds"] = 2
    for item in args.fixed:
        key, _, value = item.partition("=")
        sweep["fixed"][key] = yaml.safe_load(value)
    if args.fuse is not None:
        sweep["fuse"] = args.fuse
    resources = sweep["resources"]
    resources["gpu"] = args.gpu if args.gpu is not None else (resources["gpu"] if gpu else 0)
    resources["cpu"] = args.cpu if args.cpu is not None else (resources["cpu"] if gpu else 1)

    with tempfile.TemporaryDirectory(prefix="bnorder-wall-") as tmp:
        path = Path(tmp) / "sweep.yaml"
        path.write_text(yaml.safe_dump(sweep, sort_keys=False))
        spec, text = load_sweep(path)
        plan = make_plan(spec, str(path))
        started = time.perf_counter()
        init_ray(None)
        outcomes = run_sweep(plan, text, out=Path(tmp) / "out", src=str(path))
        wall = time.perf_counter() - started
        from bnorder.results import load

        res = load(Path(tmp) / "out")
    trials, epochs = res.trials, res.epochs
    images = epochs.merge(trials[["trial_id", "arch"]], on="trial_id")
    train_imgs = (images.images_per_s * images.train_seconds).sum()
    print(
        f"seed replication workload, {len(trials)} trials ({plan.trial_count('grid')} planned, "
        f"{sum(o.errors for o in outcomes)} failed), fuse {spec.fuse}, "
        f"resources {resources}, fixed {sweep['fixed']}"
    )
    print(f"device: {trials.device_name.iloc[0]}; execution: {sorted(set(trials.execution))}")
    print(f"wall time, Ray start-up included: {wall:.1f}s ({wall / 60:.2f} min; target 3 min)")
    print(f"images trained: {train_imgs:,.0f} ({train_imgs / wall:,.0f} per wall second)")
    # model FLOPs actually trained (3x forward per image, per arch) over the wall time
    from bnorder.device import peak_flops
    from bnorder.models import forward_flops
    from bnorder.train import build_model

    flops = 0.0
    for arch, rows in images.groupby("arch"):
        cfg = next(c for _, c in plan.grid_trials if c.arch == arch)
        per_image = 3 * forward_flops(build_model(cfg), (3, 32, 32))
        flops += per_image * (rows.images_per_s * rows.train_seconds).sum()
    peak = peak_flops(trials.device_name.iloc[0], bf16=sweep["fixed"].get("precision") == "bf16")
    mfu = f", MFU {flops / wall / peak:.1%} of {peak / 1e12:.0f} TFLOP/s" if peak else ""
    print(f"model FLOP/s over the wall time: {flops / wall / 1e12:.3f} TFLOP/s{mfu}")


if __name__ == "__main__":
    main()
