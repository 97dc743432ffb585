"""A trial's data: train/val/test splits as uint8 tensors on the training device, normalised on
the fly, batches drawn by a seeded permutation. No DataLoader, no per-image PIL transforms."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from bnorder.data.sources import RawData

__all__ = ["Normalization", "Split", "TrialData", "prepare_data"]

Normalization = Literal["dataset", "half"]


@dataclass(frozen=True)
class Split:
    x: torch.Tensor  # N×C×H×W uint8, on the training device
    y: torch.Tensor  # N int64, on the training device

    def __len__(self) -> int:
        return len(self.y)


@dataclass(frozen=True)
class TrialData:
    train: Split
    val: Split | None  # None when val_fraction is 0
    test: Split
    scale: torch.Tensor  # 1×C×1×1: x_float = x_uint8 * scale + shift
    shift: torch.Tensor

    def to_float(self, x: torch.Tensor) -> torch.Tensor:
        return x.float().mul_(self.scale).add_(self.shift)

    def train_batches(
        self, batch_size: int, generator: torch.Generator, *, augment: bool = False
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One epoch of shuffled batches; the last one may be smaller (as a DataLoader without
        drop_last), except that a batch of one is skipped since BatchNorm cannot train on it.

        The order and the crops come from a CPU generator, so a seed gives the same batches on
        any device. All of an epoch's draws are made up front, in the order per-batch draws
        would make them, and reach the device in one copy: no host-device copy per step.
        """
        n = len(self.train)
        device = self.train.y.device
        order = torch.randperm(n, generator=generator)
        starts = [s for s in range(0, n, batch_size) if min(batch_size, n - s) >= 2]
        if augment:
            draws = [crop_draws(min(batch_size, n - s), generator) for s in starts]
            offsets = torch.cat([d[0] for d in draws], 1).to(device)
            flips = torch.cat([d[1] for d in draws]).to(device)
        order = order.to(device)
        done = 0
        for start in starts:
            idx = order[start : start + batch_size]
            x = self.to_float(self.train.x[idx])
            if augment:
                k = slice(done, done + len(idx))
                x = crop_flip(x, offsets[:, k], flips[k])
                done += len(idx)
            yield x, self.train.y[idx]

    def eval_batches(
        self, split: Split, batch_size: int
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for start in range(0, len(split), batch_size):
            yield (
                self.to_float(split.x[start : start + batch_size]),
                split.y[start : start + batch_size],
            )


def crop_draws(
    n: int, generator: torch.Generator, pad: int = 4
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random crop offsets (2×n, in [0, 2·pad]) and horizontal flips (n) for a batch of n."""
    offsets = torch.randint(0, 2 * pad + 1, (2, n), generator=generator)
    flips = torch.rand(n, generator=generator) < 0.5
    return offsets, flips


def crop_flip(
    x: torch.Tensor, offsets: torch.Tensor, flips: torch.Tensor, pad: int = 4
) -> torch.Tensor:
    """Crops (reflect-padded by ``pad``) at ``offsets`` and flips, as one gather on x's
    device; ``offsets`` and ``flips`` must already be there."""
    n, c, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad), mode="reflect")
    rows = offsets[0, :, None] + torch.arange(h, device=x.device)
    cols = offsets[1, :, None] + torch.arange(w, device=x.device)
    cols = torch.where(flips[:, None], cols.flip(1), cols)
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    chans = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[batch, chans, rows[:, None, :, None], cols[:, None, None, :]]


def random_crop_flip(x: torch.Tensor, generator: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Per-example random crop (reflect-padded by ``pad``) and horizontal flip, as one gather."""
    offsets, flips = crop_draws(len(x), generator, pad)
    return crop_flip(x, offsets.to(x.device), flips.to(x.device), pad)


def _carve_val(n: int, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    if fraction == 0:
        return torch.arange(n), torch.empty(0, dtype=torch.long)
    k = max(1, round(n * fraction))
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm[k:].sort().values, perm[:k].sort().values


def _channel_stats(x: torch.Tensor, chunk: int = 4096) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std of uint8 images in [0, 1] units, in float64 chunks (a float64
    copy of all of CIFAR-10 would be 1.2 GB)."""
    total = torch.zeros(x.shape[1], dtype=torch.float64)
    squares = torch.zeros(x.shape[1], dtype=torch.float64)
    for start in range(0, len(x), chunk):
        part = x[start : start + chunk].double().div_(255)
        total += part.sum(dim=(0, 2, 3))
        squares += part.square().sum(dim=(0, 2, 3))
    n = x.numel() // x.shape[1]
    mean = total / n
    var = (squares / n - mean.square()).clamp_min(0) * n / max(n - 1, 1)
    return mean.float(), var.sqrt().clamp_min(1e-3).float()


def prepare_data(
    raw: RawData,
    *,
    val_fraction: float,
    split_seed: int,
    subset: int | None = None,
    test_subset: int | None = None,
    normalization: Normalization = "dataset",
    device: torch.device | str = "cpu",
) -> TrialData:
    """Cut the splits and move them to ``device``.

    The first ``subset`` training examples are kept, then ``val_fraction`` of them is carved out
    with its own ``split_seed``. ``normalization="dataset"`` uses the per-channel mean and std of
    the training split (never val or test); ``"half"`` maps [0, 1] to [-1, 1] as the seed did.
    """
    x, y = raw.x_train[:subset], raw.y_train[:subset]
    train_idx, val_idx = _carve_val(len(y), val_fraction, split_seed)
    if normalization == "half":
        mean = torch.full((x.shape[1],), 0.5)
        std = torch.full((x.shape[1],), 0.5)
    else:
        mean, std = _channel_stats(x[train_idx])
    scale = (1 / (255 * std)).view(1, -1, 1, 1)
    shift = (-mean / std).view(1, -1, 1, 1)

    def put(xs: torch.Tensor, ys: torch.Tensor) -> Split:
        return Split(xs.contiguous().to(device), ys.contiguous().to(device))

    return TrialData(
        train=put(x[train_idx], y[train_idx]),
        val=put(x[val_idx], y[val_idx]) if len(val_idx) else None,
        test=put(raw.x_test[:test_subset], raw.y_test[:test_subset]),
        scale=scale.to(device),
        shift=shift.to(device),
    )
