"""Datasets by name, loaded once into uint8 tensors: ``load_dataset("fashion_mnist")``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache, partial
from pathlib import Path

from bnorder.data.batches import Split, TrialData, prepare_data
from bnorder.data.sources import RawData, default_data_root, load_cifar, load_idx_dataset
from bnorder.data.synthetic import (
    CIFAR_SHAPE,
    CIFAR_SIZES,
    N_TEST,
    N_TRAIN,
    SYNTHETIC_SHAPE,
    make_cifar_shaped,
    make_synthetic,
)
from bnorder.registry import lookup, register

__all__ = [
    "DATASETS",
    "DATASET_NAMES",
    "DatasetSpec",
    "RawData",
    "Split",
    "TrialData",
    "default_data_root",
    "get_dataset",
    "load_dataset",
    "prepare_data",
]


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    in_shape: tuple[int, int, int]  # channels, height, width
    num_classes: int
    load: Callable[..., RawData]  # (root, *, download) -> RawData
    description: str
    sizes: tuple[int, int]  # train and test examples of the full dataset, checked by fetch


DATASETS: dict[str, DatasetSpec] = {}
for _spec, _aliases in [
    (
        DatasetSpec(
            "cifar10",
            (3, 32, 32),
            10,
            partial(load_cifar, "cifar10"),
            "CIFAR-10, 50k/10k colour 32×32 (the seed's dataset; downloads on first use)",
            (50_000, 10_000),
        ),
        (),
    ),
    (
        DatasetSpec(
            "cifar100",
            (3, 32, 32),
            100,
            partial(load_cifar, "cifar100"),
            "CIFAR-100, fine labels",
            (50_000, 10_000),
        ),
        (),
    ),
    (
        DatasetSpec(
            "fashion_mnist",
            (1, 28, 28),
            10,
            partial(load_idx_dataset, "fashion_mnist"),
            "Fashion-MNIST, 60k/10k grey 28×28 (offline via Debian's dataset-fashion-mnist)",
            (60_000, 10_000),
        ),
        ("fmnist",),
    ),
    (
        DatasetSpec(
            "mnist",
            (1, 28, 28),
            10,
            partial(load_idx_dataset, "mnist"),
            "MNIST digits",
            (60_000, 10_000),
        ),
        (),
    ),
    (
        DatasetSpec(
            "synthetic",
            SYNTHETIC_SHAPE,
            10,
            lambda root, download=True: make_synthetic(),
            "generated in code: 2560/512 colour 16×16, 10 classes; tests and smoke runs",
            (N_TRAIN, N_TEST),
        ),
        (),
    ),
    (
        DatasetSpec(
            "cifar_shaped",
            CIFAR_SHAPE,
            10,
            lambda root, download=True: make_cifar_shaped(),
            "random uint8 of CIFAR-10's shape and size: throughput only (accuracy is chance)",
            CIFAR_SIZES,
        ),
        (),
    ),
]:
    register(DATASETS, _spec.name, _spec, aliases=_aliases)
DATASET_NAMES: tuple[str, ...] = tuple(dict.fromkeys(s.name for s in DATASETS.values()))


def get_dataset(name: str, *, field: str = "dataset") -> DatasetSpec:
    return lookup(DATASETS, name, field=field, kind="dataset", choices=DATASET_NAMES)


@lru_cache(maxsize=4)
def _load_cached(name: str, root: Path, download: bool) -> RawData:
    return get_dataset(name).load(root, download=download)


def load_dataset(name: str, root: str | Path | None = None, *, download: bool = True) -> RawData:
    """Load a dataset's train and test sets as uint8 tensors (cached per process).

    Args:
        name: a name from :data:`DATASETS`.
        root: the data root; None means ``$BNORDER_DATA_ROOT`` or the user cache dir.
        download: fetch a missing dataset through torchvision (unless ``BNORDER_OFFLINE`` is set).

    Raises:
        DataError: the dataset is missing and cannot be downloaded; the message says where
            bnorder looked and how to get it.
    """
    spec = get_dataset(name)
    base = Path(root).expanduser() if root is not None else default_data_root()
    return _load_cached(spec.name, base.resolve(), download)
