"""``synthetic``: a small, deterministic, learnable image dataset generated in code.

Ten classes, each a smooth random 3×16×16 prototype; an example is its class prototype shifted
by up to 3 pixels, scaled, plus strong pixel noise. A CNN or MLP gets clearly above chance (10%)
in one epoch, yet the task is not trivial. For tests and smoke runs: no files, no network.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from bnorder.data.sources import RawData

__all__ = [
    "CIFAR_SHAPE",
    "CIFAR_SIZES",
    "N_TEST",
    "N_TRAIN",
    "SYNTHETIC_SHAPE",
    "make_cifar_shaped",
    "make_synthetic",
]

SYNTHETIC_SHAPE = (3, 16, 16)
NUM_CLASSES = 10
N_TRAIN, N_TEST = 2560, 512
_SEED = 20240611  # fixed: the dataset is the same everywhere, like a downloaded one


def _examples(prototypes: torch.Tensor, labels: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    n = len(labels)
    x = prototypes[labels]
    shifts = torch.randint(-3, 4, (2, n), generator=g)  # circular shifts, as one gather
    rows = (torch.arange(x.shape[2]) - shifts[0, :, None]) % x.shape[2]
    cols = (torch.arange(x.shape[3]) - shifts[1, :, None]) % x.shape[3]
    x = x[
        torch.arange(n)[:, None, None, None],
        torch.arange(x.shape[1])[None, :, None, None],
        rows[:, None, :, None],
        cols[:, None, None, :],
    ]
    scale = 0.7 + 0.6 * torch.rand(n, 1, 1, 1, generator=g)
    x = x * scale + 3.0 * torch.randn(x.shape, generator=g)
    return (128 + 48 * x).round().clamp(0, 255).to(torch.uint8)


def make_synthetic() -> RawData:
    g = torch.Generator().manual_seed(_SEED)
    c, h, w = SYNTHETIC_SHAPE
    coarse = torch.randn(NUM_CLASSES, c, 4, 4, generator=g)
    prototypes = F.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)
    prototypes = prototypes / prototypes.std(dim=(1, 2, 3), keepdim=True)
    y_train = torch.arange(N_TRAIN) % NUM_CLASSES
    y_test = torch.arange(N_TEST) % NUM_CLASSES
    y_train = y_train[torch.randperm(N_TRAIN, generator=g)]
    x_train = _examples(prototypes, y_train, g)
    x_test = _examples(prototypes, y_test, g)
    return RawData(x_train, y_train.long(), x_test, y_test.long(), source="synthetic (generated)")


CIFAR_SHAPE = (3, 32, 32)
CIFAR_SIZES = (50_000, 10_000)


def make_cifar_shaped() -> RawData:
    """Uniform random uint8 images and labels of CIFAR-10's shape and size: the cost of a CIFAR
    trial (throughput benchmarks, GPU sizing) where CIFAR-10 cannot be downloaded. Nothing is
    learnable: accuracy stays at chance."""
    g = torch.Generator().manual_seed(_SEED)
    n_train, n_test = CIFAR_SIZES
    x = torch.randint(0, 256, (n_train + n_test, *CIFAR_SHAPE), generator=g, dtype=torch.uint8)
    y = torch.randint(0, NUM_CLASSES, (n_train + n_test,), generator=g)
    return RawData(x[:n_train], y[:n_train], x[n_train:], y[n_train:], "random, CIFAR-10-shaped")
