"""The on-disk readers: IDX (MNIST's format, plain and gz) and CIFAR's pickled batches."""

from __future__ import annotations

import gzip
import pickle
import re
import struct
from pathlib import Path

import numpy as np
import pytest

from bnorder.data.formats import read_cifar_batches, read_idx, write_cifar_batch, write_idx
from bnorder.errors import DataError


def _path_in_message(path: Path) -> str:
    return re.escape(str(path))


# --------------------------------------------------------------------------- IDX


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("shape", [(5, 28, 28), (7,), (2, 3, 4, 5), (0, 28, 28)])
def test_idx_round_trip(tmp_path: Path, suffix: str, shape: tuple[int, ...]) -> None:
    array = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    path = tmp_path / f"images-idx{len(shape)}-ubyte{suffix}"
    write_idx(path, array)
    back = read_idx(path)
    assert back.dtype == np.uint8
    assert back.shape == shape
    np.testing.assert_array_equal(back, array)
    assert back.flags.writeable  # so torch.from_numpy can share it without a copy


def test_idx_gz_is_really_compressed(tmp_path: Path) -> None:
    array = np.zeros((100, 28, 28), dtype=np.uint8)
    write_idx(tmp_path / "a.gz", array)
    write_idx(tmp_path / "a", array)
    raw = (tmp_path / "a.gz").read_bytes()
    assert raw[:2] == b"\x1f\x8b"
    assert gzip.decompress(raw) == (tmp_path / "a").read_bytes()
    assert len(raw) < (tmp_path / "a").stat().st_size


@pytest.mark.parametrize(
    ("code", "dtype"),
    [
        (0x08, np.uint8),
        (0x09, np.int8),
        (0x0B, np.dtype(">i2")),
        (0x0C, np.dtype(">i4")),
        (0x0D, np.dtype(">f4")),
        (0x0E, np.dtype(">f8")),
    ],
)
def test_read_idx_of_a_file_built_from_the_spec(tmp_path: Path, code: int, dtype) -> None:
    """Header: two zero bytes, a dtype code, ndim; then big-endian u32 dims; then the data."""
    values = np.arange(-3, 9).reshape(3, 4) if code != 0x08 else np.arange(12).reshape(3, 4)
    path = tmp_path / "spec-idx"
    path.write_bytes(
        bytes([0, 0, code, 2]) + struct.pack(">II", 3, 4) + values.astype(dtype).tobytes()
    )
    back = read_idx(path)
    assert back.shape == (3, 4)
    np.testing.assert_array_equal(back, values)


