from __future__ import annotations

import dataclasses

import pytest
from pydantic import ValidationError

from bnorder.config import TrialConfig
from bnorder.errors import ConfigError


def test_defaults_are_the_seed_experiment() -> None:
    cfg = TrialConfig()
    assert (cfg.dataset, cfg.arch, cfg.ordering, cfg.depth, cfg.width) == (
        "cifar10",
        "cnn",
        "conv-bn-relu",
        8,
        64,
    )
    assert (cfg.optimizer, cfg.lr, cfg.batch_size, cfg.epochs, cfg.schedule) == (
        "adam",
        1e-3,
        128,
        10,
        "constant",
    )
    assert cfg.augment is False


def test_frozen() -> None:
    cfg = TrialConfig()
    with pytest.raises(ValidationError):
        cfg.lr = 0.1  # type: ignore[misc]


def test_names_are_canonicalised() -> None:
    cfg = TrialConfig(
        dataset="Fashion-MNIST", arch="CNN", ordering="Conv → ReLU → BN", optimizer="ADAM"
    )
    assert (cfg.dataset, cfg.arch, cfg.ordering, cfg.optimizer) == (
        "fashion_mnist",
        "cnn",
        "conv-relu-bn",
        "adam",
    )


def test_seeds_follow_seed_unless_set() -> None:
    cfg = TrialConfig(seed=4)
    assert (cfg.init_seed, cfg.data_seed, cfg.split_seed) == (4, 4, 0)
    cfg = TrialConfig(seed=4, data_seed=9)
    assert (cfg.init_seed, cfg.data_seed) == (4, 9)
    assert cfg.replace(seed=5).init_seed == 5
    assert cfg.replace(seed=5).data_seed == 5


def test_hashes() -> None:
    a = TrialConfig(dataset="synthetic", seed=0)
    assert (
        a.config_hash
        == TrialConfig(dataset="synthetic", seed=0, device="cpu", probes=True).config_hash
    )
    assert a.config_hash != a.replace(seed=1).config_hash
    assert a.group_hash == a.replace(seed=1).group_hash
    assert a.group_hash != a.replace(lr=0.1).group_hash


def test_mlp_seed_has_fixed_shape() -> None:
    cfg = TrialConfig(arch="mlp_seed")
    assert (cfg.depth, cfg.width) == (1, 512)
    assert cfg.replace(arch="cnn").depth == 8
    assert TrialConfig(arch="mlp_seed", depth=1).depth == 1


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"depth": 0}, r"^depth: must be greater than 0, got 0$"),
        ({"width": -3}, r"^width: must be greater than 0"),
        ({"epochs": 0}, r"^epochs: "),
        ({"batch_size": 0}, r"^batch_size: "),
        ({"lr": 0}, r"^lr: must be greater than 0"),
        ({"lr": "fast"}, r"^lr: must be a valid number.*'fast'"),
        ({"val_fraction": 1.0}, r"^val_fraction: must be less than 1"),
        (
            {"dataset": "cifar11"},
            r"^dataset: unknown dataset 'cifar11'; did you mean 'cifar10'\? valid: ",
        ),
        ({"arch": "resnt"}, r"^arch: unknown arch 'resnt'; did you mean 'resnet'\?"),
        (
            {"optimizer": "adma"},
            r"^optimizer: unknown optimizer 'adma'; did you mean 'adam'\? valid: adam, adamw, sgd",
        ),
        ({"schedule": "cosin"}, r"did you mean 'cosine'"),
        ({"precision": "fp16"}, r"^precision: unknown precision 'fp16'.*valid: fp32, bf16"),
        ({"device": "gpu"}, r"^device: unknown device 'gpu'.*valid: auto, cpu, cuda, cuda:N, mps"),
        ({"ordering": "conv-bachnorm"}, r"^ordering: unknown op 'bachnorm'.*did you mean 'bn'"),
        ({"lrr": 0.1}, r"^config: unknown key 'lrr'; did you mean 'lr'\?"),
        ({"arch": "mlp_seed", "width": 64}, r"^width: arch 'mlp_seed' has a fixed width of 512"),
        ({"ordering": "conv-gn-relu", "width": 12}, r"^gn_groups: must divide width 12"),
    ],
)
def test_bad_values_are_one_line_config_errors(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match) as info:
        TrialConfig(**kwargs)
    assert "\n" not in str(info.value)


def test_error_can_be_relabelled() -> None:
    with pytest.raises(ConfigError) as info:
        TrialConfig(depth=0)
    assert str(info.value.at("--depth")).startswith("--depth: must be greater than 0")


def test_layer_params() -> None:
    p = TrialConfig(lrelu_slope=0.2, gn_groups=4).layer_params
    assert dataclasses.astuple(p) == (0.2, 4)
