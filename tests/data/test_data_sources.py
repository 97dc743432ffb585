"""Datasets by name: the registry, the folder layouts under the data root, Debian's
Fashion-MNIST, and the errors for a dataset that is missing (offline or with a failed download).

``load_dataset`` caches per (name, resolved root, download), so every test uses its own root.
"""

from __future__ import annotations

import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from data_layouts import IDX_FOLDERS, Written, make_dataset

from bnorder.data import (
    DATASET_NAMES,
    RawData,
    default_data_root,
    get_dataset,
    load_dataset,
    sources,
)
from bnorder.data.formats import write_idx
from bnorder.errors import ConfigError, DataError

FILE_DATASETS = ("cifar10", "cifar100", "mnist", "fashion_mnist")


def _assert_matches(raw: RawData, written: Written) -> None:
    for field in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(raw, field).numpy(), getattr(written, field))
    assert raw.x_train.dtype == raw.x_test.dtype == torch.uint8
    assert raw.y_train.dtype == raw.y_test.dtype == torch.int64
    assert raw.source == str(written.folder)


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


# --------------------------------------------------------------------------- names


def test_dataset_names() -> None:
    assert DATASET_NAMES == (
        "cifar10",
        "cifar100",
        "fashion_mnist",
        "mnist",
        "synthetic",
        "cifar_shaped",
    )


@pytest.mark.parametrize(
    ("given", "name"),
    [
        ("FMNIST", "fashion_mnist"),
        ("fmnist", "fashion_mnist"),
        ("Fashion-MNIST", "fashion_mnist"),
        ("fashion mnist", "fashion_mnist"),
        ("FashionMNIST", "fashion_mnist"),
        ("CIFAR-10", "cifar10"),
        ("Cifar_100", "cifar100"),
        ("MNIST", "mnist"),
        (" synthetic ", "synthetic"),
    ],
)
def test_aliases_resolve(given: str, name: str) -> None:
    assert get_dataset(given).name == name


@pytest.mark.parametrize(
    ("typo", "suggestion"),
    [
        ("fashion-mnst", "fashion_mnist"),
        ("fasion_mnist", "fashion_mnist"),
        ("minst", "mnist"),
        ("cifar-1O", "cifar10"),
        ("cifar1000", "cifar100"),
        ("synthetc", "synthetic"),
    ],
)
def test_unknown_name_suggests_the_closest(typo: str, suggestion: str) -> None:
    pattern = (
        rf"^dataset: unknown dataset '{re.escape(typo)}'; did you mean '{suggestion}'\? "
        r"valid: cifar10, cifar100, fashion_mnist, mnist, synthetic, cifar_shaped$"
    )
    with pytest.raises(ConfigError, match=pattern):
        get_dataset(typo)


