"""A trial's data: subset, seeded val split, normalisation from the training split only, and
seeded shuffled batches with optional crop-and-flip augmentation."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from bnorder.data import RawData, TrialData, prepare_data
from bnorder.data.batches import random_crop_flip

N_TRAIN, N_TEST = 100, 30


def _raw(n_train: int = N_TRAIN, n_test: int = N_TEST, *, seed: int = 0) -> RawData:
    """Random 3×8×8 images whose labels are their index (so every example can be followed);
    the first pixel of each image repeats that index, so images can be followed too."""
    g = torch.Generator().manual_seed(seed)
    x_train = torch.randint(0, 256, (n_train, 3, 8, 8), generator=g, dtype=torch.uint8)
    x_test = torch.randint(0, 256, (n_test, 3, 8, 8), generator=g, dtype=torch.uint8)
    x_train[:, 0, 0, 0] = torch.arange(n_train)
    x_test[:, 0, 0, 0] = torch.arange(n_test)
    return RawData(x_train, torch.arange(n_train), x_test, torch.arange(n_test), "test data")


@pytest.fixture(scope="module")
def raw() -> RawData:
    return _raw()


def _data(raw: RawData, **kwargs) -> TrialData:
    return prepare_data(raw, **{"val_fraction": 0.0, "split_seed": 0} | kwargs)


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    # not torch.testing.assert_close: its first call imports torch.distributed (seconds)
    return (a.double() - b.double()).abs().max().item()


def _ids(batches) -> list[int]:
    return [int(i) for _, y in batches for i in y]


# --------------------------------------------------------------------------- splits


@pytest.mark.parametrize("subset", [1, 40, N_TRAIN, 10 * N_TRAIN])
def test_subset_takes_the_first_n(raw: RawData, subset: int) -> None:
    data = _data(raw, subset=subset)
    assert data.val is None
    assert data.train.y.tolist() == list(range(min(subset, N_TRAIN)))
    assert torch.equal(data.train.x, raw.x_train[:subset])
    assert len(data.test) == N_TEST


@pytest.mark.parametrize(
    ("subset", "fraction", "n_val"),
    [(None, 0.1, 10), (60, 0.25, 15), (37, 0.2, 7), (100, 0.5, 50), (90, 1 / 3, 30)],
)
def test_val_split_sizes_and_disjointness(
    raw: RawData, subset: int | None, fraction: float, n_val: int
) -> None:
    n = subset or N_TRAIN
    assert n_val == round(n * fraction)
    data = _data(raw, subset=subset, val_fraction=fraction, split_seed=3)
    assert data.val is not None
    train, val = data.train.y.tolist(), data.val.y.tolist()
    assert len(val) == n_val
    assert len(train) == n - n_val
    assert not set(train) & set(val)
    assert sorted(train + val) == list(range(n))  # carved from the first `subset` only
    assert train == sorted(train)  # each split keeps the original order
    assert val == sorted(val)
    for split in (data.train, data.val):  # images travel with their labels
        assert torch.equal(split.x, raw.x_train[split.y])


def test_a_positive_val_fraction_carves_at_least_one(raw: RawData) -> None:
    data = _data(raw, subset=10, val_fraction=0.01)
    assert data.val is not None
    assert len(data.val) == 1
    assert len(data.train) == 9


def test_val_split_follows_split_seed(raw: RawData) -> None:
    def val_ids(seed: int) -> tuple[int, ...]:
        val = _data(raw, val_fraction=0.2, split_seed=seed).val
        assert val is not None
        return tuple(val.y.tolist())

    assert val_ids(7) == val_ids(7)
    splits = {val_ids(seed) for seed in range(5)}
    assert len(splits) == 5


def test_val_split_ignores_the_global_rng(raw: RawData) -> None:
    torch.manual_seed(0)
    first = _data(raw, val_fraction=0.2, split_seed=1).val
    torch.manual_seed(12345)
    second = _data(raw, val_fraction=0.2, split_seed=1).val
    assert first is not None
    assert second is not None
    assert torch.equal(first.y, second.y)


def test_no_val_keeps_train_in_order(raw: RawData) -> None:
    data = _data(raw, val_fraction=0.0, split_seed=9)
    assert data.val is None
    assert torch.equal(data.train.y, raw.y_train)
    assert torch.equal(data.train.x, raw.x_train)


@pytest.mark.parametrize("test_subset", [None, 1, 5, N_TEST, 1000])
def test_test_subset(raw: RawData, test_subset: int | None) -> None:
    data = _data(raw, val_fraction=0.1, test_subset=test_subset)
    assert torch.equal(data.test.y, raw.y_test[:test_subset])
    assert torch.equal(data.test.x, raw.x_test[:test_subset])


def test_splits_are_uint8_on_the_device(raw: RawData) -> None:
    data = _data(raw, val_fraction=0.1)
    assert data.val is not None
    for split in (data.train, data.val, data.test):
        assert split.x.dtype == torch.uint8
        assert split.y.dtype == torch.int64
        assert split.x.device.type == split.y.device.type == "cpu"
        assert split.x.is_contiguous()
    assert data.scale.shape == data.shift.shape == (1, 3, 1, 1)


# --------------------------------------------------------------------------- normalisation


def test_half_normalisation_maps_to_minus_one_one() -> None:
    every_value = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16).expand(4, 3, 16, 16)
    raw = RawData(every_value.clone(), torch.arange(4), every_value.clone(), torch.arange(4), "")
    data = _data(raw, normalization="half")
    x = raw.x_train
    out = data.to_float(x)
    assert out.dtype == torch.float32
    # x * (1/127.5) - 1 rather than x / 127.5 - 1: equal up to float32 rounding (one ulp at 1)
    assert _max_diff(out, x.float() / 127.5 - 1) <= 2.5e-7
    assert out.min().item() == -1.0
    assert out.max().item() == 1.0
    assert torch.equal(data.scale, torch.full((1, 3, 1, 1), 1 / 127.5))
    assert torch.equal(data.shift, torch.full((1, 3, 1, 1), -1.0))


def _coloured(n: int, seed: int) -> torch.Tensor:
    """Three channels with very different statistics: dark, bright and narrow, full range."""
    g = torch.Generator().manual_seed(seed)
    return torch.stack(
        [
            torch.randint(0, 60, (n, 8, 8), generator=g),
            torch.randint(180, 200, (n, 8, 8), generator=g),
            torch.randint(0, 256, (n, 8, 8), generator=g),
        ],
        dim=1,
    ).to(torch.uint8)


def test_dataset_normalisation_standardises_the_training_split() -> None:
    raw = RawData(_coloured(200, 0), torch.arange(200), _coloured(50, 1), torch.arange(50), "")
    data = _data(raw, val_fraction=0.25, split_seed=2, normalization="dataset")
    out = data.to_float(data.train.x).double()
    assert _max_diff(out.mean(dim=(0, 2, 3)), torch.zeros(3)) < 1e-5
    assert _max_diff(out.std(dim=(0, 2, 3)), torch.ones(3)) < 1e-4
    assert data.val is not None
    mean_val = data.to_float(data.val.x).mean(dim=(0, 2, 3))
    assert mean_val.abs().max() < 0.1  # same distribution, same statistics, but not refitted


def test_dataset_normalisation_comes_from_the_train_split_only() -> None:
    raw = RawData(_coloured(120, 0), torch.arange(120), _coloured(40, 1), torch.arange(40), "")
    kwargs = {"val_fraction": 0.25, "split_seed": 4, "normalization": "dataset"}
    before = prepare_data(raw, **kwargs)
    assert before.val is not None

    x_train, x_test = raw.x_train.clone(), torch.full_like(raw.x_test, 255)
    x_train[before.val.y] = 255 - x_train[before.val.y]  # every val pixel changes
    changed = prepare_data(RawData(x_train, raw.y_train, x_test, raw.y_test, ""), **kwargs)
    assert torch.equal(changed.scale, before.scale)
    assert torch.equal(changed.shift, before.shift)

    x_train[before.train.y[0]] = 0  # one training image changes: so do the statistics
    changed = prepare_data(RawData(x_train, raw.y_train, x_test, raw.y_test, ""), **kwargs)
    assert not torch.equal(changed.shift, before.shift)


def test_dataset_normalisation_of_a_constant_channel_is_finite() -> None:
    x = _coloured(20, 0)
    x[:, 1] = 77
    data = _data(RawData(x, torch.arange(20), x, torch.arange(20), ""))
    out = data.to_float(data.train.x)
    assert torch.isfinite(out).all()
    assert out[:, 1].abs().max().item() < 1e-3


def test_to_float_leaves_the_stored_images_alone(raw: RawData) -> None:
    data = _data(raw)
    before = data.train.x.clone()
    data.to_float(data.train.x)
    assert torch.equal(data.train.x, before)


# --------------------------------------------------------------------------- train batches


@pytest.mark.parametrize(("n", "batch_size"), [(100, 32), (100, 100), (100, 7), (64, 16), (5, 64)])
def test_an_epoch_covers_every_example_once(n: int, batch_size: int) -> None:
    data = _data(_raw(n))
    batches = list(data.train_batches(batch_size, torch.Generator().manual_seed(0)))
    sizes = [len(y) for _, y in batches]
    assert sizes == [batch_size] * (n // batch_size) + ([n % batch_size] if n % batch_size else [])
    ids = _ids(batches)
    assert sorted(ids) == list(range(n))
    assert ids != list(range(n))  # shuffled
    for x, y in batches:  # images normalised, and still with their labels
        assert x.dtype == torch.float32
        assert torch.equal(x, data.to_float(data.train.x[y]))


def test_a_last_batch_of_one_is_skipped() -> None:
    data = _data(_raw(129))
    batches = list(data.train_batches(128, torch.Generator().manual_seed(0)))
    assert [len(y) for _, y in batches] == [128]
    assert len(set(_ids(batches))) == 128


def test_batches_follow_the_generator_seed(raw: RawData) -> None:
    data = _data(raw)

    def order(seed: int) -> list[int]:
        return _ids(data.train_batches(16, torch.Generator().manual_seed(seed)))

    assert order(1) == order(1)
    assert order(1) != order(2)
    g = torch.Generator().manual_seed(1)  # one generator, two epochs: two orders
    assert _ids(data.train_batches(16, g)) != _ids(data.train_batches(16, g))


def test_augmented_batches(raw: RawData) -> None:
    data = _data(raw)

    def epoch(seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return list(data.train_batches(32, torch.Generator().manual_seed(seed), augment=True))

    first, again, other = epoch(5), epoch(5), epoch(6)
    assert sorted(_ids(first)) == list(range(N_TRAIN))
    for (x, y), (x2, y2) in zip(first, again, strict=True):
        assert x.shape == (len(y), 3, 8, 8)
        assert x.dtype == torch.float32
        assert torch.equal(x, x2)
        assert torch.equal(y, y2)
        assert not torch.equal(x, data.to_float(data.train.x[y]))  # something moved
    assert not all(torch.equal(a[0], b[0]) for a, b in zip(first, other, strict=True))


def _crops(image: torch.Tensor, pad: int) -> list[torch.Tensor]:
    """Every crop (reflect-padded by ``pad``) of one C×H×W image, flipped and not."""
    h, w = image.shape[1:]
    padded = F.pad(image[None], (pad, pad, pad, pad), mode="reflect")[0]
    crops = [
        padded[:, i : i + h, j : j + w] for i in range(2 * pad + 1) for j in range(2 * pad + 1)
    ]
    return crops + [c.flip(-1) for c in crops]


def test_random_crop_flip_returns_crops_of_the_padded_image() -> None:
    x = torch.rand(16, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    out = random_crop_flip(x, torch.Generator().manual_seed(1), pad=2)
    assert out.shape == x.shape
    which = []
    for image, result in zip(x, out, strict=True):
        matches = [k for k, crop in enumerate(_crops(image, 2)) if torch.equal(crop, result)]
        assert matches, "output is not a crop (or flipped crop) of its own input"
        which.append(matches[0])
    assert len(set(which)) > 3  # offsets and flips vary per example


def test_random_crop_flip_with_pad_zero_is_identity_or_flip() -> None:
    x = torch.rand(64, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    out = random_crop_flip(x, torch.Generator().manual_seed(2), pad=0)
    flipped = [torch.equal(o, i.flip(-1)) for i, o in zip(x, out, strict=True)]
    kept = [torch.equal(o, i) for i, o in zip(x, out, strict=True)]
    assert all(f or k for f, k in zip(flipped, kept, strict=True))
    assert any(flipped)
    assert any(kept)


def test_random_crop_flip_is_deterministic_per_seed() -> None:
    x = torch.rand(8, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    a = random_crop_flip(x, torch.Generator().manual_seed(3))
    assert torch.equal(a, random_crop_flip(x, torch.Generator().manual_seed(3)))
    assert not torch.equal(a, random_crop_flip(x, torch.Generator().manual_seed(4)))


# --------------------------------------------------------------------------- eval batches


@pytest.mark.parametrize("batch_size", [1, 7, N_TEST, 1000])
def test_eval_batches_are_in_order_and_complete(raw: RawData, batch_size: int) -> None:
    data = _data(raw, val_fraction=0.3, split_seed=0)
    assert data.val is not None
    for split in (data.test, data.val):
        batches = list(data.eval_batches(split, batch_size))
        assert all(len(y) == batch_size for _, y in batches[:-1])
        assert torch.equal(torch.cat([y for _, y in batches]), split.y)
        assert torch.equal(torch.cat([x for x, _ in batches]), data.to_float(split.x))


# --------------------------------------------------------------------------- GPU


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_batches_on_cuda_match_cpu(raw: RawData) -> None:
    """Splits live on the device; the permutation and crops come from a CPU generator, so a
    seed gives the same batches on either device."""
    cpu = _data(raw, val_fraction=0.2, split_seed=1, normalization="dataset")
    gpu = _data(raw, val_fraction=0.2, split_seed=1, normalization="dataset", device="cuda")
    assert gpu.train.x.is_cuda
    assert gpu.test.y.is_cuda
    assert gpu.scale.is_cuda
    for augment in (False, True):
        on_cpu = cpu.train_batches(16, torch.Generator().manual_seed(0), augment=augment)
        on_gpu = gpu.train_batches(16, torch.Generator().manual_seed(0), augment=augment)
        for (xc, yc), (xg, yg) in zip(on_cpu, on_gpu, strict=True):
            assert xg.is_cuda
            assert torch.equal(yc, yg.cpu())
            assert _max_diff(xc, xg.cpu()) <= 1e-6


def test_augmented_epoch_copies_to_the_device_once_not_per_step(
    raw: RawData, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a GPU each host-to-device copy of crop offsets blocks the host: the draws of a whole
    epoch go in one copy, so the steps never wait (``gpu_check.py`` counts syncs on CUDA)."""
    data = _data(raw)
    copies = []
    original = torch.Tensor.to

    def counting(self: torch.Tensor, *args: object, **kwargs: object) -> torch.Tensor:
        copies.append(args)
        return original(self, *args, **kwargs)

    batches = data.train_batches(8, torch.Generator().manual_seed(0), augment=True)
    monkeypatch.setattr(torch.Tensor, "to", counting)
    steps = sum(1 for _ in batches)
    assert steps >= 8
    assert len(copies) <= 3  # order, offsets, flips: once per epoch


def test_epoch_draws_match_per_batch_draws(raw: RawData) -> None:
    """Drawing an epoch's crops up front keeps the seed's stream: batches equal those made
    with one draw per batch, as before."""
    data = _data(raw)
    gen = torch.Generator().manual_seed(7)
    order = torch.randperm(len(data.train), generator=gen)
    expected = []
    for start in range(0, len(order), 16):
        idx = order[start : start + 16]
        if len(idx) >= 2:
            expected.append(random_crop_flip(data.to_float(data.train.x[idx]), gen))
    got = [x for x, _ in data.train_batches(16, torch.Generator().manual_seed(7), augment=True)]
    assert len(got) == len(expected)
    assert all(torch.equal(a, b) for a, b in zip(got, expected, strict=True))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_augmented_steps_never_sync_on_cuda(raw: RawData) -> None:
    data = _data(raw, device="cuda")
    batches = data.train_batches(8, torch.Generator().manual_seed(0), augment=True)
    next(batches)  # the epoch's one copy of order and crops happens before the first batch
    torch.cuda.set_sync_debug_mode("error")
    try:
        assert sum(1 for _ in batches) >= 8
    finally:
        torch.cuda.set_sync_debug_mode(0)
