"""One command that validates bnorder's GPU path and measures its modes, for the first session
that gets a GPU: it prints one table, so those minutes go to measuring, not debugging.

    python3 benchmarks/gpu_check.py                       # one H100/H200: under 10 minutes
    uv run python benchmarks/gpu_check.py --device cpu --quick  # a dry check of this script

Needs neither Ray nor Optuna (the lent GPU image has neither): it drives ``train_trial`` and
``train_fused``, the real training loops, on CIFAR-shaped random data (the pixels do not
change the speed). Rows:

- device: CUDA available, the GPU's name;
- tests: the ``gpu``-marked tests of the files that need no Ray;
- syncs: synchronizing CUDA calls in one epoch, augmentation off and on (the loop syncs once
  every 20 steps for its finiteness check, plus the epoch's evaluation);
- fused: a fused array against its members run one by one (fp32, channels_last, bf16), and a
  NaN member leaving the others finite;
- speed: images/s of epoch 2 of the real loop per mode, epoch 1's compile time, peak MiB;
  cudnn.benchmark and fused Adam are switched on around their rows only;
- compile: graphs compiled over two trials in one process (a reused Ray actor);
- seed loop: the notebook's DataLoader loop on the same device, for the speedup.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import math
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

import bnorder.train
from bnorder import TrialConfig
from bnorder.device import device_name, resolve_device
from bnorder.fused import fuse_models, fused_cross_entropy
from bnorder.train import build_model, train_trial
from bnorder.train_fused import train_fused

ROOT = Path(__file__).resolve().parents[1]
# the files whose gpu-marked tests import no Ray or Optuna
GPU_TEST_FILES = ["tests/test_train.py", "tests/data/test_data_batches.py"]
Row = tuple[str, str, str, str]  # section, check, result, detail


# ---------------------------------------------------------------- sizes
def base(device: str, quick: bool) -> dict[str, Any]:
    """The trial every row trains: the seed CNN on 11,592 CIFAR-shaped images (11,592 % 128
    = 72: a partial last batch, as in a real CIFAR-10 epoch); tiny with --quick."""
    shared = {"dataset": "cifar_shaped", "arch": "cnn", "epochs": 2, "device": device}
    if quick:
        return {**shared, "depth": 1, "width": 8, "batch_size": 64, "subset": 700,
                "test_subset": 128}  # fmt: skip
    return {**shared, "depth": 8, "width": 64, "batch_size": 128, "subset": 12_880,
            "test_subset": 2048}  # fmt: skip


# ---------------------------------------------------------------- checks
def device_rows(device: torch.device) -> list[Row]:
    cuda = torch.cuda.is_available()
    return [
        ("device", "CUDA available", str(cuda), f"torch {torch.__version__}"),
        ("device", "device", device_name(device), str(torch.version.cuda or "no CUDA")),
    ]


def test_rows() -> list[Row]:
    if importlib.util.find_spec("pytest") is None:
        why = "pytest is not installed here (carry its wheel: EXTRA_WHEELS in make-carry.sh)"
        return [("tests", "gpu-marked tests", "skipped", why)]
    cmd = [sys.executable, "-m", "pytest", "-q", "-m", "gpu", "-p", "no:cacheprovider"]
    proc = subprocess.run(
        [*cmd, *GPU_TEST_FILES], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    last = (proc.stdout.strip().splitlines() or ["no output"])[-1].strip("= ")
    return [("tests", "gpu-marked tests", "ok" if proc.returncode == 0 else "FAILED", last)]


def sync_rows(cfg: dict[str, Any], device: torch.device) -> list[Row]:
    if device.type != "cuda":
        return [("syncs", f"augment={a}", "n/a", "counted on CUDA only") for a in (False, True)]
    rows = []
    for augment in (False, True):
        trial = TrialConfig(**{**cfg, "epochs": 1}, augment=augment)
        torch.cuda.set_sync_debug_mode("warn")
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                result = train_trial(trial)
        finally:
            torch.cuda.set_sync_debug_mode(0)
        n = sum("synchroniz" in str(w.message) for w in caught)
        steps = math.ceil(result.config.subset * 0.9 / trial.batch_size)
        rows.append(("syncs", f"augment={augment}", str(n), f"in {steps} steps + evaluation"))
    return rows


def fused_rows(cfg: dict[str, Any], device: torch.device, k: int = 4) -> list[Row]:
    trial = TrialConfig(**cfg)
    models = [build_model(trial.replace(seed=s)).to(device) for s in range(k)]
    x = torch.randn(32, k, 3, 32, 32, device=device)
    y = torch.randint(0, 10, (32, k), device=device)
    rows = []
    for label, layout, bf16, tol in (
        ("fp32", torch.contiguous_format, False, 1e-4),
        ("channels_last", torch.channels_last, False, 1e-4),
        ("bf16 + channels_last", torch.channels_last, True, 5e-2),
    ):
        array = fuse_models(models).to(memory_format=layout)
        array.input_layout = layout
        with torch.autocast(device.type, torch.bfloat16, enabled=bf16):
            out = array(x).float()
            ref = torch.stack([m(x[:, i]) for i, m in enumerate(models)], 1).float()
        gap = (out - ref).abs().max().item() / max(ref.abs().max().item(), 1e-12)
        verdict = "ok" if gap < tol else "DIFFERS"
        rows.append(("fused", f"vs separate, {label}", verdict, f"max rel diff {gap:.1e}"))
        with torch.no_grad():
            array.net.stem.weight[: trial.width].fill_(float("nan"))  # member 0 diverged
        with torch.autocast(device.type, torch.bfloat16, enabled=bf16):
            out = array(x)
            fused_cross_entropy(out.float(), y)[0].backward()
        others = torch.isfinite(out[:, 1:]).all().item() and all(
            torch.isfinite(g).all().item()
            for p in array.parameters()
            if p.grad is not None and p.dim() > 0
            for g in p.grad.chunk(k)[1:]
        )
        rows.append(
            ("fused", f"NaN member isolated, {label}", "ok" if others else "LEAKS", "members 1-3")
        )
    return rows


@contextlib.contextmanager
def cudnn_benchmark() -> Iterator[None]:
    before = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = True
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = before


@contextlib.contextmanager
def fused_adam() -> Iterator[None]:
    """Adam with ``fused=True`` (one kernel for all parameters) in the real loops."""
    original = bnorder.train.create_optimizer

    def create(name: str, params: Any, **kw: Any) -> torch.optim.Optimizer:
        if name != "adam":
            return original(name, params, **kw)
        return torch.optim.Adam(params, lr=kw["lr"], weight_decay=kw["weight_decay"], fused=True)

    bnorder.train.create_optimizer = create
    try:
        yield
    finally:
        bnorder.train.create_optimizer = original


def speed_row(name: str, trial: TrialConfig, fuse: int = 1) -> tuple[Row, float]:
    t = time.perf_counter()
    if fuse > 1:
        results = train_fused([trial.replace(seed=s) for s in range(fuse)])
    else:
        results = [train_trial(trial)]
    first, second = results[0].epochs[:2]
    rate = second["images_per_s"] * fuse  # a fused member reports the array's rate over K
    compiled = first.get("compile_seconds", math.nan)
    peak = results[0].gpu_peak_mib
    detail = (
        f"epoch 1 {first['images_per_s'] * fuse:,.0f} img/s"
        + (f", compile {compiled:.1f} s" if not math.isnan(compiled) else "")
        + (f", peak {peak:,.0f} MiB" if peak is not None else "")
        + f", wall {time.perf_counter() - t:.0f} s"
    )
    return ("speed", name, f"{rate:,.0f} img/s", detail), rate


def speed_rows(cfg: dict[str, Any], device: torch.device, quick: bool) -> tuple[list[Row], float]:
    fast = {"precision": "bf16", "channels_last": True}
    modes: list[tuple[str, dict[str, Any], int, Callable[[], Any]]] = [
        ("fp32 (today's default)", {}, 1, contextlib.nullcontext),
        ("bf16 + channels_last", fast, 1, contextlib.nullcontext),
        ("+ cudnn.benchmark", fast, 1, cudnn_benchmark),
        ("+ fused Adam", fast, 1, lambda: _both(cudnn_benchmark(), fused_adam())),
        ("fused K=5, bf16 + channels_last", fast, 5, contextlib.nullcontext),
    ]
    if not quick:
        modes.append(("+ compile", {**fast, "compile": True}, 1, contextlib.nullcontext))
    rows, best = [], 0.0
    for name, extra, fuse, context in modes:
        with context():
            row, rate = speed_row(name, TrialConfig(**cfg, **extra), fuse)
        rows.append(row)
        best = max(best, rate)
    return rows, best


@contextlib.contextmanager
def _both(a: Any, b: Any) -> Iterator[None]:
    with a, b:
        yield


def compile_rows(cfg: dict[str, Any], quick: bool, compile_: bool) -> list[Row]:
    if quick and not compile_:
        why = "--quick (add --compile: ~20 s on 2 CPU cores)"
        return [("compile", "graphs over two trials", "skipped", why)]
    from torch._dynamo.utils import counters

    trial = TrialConfig(**cfg, precision="bf16", channels_last=True, compile=True)
    graphs = []
    for _ in range(2):
        train_trial(trial)
        graphs.append(counters["stats"]["unique_graphs"])
    detail = f"after trial 1: {graphs[0]}, after trial 2: {graphs[1]}"
    reused = "ok" if graphs[1] == graphs[0] else "RECOMPILES"
    return [("compile", "graphs over two trials", reused, detail)]


def seed_loop_rows(cfg: dict[str, Any], best: float, steps: int) -> list[Row]:
    import numpy as np

    spec = importlib.util.spec_from_file_location("throughput", ROOT / "benchmarks/throughput.py")
    throughput = importlib.util.module_from_spec(spec)
    sys.modules["throughput"] = throughput  # its dataclasses look their module up by name
    spec.loader.exec_module(throughput)
    rng = np.random.default_rng(0)
    n = cfg["batch_size"] * (steps + 3)
    x = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
    y = rng.integers(0, 10, n)
    seconds, images = throughput.seed_loop(TrialConfig(**cfg), x, y, steps)
    rate = images / seconds
    return [
        (
            "seed loop",
            "DataLoader, PIL, fp32",
            f"{rate:,.0f} img/s",
            f"best mode {best / rate:.1f}x",
        )
    ]


# ---------------------------------------------------------------- the table
def print_table(rows: list[Row]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    print(f"{'':<{widths[0]}}  {'check':<{widths[1]}}  {'result':>{widths[2]}}  detail")
    section = ""
    for sec, check, result, detail in rows:
        shown = sec if sec != section else ""
        section = sec
        print(f"{shown:<{widths[0]}}  {check:<{widths[1]}}  {result:>{widths[2]}}  {detail}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--device", default="cuda", help="cuda (default), or cpu for a dry check")
    p.add_argument("--quick", action="store_true", help="tiny sizes, no compile: a CPU dry check")
    p.add_argument("--no-tests", action="store_true", help="skip the gpu-marked tests")
    p.add_argument("--compile", action="store_true", help="with --quick: also the compile row")
    args = p.parse_args()

    device = resolve_device(args.device)
    cfg = base(str(device), args.quick)
    started = time.perf_counter()
    rows = device_rows(device)
    if not args.no_tests:
        rows += test_rows()
    rows += sync_rows(cfg, device)
    rows += fused_rows(cfg, device)
    speed, best = speed_rows(cfg, device, args.quick)
    rows += speed
    rows += compile_rows(cfg, args.quick, args.compile)
    rows += seed_loop_rows(cfg, best, steps=4 if args.quick else 40)
    print_table(rows)
    print(f"gpu_check: {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
