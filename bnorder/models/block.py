"""One ordered block: the ops of an :class:`~bnorder.ordering.Ordering` as layers, in order."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Literal

from torch import nn

from bnorder.layers import LayerParams, create_act, create_norm
from bnorder.ordering import Ordering

__all__ = ["LayerKind", "OrderedBlock", "ProbeSite", "weight_layer"]

LayerKind = Literal["conv", "linear"]


def weight_layer(kind: LayerKind, in_features: int, out_features: int) -> nn.Module:
    """The weight op: a 3×3 same-padding convolution (the seed's) or a linear layer."""
    if kind == "conv":
        return nn.Conv2d(in_features, out_features, kernel_size=3, padding=1)
    return nn.Linear(in_features, out_features)


class OrderedBlock(nn.Sequential):
    """Layers in the ordering's order; ops before the weight op act on the input width.

    >>> OrderedBlock(parse_ordering("conv-bn-relu"), 64, 64, "conv")  # doctest: +SKIP
    OrderedBlock((conv): Conv2d(64, 64, ...) (bn): BatchNorm2d(64) (relu): ReLU())
    """

    def __init__(
        self,
        ordering: Ordering,
        in_features: int,
        out_features: int,
        kind: LayerKind,
        params: LayerParams = LayerParams(),
    ) -> None:
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        width = in_features
        for op in ordering.ops:
            if op.kind == "weight":
                layers[op.name] = weight_layer(kind, in_features, out_features)
                width = out_features
            elif op.kind == "norm":
                layers[op.name] = create_norm(op.name, width, kind, params)
            else:
                layers[op.name] = create_act(op.name, params)
        super().__init__(layers)
        self.ordering = ordering

    @property
    def norm_layer(self) -> nn.Module | None:
        return getattr(self, self.ordering.norm) if self.ordering.norm else None

    @property
    def act_layer(self) -> nn.Module | None:
        return getattr(self, self.ordering.act) if self.ordering.act else None

    def probe_site(self, name: str, act: nn.Module | None = None) -> ProbeSite:
        """Where probes look in this block; ``act`` overrides its activation (a ResNet's
        activation after the addition)."""
        return ProbeSite(name, self.norm_layer, act or self.act_layer, self)


@dataclass(frozen=True)
class ProbeSite:
    """Where the probes look in one block: its norm, its activation, and the module whose
    parameters make up the block (for the gradient norm)."""

    name: str
    norm: nn.Module | None
    act: nn.Module | None
    params: nn.Module
