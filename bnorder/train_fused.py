"""``train_fused``: K trials that differ only in their init and data-order seeds, trained as one
fused network (:mod:`bnorder.fused`): one result per member, each equal (within float rounding)
to what ``train_trial`` gives for that member alone. No Ray, no Optuna.

Each member draws its own batches from its own generator (its ``data_seed``), so a member sees
exactly the batch order and augmentation it would see alone; evaluation feeds every member the
same examples. Read top to bottom: checks, data, the fused network, the epoch loop, the results.
"""

from __future__ import annotations

import copy
import math
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from bnorder.config import TrialConfig
from bnorder.data import TrialData
from bnorder.device import device_name, resolve_device
from bnorder.errors import ConfigError
from bnorder.fused import FusedArray, fuse_models, fused_cross_entropy
from bnorder.models import count_parameters
from bnorder.probes import measure_probes
from bnorder.train import (
    DIVERGENCE_CHECK_EVERY,
    GPU_EVAL_BATCH,
    CompileClock,
    EpochReport,
    Status,
    TrialResult,
    autocast_for,
    build_model,
    gpu_peak_mib_of,
    load_trial_data,
    memory_layout,
    optimizer_for,
    reset_gpu_peak,
)

__all__ = ["FUSABLE_SEEDS", "check_fusable", "train_fused"]

# What may differ between members: the rest (split seed included) is one network's worth of
# hyperparameters, shared by the fused optimiser and the one prepared dataset.
FUSABLE_SEEDS = ("seed", "init_seed", "data_seed")


def check_fusable(cfgs: Sequence[TrialConfig]) -> None:
    """Raises ConfigError unless the configs differ only in ``FUSABLE_SEEDS``."""
    if not cfgs:
        raise ConfigError("members", 0, "a fused array needs at least one trial, got")
    base = cfgs[0].model_dump(exclude=set(FUSABLE_SEEDS))
    for i, cfg in enumerate(cfgs[1:], 1):
        other = cfg.model_dump(exclude=set(FUSABLE_SEEDS))
        diff = sorted(k for k in base if base[k] != other[k])
        if diff:
            raise ConfigError(
                f"members[{i}].{diff[0]}",
                other[diff[0]],
                f"differs from member 0's {base[diff[0]]!r}; fused members may differ only in "
                f"{', '.join(FUSABLE_SEEDS)}, not",
                hint="run it as a separate trial (fuse: 1)",
            )


def _evaluate(
    net: nn.Module, array: FusedArray, data: TrialData, split: Any, autocast: Any, batch: int
) -> tuple[list[float], list[float]]:
    k = array.k
    if split is None:
        return [math.nan] * k, [math.nan] * k
    array.eval()
    loss = torch.zeros(k, device=split.y.device)
    correct = torch.zeros(k, device=split.y.device, dtype=torch.long)
    with torch.no_grad(), autocast():
        for x, y in data.eval_batches(split, batch):
            out = net(x.unsqueeze(1).expand(-1, k, *x.shape[1:])).float()  # [B, K, classes]
            ys = y.unsqueeze(1).expand(-1, k)
            loss += F.cross_entropy(out.transpose(1, 2), ys, reduction="none").sum(0)
            correct += (out.argmax(2) == ys).sum(0)
    n = len(split)
    return (loss / n).tolist(), (correct.float() / n).tolist()


