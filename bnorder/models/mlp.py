"""``mlp`` (ordered blocks throughout) and ``mlp_seed`` (the seed notebook's MLPNetwork)."""

from __future__ import annotations

import itertools
import math

import torch
from torch import nn

from bnorder.layers import LayerParams
from bnorder.models.block import OrderedBlock, ProbeSite
from bnorder.ordering import Ordering

__all__ = ["MLP", "SeedMLP"]


class MLP(nn.Module):
    """Flattened input, ``depth`` ordered blocks of ``width`` units, linear head."""

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
        widths = [math.prod(in_shape)] + [width] * depth
        self.blocks = nn.Sequential(
            *[OrderedBlock(ordering, a, b, "linear", params) for a, b in itertools.pairwise(widths)]
        )
        self.head = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(torch.flatten(x, 1)))

    def probe_sites(self) -> list[ProbeSite]:
        return [block.probe_site(f"block{i}") for i, block in enumerate(self.blocks)]


class SeedMLP(nn.Module):
    """The seed's MLPNetwork exactly: only the first layer (input→512) follows the ordering,
    then 512→256→128 with ReLU and no norm, then the head. Depth and width are fixed."""

    DEPTH = 1  # ordered blocks
    WIDTH = 512  # units of the ordered layer

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
        self.block = OrderedBlock(ordering, math.prod(in_shape), self.WIDTH, "linear", params)
        self.tail = nn.Sequential(
            nn.Linear(512, 256),
            nn.ReLU(),
            nn.Linear(256, 128),
            nn.ReLU(),
            nn.Linear(128, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tail(self.block(torch.flatten(x, 1)))

    def probe_sites(self) -> list[ProbeSite]:
        return [self.block.probe_site("block0")]
