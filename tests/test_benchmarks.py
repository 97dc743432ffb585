"""The benchmarks' own logic, on CPU: a packed run's processes start timing together and its
windows overlap; GPU peaks tell PCIe from SXM parts."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from bnorder import TrialConfig
from bnorder.data import RawData
from bnorder.device import peak_flops

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _module(name: str, monkeypatch: pytest.MonkeyPatch) -> object:
    # spawned workers import it by name, from the sys.path they inherit
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_packed_processes_time_overlapping_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    throughput = _module("throughput", monkeypatch)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (300, 3, 8, 8), dtype=np.uint8)
    y = rng.integers(0, 10, 300)
    raw = RawData.from_numpy(x, y, x[:32], y[:32], "random")
    cfg = TrialConfig(dataset="cifar10", arch="cnn", depth=1, width=4, batch_size=64, device="cpu")
    mode = throughput.Mode("packed")
    run = throughput.packed(cfg, raw, mode, steps=2, k=2, window_s=1.5)
    assert len(run.windows) == 2
    assert all(w.seconds >= 1.5 for w in run.windows)
    # without the barrier, process start-up (seconds) dwarfed the 0.2 s windows
    assert run.overlap > 0.8
    assert run.rate == pytest.approx(sum(w.images / w.seconds for w in run.windows))


@pytest.mark.parametrize(
    ("name", "bf16"),
    [("NVIDIA H100 PCIe", 756e12), ("NVIDIA H100 80GB HBM3", 989e12), ("NVIDIA H200", 989e12)],
)
def test_gpu_peaks_tell_form_factors_apart(name: str, bf16: float) -> None:
    assert peak_flops(name, bf16=True) == bf16


@pytest.mark.slow
def test_gpu_check_dry_runs_on_cpu() -> None:
    """The GPU session's one command works before it meets a GPU: every section runs and the
    fused checks pass on CPU."""
    import subprocess

    proc = subprocess.run(
        [sys.executable, str(BENCHMARKS / "gpu_check.py"), "--device", "cpu", "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for section in ("device", "tests", "syncs", "fused", "speed", "compile", "seed loop"):
        assert any(line.startswith(section) for line in out.splitlines()), section
    assert "gpu-marked tests" in out
    assert "NaN member isolated, bf16 + channels_last" in out
    assert "DIFFERS" not in out
    assert "LEAKS" not in out
    assert "FAILED" not in out


@pytest.mark.slow
def test_cli_startup_runs_quick() -> None:
    """The start-up benchmark times every command, completion included (no timing asserted:
    that is what the benchmark prints)."""
    import subprocess

    proc = subprocess.run(
        [sys.executable, str(BENCHMARKS / "cli_startup.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    rows = [line.split("  ")[0] for line in proc.stdout.splitlines()]
    for name in ("bnorder --help", "bnorder sweep --help", "<TAB> bnorder train --ordering"):
        assert any(row.startswith(name) for row in rows), name
    for name in ('python -c "import torch"', 'python -c "import bnorder.train"'):
        assert name in rows, name
    assert proc.stdout.count("target 0.5 s:") == 2


@pytest.mark.slow
def test_results_scale_runs_quick() -> None:
    """The results benchmark writes 100 trials as a sweep does (parts, compactions), then reads
    them beside one to_parquet of the same rows (no timing asserted: that is what it prints)."""
    import subprocess

    proc = subprocess.run(
        [sys.executable, str(BENCHMARKS / "results_scale.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    rows = {tuple(line.split()[:3]): line.split() for line in proc.stdout.splitlines()}
    compacted = rows[("100", "compacted", "2")]  # one file per table once the phase ended
    assert float(compacted[5].rstrip("x")) <= 2.0  # bytes against one to_parquet
    assert ("100", "one", "to_parquet") in rows
    assert "compactions: 1 periodic" in proc.stdout


@pytest.mark.slow
def test_sweep_scale_runs_quick() -> None:
    """The sweep benchmark runs 24 instant trials through bnorder's driver and a bare Tuner,
    and prints both rows (no timing asserted: that is what it prints)."""
    import subprocess

    proc = subprocess.run(
        [sys.executable, str(BENCHMARKS / "sweep_scale.py"), "--n", "24", "--repeats", "1"],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr
    rows = {" ".join(line.split()[:3]): line.split() for line in proc.stdout.splitlines()}
    assert "24 bare Ray" in rows
    ours = rows["24 bnorder sweep"]
    assert float(ours[-1]) > 0  # bnorder.load of the 24 trials' rows
    assert "bnorder / bare Ray Tune per trial:" in proc.stdout
