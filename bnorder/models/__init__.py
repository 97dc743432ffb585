"""Architectures by name: ``create_model("cnn", parse_ordering("case1"), ...)``."""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

from bnorder.layers import LayerParams
from bnorder.models.block import OrderedBlock, ProbeSite
from bnorder.models.cnn import CNN
from bnorder.models.mlp import MLP, SeedMLP
from bnorder.models.resnet import ResNet
from bnorder.ordering import Ordering
from bnorder.registry import lookup, register

__all__ = [
    "ARCHS",
    "ARCH_NAMES",
    "ArchSpec",
    "OrderedBlock",
    "ProbeSite",
    "count_parameters",
    "create_model",
    "forward_flops",
    "get_arch",
    "init_weights",
]


@dataclass(frozen=True)
class ArchSpec:
    name: str
    cls: type[nn.Module]
    description: str
    fixed: dict[str, int] = field(default_factory=dict)  # config fields the arch does not vary


ARCHS: dict[str, ArchSpec] = {}
for _spec in [
    ArchSpec(
        "cnn", CNN, "stem conv, depth ordered conv blocks, global avg pool, linear (the seed's CNN)"
    ),
    ArchSpec("mlp", MLP, "depth ordered linear blocks of width units, linear head"),
    ArchSpec(
        "mlp_seed",
        SeedMLP,
        "the seed's MLP: ordered 512-unit layer, then 256-128 ReLU, head",
        fixed={"depth": SeedMLP.DEPTH, "width": SeedMLP.WIDTH},
    ),
    ArchSpec("resnet", ResNet, "cnn with identity skips around pairs of ordered blocks"),
]:
    register(ARCHS, _spec.name, _spec)
ARCH_NAMES: tuple[str, ...] = tuple(s.name for s in ARCHS.values())


def get_arch(name: str, *, field: str = "arch") -> ArchSpec:
    return lookup(ARCHS, name, field=field, kind="arch", choices=ARCH_NAMES)


def init_weights(model: nn.Module, scheme: str) -> None:
    """``default`` keeps PyTorch's initialisation (the seed's); ``kaiming`` draws conv and linear
    weights from He-normal (fan-in, ReLU gain) and zeroes their biases."""
    if scheme == "default":
        return
    for m in model.modules():
        if isinstance(m, nn.Conv2d | nn.Linear):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def create_model(
    arch: str,
    ordering: Ordering,
    *,
    depth: int,
    width: int,
    in_shape: tuple[int, int, int],
    num_classes: int,
    params: LayerParams = LayerParams(),
    init: str = "default",
) -> nn.Module:
    """Build a network.

    Args:
        arch: a name from :data:`ARCHS` (``cnn``, ``mlp``, ``mlp_seed``, ``resnet``).
        ordering: the parsed block ordering.
        depth: number of ordered blocks (residual blocks for ``resnet``).
        width: channels (``cnn``, ``resnet``) or units (``mlp``).
        in_shape: the dataset's (channels, height, width).
        num_classes: the dataset's number of classes.
        params: slope, groups and other op parameters.
        init: ``default`` or ``kaiming``.

    Example:
        >>> m = create_model("cnn", parse_ordering("case1"), depth=8, width=64,
        ...                  in_shape=(3, 32, 32), num_classes=10)  # doctest: +SKIP
    """
    spec = get_arch(arch)
    model = spec.cls(
        ordering,
        depth=depth,
        width=width,
        in_shape=in_shape,
        num_classes=num_classes,
        params=params,
    )
    init_weights(model, init)
    return model


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def forward_flops(model: nn.Module, in_shape: tuple[int, ...]) -> float:
    """FLOPs of one example's forward pass: 2 x the multiply-adds of every convolution and
    linear layer (norms and activations are noise next to them). Training costs ~3x this."""
    import torch

    total = 0.0

    def count(m: nn.Module, inputs: tuple, out: torch.Tensor) -> None:
        nonlocal total
        if isinstance(m, nn.Conv2d):
            per_output = m.kernel_size[0] * m.kernel_size[1] * m.in_channels // m.groups
            total += 2 * out.numel() * per_output
        elif isinstance(m, nn.Linear):
            total += 2 * out.numel() * m.in_features

    hooks = [m.register_forward_hook(count) for m in model.modules()]
    was_training = model.training
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, *in_shape))
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    return total