def test_unknown_name_with_nothing_close(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown dataset 'imagenet'; valid: cifar10, ") as info:
        load_dataset("imagenet", tmp_path / "root")
    assert "did you mean" not in str(info.value)
    assert not (tmp_path / "root").exists()


def test_unknown_name_names_the_field() -> None:
    with pytest.raises(ConfigError, match=r"^sweeps/a\.yaml: dataset: unknown dataset 'mnsit'"):
        get_dataset("mnsit", field="sweeps/a.yaml: dataset")


# --------------------------------------------------------------------------- layouts


@pytest.mark.parametrize("name", FILE_DATASETS)
def test_load_from_generated_files(tmp_path: Path, name: str) -> None:
    written = make_dataset(name, tmp_path)
    raw = load_dataset(name, tmp_path, download=False)
    _assert_matches(raw, written)
    spec = get_dataset(name)
    assert tuple(raw.x_train.shape[1:]) == tuple(raw.x_test.shape[1:]) == spec.in_shape
    assert int(raw.y_train.max()) < spec.num_classes
    assert raw.x_train.is_contiguous()


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_load_idx_gz(tmp_path: Path, name: str) -> None:
    written = make_dataset(name, tmp_path, gz=True, seed=5)
    _assert_matches(load_dataset(name, tmp_path, download=False), written)


def test_cifar100_uses_fine_labels(tmp_path: Path) -> None:
    written = make_dataset("cifar100", tmp_path, n_train=200)
    raw = load_dataset("cifar100", tmp_path)
    np.testing.assert_array_equal(raw.y_train.numpy(), written.y_train)  # coarse ones are ≥ 100
    assert int(raw.y_train.max()) > 20  # more than CIFAR-100's 20 coarse classes


def test_cifar10_concatenates_batches_in_order(tmp_path: Path) -> None:
    """data_batch_1..5 of sizes 3, 3, 2, 2, 2: the 12 images come back in file order."""
    written = make_dataset("cifar10", tmp_path, n_train=12, n_test=3)
    _assert_matches(load_dataset("cifar10", tmp_path), written)


@pytest.mark.parametrize("name", FILE_DATASETS)
def test_root_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    written = make_dataset(name, tmp_path / "env-root", seed=7)
    monkeypatch.setenv("BNORDER_DATA_ROOT", str(tmp_path / "env-root"))
    _assert_matches(load_dataset(name), written)


def test_root_with_tilde(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    written = make_dataset("mnist", tmp_path / "data", seed=8)
    _assert_matches(load_dataset("mnist", "~/data"), written)
    monkeypatch.setenv("BNORDER_DATA_ROOT", "~/data")
    assert default_data_root() == tmp_path / "data"


def test_default_root_without_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BNORDER_DATA_ROOT")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_data_root() == tmp_path / "xdg" / "bnorder" / "data"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_data_root() == tmp_path / "home" / ".cache" / "bnorder" / "data"


def test_loads_are_cached_per_resolved_root(tmp_path: Path) -> None:
    make_dataset("fashion_mnist", tmp_path / "root")
    first = load_dataset("fashion_mnist", tmp_path / "root")
    assert load_dataset("FMNIST", tmp_path / "root" / ".." / "root") is first
    assert load_dataset("Fashion-MNIST", str(tmp_path / "root")) is first


def test_root_copy_of_fashion_mnist_wins_over_debian(tmp_path: Path) -> None:
    written = make_dataset("fashion_mnist", tmp_path, n_train=4, n_test=2)
    raw = load_dataset("fashion_mnist", tmp_path)
    assert len(raw.y_train) == 4
    _assert_matches(raw, written)


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_idx_image_and_label_counts_must_agree(tmp_path: Path, name: str) -> None:
    written = make_dataset(name, tmp_path)
    write_idx(written.folder / "t10k-labels-idx1-ubyte", written.y_test[:-1])
    with pytest.raises(DataError, match=rf"{re.escape(str(written.folder))}: image and label"):
        load_dataset(name, tmp_path)


# --------------------------------------------------------------------------- real data


@pytest.fixture(scope="module")
def real_fashion_mnist(
    fashion_mnist_files: Path, tmp_path_factory: pytest.TempPathFactory
) -> RawData:
    """Debian's Fashion-MNIST, found through the fallback from an empty data root."""
    return load_dataset("fashion_mnist", tmp_path_factory.mktemp("empty-root"), download=False)


def test_real_fashion_mnist_shapes(real_fashion_mnist: RawData, fashion_mnist_files: Path) -> None:
    raw = real_fashion_mnist
    assert raw.source == str(fashion_mnist_files)
    assert tuple(raw.x_train.shape) == (60000, 1, 28, 28)
    assert tuple(raw.x_test.shape) == (10000, 1, 28, 28)
    assert raw.x_train.dtype == torch.uint8
    assert raw.y_train.dtype == torch.int64
    assert tuple(raw.y_test.shape) == (10000,)


def test_real_fashion_mnist_classes_and_pixels(real_fashion_mnist: RawData) -> None:
    raw = real_fashion_mnist
    assert torch.bincount(raw.y_train).tolist() == [6000] * 10
    assert torch.bincount(raw.y_test).tolist() == [1000] * 10
    mean = raw.x_train.double().mean().item() / 255
    assert mean == pytest.approx(0.2860, abs=1e-3)
    assert int(raw.x_train.max()) == 255
    assert int(raw.x_train.min()) == 0


# --------------------------------------------------------------------------- missing data


@pytest.fixture
def no_debian_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the Debian fallback at a folder that does not exist, so Fashion-MNIST is missing."""
    absent = tmp_path / "no-debian" / "fashion-mnist"
    monkeypatch.setattr(sources, "DEBIAN_FASHION_MNIST", absent)
    return absent


def _looked_in(name: str, root: Path, debian: Path) -> list[Path]:
    if name == "cifar10":
        return [root / "cifar-10-batches-py"]
    if name == "cifar100":
        return [root / "cifar-100-python"]
    return [root / IDX_FOLDERS[name] / "raw"] + ([debian] if name == "fashion_mnist" else [])


@pytest.mark.parametrize("download", [True, False])
@pytest.mark.parametrize("name", FILE_DATASETS)
def test_missing_dataset_offline(
    tmp_path: Path, no_debian_copy: Path, name: str, download: bool
) -> None:
    root = tmp_path / "new" / "root"
    with pytest.raises(DataError, match=rf"^dataset '{name}' not found") as info:
        load_dataset(name, root, download=download)
    message = str(info.value)
    for place in _looked_in(name, root, no_debian_copy):
        assert str(place) in message
    assert "data root (--data-root or BNORDER_DATA_ROOT)" in message
    assert ("downloads are off (BNORDER_OFFLINE)" in message) == download
    assert ("apt-get install dataset-fashion-mnist" in message) == (name == "fashion_mnist")
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("name", FILE_DATASETS)
def test_missing_dataset_leaves_an_existing_root_alone(
    tmp_path: Path, no_debian_copy: Path, name: str
) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(DataError):
        load_dataset(name, tmp_path)
    assert _tree(tmp_path) == ["keep.txt"]


@pytest.mark.parametrize(
    ("name", "remove"),
    [
        ("cifar10", "data_batch_5"),
        ("cifar10", "test_batch"),
        ("cifar100", "test"),
        ("mnist", "t10k-labels-idx1-ubyte"),
        ("fashion_mnist", "train-images-idx3-ubyte"),
    ],
)
def test_incomplete_dataset_is_missing(
    tmp_path: Path,
    no_debian_copy: Path,
    name: str,
    remove: str,
) -> None:
    written = make_dataset(name, tmp_path)
    (written.folder / remove).unlink()
    with pytest.raises(DataError, match=rf"dataset '{name}' not found"):
        load_dataset(name, tmp_path)


@pytest.fixture
def downloads_fail_fast(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Downloads allowed, but every HTTP(S) request goes to a closed local port: the download
    fails at once, here and on machines with internet access alike."""
    monkeypatch.delenv("BNORDER_OFFLINE")
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    for var in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(var, raising=False)
    yield
    # urlopen's global opener reads the proxies once, when first built: left in place, it
    # would send every later request of this process (tests' local servers) to that port
    urllib.request.install_opener(None)


@pytest.mark.usefixtures("downloads_fail_fast")
@pytest.mark.parametrize("name", FILE_DATASETS)
def test_failed_download_removes_what_it_created(
    tmp_path: Path, no_debian_copy: Path, name: str
) -> None:
    root = tmp_path / "new" / "root"
    with pytest.raises(DataError, match=rf"^dataset '{name}' not found .* download failed") as info:
        load_dataset(name, root)
    for place in _looked_in(name, root, no_debian_copy):
        assert str(place) in str(info.value)
    assert not (tmp_path / "new").exists()


@pytest.mark.usefixtures("downloads_fail_fast")
def test_failed_download_keeps_what_was_there(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    (tmp_path / "MNIST").mkdir()  # a folder of its own, e.g. from an earlier partial copy
    with pytest.raises(DataError, match=r"download failed"):
        load_dataset("cifar10", tmp_path)
    assert _tree(tmp_path) == ["MNIST", "keep.txt"]
