"""``cnn``: the seed notebook's CNNNetwork generalised to any ordering, depth and width."""

from __future__ import annotations

import torch
from torch import nn

from bnorder.layers import LayerParams
from bnorder.models.block import OrderedBlock, ProbeSite
from bnorder.ordering import Ordering

__all__ = ["CNN"]


class CNN(nn.Module):
    """Plain stem conv (no norm, no activation), ``depth`` ordered blocks width→width at full
    resolution, global average pool, linear head. With case1/2/3, depth 8, width 64 and CIFAR-10
    it is the seed's network, parameter for parameter."""

    def __init__(
        self,
        ordering: Ordering,
        *,
        depth: int,
        width: int,
        in_shape: tuple[int, int, int],
        num_classes: int,
        params: LayerParams = LayerParams(),
    ) -> None:
        super().__init__()
        self.stem = nn.Conv2d(in_shape[0], width, kernel_size=3, padding=1)
        self.blocks = nn.Sequential(
            *[OrderedBlock(ordering, width, width, "conv", params) for _ in range(depth)]
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.stem(x))
        return self.head(torch.flatten(self.pool(x), 1))

    def probe_sites(self) -> list[ProbeSite]:
        return [block.probe_site(f"block{i}") for i, block in enumerate(self.blocks)]
