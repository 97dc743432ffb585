"""``train_trial``: one training run from a :class:`TrialConfig`, on CPU or GPU, with no Ray and
no Optuna. Sweeps hook in through ``report``, which receives every epoch's metrics and a way to
snapshot the full training state (for checkpoints); ``resume`` continues from such a snapshot.

Read top to bottom: setup, data, model, optimiser, the epoch loop, the result.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from bnorder.config import TrialConfig
from bnorder.data import RawData, TrialData, get_dataset, load_dataset, prepare_data
from bnorder.device import device_name, resolve_device
from bnorder.models import count_parameters, create_model
from bnorder.optim import create_optimizer, create_schedule
from bnorder.probes import measure_probes

__all__ = [
    "CompileClock",
    "EpochReport",
    "TrialResult",
    "autocast_for",
    "build_model",
    "gpu_peak_mib_of",
    "load_trial_data",
    "memory_layout",
    "optimizer_for",
    "reset_gpu_peak",
    "train_trial",
]

Status = Literal["ok", "diverged", "failed"]
DIVERGENCE_CHECK_EVERY = 20  # steps between finiteness checks: each one syncs the GPU
# Eval mode makes results independent of the eval batch size: big batches feed a GPU, while on
# CPU the training batch size stays cache-friendly (1024 was 2x slower than 128 on 1 thread).
GPU_EVAL_BATCH = 1024


@dataclass(frozen=True)
class EpochReport:
    """What ``report`` receives after each epoch."""

    metrics: dict[str, Any]
    state: Callable[[], dict[str, Any]]  # snapshot of everything needed to resume (lazy)
    info: dict[str, Any]  # trial_id, status, n_params, device_name, data_source, wall_seconds,
    # gpu_peak_mib


@dataclass
class TrialResult:
    """A finished (or diverged) trial: its config, status and one metrics dict per epoch."""

    config: TrialConfig
    trial_id: str
    status: Status
    epochs: list[dict[str, Any]]
    n_params: int
    wall_seconds: float
    device_name: str
    data_source: str
    error: str | None = None
    gpu_peak_mib: float | None = None  # the CUDA allocator's peak; None off-GPU
    execution: str = "single"  # or "fused K": trained as one member of a fused seed array
    extra: dict[str, Any] = field(default_factory=dict)  # provenance added by sweeps

    def summary(self) -> dict[str, Any]:
        """Final and best-validation metrics. Model selection uses validation only; the test
        accuracy at the best-validation epoch is reported, never the best test accuracy."""
        last = self.epochs[-1] if self.epochs else {}
        best = best_val_epoch(self.epochs)
        return {
            "epochs_done": len(self.epochs),
            "final_train_loss": last.get("train_loss", math.nan),
            "final_train_acc": last.get("train_acc", math.nan),
            "final_val_acc": last.get("val_acc", math.nan),
            "final_test_acc": last.get("test_acc", math.nan),
            "final_test_loss": last.get("test_loss", math.nan),
            "best_val_acc": best.get("val_acc", math.nan),
            "best_val_epoch": best.get("epoch"),
            "test_acc_at_best_val": best.get("test_acc", math.nan),
        }


def best_val_epoch(epochs: list[dict[str, Any]]) -> dict[str, Any]:
    """The epoch with the highest validation accuracy (NaN epochs skipped), or ``{}``: the one
    model-selection rule of rows, Ray's view of a trial and the trackers."""
    scored = [e for e in epochs if not math.isnan(e.get("val_acc", math.nan))]
    return max(scored, key=lambda e: e["val_acc"]) if scored else {}


def build_model(cfg: TrialConfig) -> nn.Module:
    """The network ``cfg`` describes, initialised from ``cfg.init_seed``; loads no data."""
    spec = get_dataset(cfg.dataset)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.init_seed)
        return create_model(
            cfg.arch,
            cfg.parsed_ordering,
            depth=cfg.depth,
            width=cfg.width,
            in_shape=spec.in_shape,
            num_classes=spec.num_classes,
            params=cfg.layer_params,
            init=cfg.init,
        )


def autocast_for(
    cfg: TrialConfig, device: torch.device
) -> Callable[[], contextlib.AbstractContextManager]:
    """bf16 autocast (matmuls and convolutions; BatchNorm keeps fp32 statistics) or nothing."""
    if cfg.precision != "bf16":
        return contextlib.nullcontext
    return lambda: torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def load_trial_data(
    cfg: TrialConfig, data_root: str | Path | None, device: torch.device
) -> tuple[RawData, TrialData]:
    """The dataset as loaded, and its split for this trial on ``device``."""
    raw = load_dataset(cfg.dataset, data_root)
    data = prepare_data(
        raw,
        val_fraction=cfg.val_fraction,
        split_seed=cfg.split_seed,
        subset=cfg.subset,
        test_subset=cfg.test_subset,
        normalization=cfg.normalization,
        device=device,
    )
    return raw, data


