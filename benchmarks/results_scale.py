"""Results at scale: N trials' rows written the way a sweep's recorder writes them (a part file
per trial, compacted every 64 finished trials, everything into one file when the phase ends),
then loaded; beside one ``DataFrame.to_parquet`` of the same rows, in the same run.

Rows have the real schema (``write_result``): the seed CNN's size (depth 8, so 8 values per
probe list), 20 epochs each, probes on, sweep columns filled. Reads are the best of 3 with a
warm page cache. Targets at 5,000 trials: load in <= 1 s and <= 2x the bytes of one file.

    uv run python benchmarks/results_scale.py            # N = 100, 1,000, 5,000 (~3 min)
    uv run python benchmarks/results_scale.py --quick    # N = 100
    uv run python benchmarks/results_scale.py --parts    # also the uncompacted layout (slow)

``measure(n, folder)`` and ``synthetic_result(i)`` are importable (benchmarks/sweep_scale.py).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from bnorder.config import TrialConfig
from bnorder.probes import PROBE_STATS
from bnorder.results import load, write_result
from bnorder.results.compaction import compact
from bnorder.train import TrialResult

EPOCHS, DEPTH = 20, 8  # a CIFAR-scale trial of the seed CNN


def synthetic_result(
    i: int, *, epochs: int = EPOCHS, depth: int = DEPTH, seed: int = 0
) -> TrialResult:
    """Trial ``i`` of a sweep, with made-up but realistically shaped metrics (no training)."""
    rng = np.random.default_rng([seed, i])
    cfg = TrialConfig(
        dataset="cifar10", arch="cnn", ordering=("case1", "case2", "case3")[i % 3], depth=depth,
        width=64, epochs=epochs, probes=True, seed=i, device="cpu",
    )  # fmt: skip
    rows = []
    for e in range(1, epochs + 1):
        acc = float(0.9 - 0.5 / e + rng.normal(0, 0.01))
        losses, accs = ("train_loss", "val_loss", "test_loss"), ("train_acc", "val_acc", "test_acc")
        rows.append(
            {
                "epoch": e,
                **{k: float(rng.uniform(0.2, 2.0)) for k in losses},
                **{k: acc + float(rng.normal(0, 0.01)) for k in accs},
                "lr_end": 0.1 * (1 - e / epochs),
                "train_seconds": float(rng.uniform(2, 3)),
                "eval_seconds": float(rng.uniform(0.2, 0.3)),
                "images_per_s": float(rng.uniform(2e4, 3e4)),
                "compile_seconds": math.nan,
                **{s: rng.uniform(0, 1, depth).tolist() for s in PROBE_STATS},
            }
        )  # fmt: skip
    arm = f"cifar10/cnn/d{depth}/{cfg.ordering}"
    extra = {
        "sweep": "scale", "sweep_hash": "0" * 16, "phase": "grid", "arm_id": arm,
        "ray_trial_id": f"{i:05d}", "node_ip": "127.0.0.1", "cpu_per_trial": 1.0,
        "gpu_fraction": 0.25, "trials_per_gpu": 4, "restarts": 0,
    }  # fmt: skip
    return TrialResult(
        config=cfg, trial_id=f"scale-{i:05d}", status="ok", epochs=rows, n_params=1_234_567,
        wall_seconds=60.0, device_name="cpu", data_source="synthetic", extra=extra,
    )  # fmt: skip


@dataclass
class Layout:
    """One way of storing the same rows, as read back."""

    name: str
    files: int  # data files a reader opens (both tables)
    bytes: int  # on disk, hard links counted once
    read_s: float  # pandas.read_parquet of both tables
    load_s: float | None  # bnorder.results.load


@dataclass
class Scale:
    n: int
    layouts: list[Layout]
    compactions: list[float] = field(default_factory=list)  # periodic, seconds each
    final_s: float = 0.0
    write_s: float = 0.0  # per trial, parts and compactions included


def best_of(fn: Callable[[], object], repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def disk(folder: Path) -> tuple[int, int]:
    """(data files a reader of the tables opens, bytes of every file with hard links once)."""
    inodes: dict[int, int] = {}
    for root, _, names in os.walk(folder):
        for name in names:
            st = os.lstat(os.path.join(root, name))
            inodes[st.st_ino] = st.st_size
    files = sum(
        n.endswith(".parquet") and not n.startswith((".", "_"))
        for table in ("trials.parquet", "epochs.parquet")
        for n in os.listdir(folder / table)
    )
    return files, sum(inodes.values())


def read_both(folder: Path) -> None:
    pd.read_parquet(folder / "trials.parquet")
    pd.read_parquet(folder / "epochs.parquet")


def measure(n: int, folder: Path, *, parts: bool = False) -> Scale:
    """Write ``n`` trials into ``folder/compacted`` as a sweep does, then time reading them,
    beside one file per table (``folder/one``) and, with ``parts``, no compaction."""
    out = folder / "compacted"
    compactions: list[float] = []
    started = time.perf_counter()
    for i in range(n):
        write_result(out, synthetic_result(i))
        t = time.perf_counter()
        if compact(out):  # the recorder's call after every trial; only every 64th works
            compactions.append(time.perf_counter() - t)
    t = time.perf_counter()
    compact(out, final=True)  # the phase's end (waits out the 0.5 s grace of old generations)
    final_s = time.perf_counter() - t
    write_s = (time.perf_counter() - started) / n
    layouts = [_layout("compacted", out)]

    res = load(out)
    one = folder / "one"
    (one / "trials.parquet").parent.mkdir(parents=True)
    res.trials.to_parquet(one / "trials.parquet")
    res.epochs.to_parquet(one / "epochs.parquet")
    size = sum(p.stat().st_size for p in one.iterdir())
    layouts.append(Layout("one to_parquet", 2, size, best_of(lambda: read_both(one)), None))

    if parts:
        plain = folder / "parts"
        for i in range(n):
            write_result(plain, synthetic_result(i))
        layouts.append(_layout("part per trial", plain, repeat=1))
    return Scale(n, layouts, compactions, final_s, write_s)


def _layout(name: str, out: Path, repeat: int = 3) -> Layout:
    files, size = disk(out)
    read_s = best_of(lambda: read_both(out), repeat)
    load_s = best_of(lambda: load(out), repeat)
    return Layout(name, files, size, read_s, load_s)


def report(scale: Scale) -> list[str]:
    one = next(x for x in scale.layouts if x.name == "one to_parquet")
    lines = []
    for x in scale.layouts:
        load_s = f"{x.load_s:8.3f} s" if x.load_s is not None else "       -  "
        lines.append(
            f"{scale.n:>6}  {x.name:<15} {x.files:>6}  {x.bytes / scale.n / 1024:>9.2f} KB"
            f"  {x.bytes / one.bytes:>5.2f}x  {x.read_s:>8.3f} s  {load_s}"
        )
    c = scale.compactions
    spread = f"mean {statistics.mean(c):.3f} s, max {max(c):.3f} s" if c else "none"
    lines.append(
        f"{'':>6}  compactions: {len(c)} periodic ({spread}); phase end {scale.final_s:.3f} s;"
        f" writing {scale.write_s * 1000:.1f} ms/trial (parts and compactions)"
    )
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="N = 100 only")
    p.add_argument("--parts", action="store_true", help="also time the uncompacted layout")
    p.add_argument("--n", type=int, nargs="*", help="trial counts (default 100 1000 5000)")
    args = p.parse_args()
    sizes = args.n or ([100] if args.quick else [100, 1000, 5000])
    print(f"results at scale: {EPOCHS} epochs/trial, probes on (depth {DEPTH}), best of 3 reads")
    print(
        f"{'N':>6}  {'layout':<15} {'files':>6}  {'bytes/trial':>12}  {'size':>6}"
        f"  {'read_parquet':>10}  {'bnorder.load':>10}"
    )
    for n in sizes:
        with tempfile.TemporaryDirectory(prefix="bnorder-scale-") as tmp:
            scale = measure(n, Path(tmp), parts=args.parts)
        print("\n".join(report(scale)), flush=True)
        if n >= 5000:
            c = scale.layouts[0]
            ok = c.load_s is not None and c.load_s <= 1.0 and c.bytes <= 2 * scale.layouts[1].bytes
            print(f"{'':>6}  targets (load <= 1 s, <= 2x one file): {'met' if ok else 'MISSED'}")


if __name__ == "__main__":
    main()
