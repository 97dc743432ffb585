"""The training core on CPU, on the synthetic dataset: metrics, determinism, divergence, resume,
bf16, and that probes never change the trajectory."""

from __future__ import annotations

import math
import time

import pytest
import torch

from bnorder.config import TrialConfig
from bnorder.train import EpochReport, TrialResult, train_trial

SMALL = {
    "dataset": "synthetic",
    "arch": "cnn",
    "depth": 2,
    "width": 8,
    "device": "cpu",
    "epochs": 2,
}
METRIC_KEYS = {
    "epoch",
    "train_loss",
    "train_acc",
    "val_loss",
    "val_acc",
    "test_loss",
    "test_acc",
    "lr_end",
    "train_seconds",
    "eval_seconds",
    "images_per_s",
}


def _curve(result: TrialResult) -> list[tuple[float, ...]]:
    return [
        (e["train_loss"], e["train_acc"], e["val_acc"], e["test_loss"], e["test_acc"])
        for e in result.epochs
    ]


def test_trial_reports_every_epoch_and_learns() -> None:
    seen: list[EpochReport] = []
    result = train_trial(TrialConfig(**{**SMALL, "epochs": 3}, ordering="case2"), seen.append)
    assert result.status == "ok"
    assert [r.metrics["epoch"] for r in seen] == [1, 2, 3]
    assert set(result.epochs[-1]) >= METRIC_KEYS
    for e in result.epochs:
        for key in ("train_acc", "val_acc", "test_acc"):
            assert 0 <= e[key] <= 1
    assert result.epochs[-1]["test_acc"] > 0.2  # chance is 0.1
    s = result.summary()
    assert s["best_val_acc"] == max(e["val_acc"] for e in result.epochs)
    best = next(e for e in result.epochs if e["epoch"] == s["best_val_epoch"])
    assert s["test_acc_at_best_val"] == best["test_acc"]


@pytest.mark.parametrize("arch", ["cnn", "mlp", "resnet"])
def test_deterministic_on_cpu(arch: str) -> None:
    cfg = TrialConfig(**{**SMALL, "arch": arch}, ordering="case3", augment=True)
    assert _curve(train_trial(cfg)) == _curve(train_trial(cfg))


def test_seeds_vary_separately() -> None:
    base = TrialConfig(**SMALL)
    ref = _curve(train_trial(base))
    assert _curve(train_trial(base.replace(init_seed=1))) != ref
    assert _curve(train_trial(base.replace(data_seed=1))) != ref
    assert _curve(train_trial(base.replace(split_seed=1))) != ref


def test_probes_do_not_change_training() -> None:
    cfg = TrialConfig(**SMALL, ordering="conv-relu-bn")
    with_probes = train_trial(cfg.replace(probes=True))
    assert _curve(with_probes) == _curve(train_trial(cfg))
    assert len(with_probes.epochs[0]["norm_in_skew"]) == 2


def test_divergence_is_a_result_not_an_exception() -> None:
    cfg = TrialConfig(
        **{**SMALL, "arch": "mlp", "epochs": 5}, ordering="conv-relu", optimizer="sgd", lr=1e10
    )
    result = train_trial(cfg)
    assert result.status == "diverged"
    assert len(result.epochs) == 1  # stopped after the epoch it diverged in
    assert math.isnan(result.epochs[0]["train_loss"])


def test_resume_continues_exactly() -> None:
    cfg = TrialConfig(**{**SMALL, "epochs": 3}, ordering="case1", augment=True)
    states = {}
    full = train_trial(cfg, lambda r: states.__setitem__(r.metrics["epoch"], r.state()))
    resumed = train_trial(cfg, resume=states[1])
    assert resumed.trial_id == full.trial_id
    assert [e["epoch"] for e in resumed.epochs] == [1, 2, 3]
    assert _curve(resumed) == _curve(full)


def test_bf16_autocast_runs() -> None:
    result = train_trial(TrialConfig(**{**SMALL, "epochs": 1}, precision="bf16"))
    assert result.status == "ok"
    assert math.isfinite(result.epochs[0]["test_loss"])


