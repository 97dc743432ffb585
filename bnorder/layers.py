"""Norm and activation layers chosen by name (timm's ``create_act`` / ``create_norm`` pattern).

Each registry maps a canonical name to a small spec; ``create_norm`` / ``create_act`` build the
``nn.Module`` for a given width and input kind (``"conv"``: N×C×H×W, ``"linear"``: N×C).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from bnorder.errors import ConfigError
from bnorder.registry import lookup, register

__all__ = [
    "ACTIVATIONS",
    "NORMS",
    "ActSpec",
    "LayerParams",
    "NormSpec",
    "create_act",
    "create_norm",
    "get_act",
    "get_norm",
]


@dataclass(frozen=True)
class LayerParams:
    """Parameters of the parametrised ops, shared by every block of a model."""

    lrelu_slope: float = 0.01  # PyTorch's default, which the seed notebook used
    gn_groups: int = (
        8  # divides every width that is a multiple of 8; Wu & He: 8–32 groups within 0.5%
    )


@dataclass(frozen=True)
class NormSpec:
    name: str
    description: str
    build: Callable[[int, str, LayerParams], nn.Module]


@dataclass(frozen=True)
class ActSpec:
    name: str
    description: str
    build: Callable[[LayerParams], nn.Module]


NORMS: dict[str, NormSpec] = {}
ACTIVATIONS: dict[str, ActSpec] = {}


def _batch_norm(width: int, kind: str, p: LayerParams) -> nn.Module:
    return nn.BatchNorm2d(width) if kind == "conv" else nn.BatchNorm1d(width)


def _group_norm(width: int, kind: str, p: LayerParams) -> nn.Module:
    if width % p.gn_groups:
        raise ConfigError(
            "gn_groups",
            p.gn_groups,
            f"must divide the width {width}, not",
            hint="choose a divisor of the width, or another width",
        )
    return nn.GroupNorm(p.gn_groups, width)


def _layer_norm(width: int, kind: str, p: LayerParams) -> nn.Module:
    # For feature maps, LayerNorm is GroupNorm with one group: statistics over C×H×W per sample
    # (Wu & He 2018), which needs no knowledge of the spatial size.
    return nn.GroupNorm(1, width) if kind == "conv" else nn.LayerNorm(width)


for _spec, _aliases in [
    (NormSpec("bn", "BatchNorm: per-channel batch statistics", _batch_norm), ("batchnorm",)),
    (NormSpec("gn", "GroupNorm with gn_groups groups", _group_norm), ("groupnorm",)),
    (
        NormSpec("ln", "LayerNorm (GroupNorm with 1 group on feature maps)", _layer_norm),
        ("layernorm",),
    ),
]:
    register(NORMS, _spec.name, _spec, aliases=_aliases)

for _act, _aliases in [
    (ActSpec("relu", "ReLU", lambda p: nn.ReLU()), ()),
    (
        ActSpec("lrelu", "LeakyReLU with slope lrelu_slope", lambda p: nn.LeakyReLU(p.lrelu_slope)),
        ("leakyrelu",),
    ),
    (ActSpec("gelu", "GELU (exact)", lambda p: nn.GELU()), ()),
    (ActSpec("silu", "SiLU / Swish", lambda p: nn.SiLU()), ("swish",)),
    (ActSpec("elu", "ELU (alpha 1)", lambda p: nn.ELU()), ()),
    (ActSpec("tanh", "tanh", lambda p: nn.Tanh()), ()),
]:
    register(ACTIVATIONS, _act.name, _act, aliases=_aliases)

NORM_NAMES: tuple[str, ...] = tuple(dict.fromkeys(s.name for s in NORMS.values()))
ACT_NAMES: tuple[str, ...] = tuple(dict.fromkeys(s.name for s in ACTIVATIONS.values()))


def get_norm(name: str, *, field: str = "norm") -> NormSpec:
    return lookup(NORMS, name, field=field, kind="norm", choices=NORM_NAMES)


def get_act(name: str, *, field: str = "activation") -> ActSpec:
    return lookup(ACTIVATIONS, name, field=field, kind="activation", choices=ACT_NAMES)


def create_norm(name: str, width: int, kind: str, params: LayerParams = LayerParams()) -> nn.Module:
    """``create_norm("bn", 64, "conv")`` -> ``BatchNorm2d(64)``."""
    return get_norm(name).build(width, kind, params)


def create_act(name: str, params: LayerParams = LayerParams()) -> nn.Module:
    """``create_act("lrelu", LayerParams(lrelu_slope=0.2))`` -> ``LeakyReLU(0.2)``."""
    return get_act(name).build(params)
