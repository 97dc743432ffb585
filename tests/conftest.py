"""Shared fixtures. Tests never touch the network or the user's cache: downloads are off and the
data root is a fresh temporary folder unless a test sets its own."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bnorder.data.sources import DEBIAN_FASHION_MNIST


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    monkeypatch.setenv("BNORDER_OFFLINE", "1")
    monkeypatch.setenv("BNORDER_DATA_ROOT", str(tmp_path_factory.getbasetemp() / "data-root"))


@pytest.fixture(scope="session")
def fashion_mnist_files() -> Path:
    """Debian's real Fashion-MNIST. Skipped where it is not installed, except in CI (CI=true),
    whose .ci/run installs it: there a missing package must fail, not skip."""
    if not (DEBIAN_FASHION_MNIST / "train-images-idx3-ubyte.gz").is_file():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(
                f"{DEBIAN_FASHION_MNIST} missing in CI: apt-get install dataset-fashion-mnist"
            )
        pytest.skip("Debian's dataset-fashion-mnist is not installed")
    return DEBIAN_FASHION_MNIST


def _run_cli(*args: str, cwd: Path | None = None) -> tuple[int, str, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "bnorder", *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=cwd,
    )
    return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture
def cli() -> Callable[..., tuple[int, str, str]]:
    """``cli("train", "--depth", "0")`` runs the real ``python -m bnorder`` in a subprocess (with
    this test's environment) and returns (exit code, stdout, stderr)."""
    return _run_cli


@pytest.fixture(scope="session")
def ray_session() -> Iterator[None]:
    """One local Ray for every in-process sweep test (starting Ray costs seconds and ~0.5 GB)."""
    import ray

    from bnorder.tune.runner import init_ray  # first: it configures Ray before Ray's import

    init_ray(None, num_cpus=2)
    yield
    ray.shutdown()


def write_sweep(folder: Path, text: str, name: str = "sweep.yaml") -> Path:
    """Write a sweep YAML (dedented) into ``folder`` and return its path."""
    import textwrap

    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip())
    return path


@pytest.fixture
def sweep_file(tmp_path: Path) -> Callable[..., Path]:
    """``sweep_file(yaml_text)`` -> the path of that sweep file in this test's tmp folder."""
    return lambda text, name="sweep.yaml": write_sweep(tmp_path, text, name)