def test_no_validation_split_means_no_selection() -> None:
    result = train_trial(TrialConfig(**SMALL, val_fraction=0))
    assert math.isnan(result.epochs[-1]["val_acc"])
    assert result.summary()["best_val_epoch"] is None


def test_cosine_schedule_decays_to_zero() -> None:
    result = train_trial(TrialConfig(**SMALL, schedule="cosine"))
    assert result.epochs[0]["lr_end"] == pytest.approx(0.5e-3, rel=0.05)
    assert result.epochs[-1]["lr_end"] == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd"])
def test_optimizers(optimizer: str) -> None:
    lr = 0.05 if optimizer == "sgd" else 1e-3
    cfg = TrialConfig(**{**SMALL, "epochs": 1}, optimizer=optimizer, lr=lr, weight_decay=1e-4)
    result = train_trial(cfg)
    assert result.status == "ok"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.gpu
def test_cuda_trial_matches_cpu_closely() -> None:
    cpu = train_trial(TrialConfig(**SMALL))
    gpu = train_trial(TrialConfig(**{**SMALL, "device": "cuda"}))
    assert gpu.epochs[-1]["test_acc"] == pytest.approx(cpu.epochs[-1]["test_acc"], abs=0.05)


@pytest.mark.parametrize("fused", [False, True])
def test_every_trial_restarts_the_gpu_peak(monkeypatch: pytest.MonkeyPatch, fused: bool) -> None:
    """Ray reuses actors: without a reset, a trial reports the largest peak before it."""
    import bnorder.train
    import bnorder.train_fused

    calls: list[torch.device] = []
    for module in (bnorder.train, bnorder.train_fused):
        monkeypatch.setattr(module, "reset_gpu_peak", calls.append)
    cfg = TrialConfig(**{**SMALL, "epochs": 1})
    if fused:
        bnorder.train_fused.train_fused([cfg, cfg.replace(seed=1)])
    else:
        train_trial(cfg)
        train_trial(cfg.replace(seed=1))
    assert calls == [torch.device("cpu")] * (1 if fused else 2)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.gpu
def test_a_small_trial_after_a_big_one_reports_its_own_peak() -> None:
    big = train_trial(TrialConfig(**{**SMALL, "device": "cuda", "width": 256, "epochs": 1}))
    small = train_trial(TrialConfig(**{**SMALL, "device": "cuda", "width": 4, "epochs": 1}))
    assert small.gpu_peak_mib < big.gpu_peak_mib / 2


class _SlowFirstCall(torch.nn.Module):
    """Stands in for torch.compile: the first call with each input shape stalls, as a
    compilation does; later calls run the module as it is."""

    STALL = 0.3

    def __init__(self, module: torch.nn.Module) -> None:
        super().__init__()
        self.module, self.shapes = module, set()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.module.training and tuple(x.shape) not in self.shapes:
            self.shapes.add(tuple(x.shape))
            time.sleep(self.STALL)
        return self.module(x)


@pytest.mark.parametrize("fused", [False, True])
def test_compile_time_stays_out_of_epoch_one_throughput(
    monkeypatch: pytest.MonkeyPatch, fused: bool
) -> None:
    monkeypatch.setattr(torch, "compile", lambda module, **kw: _SlowFirstCall(module))
    # 2304 training images in batches of 100: a full shape and the partial last one compile
    cfg = TrialConfig(**{**SMALL, "epochs": 2, "compile": True, "batch_size": 100})
    if fused:
        from bnorder.train_fused import train_fused

        epochs = train_fused([cfg, cfg.replace(seed=1)])[0].epochs
    else:
        epochs = train_trial(cfg).epochs
    first, second = epochs
    assert first["compile_seconds"] >= 2 * _SlowFirstCall.STALL
    assert second["compile_seconds"] == 0.0  # both shapes compiled already
    assert first["train_seconds"] < 2 * _SlowFirstCall.STALL  # the stalls are not training
    assert first["images_per_s"] == pytest.approx(second["images_per_s"], rel=0.9)


def test_eager_trials_report_no_compile_time() -> None:
    epochs = train_trial(TrialConfig(**{**SMALL, "epochs": 1})).epochs
    assert math.isnan(epochs[0]["compile_seconds"])
