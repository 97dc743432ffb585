"""The probes measure what they claim, on hand-built cases, and can confirm or refute the seed
blog's claims on a trained network."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from bnorder.config import TrialConfig
from bnorder.models import create_model
from bnorder.ordering import parse_ordering
from bnorder.probes import PROBE_STATS, measure_probes
from bnorder.train import train_trial


def _model(ordering: str, depth: int = 3) -> nn.Module:
    torch.manual_seed(0)
    return create_model(
        "cnn", parse_ordering(ordering), depth=depth, width=8, in_shape=(3, 8, 8), num_classes=4
    )


def test_relu_before_bn_gives_skewed_sparse_norm_inputs() -> None:
    x, y = torch.randn(64, 3, 8, 8), torch.randint(0, 4, (64,))
    after = measure_probes(_model("conv-relu-bn"), x, y)
    before = measure_probes(_model("conv-bn-relu"), x, y)
    # ReLU outputs feed BN: about half exactly zero, and right-skewed
    assert all(0.3 < z < 0.7 for z in after["norm_in_zero_frac"])
    assert all(s > 0.5 for s in after["norm_in_skew"])
    # conv outputs feed BN: dense and roughly symmetric
    assert all(z == 0 for z in before["norm_in_zero_frac"])
    assert all(abs(s) < 0.5 for s in before["norm_in_skew"])


def test_dead_units_are_counted_per_channel() -> None:
    model = _model("conv-bn-relu", depth=1)
    block = model.blocks[0]
    with torch.no_grad():
        block.bn.bias[:2] = -100.0  # two channels can never be positive: dead
    stats = measure_probes(model, torch.randn(32, 3, 8, 8), torch.randint(0, 4, (32,)))
    assert stats["act_dead_frac"] == [2 / 8]
    assert stats["act_zero_frac"][0] > 2 / 8


def test_missing_ops_are_nan_and_lists_have_one_value_per_block() -> None:
    stats = measure_probes(
        _model("conv-relu", depth=3), torch.randn(16, 3, 8, 8), torch.randint(0, 4, (16,))
    )
    assert set(stats) == set(PROBE_STATS)
    assert all(len(v) == 3 for v in stats.values())
    assert all(math.isnan(v) for v in stats["norm_in_skew"])
    assert all(v > 0 for v in stats["grad_norm"])


def test_probing_leaves_model_state_untouched() -> None:
    model = _model("conv-bn-relu")
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    measure_probes(model, torch.randn(16, 3, 8, 8), torch.randint(0, 4, (16,)))
    assert not model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("arch", ["resnet", "mlp", "mlp_seed"])
def test_probes_in_every_arch(arch: str) -> None:
    kw = {} if arch == "mlp_seed" else {"depth": 2, "width": 8}
    result = train_trial(
        TrialConfig(
            dataset="synthetic",
            arch=arch,
            ordering="case1",
            epochs=1,
            device="cpu",
            probes=True,
            **kw,
        )
    )
    stats = result.epochs[0]
    n_blocks = {"resnet": 4, "mlp": 2, "mlp_seed": 1}[arch]
    assert all(len(stats[s]) == n_blocks for s in PROBE_STATS)
    assert all(0 <= v <= 1 for v in stats["act_dead_frac"])
