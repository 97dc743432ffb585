"""``train_fused`` against ``train_trial``: the same members trained as one fused array and one
at a time give the same per-epoch metrics (float rounding aside), resume bit for bit, and
refuse members that differ in more than seeds."""

from __future__ import annotations

import math

import pytest
import torch

from bnorder.config import TrialConfig
from bnorder.errors import ConfigError
from bnorder.train import train_trial
from bnorder.train_fused import train_fused

# Grouped vs dense convolutions sum in different orders: losses agree to ~1e-6 per step, and
# the gap grows over an epoch's steps, most with Adam, whose normalised steps turn rounding noise
# on near-zero gradients (a conv bias before BN) into full-size steps. Mean losses stay within
# 0.2%; accuracies may flip on a few examples near the decision boundary. Held-out losses
# amplify the last steps' weight differences most: on an AVX-512 (Zen 5) CPU the pre-activation
# MLP with Adam ended epoch 2 with validation and test losses 0.26% apart while its train loss
# agreed to 1e-5, so they get 1%.
LOSS_TOL = 2e-3
EVAL_LOSS_TOL = 1e-2
ACC_TOL = 5 / 256  # five examples of the synthetic validation split


def _cfg(**kw: object) -> TrialConfig:
    base = {"dataset": "synthetic", "depth": 2, "width": 8, "epochs": 2, "device": "cpu"}
    return TrialConfig(**{**base, **kw})


@pytest.mark.parametrize(
    ("arch", "ordering", "optimizer"),
    [
        ("cnn", "conv-bn-relu", "sgd"),
        ("cnn", "conv-relu-bn", "adam"),
        ("mlp", "bn-relu-conv", "adam"),
    ],
)
def test_members_match_separate_trials(arch: str, ordering: str, optimizer: str) -> None:
    cfgs = [
        _cfg(arch=arch, ordering=ordering, optimizer=optimizer, lr=0.01, seed=s, augment=True)
        for s in range(3)
    ]
    fused = train_fused(cfgs)
    for cfg, got in zip(cfgs, fused, strict=True):
        alone = train_trial(cfg)
        assert got.config == cfg
        assert (got.execution, alone.execution) == ("fused 3", "single")
        assert got.status == alone.status == "ok"
        assert got.n_params == alone.n_params
        assert len(got.epochs) == len(alone.epochs) == cfg.epochs
        for a, b in zip(got.epochs, alone.epochs, strict=True):
            assert math.isclose(a["train_loss"], b["train_loss"], rel_tol=LOSS_TOL)
            for key in ("val_loss", "test_loss"):
                assert math.isclose(a[key], b[key], rel_tol=EVAL_LOSS_TOL), (key, a[key], b[key])
            for key in ("train_acc", "val_acc", "test_acc"):
                assert abs(a[key] - b[key]) <= ACC_TOL, (key, a[key], b[key])
    # the members really differ (own init and data order), so the comparison means something
    assert fused[0].epochs[-1]["train_loss"] != fused[1].epochs[-1]["train_loss"]


def test_resume_continues_bit_for_bit() -> None:
    cfgs = [_cfg(seed=s, epochs=3) for s in (4, 5)]
    states = []
    full = train_fused(cfgs, lambda reps: states.append(reps[0].state()))
    resumed = train_fused(cfgs, resume=states[0])
    assert [r.trial_id for r in resumed] == [r.trial_id for r in full]
    timing = {"train_seconds", "eval_seconds", "images_per_s"}
    for a, b in zip(full, resumed, strict=True):
        assert [{k: v for k, v in e.items() if k not in timing} for e in a.epochs] == [
            {k: v for k, v in e.items() if k not in timing} for e in b.epochs
        ]


def test_reports_one_epoch_per_member_with_its_own_id() -> None:
    cfgs = [_cfg(seed=s, epochs=1, probes=True, probe_size=16) for s in range(2)]
    seen = []
    results = train_fused(cfgs, seen.append, trial_ids=["a", "b"])
    (reports,) = seen
    assert [r.info["trial_id"] for r in reports] == ["a", "b"]
    assert [r.trial_id for r in results] == ["a", "b"]
    assert all(len(r.metrics["norm_in_skew"]) == 2 for r in reports)  # probes per member


def test_members_must_differ_only_in_seeds() -> None:
    with pytest.raises(ConfigError, match=r"members\[1\]\.lr") as info:
        train_fused([_cfg(seed=0), _cfg(seed=1, lr=0.1)])
    assert "may differ only in seed, init_seed, data_seed" in str(info.value)
    with pytest.raises(ConfigError, match=r"members\[1\]\.split_seed"):
        train_fused([_cfg(seed=0), _cfg(seed=1, split_seed=3)])


def test_channels_last_reaches_the_fused_input(monkeypatch: pytest.MonkeyPatch) -> None:
    """Image batches enter the fused network channels-last, as a lone trial's do, instead of
    being converted by its first convolution."""
    import bnorder.train_fused

    seen: list[bool] = []
    fuse = bnorder.train_fused.fuse_models

    def spying(models: list) -> object:
        array = fuse(models)
        array.net.register_forward_pre_hook(
            lambda mod, args: seen.append(args[0].is_contiguous(memory_format=torch.channels_last))
        )
        return array

    monkeypatch.setattr(bnorder.train_fused, "fuse_models", spying)
    cfg = _cfg(arch="cnn", epochs=1, channels_last=True)
    train_fused([cfg, cfg.replace(seed=1)])
    assert seen
    assert all(seen)
