"""``bnorder data fetch`` and ``bnorder data list``: put a dataset into a data root once, checked,
and show what is present where.

On a cluster every node fetches before any trial starts (the launcher's setup commands), so
trials only ever read: no two trials race to download into one folder, and a corrupt or partial
copy fails the node's setup loudly instead of failing trials one by one.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from bnorder.data import (
    DATASET_NAMES,
    DatasetSpec,
    RawData,
    default_data_root,
    get_dataset,
    sources,
)
from bnorder.data.sources import IDX_FILES
from bnorder.errors import DataError

__all__ = ["Presence", "fetch", "survey", "verify"]

GENERATED = ("synthetic", "cifar_shaped")  # made in code: nothing to fetch


@dataclass(frozen=True)
class Presence:
    """One dataset in one data root: where it was found (or why not) and its sizes."""

    dataset: str
    present: bool
    where: str
    train: int | None = None
    test: int | None = None
    problem: str | None = None


def _root(root: str | Path | None) -> Path:
    return (Path(root).expanduser() if root is not None else default_data_root()).resolve()


def verify(spec: DatasetSpec, raw: RawData) -> None:
    """The full dataset, as published: sizes, image shape, labels in range, every class seen.

    Raises:
        DataError: naming the dataset, the folder and what is wrong.
    """
    problems = []
    sizes = (len(raw.x_train), len(raw.x_test))
    if sizes != spec.sizes or (len(raw.y_train), len(raw.y_test)) != spec.sizes:
        problems.append(
            f"{sizes[0]}/{sizes[1]} train/test examples, expected {spec.sizes[0]}/{spec.sizes[1]}"
        )
    for split, x in (("train", raw.x_train), ("test", raw.x_test)):
        if tuple(x.shape[1:]) != spec.in_shape:
            problems.append(
                f"{split} images of shape {tuple(x.shape[1:])}, expected {spec.in_shape}"
            )
    labels = torch.cat([raw.y_train, raw.y_test])
    if len(labels) and (labels.min() < 0 or labels.max() >= spec.num_classes):
        problems.append(f"labels outside 0..{spec.num_classes - 1}")
    elif len(torch.unique(raw.y_train)) != spec.num_classes:
        problems.append(
            f"{len(torch.unique(raw.y_train))} classes in train, expected {spec.num_classes}"
        )
    if problems:
        raise DataError(
            f"dataset {spec.name!r} in {raw.source} failed verification: {'; '.join(problems)}; "
            f"delete that folder and run `bnorder data fetch {spec.name}` again"
        )


@contextlib.contextmanager
def _locked(root: Path, name: str) -> Iterator[None]:
    """One fetch of a dataset at a time per data root (nodes may share an NFS root)."""
    created = [p for p in (root, *root.parents) if not p.exists()]  # innermost first
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(
            f"data root {root} cannot be created ({exc.strerror}); pass a writable --data-root"
        ) from None
    lock = root / f".fetch-{name}.lock"
    try:
        with lock.open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield
    except PermissionError:
        raise DataError(f"data root {root} is not writable; pass a writable --data-root") from None
    finally:
        lock.unlink(missing_ok=True)
        for folder in created:
            with contextlib.suppress(OSError):
                folder.rmdir()  # only if the fetch left nothing in it


def _copy_debian_fashion_mnist(root: Path) -> None:
    """Debian's files are gz re-compressions torchvision rejects by md5: decompress them into
    ``<root>/FashionMNIST/raw`` (whole folder renamed into place, so never half there)."""
    target = root / "FashionMNIST" / "raw"
    if target.exists() or not sources.DEBIAN_FASHION_MNIST.is_dir():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".raw-"))
    try:
        for stem in IDX_FILES.values():
            with (
                gzip.open(sources.DEBIAN_FASHION_MNIST / f"{stem}.gz") as src,
                (tmp / stem).open("wb") as dst,
            ):
                shutil.copyfileobj(src, dst)
        tmp.chmod(0o755)  # mkdtemp's 0700 would hide the data from other users of a shared root
        tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def fetch(name: str, root: str | Path | None = None) -> RawData:
    """Download ``name`` into ``root`` unless present, then read and verify it.

    Raises:
        DataError: it cannot be fetched (offline, network, disk) or fails verification.
    """
    spec = get_dataset(name)
    if spec.name in GENERATED:
        raw = spec.load(None)
        verify(spec, raw)
        return raw
    base = _root(root)
    with _locked(base, spec.name):
        if spec.name == "fashion_mnist":
            _copy_debian_fashion_mnist(base)
        raw = spec.load(base, download=True)
        verify(spec, raw)
    return raw


def survey(root: str | Path | None = None) -> list[Presence]:
    """Every dataset bnorder knows, as found under ``root`` (nothing is downloaded)."""
    base = _root(root)
    found = []
    for name in DATASET_NAMES:
        spec = get_dataset(name)
        if name in GENERATED:
            found.append(Presence(name, True, "generated in code", *spec.sizes))
            continue
        try:
            raw = spec.load(base, download=False)
            verify(spec, raw)
        except DataError as exc:
            found.append(Presence(name, False, str(base), problem=str(exc)))
            continue
        found.append(Presence(name, True, raw.source, len(raw.x_train), len(raw.x_test)))
    return found
