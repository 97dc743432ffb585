"""``bnorder data fetch`` / ``data list``: datasets land in the data root verified, once; a
failed fetch leaves nothing behind; the listing says what is present where."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from data_layouts import make_dataset

from bnorder.data import DATASET_NAMES, RawData, get_dataset, sources
from bnorder.data.fetch import fetch, survey, verify
from bnorder.errors import DataError


@pytest.fixture
def no_debian_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    absent = tmp_path / "no-debian" / "fashion-mnist"
    monkeypatch.setattr(sources, "DEBIAN_FASHION_MNIST", absent)
    return absent


def _full_size(name: str, *, classes: int | None = None) -> RawData:
    """A dataset of the published sizes without the memory: one image expanded (a view)."""
    spec = get_dataset(name)
    n_train, n_test = spec.sizes
    image = torch.zeros((1, *spec.in_shape), dtype=torch.uint8)
    labels = lambda n: torch.arange(n) % (classes or spec.num_classes)  # noqa: E731
    return RawData(
        image.expand(n_train, *spec.in_shape),
        labels(n_train),
        image.expand(n_test, *spec.in_shape),
        labels(n_test),
        "memory",
    )


@pytest.mark.parametrize("name", ["cifar10", "cifar100", "mnist", "fashion_mnist"])
def test_verify_accepts_the_published_sizes(name: str) -> None:
    verify(get_dataset(name), _full_size(name))


def test_verify_names_every_problem() -> None:
    raw = _full_size("cifar10", classes=4)
    cut = RawData(raw.x_train[:100], raw.y_train[:100], raw.x_test, raw.y_test, "/data/cifar")
    with pytest.raises(DataError) as info:
        verify(get_dataset("cifar10"), cut)
    message = str(info.value)
    assert message.startswith("dataset 'cifar10' in /data/cifar failed verification")
    assert "100/10000 train/test examples, expected 50000/10000" in message
    assert "4 classes in train, expected 10" in message
    assert "bnorder data fetch cifar10" in message


def test_fetch_fashion_mnist_copies_debian_files_into_the_root(
    tmp_path: Path, fashion_mnist_files: Path
) -> None:
    root = tmp_path / "root"
    raw = fetch("fashion_mnist", root)
    raw_dir = root / "FashionMNIST" / "raw"
    assert raw.source == str(raw_dir)
    assert sorted(p.name for p in raw_dir.iterdir()) == sorted(sources.IDX_FILES.values())
    assert (len(raw.x_train), len(raw.x_test)) == (60_000, 10_000)
    assert sorted(p.name for p in root.iterdir()) == ["FashionMNIST"]  # no lock or temp left
    again = fetch("fashion_mnist", root)  # present: read, verified, nothing rewritten
    assert torch.equal(again.x_test, raw.x_test)


def test_fetch_of_small_files_fails_verification(tmp_path: Path) -> None:
    make_dataset("mnist", tmp_path, n_train=30, n_test=10)
    with pytest.raises(DataError, match="30/10 train/test examples, expected 60000/10000"):
        fetch("mnist", tmp_path)


@pytest.mark.parametrize("name", ["cifar10", "fashion_mnist"])
def test_failed_fetch_leaves_nothing(tmp_path: Path, no_debian_copy: Path, name: str) -> None:
    root = tmp_path / "new" / "root"
    with pytest.raises(DataError, match="downloads are off"):
        fetch(name, root)
    assert not (tmp_path / "new").exists()


def test_fetch_into_a_root_that_cannot_be_made(tmp_path: Path, no_debian_copy: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")  # even root cannot make a folder under a file
    with pytest.raises(DataError, match=r"cannot be created .*pass a writable --data-root"):
        fetch("mnist", blocker / "root")
    assert blocker.read_text() == "not a folder"


def test_survey_lists_present_and_missing(tmp_path: Path, no_debian_copy: Path) -> None:
    found = {p.dataset: p for p in survey(tmp_path)}
    assert tuple(found) == DATASET_NAMES
    assert found["synthetic"].present
    assert (found["synthetic"].train, found["synthetic"].test) == get_dataset("synthetic").sizes
    assert not found["cifar10"].present
    assert "not found" in found["cifar10"].problem
    assert not (tmp_path / "cifar-10-batches-py").exists()  # listing never downloads


def test_survey_reports_an_incomplete_copy_as_missing(tmp_path: Path) -> None:
    make_dataset("cifar10", tmp_path)
    found = {p.dataset: p for p in survey(tmp_path)}
    assert not found["cifar10"].present
    assert "failed verification" in found["cifar10"].problem


def test_cli_fetch_and_list(cli, tmp_path: Path, fashion_mnist_files: Path) -> None:
    root = tmp_path / "root"
    code, out, err = cli("data", "fetch", "fmnist", "--data-root", str(root))
    assert code == 0, err
    assert "fashion_mnist" not in err
    assert "60,000 train / 10,000 test images (1, 28, 28), verified" in out
    code, out, err = cli("data", "list", "--data-root", str(root))
    assert code == 0, err
    line = next(x for x in out.splitlines() if "fashion_mnist" in x)
    assert "present" in line
    assert str(root / "FashionMNIST" / "raw") in line
    assert "`bnorder data fetch cifar10`" in out


def test_cli_fetch_errors_are_one_line(cli, tmp_path: Path) -> None:
    code, _, err = cli("data", "fetch", "cifar1O", "--data-root", str(tmp_path / "r"))
    assert code == 2
    assert err.strip().count("\n") == 0
    assert "bnorder data fetch: error: dataset: unknown dataset 'cifar1O'" in err
    assert "did you mean 'cifar10'?" in err
    code, _, err = cli("data", "fetch", "cifar10", "--data-root", str(tmp_path / "r"))
    assert code == 1  # a failed download, not a usage error
    assert "downloads are off" in err
    assert not (tmp_path / "r").exists()
