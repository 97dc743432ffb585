"""A results location that fills up mid-write: the real ``bnorder train`` in a subprocess whose
file-size limit (RLIMIT_FSIZE) makes every write past a few KB fail as on a full disk. The
error is one line naming the folder, and no partial or temporary file is left behind."""

from __future__ import annotations

import resource
import signal
import subprocess
import sys
from pathlib import Path


def _full_disk() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failed write, not a killed process
    resource.setrlimit(resource.RLIMIT_FSIZE, (2048, 2048))


def test_full_results_location_fails_in_one_line_and_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    trial = ["--dataset", "synthetic", "--depth", "1", "--width", "4", "--epochs", "1"]
    proc = subprocess.run(
        [sys.executable, "-m", "bnorder", "train", *trial, "--device", "cpu", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=_full_disk,
    )
    assert proc.returncode == 1, proc.stderr  # a runtime failure, not a usage error
    err = proc.stderr.strip()
    assert err.count("\n") == 0, err
    assert f"cannot write results to {out}" in err
    assert "File too large" in err
    leftovers = [p.name for p in out.rglob("*") if p.is_file()]
    assert leftovers == [".bnorder.lock"]  # no part file, no temporary file; the empty lock