def test_read_idx_labels_from_the_spec(tmp_path: Path) -> None:
    path = tmp_path / "labels-idx1-ubyte"
    path.write_bytes(b"\x00\x00\x08\x01" + struct.pack(">I", 4) + bytes([9, 0, 3, 255]))
    np.testing.assert_array_equal(read_idx(path), [9, 0, 3, 255])


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"\x00\x00", id="shorter-than-magic"),
        pytest.param(b"\x01\x00\x08\x01\x00\x00\x00\x01\x07", id="first-byte-nonzero"),
        pytest.param(b"\x00\x01\x08\x01\x00\x00\x00\x01\x07", id="second-byte-nonzero"),
        pytest.param(b"\x00\x00\x07\x01\x00\x00\x00\x01\x07", id="unknown-dtype"),
        pytest.param(b"PK\x03\x04 not idx at all", id="zip-file"),
    ],
)
def test_read_idx_bad_magic(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad-idx1-ubyte"
    path.write_bytes(content)
    with pytest.raises(DataError, match=_path_in_message(path) + r".*bad magic"):
        read_idx(path)


def test_read_idx_bad_magic_inside_gz(tmp_path: Path) -> None:
    path = tmp_path / "bad-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(b"\xff\xff\xff\xff" + bytes(20)))
    with pytest.raises(DataError, match=_path_in_message(path) + r".*bad magic"):
        read_idx(path)


@pytest.mark.parametrize("cut", [1, 100, 28 * 28])
def test_read_idx_truncated_data(tmp_path: Path, cut: int) -> None:
    path = tmp_path / "train-images-idx3-ubyte"
    write_idx(path, np.ones((3, 28, 28), dtype=np.uint8))
    path.write_bytes(path.read_bytes()[:-cut])
    with pytest.raises(DataError, match=_path_in_message(path) + r" is truncated or corrupt"):
        read_idx(path)


def test_read_idx_trailing_garbage(tmp_path: Path) -> None:
    path = tmp_path / "train-labels-idx1-ubyte"
    write_idx(path, np.arange(10, dtype=np.uint8))
    path.write_bytes(path.read_bytes() + b"\x00")
    with pytest.raises(DataError, match=_path_in_message(path) + r".*expected 18"):
        read_idx(path)


@pytest.mark.parametrize("keep", [5, 8, 11])
def test_read_idx_truncated_header(tmp_path: Path, keep: int) -> None:
    """Cut inside the dims (3 dims need 16 header bytes): a DataError, not numpy's ValueError."""
    path = tmp_path / "train-images-idx3-ubyte"
    write_idx(path, np.ones((3, 28, 28), dtype=np.uint8))
    path.write_bytes(path.read_bytes()[:keep])
    with pytest.raises(DataError, match=_path_in_message(path) + r" is truncated or corrupt"):
        read_idx(path)


def test_read_idx_truncated_gz(tmp_path: Path) -> None:
    path = tmp_path / "train-images-idx3-ubyte.gz"
    write_idx(path, np.random.default_rng(0).integers(0, 256, (20, 28, 28), dtype=np.uint8))
    path.write_bytes(path.read_bytes()[:-50])
    with pytest.raises(DataError, match=r"cannot read " + _path_in_message(path)):
        read_idx(path)


def test_read_idx_corrupt_gz_body(tmp_path: Path) -> None:
    """A gzip file whose deflate stream is damaged (zlib.error) is a DataError too."""
    path = tmp_path / "train-images-idx3-ubyte.gz"
    write_idx(path, np.arange(10_000, dtype=np.int64).reshape(10, 1000).astype(np.uint8))
    data = bytearray(path.read_bytes())
    for i in range(20, len(data) - 8):  # keep the gzip header and trailer, flip the body
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"cannot read " + _path_in_message(path)):
        read_idx(path)


def test_read_idx_plain_file_named_gz(tmp_path: Path) -> None:
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    write_idx(tmp_path / "plain", np.arange(5, dtype=np.uint8))
    path.write_bytes((tmp_path / "plain").read_bytes())
    with pytest.raises(DataError, match=r"cannot read " + _path_in_message(path)):
        read_idx(path)


def test_read_idx_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent-idx1-ubyte"
    with pytest.raises(DataError, match=r"cannot read " + _path_in_message(path)):
        read_idx(path)


# --------------------------------------------------------------------------- CIFAR


def _pickle(path: Path, obj: object) -> Path:
    with open(path, "wb") as fh:
        pickle.dump(obj, fh)
    return path


def test_cifar_layout_is_r_then_g_then_b_planes(tmp_path: Path) -> None:
    """A batch built by hand from CIFAR's spec: each row is 1024 R, 1024 G, 1024 B values, each
    plane row-major 32×32. Reading it must put every value at [n, channel, row, col]."""
    data = np.zeros((2, 3072), dtype=np.uint8)
    data[0, 0 * 1024 + 0 * 32 + 1] = 11  # image 0, R, row 0, col 1
    data[0, 1 * 1024 + 2 * 32 + 3] = 22  # image 0, G, row 2, col 3
    data[0, 2 * 1024 + 31 * 32 + 30] = 33  # image 0, B, row 31, col 30
    data[1, 1 * 1024 + 5 * 32 + 0] = 44  # image 1, G, row 5, col 0
    path = _pickle(tmp_path / "data_batch_1", {b"data": data, b"labels": [7, 2]})
    x, y = read_cifar_batches([path], "labels")
    assert x.shape == (2, 3, 32, 32)
    assert x.dtype == np.uint8
    assert y.dtype == np.int64
    np.testing.assert_array_equal(y, [7, 2])
    expected = np.zeros((2, 3, 32, 32), dtype=np.uint8)
    expected[0, 0, 0, 1] = 11
    expected[0, 1, 2, 3] = 22
    expected[0, 2, 31, 30] = 33
    expected[1, 1, 5, 0] = 44
    np.testing.assert_array_equal(x, expected)


