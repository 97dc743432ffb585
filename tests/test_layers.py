from __future__ import annotations

import pytest
import torch
from torch import nn

from bnorder.errors import ConfigError
from bnorder.layers import (
    ACT_NAMES,
    NORM_NAMES,
    LayerParams,
    create_act,
    create_norm,
    get_act,
)
from bnorder.registry import register


@pytest.mark.parametrize("name", NORM_NAMES)
@pytest.mark.parametrize(("kind", "shape"), [("conv", (4, 16, 5, 5)), ("linear", (4, 16))])
def test_norms_keep_shape(name: str, kind: str, shape: tuple[int, ...]) -> None:
    layer = create_norm(name, 16, kind)
    assert layer(torch.randn(shape)).shape == shape


def test_norm_types() -> None:
    assert isinstance(create_norm("bn", 8, "conv"), nn.BatchNorm2d)
    assert isinstance(create_norm("BatchNorm", 8, "linear"), nn.BatchNorm1d)
    ln = create_norm("ln", 8, "conv")
    assert isinstance(ln, nn.GroupNorm)
    assert ln.num_groups == 1
    assert isinstance(create_norm("ln", 8, "linear"), nn.LayerNorm)
    assert create_norm("gn", 16, "conv", LayerParams(gn_groups=4)).num_groups == 4


def test_group_norm_groups_must_divide() -> None:
    with pytest.raises(ConfigError, match=r"gn_groups: must divide the width 12"):
        create_norm("gn", 12, "conv", LayerParams(gn_groups=8))


@pytest.mark.parametrize("name", ACT_NAMES)
def test_activations_build(name: str) -> None:
    x = torch.linspace(-2, 2, 9)
    assert create_act(name)(x).shape == x.shape


def test_lrelu_slope_is_configurable() -> None:
    act = create_act("lrelu", LayerParams(lrelu_slope=0.2))
    assert act(torch.tensor([-1.0])).item() == pytest.approx(-0.2)
    assert create_act("leaky_relu")(torch.tensor([-1.0])).item() == pytest.approx(-0.01)


def test_unknown_activation_suggests() -> None:
    with pytest.raises(
        ConfigError, match=r"activation: unknown activation 'gleu'; did you mean 'gelu'"
    ):
        get_act("gleu")


def test_register_duplicate_raises() -> None:
    reg: dict[str, int] = {}
    register(reg, "bn", 1)
    with pytest.raises(ValueError, match="already has 'BN'"):
        register(reg, "BN", 2)
