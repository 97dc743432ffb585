"""A trial's device follows what its scheduler granted: zero-GPU trials never touch a GPU
that happens to be visible (Ray 2.60 no longer hides it from them)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from bnorder.device import granted_device
from bnorder.errors import ConfigError
from bnorder.sweep.spec import load_sweep


@pytest.fixture
def visible_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """A host where CUDA is visible, as on a GPU node running a gpu: 0 sweep."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)


@pytest.mark.usefixtures("visible_gpu")
def test_auto_is_cpu_without_a_granted_gpu() -> None:
    assert granted_device("auto", 0.0) == "cpu"
    assert granted_device("auto", 0.25) == "auto"  # Ray set CUDA_VISIBLE_DEVICES to its GPU
    assert granted_device("auto", 1.0) == "auto"
    assert granted_device("cpu", 1.0) == "cpu"


def test_auto_stays_auto_where_no_cuda_is_visible() -> None:
    if torch.cuda.is_available():
        pytest.skip("this host has CUDA")
    assert granted_device("auto", 0.0) == "auto"  # cpu (or Apple's MPS) either way


def test_an_explicit_cuda_device_without_a_gpu_is_an_error() -> None:
    with pytest.raises(
        ConfigError, match=r"device: needs a GPU.*granted none; got 'cuda:1'.*resources.gpu"
    ):
        granted_device("cuda:1", 0.0)


def test_a_sweep_asking_cuda_with_no_gpu_fails_at_load(sweep_file: Callable[..., Path]) -> None:
    text = """
    name: g
    mode: grid
    datasets: [synthetic]
    archs: [mlp]
    orderings: [case1]
    fixed: {device: cuda}
    resources: {cpu: 1, gpu: 0}
    """
    with pytest.raises(ConfigError, match=r"resources.gpu.*no GPU.*cuda"):
        load_sweep(sweep_file(text))
