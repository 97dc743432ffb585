"""A fused seed array computes what its members compute separately: forward (batch and running
statistics), per-step losses and final states under Adam and SGD, across every arch; and fusing
refuses members it cannot keep apart."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bnorder.config import TrialConfig
from bnorder.errors import ConfigError
from bnorder.fused import FusedArray, fuse_models, fused_cross_entropy
from bnorder.models import ARCH_NAMES
from bnorder.optim import create_optimizer
from bnorder.train import build_model

SEEDS = (0, 1, 2)  # K = 3 members
BATCH = 8
SHAPE = (3, 16, 16)  # the synthetic dataset's images
CLASSES = 10
ORDERINGS = (
    "conv-bn-relu",  # BN, and a conv bias BN cancels (its gradient is zero up to rounding)
    "bn-relu-conv",  # pre-activation: BN on the input / the stem's output
    "conv-gn-relu",
    "conv-ln-relu",
    "conv-relu",  # no norm
    "conv-lrelu-bn",  # LeakyReLU (a parametrised activation), BN after it
)
# Forward: grouped vs dense convolution and batched vs plain matmul sum in different orders;
# observed differences are ≤ 3e-7 on outputs of order 1.
FORWARD = {"rtol": 1e-4, "atol": 1e-5}


def _cfg(arch: str, ordering: str, seed: int, **kw: object) -> TrialConfig:
    size = {} if arch == "mlp_seed" else {"depth": 2, "width": 8}  # mlp_seed's size is fixed
    # 2 groups of 4 channels/units: 8 groups of one unit would make GN on an MLP a constant
    return TrialConfig(
        dataset="synthetic", arch=arch, ordering=ordering, seed=seed, gn_groups=2, **{**size, **kw}
    )


def _members(arch: str, ordering: str, seeds: tuple[int, ...] = SEEDS) -> list[nn.Module]:
    return [build_model(_cfg(arch, ordering, s)) for s in seeds]


def _batches(steps: int, k: int, seed: int = 1) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """A different random batch for every member at every step."""
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        yield (
            torch.randn(BATCH, k, *SHAPE, generator=g),
            torch.randint(CLASSES, (BATCH, k), generator=g),
        )


def _separate(models: list[nn.Module], x: torch.Tensor) -> torch.Tensor:
    return torch.stack([m(x[:, k]) for k, m in enumerate(models)], dim=1)


def _assert_states_match(fused: FusedArray, models: list[nn.Module], **tol: float) -> None:
    for k, model in enumerate(models):
        got = fused.member_state_dict(k)
        for name, want in model.state_dict().items():
            torch.testing.assert_close(got[name], want, **tol, msg=lambda m, n=name: f"{n}: {m}")


# ---- forward
@pytest.mark.parametrize("ordering", ORDERINGS)
@pytest.mark.parametrize("arch", ARCH_NAMES)
def test_forward_matches_members(arch: str, ordering: str) -> None:
    models = _members(arch, ordering)
    fused = fuse_models(models)
    x = torch.randn(BATCH, len(models), *SHAPE)

    out = fused(x)  # train mode: each member normalised by its own batch statistics
    assert out.shape == (BATCH, len(models), CLASSES)
    torch.testing.assert_close(out, _separate(models, x), **FORWARD)
    _assert_states_match(fused, models, **FORWARD)  # running stats updated per member

    fused.eval()
    for m in models:
        m.eval()
    x = torch.randn(BATCH, len(models), *SHAPE)
    torch.testing.assert_close(fused(x), _separate(models, x), **FORWARD)


@pytest.mark.parametrize("arch", ["cnn", "resnet"])
def test_channels_last(arch: str) -> None:
    models = _members(arch, "conv-bn-relu")
    fused = fuse_models(models).to(memory_format=torch.channels_last)
    seen: list[bool] = []
    fused.net.blocks.register_forward_hook(
        lambda mod, args, out: seen.append(out.is_contiguous(memory_format=torch.channels_last))
    )
    x = torch.randn(BATCH, len(models), *SHAPE)
    torch.testing.assert_close(fused(x), _separate(models, x), **FORWARD)
    assert seen == [True]  # the grouped convolutions really ran channels-last


# ---- training
OPTIMIZERS: dict[str, dict[str, float]] = {
    "adam": {"lr": 1e-3, "weight_decay": 0.0, "momentum": 0.9},
    "sgd": {"lr": 0.05, "weight_decay": 1e-4, "momentum": 0.9},
}
STEPS = 5
LOSS = {"rtol": 1e-4, "atol": 1e-5}
# Final states. SGD carries rounding differences (grouped vs dense convolution, ~1e-7) along
# linearly: atol 1e-5. Adam divides every gradient element by its own RMS, so an element whose
# gradient is zero up to rounding (a conv bias right before a train-mode BN, a dead unit) steps
# ±lr in a direction set by rounding noise, in separate training just as much; the trajectories
# then drift apart by up to a few lr (observed ≤ 5e-3). Adam states are therefore compared at
# 2·lr·steps, Adam's largest possible displacement, which is still far below the distance between
# two members (checked, so a member mix-up fails). The per-step losses stay within LOSS for both.
STATE = {
    "sgd": {"rtol": 1e-4, "atol": 1e-5},
    "adam": {"rtol": 0.0, "atol": 2 * OPTIMIZERS["adam"]["lr"] * STEPS},
}


def _make_opt(name: str) -> Callable[[nn.Module], torch.optim.Optimizer]:
    return lambda model: create_optimizer(name, model.parameters(), **OPTIMIZERS[name])


def _train_separately(
    models: list[nn.Module], make_opt: Callable[[nn.Module], torch.optim.Optimizer]
) -> torch.Tensor:
    opts = [make_opt(m) for m in models]
    losses = []
    for x, y in _batches(STEPS, len(models)):
        step = []
        for k, (model, opt) in enumerate(zip(models, opts, strict=True)):
            opt.zero_grad()
            loss = F.cross_entropy(model(x[:, k]), y[:, k])
            loss.backward()
            opt.step()
            step.append(loss.detach())
        losses.append(torch.stack(step))
    return torch.stack(losses)


def _train_fused(
    fused: FusedArray, make_opt: Callable[[nn.Module], torch.optim.Optimizer]
) -> torch.Tensor:
    opt = make_opt(fused)
    losses = []
    for x, y in _batches(STEPS, fused.k):
        opt.zero_grad()
        total, per_member = fused_cross_entropy(fused(x), y)
        total.backward()
        opt.step()
        losses.append(per_member.detach())
    return torch.stack(losses)


@pytest.mark.parametrize("optimizer", sorted(STATE))
@pytest.mark.parametrize("ordering", ["conv-bn-relu", "bn-relu-conv", "conv-gn-relu"])
@pytest.mark.parametrize("arch", ARCH_NAMES)
def test_training_matches_separate(arch: str, ordering: str, optimizer: str) -> None:
    models = _members(arch, ordering)
    fused = fuse_models(models)  # before training: the members start where the array starts
    fused_losses = _train_fused(fused, _make_opt(optimizer))
    separate_losses = _train_separately(models, _make_opt(optimizer))

    torch.testing.assert_close(fused_losses, separate_losses, **LOSS)
    _assert_states_match(fused, models, **STATE[optimizer])
    far = max(
        (p0 - p1).abs().max().item()
        for p0, p1 in zip(*(m.parameters() for m in models[:2]), strict=True)
    )
    assert far > 10 * STATE[optimizer]["atol"]  # the tolerance cannot hide a member mix-up


def test_k1_trains_like_the_model() -> None:
    (model,) = _members("resnet", "conv-bn-relu", seeds=(3,))
    fused = fuse_models([model])
    assert fused.k == 1
    fused_losses = _train_fused(fused, _make_opt("sgd"))
    torch.testing.assert_close(fused_losses, _train_separately([model], _make_opt("sgd")), **LOSS)
    _assert_states_match(fused, [model], **STATE["sgd"])


# ---- state round trips
def test_member_state_dict_loads_into_a_fresh_model() -> None:
    models = _members("cnn", "conv-lrelu-bn")
    fused = fuse_models(models)
    x = torch.randn(BATCH, len(models), *SHAPE)
    fused(x)  # move the running statistics off their initial values
    fused.eval()
    out = fused(x)
    for k, seed in enumerate(SEEDS):
        fresh = build_model(_cfg("cnn", "conv-lrelu-bn", seed=seed + 10))
        fresh.load_state_dict(fused.member_state_dict(k))  # strict: same keys and shapes
        torch.testing.assert_close(fresh.eval()(x[:, k]), out[:, k], **FORWARD)


def test_load_member_state_dicts_inverts_member_state_dict() -> None:
    fused = fuse_models(_members("mlp", "conv-bn-relu"))
    states = [fused.member_state_dict(k) for k in range(fused.k)]
    other = fuse_models(_members("mlp", "conv-bn-relu", seeds=(7, 8, 9)))
    other.load_member_state_dicts(states[::-1])
    for k in range(fused.k):
        for name, t in other.member_state_dict(k).items():
            torch.testing.assert_close(t, states[fused.k - 1 - k][name], rtol=0, atol=0)


def test_fusing_copies_and_leaves_the_rng_alone() -> None:
    models = _members("cnn", "conv-bn-relu")
    before = [{n: t.clone() for n, t in m.state_dict().items()} for m in models]
    rng = torch.random.get_rng_state()
    fused = fuse_models(models)
    assert torch.equal(torch.random.get_rng_state(), rng)  # fused leaves are not initialised
    _train_fused(fused, _make_opt("sgd"))
    for m, state in zip(models, before, strict=True):
        for name, t in m.state_dict().items():
            assert torch.equal(t, state[name]), name  # the members share nothing with the array


# ---- refusals
def test_different_widths_are_refused() -> None:
    models = [
        build_model(_cfg("cnn", "conv-bn-relu", 0)),
        build_model(_cfg("cnn", "conv-bn-relu", 1, width=16)),
    ]
    with pytest.raises(
        ConfigError, match=r"models\[1\]\.stem: 'Conv2d\(3, 16.*differs from models\[0\]'s"
    ):
        fuse_models(models)


def test_different_structures_are_refused() -> None:
    deep = build_model(_cfg("cnn", "conv-bn-relu", 1, depth=3))
    with pytest.raises(
        ConfigError,
        match=r"models\[1\]: module tree differs.*'blocks\.2: OrderedBlock' where it has 'pool",
    ):
        fuse_models([build_model(_cfg("cnn", "conv-bn-relu", 0)), deep])
    with pytest.raises(
        ConfigError, match=r"models\[1\]: .*'<root>: MLP' where it has '<root>: CNN'"
    ):
        fuse_models(
            [
                build_model(_cfg("cnn", "conv-bn-relu", 0)),
                build_model(_cfg("mlp", "conv-bn-relu", 0)),
            ]
        )


def test_different_activation_settings_are_refused() -> None:
    a = build_model(_cfg("cnn", "conv-lrelu-bn", 0))
    b = build_model(_cfg("cnn", "conv-lrelu-bn", 1, lrelu_slope=0.2))
    with pytest.raises(
        ConfigError, match=r"models\[1\]\.blocks\.0\.lrelu: 'LeakyReLU\(negative_slope=0\.2\)'"
    ):
        fuse_models([a, b])


class _Custom(nn.Module):  # a container whose forward fusing cannot vouch for
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


@pytest.mark.parametrize(
    ("make", "name"),
    [
        (lambda: nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.1), nn.Linear(4, 2)), "Dropout"),
        (lambda: nn.Sequential(nn.Conv2d(3, 4, 3), nn.PReLU()), "PReLU"),
        (_Custom, "_Custom"),
    ],
)
def test_unsupported_modules_are_refused(make: Callable[[], nn.Module], name: str) -> None:
    with pytest.raises(ConfigError, match=rf"cannot fuse module type '{name}'.*valid: .*Conv2d"):
        fuse_models([make(), make()])


def test_bad_calls_are_refused() -> None:
    with pytest.raises(ConfigError, match="need at least one model"):
        fuse_models([])
    fused = fuse_models(_members("mlp", "conv-relu"))
    with pytest.raises(
        ValueError, match=r"expects \[batch, 3, \.\.\.\] inputs, got \(8, 2, 3, 16, 16\)"
    ):
        fused(torch.randn(BATCH, 2, *SHAPE))
    with pytest.raises(ValueError, match="targets must be"):
        fused_cross_entropy(torch.randn(BATCH, 3, CLASSES), torch.zeros(BATCH, dtype=torch.long))
    with pytest.raises(ConfigError, match=r"state_dicts: need one per member \(3\), got 2"):
        fused.load_member_state_dicts([fused.member_state_dict(0)] * 2)
