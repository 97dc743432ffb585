"""Optimisers and learning-rate schedules by name."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch

__all__ = ["OPTIMIZERS", "SCHEDULES", "create_optimizer", "create_schedule"]

OPTIMIZERS: dict[str, str] = {
    "adam": "Adam (the seed's)",
    "adamw": "AdamW: decoupled weight decay",
    "sgd": "SGD with momentum (Nesterov off)",
}
SCHEDULES: dict[str, str] = {
    "constant": "the same lr every step (the seed's)",
    "cosine": "cosine decay from lr to 0 over all training steps",
}


def create_optimizer(
    name: str,
    params: Iterable[torch.nn.Parameter],
    *,
    lr: float,
    weight_decay: float,
    momentum: float,
) -> torch.optim.Optimizer:
    """Names are validated by the config; this only builds."""
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, weight_decay=weight_decay, momentum=momentum)
    raise ValueError(f"optimizer {name!r} not in OPTIMIZERS")


def create_schedule(
    name: str, optimizer: torch.optim.Optimizer, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-step multiplier of the base lr; step it after every optimiser step."""
    factors: dict[str, Callable[[int], float]] = {
        "constant": lambda step: 1.0,
        "cosine": lambda step: (
            0.5 * (1 + math.cos(math.pi * min(step, total_steps) / max(1, total_steps)))
        ),
    }
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factors[name])
