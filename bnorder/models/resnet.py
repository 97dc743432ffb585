"""``resnet``: residual blocks whose branch is two ordered blocks, plus an identity skip.

Two choices make the classic forms come out exactly (He et al. 2016a, "Identity Mappings in
Deep Residual Networks", fig. 4):

- An ordering that *ends* in an activation (``conv-bn-relu``) applies that activation after the
  addition, as the original ResNet does: ``x -> conv-bn-relu-conv-bn (+x) -> relu``. Applying it
  inside the branch instead ("ReLU before addition") was the worst variant in that paper.
- An ordering with ops *before* the weight op (``bn-relu-conv``, pre-activation) leaves the last
  block's output un-normalised, so the network ends with those ops (norm and activation) before
  pooling, as pre-activation ResNets do.

Every block keeps the full resolution and width, like ``cnn``, so the two compare directly.
"""

from __future__ import annotations

import torch
from torch import nn

from bnorder.layers import LayerParams, create_act, create_norm
from bnorder.models.block import OrderedBlock, ProbeSite
from bnorder.ordering import Ordering

__all__ = ["ResNet", "ResidualBlock"]


class ResidualBlock(nn.Module):
    def __init__(self, ordering: Ordering, width: int, params: LayerParams) -> None:
        super().__init__()
        post_act = ordering.ops[-1].kind == "act"
        last = Ordering(ordering.ops[:-1]) if post_act else ordering
        self.branch = nn.Sequential(
            OrderedBlock(ordering, width, width, "conv", params),
            OrderedBlock(last, width, width, "conv", params),
        )
        self.post_act = create_act(ordering.ops[-1].name, params) if post_act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.post_act(x + self.branch(x))


class ResNet(nn.Module):
    """Plain stem conv, ``depth`` residual blocks (2 ordered blocks each), optional final
    norm+activation for pre-activation orderings, global average pool, linear head."""

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
        self.blocks = nn.Sequential(*[ResidualBlock(ordering, width, params) for _ in range(depth)])
        final = [
            create_norm(op.name, width, "conv", params)
            if op.kind == "norm"
            else create_act(op.name, params)
            for op in ordering.before_weight
        ]
        self.final = nn.Sequential(*final)  # empty unless pre-activation
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.final(self.blocks(self.stem(x)))
        return self.head(torch.flatten(self.pool(x), 1))

    def probe_sites(self) -> list[ProbeSite]:
        sites = []
        for i, res in enumerate(self.blocks):
            first, second = res.branch
            post_act = None if isinstance(res.post_act, nn.Identity) else res.post_act
            sites += [first.probe_site(f"block{i}a"), second.probe_site(f"block{i}b", post_act)]
        return sites