def optimizer_for(cfg: TrialConfig, params: Any, n_train: int) -> tuple[Any, Any]:
    """The optimiser ``cfg`` names over ``params``, and its lr schedule over all the steps."""
    optimizer = create_optimizer(
        cfg.optimizer, params, lr=cfg.lr, weight_decay=cfg.weight_decay, momentum=cfg.momentum
    )
    steps_per_epoch = math.ceil(n_train / cfg.batch_size)
    return optimizer, create_schedule(cfg.schedule, optimizer, steps_per_epoch * cfg.epochs)


def gpu_peak_mib_of(device: torch.device) -> float | None:
    """Peak memory allocated on ``device`` since :func:`reset_gpu_peak`: checks a trial kept
    to its GPU share."""
    return torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None


def reset_gpu_peak(device: torch.device) -> None:
    """Start a trial's peak from its own first allocation: Ray reuses actors, so one process
    trains trial after trial, and CUDA's peak would otherwise carry the largest before it."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


_UNTIMED = contextlib.nullcontext()  # reentrant and reusable: no object per step


class CompileClock:
    """Keeps compilation out of training throughput: with ``compile``, the first step of each
    batch shape compiles a graph (the first batch, and the partial last one), so it is timed
    apart, as ``compile_seconds``, and its images do not count in ``images_per_s``."""

    def __init__(self, active: bool, device: torch.device) -> None:
        self.active, self.device = active, device
        self.shapes: set[tuple[int, ...]] = set()
        self.seconds, self.images = 0.0, 0

    def start_epoch(self) -> None:
        self.seconds, self.images = 0.0, 0

    def step(self, shape: torch.Size, images: int) -> contextlib.AbstractContextManager:
        """Times a step apart if it may compile; otherwise nothing (the hot path)."""
        if not self.active or tuple(shape) in self.shapes:
            return _UNTIMED
        return self._timed(tuple(shape), images)

    @contextlib.contextmanager
    def _timed(self, shape: tuple[int, ...], images: int) -> Iterator[None]:
        _sync(self.device)
        t = time.perf_counter()
        yield
        _sync(self.device)
        self.seconds += time.perf_counter() - t
        self.images += images
        self.shapes.add(shape)

    def epoch_metrics(self, seen: int, seconds: float) -> dict[str, float]:
        """``train_seconds``, ``images_per_s`` and ``compile_seconds`` of an epoch that took
        ``seconds`` over ``seen`` images, compiling steps left out."""
        train = seconds - self.seconds
        return {
            "train_seconds": train,
            "images_per_s": (seen - self.images) / train if train > 0 else math.nan,
            "compile_seconds": self.seconds if self.active else math.nan,
        }


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def memory_layout(cfg: TrialConfig, ndim: int) -> torch.memory_format:
    """channels_last applies to image batches (N, C, H, W) only."""
    return torch.channels_last if cfg.channels_last and ndim == 4 else torch.contiguous_format


def _evaluate(
    net: nn.Module,
    model: nn.Module,
    data: TrialData,
    split: Any,
    autocast: Any,
    batch: int,
    layout: torch.memory_format,
) -> tuple[float, float]:
    if split is None:
        return math.nan, math.nan
    model.eval()  # the compiled `net` shares the module, and its mode
    loss = torch.zeros((), device=split.y.device)
    correct = torch.zeros((), device=split.y.device, dtype=torch.long)
    with torch.no_grad(), autocast():
        for x, y in data.eval_batches(split, batch):
            out = net(x.contiguous(memory_format=layout))
            loss += F.cross_entropy(out.float(), y, reduction="sum")
            correct += (out.argmax(1) == y).sum()
    return loss.item() / len(split), correct.item() / len(split)


def train_trial(
    cfg: TrialConfig,
    report: Callable[[EpochReport], None] | None = None,
    *,
    data_root: str | Path | None = None,
    resume: dict[str, Any] | None = None,
    trial_id: str | None = None,
) -> TrialResult:
    """Train one network as ``cfg`` says and evaluate it after every epoch.

    Args:
        cfg: the trial's whole configuration.
        report: called after each epoch with its metrics and a state snapshot function.
        data_root: where datasets live; None means ``$BNORDER_DATA_ROOT`` or the user cache.
        resume: a snapshot from ``EpochReport.state()``; training continues after its epoch and
            ends exactly where an uninterrupted run would (on CPU, bit for bit).
        trial_id: the ID for result rows; a fresh one if None.

    Returns:
        The result with status ``ok``, or ``diverged`` if a loss became NaN or infinite (training
        stops after that epoch's evaluation; the caller never sees an exception for it).

    Raises:
        ConfigError: the requested device is not available.
        DataError: the dataset is missing and cannot be downloaded.
    """
    # ---------------------------------------------------------------- setup
    started = time.perf_counter()
    device = resolve_device(cfg.device)
    trial_id = (
        trial_id
        or (resume or {}).get("trial_id")
        or f"{cfg.config_hash[:8]}-{uuid.uuid4().hex[:8]}"
    )
    eval_batch = GPU_EVAL_BATCH if device.type == "cuda" else cfg.batch_size
    autocast = autocast_for(cfg, device)
    reset_gpu_peak(device)

    # ---------------------------------------------------------------- data
    raw, data = load_trial_data(cfg, data_root, device)
    data_gen = torch.Generator().manual_seed(cfg.data_seed)  # batch order and augmentation only
    probe_x = data.to_float(data.train.x[: cfg.probe_size]) if cfg.probes else None
    probe_y = data.train.y[: cfg.probe_size] if cfg.probes else None

    # ---------------------------------------------------------------- model and optimiser
    model = build_model(cfg).to(device)
    layout = memory_layout(cfg, data.train.x.ndim)
    model = model.to(memory_format=layout)
    # `net` runs the batches; `model` (the same parameters) is what snapshots and probes see
    net = torch.compile(model) if cfg.compile else model
    optimizer, schedule = optimizer_for(cfg, model.parameters(), len(data.train))
    history: list[dict[str, Any]] = []
    first_epoch = 1
    if resume is not None:
        model.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        schedule.load_state_dict(resume["schedule"])
        data_gen.set_state(resume["data_rng"])
        history = list(resume["history"])
        first_epoch = resume["epoch"] + 1

    def snapshot(epoch: int) -> dict[str, Any]:
        # a deep copy: the live tensors keep changing as training goes on
        return copy.deepcopy(
            {
                "trial_id": trial_id,
                "epoch": epoch,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "schedule": schedule.state_dict(),
                "data_rng": data_gen.get_state(),
                "history": list(history),
            }
        )

    static_info = {
        "trial_id": trial_id,
        "n_params": count_parameters(model),
        "device_name": device_name(device),
        "data_source": raw.source,
    }

    # ---------------------------------------------------------------- epochs
    status: Status = "ok"
    clock = CompileClock(cfg.compile, device)
    for epoch in range(first_epoch, cfg.epochs + 1):
        model.train()
        clock.start_epoch()
        t0 = time.perf_counter()
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        seen = 0
        for step, (x, y) in enumerate(
            data.train_batches(cfg.batch_size, data_gen, augment=cfg.augment), 1
        ):
            with clock.step(x.shape, len(y)):
                with autocast():
                    out = net(x.contiguous(memory_format=layout))
                    loss = F.cross_entropy(out.float(), y)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            schedule.step()
            loss_sum += loss.detach() * len(y)
            correct += (out.detach().argmax(1) == y).sum()
            seen += len(y)
            if step % DIVERGENCE_CHECK_EVERY == 0 and not torch.isfinite(loss_sum):
                break
        _sync(device)
        timing = clock.epoch_metrics(seen, time.perf_counter() - t0)
        train_loss = loss_sum.item() / max(seen, 1)
        if not math.isfinite(train_loss):
            status = "diverged"

        t1 = time.perf_counter()
        val_loss, val_acc = _evaluate(net, model, data, data.val, autocast, eval_batch, layout)
        test_loss, test_acc = _evaluate(net, model, data, data.test, autocast, eval_batch, layout)
        metrics: dict[str, Any] = {
            "epoch": epoch,
            "train_loss": train_loss,
            "train_acc": correct.item() / max(seen, 1),
            "val_loss": val_loss,
            "val_acc": val_acc,
            "test_loss": test_loss,
            "test_acc": test_acc,
            "lr_end": optimizer.param_groups[0]["lr"],
            "eval_seconds": time.perf_counter() - t1,
            **timing,
        }
        if cfg.probes and status == "ok":
            metrics.update(measure_probes(model, probe_x, probe_y))
        history.append(metrics)
        if report is not None:
            info = {
                **static_info,
                "status": status,
                "wall_seconds": time.perf_counter() - started,
                "gpu_peak_mib": gpu_peak_mib_of(device),
            }
            report(EpochReport(metrics, lambda epoch=epoch: snapshot(epoch), info))
        if status == "diverged":
            break

    # ---------------------------------------------------------------- result
    return TrialResult(
        config=cfg,
        trial_id=trial_id,
        status=status,
        epochs=history,
        n_params=static_info["n_params"],
        wall_seconds=time.perf_counter() - started,
        device_name=static_info["device_name"],
        data_source=raw.source,
        gpu_peak_mib=gpu_peak_mib_of(device),
    )
