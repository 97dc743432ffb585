"""Where each dataset's files live, how to read them into uint8 tensors, and how to fetch them."""

from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bnorder.data.formats import read_cifar_batches, read_idx
from bnorder.errors import DataError

__all__ = [
    "DEBIAN_FASHION_MNIST",
    "IDX_FILES",
    "RawData",
    "default_data_root",
    "load_cifar",
    "load_idx_dataset",
]

# Debian's `dataset-fashion-mnist` ships the real Fashion-MNIST here, as gz files.
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")

IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


@dataclass(frozen=True)
class RawData:
    """A dataset as loaded: N×C×H×W uint8 images and int64 labels, train and test."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    source: str  # where it was read from, recorded with the results

    @staticmethod
    def from_numpy(x_train, y_train, x_test, y_test, source: str) -> RawData:
        def images(a: np.ndarray) -> torch.Tensor:
            a = np.asarray(a, dtype=np.uint8)
            return torch.from_numpy(a[:, None] if a.ndim == 3 else a).contiguous()

        def labels(a: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.asarray(a, dtype=np.int64))

        return RawData(images(x_train), labels(y_train), images(x_test), labels(y_test), source)


def default_data_root() -> Path:
    """``$BNORDER_DATA_ROOT``, else ``$XDG_CACHE_HOME/bnorder/data``, else
    ``~/.cache/bnorder/data``."""
    if env := os.environ.get("BNORDER_DATA_ROOT"):
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "bnorder" / "data"


def downloads_allowed() -> bool:
    """False when ``BNORDER_OFFLINE`` is set (tests, air-gapped clusters): no network at all."""
    return os.environ.get("BNORDER_OFFLINE", "").lower() not in {"1", "true", "yes"}


def _download(name: str, tv_class: str, root: Path, looked: list[Path], how: str) -> None:
    where = ", ".join(map(str, looked))
    if not downloads_allowed():
        raise DataError(
            f"dataset {name!r} not found (looked in {where}) and downloads are "
            f"off (BNORDER_OFFLINE); {how}"
        )
    import torchvision  # lazy: only downloads need it

    created = [p for p in (root, *root.parents) if not p.exists()]
    before = set(root.iterdir()) if root.is_dir() else set()
    try:
        root.mkdir(parents=True, exist_ok=True)
        for train in (True, False):
            getattr(torchvision.datasets, tv_class)(root=str(root), train=train, download=True)
    except Exception as exc:  # network, disk, integrity: all mean "not available"
        _remove_new(root, before, created)
        raise DataError(
            f"dataset {name!r} not found (looked in {where}) and the download "
            f"failed ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); {how}"
        ) from exc


def _remove_new(root: Path, before: set[Path], created: list[Path]) -> None:
    """Undo a failed download: remove what it added, and the folders it had to create."""
    for path in (set(root.iterdir()) if root.is_dir() else set()) - before:
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    for folder in created:  # innermost first
        with contextlib.suppress(OSError):
            folder.rmdir()


def load_cifar(name: str, root: Path, *, download: bool = True) -> RawData:
    """CIFAR-10/100 from ``<root>/cifar-10-batches-py`` or ``<root>/cifar-100-python``."""
    if name == "cifar10":
        folder, train, test, key, tv = (
            "cifar-10-batches-py",
            [f"data_batch_{i}" for i in range(1, 6)],
            ["test_batch"],
            "labels",
            "CIFAR10",
        )
    else:
        folder, train, test, key, tv = (
            "cifar-100-python",
            ["train"],
            ["test"],
            "fine_labels",
            "CIFAR100",
        )
    base = root / folder
    if not all((base / f).is_file() for f in train + test):
        how = (
            f"run once on a machine with internet access, or put torchvision's {folder}/ under "
            f"the data root (--data-root or BNORDER_DATA_ROOT)"
        )
        if not download:
            raise DataError(f"dataset {name!r} not found in {base}; {how}")
        _download(name, tv, root, [base], how)
    x_train, y_train = read_cifar_batches([base / f for f in train], key)
    x_test, y_test = read_cifar_batches([base / f for f in test], key)
    return RawData.from_numpy(x_train, y_train, x_test, y_test, str(base))


def _find_idx(folder: Path) -> dict[str, Path] | None:
    found = {}
    for key, stem in IDX_FILES.items():
        path = next((p for p in (folder / stem, folder / f"{stem}.gz") if p.is_file()), None)
        if path is None:
            return None
        found[key] = path
    return found


def load_idx_dataset(name: str, root: Path, *, download: bool = True) -> RawData:
    """MNIST / Fashion-MNIST from ``<root>/<MNIST|FashionMNIST>/raw`` (plain or gz files);
    Fashion-MNIST also from Debian's ``dataset-fashion-mnist`` package."""
    tv = "MNIST" if name == "mnist" else "FashionMNIST"
    candidates = [root / tv / "raw"] + ([DEBIAN_FASHION_MNIST] if name == "fashion_mnist" else [])
    files = next((f for f in map(_find_idx, candidates) if f is not None), None)
    if files is None:
        how = (
            "apt-get install dataset-fashion-mnist (offline, Debian/Ubuntu), or "
            if name == "fashion_mnist"
            else ""
        ) + (f"put torchvision's {tv}/raw/ under the data root (--data-root or BNORDER_DATA_ROOT)")
        if not download:
            raise DataError(
                f"dataset {name!r} not found (looked in {', '.join(map(str, candidates))}); {how}"
            )
        _download(name, tv, root, candidates, how)
        files = _find_idx(candidates[0])
        if files is None:
            raise DataError(
                f"dataset {name!r}: download finished but {candidates[0]} lacks its files"
            )
    arrays = {key: read_idx(path) for key, path in files.items()}
    if len(arrays["x_train"]) != len(arrays["y_train"]) or len(arrays["x_test"]) != len(
        arrays["y_test"]
    ):
        raise DataError(
            f"dataset {name!r} in {files['x_train'].parent}: image and label counts differ"
        )
    return RawData.from_numpy(**arrays, source=str(files["x_train"].parent))
