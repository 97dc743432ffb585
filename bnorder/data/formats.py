"""Readers for the datasets' on-disk formats, as torchvision lays them out under the data root.

bnorder reads the files itself (numpy, no PIL, no per-image work) and uses torchvision only to
download; that also accepts Debian's re-compressed Fashion-MNIST, whose md5 torchvision rejects.
"""

from __future__ import annotations

import gzip
import pickle
import zlib
from pathlib import Path

import numpy as np

from bnorder.errors import DataError

__all__ = ["read_cifar_batches", "read_idx", "write_cifar_batch", "write_idx"]

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (MNIST's format), plain or gzip-compressed, as a numpy array."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            data = bytearray(fh.read())  # writable, so torch.from_numpy needs no copy
    except (OSError, EOFError, zlib.error) as exc:  # zlib.error: a corrupt gzip body
        raise DataError(f"cannot read {path}: {exc}") from exc
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise DataError(f"{path} is not an IDX file (bad magic number)")
    ndim = data[3]
    if len(data) < 4 + 4 * ndim:
        raise DataError(f"{path} is truncated or corrupt: {len(data)} bytes, header cut short")
    dims = np.frombuffer(data, dtype=">u4", count=ndim, offset=4).astype(int)
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    expected = 4 + 4 * ndim + int(np.prod(dims)) * dtype.itemsize
    if len(data) != expected:
        raise DataError(f"{path} is truncated or corrupt: {len(data)} bytes, expected {expected}")
    return np.frombuffer(data, dtype=dtype, offset=4 + 4 * ndim).reshape(dims)


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write ``array`` (uint8) as an IDX file, gzip-compressed if ``path`` ends in ``.gz``."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as fh:
        fh.write(header + array.tobytes())


def read_cifar_batches(paths: list[Path], label_key: str) -> tuple[np.ndarray, np.ndarray]:
    """CIFAR's pickled batches -> (N×3×32×32 uint8 images, N int64 labels)."""
    images, labels = [], []
    for path in paths:
        try:
            with open(path, "rb") as fh:
                batch = pickle.load(fh, encoding="bytes")
            x = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
            y = np.asarray(batch[label_key.encode()], dtype=np.int64).reshape(-1)
        except (OSError, pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError) as exc:
            raise DataError(f"cannot read CIFAR batch {path}: {exc!r}") from exc
        if len(x) != len(y):
            raise DataError(f"CIFAR batch {path} is corrupt: {len(x)} images but {len(y)} labels")
        images.append(x)
        labels.append(y)
    return np.concatenate(images), np.concatenate(labels)


def write_cifar_batch(path: Path, images: np.ndarray, labels: np.ndarray, label_key: str) -> None:
    """Write one batch in CIFAR's pickle format (N×3×32×32 uint8 images)."""
    batch = {
        b"batch_label": b"bnorder",
        b"data": np.ascontiguousarray(images, dtype=np.uint8).reshape(len(images), -1),
        label_key.encode(): [int(v) for v in labels],
    }
    with open(path, "wb") as fh:
        pickle.dump(batch, fh)
