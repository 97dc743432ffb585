"""Every valid combination builds, runs forward and backward; the seed's networks are matched
parameter for parameter (the seed's classes are copied here from its notebook)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from bnorder.layers import ACT_NAMES, NORM_NAMES
from bnorder.models import ARCH_NAMES, OrderedBlock, count_parameters, create_model
from bnorder.ordering import parse_ordering


# ---- the seed notebook's own networks (../shared/seeds/003_*.txt), verbatim in substance
class _Case1Block(nn.Module):
    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel_size=3, padding=1)
        self.bn = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv(x)))


class _SeedCNN(nn.Module):
    def __init__(self, num_blocks: int = 8) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, kernel_size=3, padding=1)
        self.blocks = nn.Sequential(*[_Case1Block(64, 64) for _ in range(num_blocks)])
        self.pool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(64, 10)


def _seed_mlp(act: nn.Module, bn_first: bool) -> nn.Module:
    first = [nn.Linear(3 * 32 * 32, 512)] + (
        [nn.BatchNorm1d(512), act] if bn_first else [act, nn.BatchNorm1d(512)]
    )
    return nn.Sequential(
        nn.Sequential(*first),
        nn.Linear(512, 256),
        nn.ReLU(),
        nn.Linear(256, 128),
        nn.ReLU(),
        nn.Linear(128, 10),
    )


CIFAR = {"in_shape": (3, 32, 32), "num_classes": 10}


@pytest.mark.parametrize("case", ["case1", "case2", "case3"])
def test_cnn_matches_seed_parameter_count(case: str) -> None:
    ours = create_model("cnn", parse_ordering(case), depth=8, width=64, **CIFAR)
    assert count_parameters(ours) == count_parameters(_SeedCNN()) == 298_890


@pytest.mark.parametrize(
    ("case", "act", "bn_first"),
    [("case1", nn.ReLU(), True), ("case2", nn.ReLU(), False), ("case3", nn.LeakyReLU(), False)],
)
def test_mlp_seed_matches_seed(case: str, act: nn.Module, bn_first: bool) -> None:
    ours = create_model("mlp_seed", parse_ordering(case), depth=1, width=512, **CIFAR)
    seed = _seed_mlp(act, bn_first)
    assert count_parameters(ours) == count_parameters(seed) == 1_739_914
    # same layer sequence, not only the same count
    ours_layers = [type(m) for m in ours.modules() if not list(m.children())]
    seed_layers = [type(m) for m in seed.modules() if not list(m.children())]
    assert ours_layers == seed_layers


def test_block_layer_order_follows_ordering() -> None:
    block = OrderedBlock(parse_ordering("bn-relu-conv"), 8, 16, "conv")
    assert [type(m) for m in block] == [nn.BatchNorm2d, nn.ReLU, nn.Conv2d]
    assert block[0].num_features == 8  # pre-activation norm sees the input width
    block = OrderedBlock(parse_ordering("conv-lrelu-bn"), 8, 16, "linear")
    assert [type(m) for m in block] == [nn.Linear, nn.LeakyReLU, nn.BatchNorm1d]
    assert block[2].num_features == 16


def test_resnet_original_form_applies_relu_after_addition() -> None:
    model = create_model("resnet", parse_ordering("conv-bn-relu"), depth=1, width=8, **CIFAR)
    block = model.blocks[0]
    assert [type(m) for m in block.branch[1]] == [nn.Conv2d, nn.BatchNorm2d]
    assert isinstance(block.post_act, nn.ReLU)
    assert len(model.final) == 0


def test_resnet_preactivation_ends_with_norm_and_act() -> None:
    model = create_model("resnet", parse_ordering("bn-relu-conv"), depth=2, width=8, **CIFAR)
    assert isinstance(model.blocks[0].post_act, nn.Identity)
    assert [type(m) for m in model.final] == [nn.BatchNorm2d, nn.ReLU]
    # identity skip: with the branch zeroed the block is exactly the identity
    block = model.blocks[1]
    for p in block.branch.parameters():
        nn.init.zeros_(p)
    x = torch.randn(2, 8, 4, 4)
    assert torch.equal(block(x), x)


ORDERINGS = (
    [
        "conv-bn-relu",
        "conv-relu-bn",
        "conv-lrelu-bn",
        "bn-relu-conv",
        "conv-bn",
        "conv-relu",
        "conv",
    ]
    + [f"conv-{n}-{a}" for n in NORM_NAMES for a in ACT_NAMES]
    + [f"conv-{a}-{n}" for n in NORM_NAMES for a in ACT_NAMES[:2]]
    + [f"{n}-{a}-conv" for n in NORM_NAMES for a in ACT_NAMES[:2]]
)


@pytest.mark.parametrize("arch", ARCH_NAMES)
@pytest.mark.parametrize("ordering", ORDERINGS)
def test_every_combination_forward_backward(arch: str, ordering: str) -> None:
    torch.manual_seed(0)
    depth, width = (1, 512) if arch == "mlp_seed" else (2, 8)
    model = create_model(
        arch, parse_ordering(ordering), depth=depth, width=width, in_shape=(3, 8, 8), num_classes=5
    )
    x = torch.randn(4, 3, 8, 8)
    out = model(x)
    assert out.shape == (4, 5)
    out.sum().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert len(model.probe_sites()) >= 1


@pytest.mark.parametrize(("channels", "size"), [(1, 28), (3, 32)])
def test_input_shape_comes_from_dataset(channels: int, size: int) -> None:
    model = create_model(
        "cnn",
        parse_ordering("case1"),
        depth=1,
        width=4,
        in_shape=(channels, size, size),
        num_classes=7,
    )
    assert model(torch.randn(2, channels, size, size)).shape == (2, 7)


def test_kaiming_init_changes_weights_deterministically() -> None:
    def build(init: str) -> nn.Module:
        torch.manual_seed(0)
        return create_model("cnn", parse_ordering("case1"), depth=1, width=4, **CIFAR, init=init)

    default, kaiming = build("default"), build("kaiming")
    assert not torch.equal(default.stem.weight, kaiming.stem.weight)
    assert torch.equal(kaiming.stem.bias, torch.zeros(4))
    assert torch.equal(build("kaiming").stem.weight, kaiming.stem.weight)


def test_forward_flops_of_the_seed_cnn_is_0_6_gflop() -> None:
    """The issue's figure: the seed CNN (8 x 64 channels at 32x32) is ~0.6 GFLOP per image."""
    from bnorder.models import forward_flops

    model = create_model(
        "cnn", parse_ordering("case1"), depth=8, width=64, in_shape=(3, 32, 32), num_classes=10
    )
    per_conv = 2 * 64 * 64 * 9 * 32 * 32
    stem = 2 * 3 * 64 * 9 * 32 * 32
    head = 2 * 64 * 10
    assert forward_flops(model, (3, 32, 32)) == 8 * per_conv + stem + head
    assert model.training  # left as it was
