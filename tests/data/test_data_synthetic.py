"""``synthetic``: generated in code, the same on every call and every machine, and learnable."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from bnorder.data import RawData, get_dataset, load_dataset
from bnorder.data.synthetic import SYNTHETIC_SHAPE, make_cifar_shaped, make_synthetic


@pytest.fixture(scope="module")
def synthetic() -> RawData:
    return make_synthetic()


def test_deterministic_across_calls_and_global_seeds(synthetic: RawData) -> None:
    torch.manual_seed(12345)  # the generator is its own: the global RNG must not matter
    again = make_synthetic()
    for field in ("x_train", "y_train", "x_test", "y_test"):
        assert torch.equal(getattr(synthetic, field), getattr(again, field)), field


def test_shapes_and_dtypes(synthetic: RawData) -> None:
    assert SYNTHETIC_SHAPE == (3, 16, 16)
    assert tuple(synthetic.x_train.shape) == (2560, *SYNTHETIC_SHAPE)
    assert tuple(synthetic.x_test.shape) == (512, *SYNTHETIC_SHAPE)
    assert synthetic.x_train.dtype == synthetic.x_test.dtype == torch.uint8
    assert synthetic.y_train.dtype == synthetic.y_test.dtype == torch.int64
    assert tuple(synthetic.y_train.shape) == (2560,)
    assert tuple(synthetic.y_test.shape) == (512,)


def test_labels_are_balanced_over_ten_classes(synthetic: RawData) -> None:
    assert torch.bincount(synthetic.y_train).tolist() == [256] * 10
    counts = torch.bincount(synthetic.y_test, minlength=10)
    assert len(counts) == 10
    assert counts.sum().item() == 512
    assert counts.max() - counts.min() <= 1
    assert synthetic.y_train[:10].tolist() != list(range(10))  # shuffled, not in class order


def test_pixels_are_centred_on_mid_grey(synthetic: RawData) -> None:
    for x in (synthetic.x_train, synthetic.x_test):
        assert 100 < x.float().mean().item() < 156
        assert x.min().item() == 0  # the noise is strong: it reaches both ends
        assert x.max().item() == 255


def test_learnable_by_nearest_class_mean(synthetic: RawData) -> None:
    """Clearly above chance (10%) for the simplest classifier, from training data alone."""
    x, x_test = synthetic.x_train.flatten(1).float(), synthetic.x_test.flatten(1).float()
    means = torch.stack([x[synthetic.y_train == k].mean(0) for k in range(10)])
    accuracy = (torch.cdist(x_test, means).argmin(1) == synthetic.y_test).float().mean().item()
    assert accuracy > 0.5


def test_by_name(synthetic: RawData, tmp_path: Path) -> None:
    spec = get_dataset("Synthetic")
    assert spec.in_shape == SYNTHETIC_SHAPE
    assert spec.num_classes == 10
    raw = load_dataset("synthetic", tmp_path / "root", download=False)
    assert torch.equal(raw.x_train, synthetic.x_train)
    assert raw.source == "synthetic (generated)"
    assert not (tmp_path / "root").exists()  # no files, no folders


def test_cifar_shaped_has_cifar10s_shape_and_size() -> None:
    raw = load_dataset("cifar_shaped")
    assert tuple(raw.x_train.shape) == (50_000, 3, 32, 32)
    assert tuple(raw.x_test.shape) == (10_000, 3, 32, 32)
    assert raw.x_train.dtype == torch.uint8
    assert set(raw.y_train.unique().tolist()) == set(range(10))
    assert torch.equal(make_cifar_shaped().x_test[:8], raw.x_test[:8])  # seeded: same everywhere
