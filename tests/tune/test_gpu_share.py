"""On a GPU: a trial's share (``gpu: 0.25``) caps PyTorch's allocator, so a trial that outgrows
its quarter fails alone with an out-of-memory error. Skipped without CUDA."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

SCRIPT = """
import torch
from bnorder.tune.trainable import share_gpu
share_gpu(0.25)
total = torch.cuda.get_device_properties(0).total_memory
small = torch.empty(int(0.15 * total), dtype=torch.uint8, device="cuda")  # within the share
try:
    torch.empty(int(0.2 * total), dtype=torch.uint8, device="cuda")  # 0.35 in all: beyond it
except torch.OutOfMemoryError:
    print("capped")
else:
    print("not capped")
"""


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_share_caps_the_allocator() -> None:
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "capped"
