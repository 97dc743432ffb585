"""Versions, git sha and host: recorded with every trial row."""

from __future__ import annotations

import socket
import subprocess
from functools import cache
from importlib import metadata
from pathlib import Path

import torch

__all__ = ["provenance"]


@cache
def _git_sha() -> str | None:
    root = Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{sha}-dirty" if dirty else sha or None


@cache
def provenance() -> dict[str, str | None]:
    try:
        version = metadata.version("bnorder")
    except metadata.PackageNotFoundError:
        version = None
    return {
        "bnorder_version": version,
        "torch_version": torch.__version__,
        "git_sha": _git_sha(),
        "hostname": socket.gethostname(),
    }