def test_cifar_round_trip_keeps_values_labels_and_batch_order(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    batches = [
        (rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8), rng.integers(0, 10, n))
        for n in (3, 1, 4)
    ]
    paths = []
    for i, (images, labels) in enumerate(batches, start=1):
        paths.append(tmp_path / f"data_batch_{i}")
        write_cifar_batch(paths[-1], images, labels, "labels")
    x, y = read_cifar_batches(paths, "labels")
    np.testing.assert_array_equal(x, np.concatenate([b[0] for b in batches]))
    np.testing.assert_array_equal(y, np.concatenate([b[1] for b in batches]))


def test_write_cifar_batch_writes_cifars_flat_layout(tmp_path: Path) -> None:
    images = np.random.default_rng(3).integers(0, 256, (2, 3, 32, 32), dtype=np.uint8)
    path = tmp_path / "test_batch"
    write_cifar_batch(path, images, np.array([4, 5]), "labels")
    with open(path, "rb") as fh:
        batch = pickle.load(fh, encoding="bytes")
    assert batch[b"data"].shape == (2, 3072)
    np.testing.assert_array_equal(batch[b"data"][1, 1024:2048], images[1, 1].ravel())  # G plane
    assert batch[b"labels"] == [4, 5]


def test_cifar100_reads_the_label_key_asked_for(tmp_path: Path) -> None:
    data = np.zeros((3, 3072), dtype=np.uint8)
    batch = {b"data": data, b"fine_labels": [99, 0, 42], b"coarse_labels": [19, 0, 7]}
    path = _pickle(tmp_path / "train", batch)
    np.testing.assert_array_equal(read_cifar_batches([path], "fine_labels")[1], [99, 0, 42])
    np.testing.assert_array_equal(read_cifar_batches([path], "coarse_labels")[1], [19, 0, 7])


_GOOD = {b"data": np.zeros((2, 3072), dtype=np.uint8), b"labels": [0, 1]}


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"this is not a pickle", id="garbage"),
        pytest.param(pickle.dumps(_GOOD)[:-40], id="truncated"),
        pytest.param(pickle.dumps({b"data": _GOOD[b"data"]}), id="no-labels"),
        pytest.param(pickle.dumps({b"labels": [0, 1]}), id="no-data"),
        pytest.param(pickle.dumps([1, 2, 3]), id="not-a-dict"),
        pytest.param(pickle.dumps({b"data": np.zeros((2, 100)), b"labels": [0, 1]}), id="size"),
        pytest.param(pickle.dumps({b"data": _GOOD[b"data"], b"labels": [0]}), id="label-count"),
    ],
)
def test_corrupt_cifar_batch(tmp_path: Path, content: bytes) -> None:
    good = _pickle(tmp_path / "data_batch_1", _GOOD)
    bad = tmp_path / "data_batch_2"
    bad.write_bytes(content)
    with pytest.raises(DataError, match=_path_in_message(bad)):
        read_cifar_batches([good, bad], "labels")


def test_missing_cifar_batch(tmp_path: Path) -> None:
    path = tmp_path / "data_batch_9"
    with pytest.raises(DataError, match=r"cannot read CIFAR batch " + _path_in_message(path)):
        read_cifar_batches([path], "labels")