def train_fused(
    cfgs: Sequence[TrialConfig],
    report: Callable[[list[EpochReport]], None] | None = None,
    *,
    data_root: str | Path | None = None,
    resume: dict[str, Any] | None = None,
    trial_ids: Sequence[str] | None = None,
) -> list[TrialResult]:
    """Train ``cfgs`` (same everything but seeds) as one fused array; one result per member.

    ``report`` receives one :class:`EpochReport` per member after each epoch; their ``state``
    snapshots are the same whole-array snapshot, which ``resume`` accepts.

    Raises:
        ConfigError: the configs differ in more than seeds, or the device is unavailable.
        DataError: the dataset is missing and cannot be downloaded.
    """
    # ---------------------------------------------------------------- checks and setup
    check_fusable(cfgs)
    started = time.perf_counter()
    cfg = cfgs[0]
    k = len(cfgs)
    device = resolve_device(cfg.device)
    ids = list(
        trial_ids
        or (resume or {}).get("trial_ids")
        or [f"{c.config_hash[:8]}-{uuid.uuid4().hex[:8]}" for c in cfgs]
    )
    eval_batch = GPU_EVAL_BATCH if device.type == "cuda" else cfg.batch_size
    autocast = autocast_for(cfg, device)
    reset_gpu_peak(device)

    # ---------------------------------------------------------------- data
    raw, data = load_trial_data(cfg, data_root, device)
    gens = [torch.Generator().manual_seed(c.data_seed) for c in cfgs]
    probe_x = data.to_float(data.train.x[: cfg.probe_size]) if cfg.probes else None
    probe_y = data.train.y[: cfg.probe_size] if cfg.probes else None

    # ---------------------------------------------------------------- the fused network
    members = [build_model(c) for c in cfgs]
    n_params = count_parameters(members[0])
    layout = memory_layout(cfg, data.train.x.ndim)
    array = fuse_models(members).to(device).to(memory_format=layout)
    array.input_layout = layout
    net = torch.compile(array) if cfg.compile else array
    optimizer, schedule = optimizer_for(cfg, array.parameters(), len(data.train))
    histories: list[list[dict[str, Any]]] = [[] for _ in cfgs]
    first_epoch = 1
    if resume is not None:
        array.load_state_dict(resume["array"])
        optimizer.load_state_dict(resume["optimizer"])
        schedule.load_state_dict(resume["schedule"])
        for g, state in zip(gens, resume["data_rngs"], strict=True):
            g.set_state(state)
        histories = [list(h) for h in resume["histories"]]
        first_epoch = resume["epoch"] + 1

    def snapshot(epoch: int) -> dict[str, Any]:
        return copy.deepcopy(
            {
                "trial_ids": ids,
                "epoch": epoch,
                "array": array.state_dict(),
                "optimizer": optimizer.state_dict(),
                "schedule": schedule.state_dict(),
                "data_rngs": [g.get_state() for g in gens],
                "histories": histories,
            }
        )

    static = {
        "n_params": n_params,
        "device_name": device_name(device),
        "data_source": raw.source,
    }

    # ---------------------------------------------------------------- epochs
    status: list[Status] = ["ok"] * k
    clock = CompileClock(cfg.compile, device)
    for epoch in range(first_epoch, cfg.epochs + 1):
        array.train()
        clock.start_epoch()
        t0 = time.perf_counter()
        loss_sum = torch.zeros(k, device=device)
        correct = torch.zeros(k, device=device, dtype=torch.long)
        seen = 0
        member_batches = (data.train_batches(cfg.batch_size, g, augment=cfg.augment) for g in gens)
        batches = zip(*member_batches, strict=True)  # same sizes: same data, same batch size
        for step, batch in enumerate(batches, 1):
            x = torch.stack([b[0] for b in batch], 1)  # [B, K, C, H, W]
            y = torch.stack([b[1] for b in batch], 1)  # [B, K]
            with clock.step(x.shape, len(y)):
                with autocast():
                    out = net(x)
                    total, per_member = fused_cross_entropy(out.float(), y)
                optimizer.zero_grad(set_to_none=True)
                total.backward()
                optimizer.step()
            schedule.step()
            loss_sum += per_member.detach() * len(y)
            correct += (out.detach().argmax(2) == y).sum(0)
            seen += len(y)
            # a diverged member stays confined to its own channels; stop once all have
            if step % DIVERGENCE_CHECK_EVERY == 0 and not torch.isfinite(loss_sum).any():
                break
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        timing = clock.epoch_metrics(seen, time.perf_counter() - t0)
        train_loss = (loss_sum / max(seen, 1)).tolist()
        # a member that diverged in an earlier epoch has ended, as train_trial would have
        live = [m for m in range(k) if status[m] == "ok"]
        for m in live:
            if not math.isfinite(train_loss[m]):
                status[m] = "diverged"

        t1 = time.perf_counter()
        val_loss, val_acc = _evaluate(net, array, data, data.val, autocast, eval_batch)
        test_loss, test_acc = _evaluate(net, array, data, data.test, autocast, eval_batch)
        eval_seconds = time.perf_counter() - t1
        train_acc = (correct.float() / max(seen, 1)).tolist()
        for m in live:
            metrics: dict[str, Any] = {
                "epoch": epoch,
                "train_loss": train_loss[m],
                "train_acc": train_acc[m],
                "val_loss": val_loss[m],
                "val_acc": val_acc[m],
                "test_loss": test_loss[m],
                "test_acc": test_acc[m],
                "lr_end": optimizer.param_groups[0]["lr"],
                # the array's time, shared: each member's images/s is the array's over K
                "eval_seconds": eval_seconds,
                **timing,
            }
            if cfg.probes and status[m] == "ok":
                member = build_model(cfgs[m]).to(device)
                member.load_state_dict(array.member_state_dict(m))
                metrics.update(measure_probes(member, probe_x, probe_y))
            histories[m].append(metrics)
        if report is not None:
            info = {
                **static,
                "wall_seconds": time.perf_counter() - started,
                "gpu_peak_mib": gpu_peak_mib_of(device),
            }
            shared = lambda epoch=epoch: snapshot(epoch)  # noqa: E731
            report(
                [
                    EpochReport(
                        histories[m][-1], shared, {**info, "trial_id": ids[m], "status": status[m]}
                    )
                    for m in live
                ]
            )
        if all(s == "diverged" for s in status):
            break

    # ---------------------------------------------------------------- results
    wall = time.perf_counter() - started
    return [
        TrialResult(
            config=cfgs[m],
            trial_id=ids[m],
            status=status[m],
            epochs=histories[m],
            n_params=n_params,
            wall_seconds=wall,
            device_name=static["device_name"],
            data_source=raw.source,
            gpu_peak_mib=gpu_peak_mib_of(device),
            execution=f"fused {k}",
        )
        for m in range(k)
    ]
