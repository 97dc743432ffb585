"""Per-block statistics that say *why* an ordering trains as it does.

Measured once per epoch on a fixed probe batch, in training mode (BatchNorm uses batch
statistics, as during training) with the running statistics restored afterwards and gradients
taken with ``torch.autograd.grad``, so probing never changes the training trajectory.

Per block, lists with one value per block (NaN where the block has no norm or no activation):

- ``norm_in_mean`` / ``norm_in_std`` / ``norm_in_skew``: moments of the norm layer's input,
  per channel, averaged over channels. The blog's claim "ReLU before BN gives BN skewed inputs"
  is a large positive ``norm_in_skew`` for ``conv-relu-bn``.
- ``norm_in_zero_frac``: fraction of the norm's input exactly zero ("sparse inputs").
- ``act_zero_frac``: fraction of the activation's outputs exactly zero.
- ``act_dead_frac``: fraction of channels (units) never positive on the whole probe batch; for
  ReLU these are dead units ("BN before ReLU gives fewer dead neurons").
- ``grad_norm``: L2 norm of the block's parameter gradients on the probe batch.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from bnorder.models import ProbeSite

__all__ = ["PROBE_STATS", "measure_probes"]

PROBE_STATS = (
    "norm_in_mean",
    "norm_in_std",
    "norm_in_skew",
    "norm_in_zero_frac",
    "act_zero_frac",
    "act_dead_frac",
    "grad_norm",
)


def _per_channel(t: torch.Tensor) -> torch.Tensor:
    """N×C(×H×W) -> C×M, one row of samples per channel."""
    return t.detach().float().transpose(0, 1).reshape(t.shape[1], -1)


def _norm_input_stats(t: torch.Tensor) -> dict[str, float]:
    x = _per_channel(t)
    mean = x.mean(dim=1, keepdim=True)
    std = x.std(dim=1, unbiased=False, keepdim=True)
    third = ((x - mean) ** 3).mean(dim=1, keepdim=True)
    skew = third / std.clamp_min(1e-8) ** 3
    return {
        "norm_in_mean": mean.mean().item(),
        "norm_in_std": std.mean().item(),
        "norm_in_skew": skew[std > 1e-8].mean().item() if (std > 1e-8).any() else math.nan,
        "norm_in_zero_frac": (x == 0).float().mean().item(),
    }


def _act_output_stats(t: torch.Tensor) -> dict[str, float]:
    x = _per_channel(t)
    return {
        "act_zero_frac": (x == 0).float().mean().item(),
        "act_dead_frac": (x.amax(dim=1) <= 0).float().mean().item(),
    }


def measure_probes(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, list[float]]:
    """Run the probe batch ``(x, y)`` through ``model`` and return ``{stat: [value per block]}``."""
    sites: list[ProbeSite] = model.probe_sites()  # type: ignore[operator]
    captured: dict[tuple[int, str], torch.Tensor] = {}
    hooks = []
    for i, site in enumerate(sites):
        if site.norm is not None:
            hooks.append(
                site.norm.register_forward_hook(
                    lambda m, inp, out, i=i: captured.__setitem__((i, "norm"), inp[0])
                )
            )
        if site.act is not None:
            hooks.append(
                site.act.register_forward_hook(
                    lambda m, inp, out, i=i: captured.__setitem__((i, "act"), out)
                )
            )
    buffers = {name: b.clone() for name, b in model.named_buffers()}
    was_training = model.training
    try:
        model.train()
        loss = F.cross_entropy(model(x), y)
        params = [p for p in model.parameters() if p.requires_grad]
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        by_id = dict(zip(map(id, params), grads, strict=True))
    finally:
        for h in hooks:
            h.remove()
        with torch.no_grad():
            for name, b in model.named_buffers():
                b.copy_(buffers[name])
        model.train(was_training)

    out: dict[str, list[float]] = {stat: [] for stat in PROBE_STATS}
    for i, site in enumerate(sites):
        row = dict.fromkeys(PROBE_STATS, math.nan)
        if (i, "norm") in captured:
            row |= _norm_input_stats(captured[(i, "norm")])
        if (i, "act") in captured:
            row |= _act_output_stats(captured[(i, "act")])
        sq = [
            by_id[id(p)].float().pow(2).sum()
            for p in site.params.parameters()
            if by_id.get(id(p)) is not None
        ]
        row["grad_norm"] = torch.stack(sq).sum().sqrt().item() if sq else math.nan
        for stat in PROBE_STATS:
            out[stat].append(row[stat])
    return out
