"""Small datasets written in the real on-disk layouts (torchvision's folders under a data root),
so the loaders are tested on files, not on mocks. A plain module (not conftest) so tests can
import its names; pytest puts this folder on sys.path for the test files beside it."""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bnorder.data.formats import write_cifar_batch, write_idx

IDX_STEMS = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
IDX_FOLDERS = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}


@dataclass(frozen=True)
class Written:
    """What a generator wrote: N×C×H×W uint8 images and int64 labels, and where."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    folder: Path


def _arrays(
    n_train: int, n_test: int, shape: tuple[int, ...], classes: int, seed: int
) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    return (
        rng.integers(0, 256, (n_train, *shape), dtype=np.uint8),
        rng.integers(0, classes, n_train).astype(np.int64),
        rng.integers(0, 256, (n_test, *shape), dtype=np.uint8),
        rng.integers(0, classes, n_test).astype(np.int64),
    )


def write_cifar100_batch(path: Path, images: np.ndarray, fine: np.ndarray) -> None:
    """A batch laid out as the real CIFAR-100 file: coarse and fine labels both present (the
    coarse ones deliberately different, so picking the wrong key shows)."""
    batch = {
        b"batch_label": b"bnorder test",
        b"filenames": [f"img_{i}.png".encode() for i in range(len(images))],
        b"fine_labels": [int(v) for v in fine],
        b"coarse_labels": [int(v) % 20 + 100 for v in fine],
        b"data": np.ascontiguousarray(images, dtype=np.uint8).reshape(len(images), -1),
    }
    with open(path, "wb") as fh:
        pickle.dump(batch, fh)


def make_dataset(
    name: str, root: Path, *, n_train: int = 20, n_test: int = 7, gz: bool = False, seed: int = 0
) -> Written:
    """Write dataset ``name`` under ``root`` as torchvision lays it out; return what was written.

    cifar10 splits its training set over data_batch_1..5 (uneven, to check the concatenation
    order); mnist and fashion_mnist write IDX files, gzip-compressed when ``gz``.
    """
    if name in IDX_FOLDERS:
        arrays = _arrays(n_train, n_test, (28, 28), 10, seed)
        folder = root / IDX_FOLDERS[name] / "raw"
        folder.mkdir(parents=True, exist_ok=True)
        for array, stem in zip(arrays, IDX_STEMS.values(), strict=True):
            write_idx(folder / (stem + (".gz" if gz else "")), array)
        x_train, y_train, x_test, y_test = arrays
        return Written(x_train[:, None], y_train, x_test[:, None], y_test, folder)
    x_train, y_train, x_test, y_test = _arrays(
        n_train, n_test, (3, 32, 32), 10 if name == "cifar10" else 100, seed
    )
    if name == "cifar10":
        folder = root / "cifar-10-batches-py"
        folder.mkdir(parents=True, exist_ok=True)
        cuts = np.array_split(np.arange(n_train), 5)
        for i, idx in enumerate(cuts, start=1):
            write_cifar_batch(folder / f"data_batch_{i}", x_train[idx], y_train[idx], "labels")
        write_cifar_batch(folder / "test_batch", x_test, y_test, "labels")
    elif name == "cifar100":
        folder = root / "cifar-100-python"
        folder.mkdir(parents=True, exist_ok=True)
        write_cifar100_batch(folder / "train", x_train, y_train)
        write_cifar100_batch(folder / "test", x_test, y_test)
    else:
        raise ValueError(f"no generator for {name!r}")
    return Written(x_train, y_train, x_test, y_test, folder)
